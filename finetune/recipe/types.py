"""The types recipes are written in (recipes/*.py): a multi-stage training recipe as typed, plain values.

A recipe is a `Recipe`: values grouped by purpose (`Data`, `Model`, `Restore`, `Training`) shared
by every stage, and the `Stage`s in order, each with the `Training` (and `Data`) values it changes.
Every group field is a field of finetune.config.RunConfig of the same name (finetune.recipe.resolve
checks that, and RunConfig checks the values); None means "not set here": a later layer, a command-line
flag or RunConfig's default decides.

Mistakes surface where they are written: a misspelt field is Python's TypeError at the line that
names it, a value of the wrong type is a RecipeError naming the field and that line (`where`).

This module imports nothing of the toolkit (nor TensorFlow), so a recipe depends on it alone;
finetune.recipe.load loads a recipe, .resolve checks it, .show prints it and .runner runs it.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import types
import typing
from dataclasses import dataclass, field

START_SCRATCH = "scratch"  # a stage's weights start random
START_CKPT = "ckpt"  # ... from the recipe's pretrained checkpoint (Restore.ckpt or --ckpt)


class RecipeError(ValueError):
    """A recipe that cannot run; the message starts with FILE:LINE."""


def _where(depth_limit: int = 30) -> str:
    """FILE:LINE of the nearest caller outside this module and dataclasses' generated code."""
    frame = sys._getframe(1)
    for _ in range(depth_limit):
        if frame is None:
            break
        name = frame.f_code.co_filename
        if name != __file__ and not name.startswith("<") and os.path.basename(name) != "dataclasses.py":
            return f"{display_path(name)}:{frame.f_lineno}"
        frame = frame.f_back
    return "<unknown>"


def display_path(path: str) -> str:
    """`path` relative to the working directory when under it, else absolute."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def _type_ok(value, hint) -> bool:
    """isinstance for the hints group fields use: X | None, tuple[X, ...], str, int, float, bool."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is tuple:
        args = typing.get_args(hint)
        return isinstance(value, tuple) and all(_type_ok(item, args[0] if args[-1] is Ellipsis else arg)
                                                for item, arg in zip(value, args if args[-1] is not Ellipsis
                                                                     else [args[0]] * len(value)))
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _type_name(hint) -> str:
    return str(hint).replace("typing.", "").replace("<class '", "").replace("'>", "")


@dataclass(frozen=True)
class _Values:
    """A group of values: each field's type is checked where the group is written (`where`)."""

    where: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "where", _where())
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            if f.name == "where":
                continue
            value = getattr(self, f.name)
            if isinstance(value, list):  # a list reads as naturally as a tuple in a recipe
                value = tuple(value)
                object.__setattr__(self, f.name, value)
            if not _type_ok(value, hints[f.name]):
                raise RecipeError(f"{self.where}: {type(self).__name__}.{f.name} must be {_type_name(hints[f.name])}, "
                                  f"got {type(value).__name__} {value!r}.")

    def given(self) -> dict[str, typing.Any]:
        """The values this group sets (fields not None)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name != "where" and getattr(self, f.name) is not None}


@dataclass(frozen=True)
class Data(_Values):
    """What the recipe trains on. dataset None: --dataset gives it (`finetune demo` names its drawn sets)."""

    dataset: str | None = None
    validation_fraction: float | None = None
    seed: int | None = None
    deterministic: bool | None = None
    crop_min_area: float | None = None
    augment: str | None = None


@dataclass(frozen=True)
class Model(_Values):
    net: str | None = None
    image_size: int | None = None
    input_range: str | None = None
    batch_norm_decay: float | None = None


@dataclass(frozen=True)
class Restore(_Values):
    """The pretrained checkpoint of the stages that start from 'ckpt' (a stage that starts from an earlier stage
    restores that stage's final checkpoint whole: these values do not apply to it)."""

    ckpt: str | None = None
    exclude_scopes: str | tuple[str, ...] | None = None
    ckpt_rename: tuple[str, ...] | None = None
    ckpt_moving_average: bool | None = None
    background_class: str | None = None


@dataclass(frozen=True)
class Training(_Values):
    """What trains, how, and for how long. `epochs` and `max_steps` are alternatives: a layer that sets one
    replaces the other of the layers below it."""

    trainable: str | tuple[str, ...] | None = None  # 'logits', 'all', or scopes
    allow_random_trunk: bool | None = None
    train_bn_stats: bool | None = None
    optimizer: str | None = None
    learning_rate: float | None = None
    lr_schedule: str | None = None
    warmup_steps: int | None = None
    decay_epochs: float | None = None
    decay_factor: float | None = None
    end_learning_rate: float | None = None
    momentum: float | None = None
    rmsprop_decay: float | None = None
    rmsprop_momentum: float | None = None
    opt_epsilon: float | None = None
    adam_beta1: float | None = None
    adam_beta2: float | None = None
    adamw_weight_decay: float | None = None
    clip_grad_norm: float | None = None
    lr_multiplier: tuple[tuple[str, float], ...] | None = None
    moving_average_decay: float | None = None
    weight_decay: float | None = None
    label_smoothing: float | None = None
    batch_size: int | None = None
    max_steps: int | None = None
    epochs: float | None = None
    save_interval_steps: int | None = None
    save_interval_secs: int | None = None
    keep_checkpoints: int | None = None
    summary_interval_steps: int | None = None
    skip_eval: bool | None = None
    precision: str | None = None
    xla: bool | None = None
    num_devices: int | None = None
    sync_replicas: bool | None = None
    cache_features: str | None = None


GROUPS: tuple[type[_Values], ...] = (Data, Model, Restore, Training)


def group_fields(group: type[_Values]) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(group) if f.name != "where")


