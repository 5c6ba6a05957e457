"""Reading, inspecting, name-mapping and partially restoring checkpoints; known pretrained checkpoints.

    plan = plan_restore(slim.get_model_variables(), "inception_v3", net=nets_factory.get_spec("inception_v3"))
    print(plan.table()); plan.save_json(train_dir + "/restore_report.json")
    ...initialise variables..., then plan.apply(session)   # one RestoreV2 op
"""

from checkpoints.download import fetch
from checkpoints.plan import RestoreError, RestorePlan, build_plan, check_resume, plan_restore
from checkpoints.reader import TensorInfo, describe_checkpoint, read_variables, resolve_checkpoint
from checkpoints.registry import REGISTRY, Pretrained

__all__ = [
    "REGISTRY",
    "Pretrained",
    "RestoreError",
    "RestorePlan",
    "TensorInfo",
    "build_plan",
    "check_resume",
    "describe_checkpoint",
    "fetch",
    "plan_restore",
    "read_variables",
    "resolve_checkpoint",
]
