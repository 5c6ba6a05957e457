"""Reading, inspecting, name-mapping and partially restoring checkpoints; known pretrained checkpoints.

    plan = plan_restore(slim.get_model_variables(), "inception_v3", net=nets_factory.get_spec("inception_v3"),
                        options=RestoreOptions(exclude_scopes=("Logits",)))
    print(plan.table()); plan.save_json(train_dir + "/restore_report.json")
    ...initialise variables..., then plan.apply(session)   # one RestoreV2 op

Imports run one way: registry (data) <- reader (files) <- download <- resolve <- plan; scopes and
mapping (names only) stand alone.
"""

from checkpoints.download import fetch
from checkpoints.plan import RestoreError, RestoreOptions, RestorePlan, build_plan, check_resume, plan_restore
from checkpoints.reader import TensorInfo, checkpoint_problem, checkpoint_table, read_variables, verify_checkpoint
from checkpoints.registry import REGISTRY, Pretrained
from checkpoints.resolve import resolve_checkpoint

__all__ = [
    "REGISTRY",
    "Pretrained",
    "RestoreError",
    "RestoreOptions",
    "RestorePlan",
    "TensorInfo",
    "build_plan",
    "check_resume",
    "checkpoint_problem",
    "checkpoint_table",
    "fetch",
    "plan_restore",
    "read_variables",
    "resolve_checkpoint",
    "verify_checkpoint",
]