def _layers(value, kind: type[_Values], owner: str, where: str) -> tuple:
    """A group or a tuple of groups (applied in order, later wins) -> a tuple of groups of `kind`."""
    layers = value if isinstance(value, tuple | list) else (value,)
    for layer in layers:
        if not isinstance(layer, kind):
            raise RecipeError(f"{where}: {owner} takes {kind.__name__}(...) values, got {type(layer).__name__} "
                              f"{layer!r}.")
    return tuple(layers)


@dataclass(frozen=True)
class Stage:
    """One training run of the recipe, in TRAIN_DIR/<name>.

    start: 'scratch' (random weights), 'ckpt' (the recipe's pretrained checkpoint) or the name of an earlier
    stage (its final checkpoint, restored whole). training/data: this stage's values over the recipe's (a
    group or a tuple of groups, later wins). keep: also copy the final checkpoint, as a train dir, to
    TRAIN_DIR/kept/<keep>.
    """

    name: str
    start: str
    training: Training | tuple[Training, ...] = ()
    data: Data | tuple[Data, ...] = ()
    keep: str | None = None
    where: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "where", _where())
        for name in ("name", "start"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise RecipeError(f"{self.where}: Stage.{name} must be a non-empty str, got {getattr(self, name)!r}.")
        if not self.name.replace("_", "").replace("-", "").isalnum():
            raise RecipeError(f"{self.where}: Stage name {self.name!r} names a directory: use letters, digits, _ or -.")
        if self.name in (START_SCRATCH, START_CKPT, "kept"):
            raise RecipeError(f"{self.where}: Stage name {self.name!r} is reserved: choose another.")
        if self.keep is not None and not (isinstance(self.keep, str) and self.keep):
            raise RecipeError(f"{self.where}: Stage.keep must be a name (str) or None, got {self.keep!r}.")
        object.__setattr__(self, "training", _layers(self.training, Training, "Stage.training", self.where))
        object.__setattr__(self, "data", _layers(self.data, Data, "Stage.data", self.where))


@dataclass(frozen=True)
class Recipe:
    """A recipe: one-line description, the values every stage shares (each a group or a tuple of groups, later
    wins), and the stages in order. The last stage's model is the recipe's result."""

    description: str
    stages: tuple[Stage, ...]
    data: Data | tuple[Data, ...] = ()
    model: Model | tuple[Model, ...] = ()
    restore: Restore | tuple[Restore, ...] = ()
    training: Training | tuple[Training, ...] = ()
    where: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "where", _where())
        if not isinstance(self.description, str) or not self.description.strip() or "\n" in self.description:
            raise RecipeError(f"{self.where}: Recipe.description must be one line of text, got {self.description!r}.")
        stages = self.stages if isinstance(self.stages, tuple | list) else (self.stages,)
        if not stages:
            raise RecipeError(f"{self.where}: Recipe.stages is empty: a plan needs at least one Stage.")
        for stage in stages:
            if not isinstance(stage, Stage):
                raise RecipeError(f"{self.where}: Recipe.stages takes Stage(...) values, got {stage!r}.")
        object.__setattr__(self, "stages", tuple(stages))
        for name, kind in (("data", Data), ("model", Model), ("restore", Restore), ("training", Training)):
            object.__setattr__(self, name, _layers(getattr(self, name), kind, f"Recipe.{name}", self.where))
        seen: list[str] = []
        for stage in self.stages:
            if stage.name in seen:
                raise RecipeError(f"{stage.where}: stage {stage.name!r} is named twice: stage names name directories.")
            if stage.start not in (START_SCRATCH, START_CKPT, *seen):
                later = stage.start in (s.name for s in self.stages)
                raise RecipeError(
                    f"{stage.where}: stage {stage.name!r} starts from {stage.start!r}, "
                    + ("a stage that runs later or is itself: a stage starts from an earlier one." if later else
                       f"which is neither '{START_SCRATCH}', '{START_CKPT}' nor an earlier stage "
                       f"({', '.join(seen) or 'none'})."))
            seen.append(stage.name)
        kept = [s.keep for s in self.stages if s.keep]
        if len(set(kept)) != len(kept):
            raise RecipeError(f"{self.where}: two stages keep their checkpoint under the same name: {kept}.")

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise ValueError(f"the recipe has no stage {name!r}; its stages: {', '.join(s.name for s in self.stages)}.")
