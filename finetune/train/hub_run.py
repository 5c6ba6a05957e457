"""What a run with a `hub:PATH` backbone adds to a zoo net's: the resolved image size and input range,
the backbone's mode, and the restore report of weights that come from the SavedModel itself."""

from __future__ import annotations

from collections.abc import Sequence

from checkpoints import scopes
from nets import hub
from nets.compat import tf


def is_hub(net: str) -> bool:
    return hub.is_hub(net)


def resolve_input(net: str, image_size: int | None, input_range: str | None) -> tuple[int, tuple[float, float], str]:
    """(image size, input range, the line saying where they came from) of a hub:PATH run."""
    return hub.resolve_input(hub.inspect(net[len(hub.PREFIX):]), image_size, input_range)


def net_kwargs(net: str, input_range, scope_list: Sequence[str] | None, train_bn_stats: bool = False) -> dict:
    """The network function's extra arguments for a hub net ({} for a zoo net): its input range, and whether
    the backbone runs in training mode (only when the whole backbone trains, or with --train-bn-stats).
    scope_list None: inference."""
    if not is_hub(net):
        return {}
    backbone = f"{hub.SCOPE}/{hub.BACKBONE}"
    training = scope_list is not None and (train_bn_stats or bool(scopes.matching_scope(backbone, scope_list, hub.SCOPE)))
    return {"input_range": tuple(input_range), "backbone_training": training}


def restore_report(net: str, model_variables: Sequence[tf.Variable]) -> tuple[dict, str]:
    """(restore_report.json's content, the printed table) of a hub run: the backbone from the SavedModel,
    the rest freshly initialised."""
    model = hub.inspect(net[len(hub.PREFIX):])
    backbone = f"{hub.SCOPE}/{hub.BACKBONE}/"
    restored = [v for v in model_variables if v.op.name.startswith(backbone)]
    new = [v for v in model_variables if not v.op.name.startswith(backbone)]
    entries = [{"variable": v.op.name, "shape": v.shape.as_list(),
                "status": "restored" if v in restored else "new",
                "source": model.path if v in restored else None} for v in model_variables]
    report = {"checkpoint": model.path, "source": "hub SavedModel", "restored": len(restored), "new": len(new),
              "entries": entries}
    lines = [f"{len(restored)} of {len(model_variables)} variables restored from the hub SavedModel {model.path}",
             *(f"  new       {v.op.name} {v.shape.as_list()}" for v in new)]
    return report, "\n".join(lines)
