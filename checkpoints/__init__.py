"""Reading, inspecting, name-mapping and partially restoring checkpoints; known pretrained checkpoints.

A warm start, as training does it (the model variables built, the graph not yet finalised):

    plan = plan_restore(model_variables, ckpt, net=nets_factory.get_spec(net),
                        options=RestoreOptions(exclude_scopes=("Logits",)))   # RestoreError if it does not fit
    print(plan.table())                       # the report; plan.to_dict() is what restore_report.json holds
    scaffold = tf.train.Scaffold(init_op=plan.remainder_initializer(),  # what the restore does not set
                                 init_fn=plan.init_fn())                 # one RestoreV2 op, run after it

`build_plan` is the same plan without the strict check (`finetune inspect`); `check_resume` says whether a
train dir's own checkpoint fits the graph; `resolve_checkpoint` turns a --ckpt value (a path or a
registered name, fetched once) into a checkpoint prefix.

Imports run one way: registry (data) <- reader (files) <- download <- resolve <- planner -> plan (the
value, its checks and reports) -> restore_op (applying it); scopes and mapping (names only) stand alone.

The names below (and the submodules) load on first use, so importing a TensorFlow-free part such as
`checkpoints.mapping` or `checkpoints.registry` does not import TensorFlow (`finetune --help` stays instant).
"""

import importlib

_HOME = {
    "fetch": "download",
    "RestoreError": "plan",
    "RestorePlan": "plan",
    "build_plan": "planner",
    "check_resume": "planner",
    "plan_restore": "planner",
    "TensorInfo": "reader",
    "checkpoint_table": "reader",
    "checkpoint_problem": "reader",
    "verify_checkpoint": "reader",
    "read_variables": "reader",
    "resolve_checkpoint": "resolve",
    "RestoreOptions": "planner",
    "REGISTRY": "registry",
    "Pretrained": "registry",
}
_SUBMODULES = ("download", "mapping", "plan", "planner", "reader", "registry", "resolve", "restore_op", "scopes")

__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name in _HOME:
        return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME, *_SUBMODULES})
