"""Reading, inspecting, name-mapping and partially restoring checkpoints; known pretrained checkpoints.

    plan = plan_restore(slim.get_model_variables(), "inception_v3", net=nets_factory.get_spec("inception_v3"),
                        options=RestoreOptions(exclude_scopes=("Logits",)))
    print(plan.table()); plan.save_json(train_dir + "/restore_report.json")
    ...initialise variables..., then plan.apply(session)   # one RestoreV2 op

Imports run one way: registry (data) <- reader (files) <- download <- resolve <- plan; scopes and
mapping (names only) stand alone.

The names below (and the submodules) load on first use, so importing a TensorFlow-free part such as
`checkpoints.mapping` or `checkpoints.registry` does not import TensorFlow (`finetune --help` stays instant).
"""

import importlib

_HOME = {
    "fetch": "download",
    "RestoreError": "plan",
    "RestorePlan": "plan",
    "build_plan": "plan",
    "check_resume": "plan",
    "plan_restore": "plan",
    "TensorInfo": "reader",
    "checkpoint_table": "reader",
    "checkpoint_problem": "reader",
    "verify_checkpoint": "reader",
    "read_variables": "reader",
    "resolve_checkpoint": "resolve",
    "RestoreOptions": "plan",
    "REGISTRY": "registry",
    "Pretrained": "registry",
}
_SUBMODULES = ("download", "mapping", "plan", "reader", "registry", "resolve", "scopes")

__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name in _HOME:
        return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME, *_SUBMODULES})
