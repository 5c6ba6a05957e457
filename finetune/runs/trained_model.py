"""A trained checkpoint and what rebuilds its inference graph: the model evaluation, export, predict's
checks and the benchmarks load.

`TrainedModel.from_train_dir` reads a run's directory (finetune.runs.run_dir); `from_checkpoint` takes a
checkpoint and its net by hand.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from finetune.runs.run_dir import RunDir
from nets import nets_factory
from nets.compat import tf

_STEP_SUFFIX = re.compile(r"-(\d+)$")


@dataclass(frozen=True)
class TrainedModel:
    """A checkpoint and what rebuilds its inference graph."""

    checkpoint: str  # a prefix, as checkpoints.resolve_checkpoint returns
    net: str
    num_classes: int
    image_size: int
    preprocessing: str  # 'inception' | 'vgg'
    class_names: tuple[str, ...]
    use_moving_average: bool = False
    input_range: tuple[float, float] | None = None  # of a hub:PATH net (nets.hub)

    @classmethod
    def from_train_dir(
        cls, train_dir: str, checkpoint: str | None = None, *, image_size: int | None = None
    ) -> TrainedModel:
        """The latest checkpoint of `train_dir` (or `checkpoint`) with the run's net, classes and image size; for a
        recipe's plan dir, of its last stage."""
        run_dir = RunDir(train_dir).final_run()  # a recipe's plan dir: its last stage
        config = run_dir.run_config()
        spec = nets_factory.get_spec(config["net"])
        return cls(
            checkpoint=_resolve(checkpoint or str(run_dir)),
            net=spec.name,
            num_classes=int(config["num_classes"]),
            image_size=image_size or int(config.get("image_size") or spec.image_size),
            preprocessing=config.get("preprocessing") or spec.preprocessing,
            class_names=run_dir.class_names(int(config["num_classes"])),
            use_moving_average=config.get("moving_average_decay") is not None,
            input_range=tuple(config["input_range"]) if config.get("input_range") else None,
        )

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: str,
        net: str,
        num_classes: int | None = None,
        *,
        image_size: int | None = None,
        class_names: Sequence[str] | None = None,
        use_moving_average: bool = False,
    ) -> TrainedModel:
        """A checkpoint of `net` outside a train dir; the class count defaults to len(class_names), else the net's."""
        spec = nets_factory.get_spec(net)
        if num_classes is None:
            num_classes = len(class_names) if class_names else spec.num_classes
        names = tuple(class_names) if class_names else tuple(str(i) for i in range(num_classes))
        if len(names) != num_classes:
            raise ValueError(f"{len(names)} class names for {num_classes} classes: give one name per class.")
        return cls(
            checkpoint=_resolve(checkpoint),
            net=spec.name,
            num_classes=num_classes,
            image_size=image_size or spec.image_size,
            preprocessing=spec.preprocessing,
            class_names=names,
            use_moving_average=use_moving_average,
        )

    @property
    def global_step(self) -> int | None:
        """The checkpoint's global step: its `global_step` tensor, else the `-N` of its name."""
        reader = tf.train.load_checkpoint(self.checkpoint)
        if reader.has_tensor("global_step"):
            return int(reader.get_tensor("global_step"))
        match = _STEP_SUFFIX.search(self.checkpoint)
        return int(match.group(1)) if match else None

    def logits(self, images: tf.Tensor) -> tf.Tensor:
        """The net's logits [B, num_classes] for preprocessed `images`, in inference mode, in the default graph."""
        from nets import hub

        network_fn = nets_factory.get_network_fn(self.net, self.num_classes, is_training=False)
        kwargs = hub.net_kwargs(self.net, self.input_range) if self.input_range else {}
        logits, _ = network_fn(images, **kwargs)
        return logits

    def restore_plan(self, variables: Sequence[tf.Variable]):
        """The plan restoring every one of `variables` from the checkpoint; ValueError if any does not fit."""
        from checkpoints import RestoreError, RestoreOptions, plan_restore

        try:
            return plan_restore(variables, self.checkpoint,
                                options=RestoreOptions(exclude_scopes=(), use_moving_average=self.use_moving_average))
        except RestoreError as error:  # its fix names training flags; here the net or class count is wrong
            raise ValueError(f"{error.problem}; it is not a {self.net} with {self.num_classes} classes: give the "
                             "--net and --num-classes it was trained with.") from error

    def restore_op(self, variables: Sequence[tf.Variable]) -> tf.Operation:
        """One op restoring every one of `variables` from the checkpoint; ValueError if any does not fit."""
        return self.restore_plan(variables).restore_op()


def _resolve(checkpoint: str) -> str:
    from checkpoints import resolve_checkpoint

    return resolve_checkpoint(checkpoint)
