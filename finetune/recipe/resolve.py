"""Resolve a loaded recipe: every stage's RunConfig, each value with its source, checked before anything runs.

    resolve(loaded, train_dir, flags) -> ResolvedRecipe      RecipeError naming the line or flag at fault

A stage's values are, later winning: RunConfig's defaults, the recipe's groups (and the pool values
they pick), the stage's own groups, then command-line flags (for every stage). A stage that starts
from an earlier stage restores that stage's final checkpoint whole (TRAIN_DIR/<earlier>); the
recipe's Restore values and the restore flags apply to the stages that start from the checkpoint.

The --trainable and --lr-multiplier scopes are checked against the net's published variable names
(nets/published), no graph built; a hub:PATH net publishes none, so the run checks its scopes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from finetune.config import RunConfig, check_multiplier_scopes
from finetune.recipe.load import LoadedRecipe
from finetune.recipe.types import GROUPS, START_CKPT, START_SCRATCH, RecipeError, Restore, Stage, group_fields
from finetune.runs.run_dir import RunDir

_RECIPE_OWNED = ("train_dir",)  # RunConfig fields the recipe's runner sets itself, per stage
# Fields that change how a run is watched or saved, not what it trains: a finished stage is not refused over them.
_NOT_COMPARED = ("train_dir", "save_interval_steps", "save_interval_secs", "keep_checkpoints",
                 "summary_interval_steps", "skip_eval", "xla", "num_devices")
RUN_FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}


def _check_groups() -> None:
    """Every recipe group field is a RunConfig field (the recipe types cannot import the toolkit, so the check
    is here); RunConfig fields no group has are the runner's own."""
    for group in GROUPS:
        unknown = [name for name in group_fields(group) if name not in RUN_FIELDS]
        if unknown:
            raise TypeError(f"finetune.recipe.types.{group.__name__} fields {unknown} are no RunConfig fields.")


_check_groups()


def uncovered_run_fields() -> list[str]:
    """RunConfig fields no recipe group sets and the runner does not own (a test keeps this empty)."""
    covered = {name for group in GROUPS for name in group_fields(group)} | set(_RECIPE_OWNED)
    return [name for name in RUN_FIELDS if name not in covered]


@dataclass(frozen=True)
class Source:
    """Where a value came from: 'recipe' / 'pool' (FILE:LINE), 'flag' (--name), 'plan' or 'default'."""

    kind: str
    where: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.where}".strip()


@dataclass(frozen=True)
class ResolvedStage:
    stage: Stage
    config: RunConfig
    sources: dict[str, Source]  # every RunConfig field

    @property
    def name(self) -> str:
        return self.stage.name

    def compared_values(self) -> dict[str, Any]:
        """The values that decide what the stage trains, as plan.json stores them."""
        values = {k: v for k, v in self.config.to_dict().items() if k not in _NOT_COMPARED}
        if self.stage.start not in (START_SCRATCH, START_CKPT):
            values["ckpt"] = f"<final checkpoint of stage {self.stage.start}>"
        for key in ("dataset",):
            values[key] = os.path.abspath(values[key])
        return json.loads(json.dumps(values))


@dataclass(frozen=True)
class ResolvedRecipe:
    """A recipe with every stage's values decided, in its train dir (plan.json and TRAIN_DIR/<stage>)."""

    loaded: LoadedRecipe
    train_dir: RunDir
    stages: tuple[ResolvedStage, ...]
    flags: dict[str, Any]  # the training flags given on the command line

    @property
    def final(self) -> ResolvedStage:
        return self.stages[-1]

    def records(self) -> dict[str, dict]:
        """What the train dir's plan.json recorded of each stage (values, state), by stage name; {} if none."""
        return {record["name"]: record for record in (self.train_dir.plan() or {}).get("stages", [])}


def _source(layer, recipe_path: str) -> Source:
    file = layer.where.rpartition(":")[0]
    same = os.path.abspath(file) == os.path.abspath(recipe_path)
    return Source("recipe" if same else "pool", layer.where)


def flag_name(name: str) -> str:
    """The command-line flag of a RunConfig field: 'learning_rate' -> '--learning-rate'."""
    return "--" + name.replace("_", "-")


def resolve(loaded: LoadedRecipe, train_dir: str | None = None, flags: Mapping[str, Any] | None = None, *,
            datasets: Mapping[str, str] | None = None) -> ResolvedRecipe:
    """Every stage's RunConfig with each value's source, checked before anything runs (RecipeError naming the
    line or flag of the value at fault). `flags`: RunConfig field -> value given on the command line (for every
    stage); `datasets`: names a recipe's Data.dataset may use for a folder (`finetune demo`'s drawn sets)."""
    flags = dict(flags or {})
    recipe_dir = RunDir(train_dir or flags.pop("train_dir", None) or f"runs/{loaded.name}")
    flags.pop("train_dir", None)
    stages = tuple(_resolve_stage(loaded, stage, recipe_dir, flags, datasets or {})
                   for stage in loaded.recipe.stages)
    return ResolvedRecipe(loaded, recipe_dir, stages, flags)


def _layered_values(loaded: LoadedRecipe, stage: Stage, flags: Mapping[str, Any]) -> dict[str, tuple[Any, Source]]:
    """The stage's values from its layers, later winning, then the flags."""
    recipe, from_ckpt = loaded.recipe, stage.start == START_CKPT
    layers = [*recipe.data, *stage.data, *recipe.model, *(recipe.restore if from_ckpt else ()),
              *recipe.training, *stage.training]
    values: dict[str, tuple[Any, Source]] = {}
    for layer in layers:
        for key, value in layer.given().items():
            _put(values, key, value, _source(layer, loaded.path))
    restore_fields = set(group_fields(Restore))
    for key, value in flags.items():
        if key in restore_fields and not from_ckpt:
            continue  # restore flags are about the pretrained checkpoint
        _put(values, key, value, Source("flag", flag_name(key)))
    return values


def _resolve_stage(loaded: LoadedRecipe, stage: Stage, recipe_dir: RunDir, flags: Mapping[str, Any],
                   datasets: Mapping[str, str]) -> ResolvedStage:
    values = _layered_values(loaded, stage, flags)
    values["train_dir"] = (str(recipe_dir.stage(stage.name)), Source("plan", "TRAIN_DIR/<stage>"))
    if stage.start == START_SCRATCH:
        values["ckpt"] = (None, Source("plan", "starts from scratch"))
    elif stage.start != START_CKPT:
        values["ckpt"] = (str(recipe_dir.stage(stage.start)), Source("plan", f"final checkpoint of {stage.start}"))
    elif values.get("ckpt", (None,))[0] is None:
        raise RecipeError(f"{stage.where}: stage {stage.name!r} starts from '{START_CKPT}' but no checkpoint is "
                          "given: set Restore(ckpt=...) in the recipe or give --ckpt.")
    dataset = values.get("dataset", (None,))[0]
    if dataset is None:
        raise RecipeError(f"{loaded.recipe.where}: the recipe names no dataset: give --dataset DIR.")
    if dataset in datasets:
        values["dataset"] = (datasets[dataset], values["dataset"][1])
    config = _run_config(stage, values)
    _check_scopes(stage, config, values)
    sources = {name: values[name][1] if name in values else Source("default") for name in RUN_FIELDS}
    return ResolvedStage(stage, config, sources)


def _put(values: dict[str, tuple[Any, Source]], key: str, value: Any, source: Source) -> None:
    alternative = {"epochs": "max_steps", "max_steps": "epochs"}.get(key)
    values.pop(alternative, None)  # epochs or steps: the later layer's choice replaces the other
    values[key] = (value, source)


def _blame(stage: Stage, values: Mapping[str, tuple[Any, Source]], key: str | None) -> str:
    source = values[key][1] if key in values else None
    if source is None or source.kind == "default":
        return f"{stage.where}: stage {stage.name!r}"
    if source.kind == "flag":
        return f"flag {source.where} (stage {stage.name!r})"
    return f"{source.where}: stage {stage.name!r}, {key}"


def _run_config(stage: Stage, values: Mapping[str, tuple[Any, Source]]) -> RunConfig:
    try:
        return RunConfig(**{key: value for key, (value, _) in values.items()})
    except ValueError as error:
        message = str(error).strip().splitlines()[0]
        flag = re.search(r"--([a-z][a-z0-9-]*)", message)
        key = flag.group(1).replace("-", "_") if flag else None
        raise RecipeError(f"{_blame(stage, values, key)}: {message}") from None


def _check_scopes(stage: Stage, config: RunConfig, values: Mapping[str, tuple[Any, Source]]) -> None:
    """--trainable and --lr-multiplier scopes against the net's variable names (nets/published), no graph built. A
    hub:PATH net publishes none (its backbone's are the SavedModel's): its scopes are checked by the run, when its
    graph is built."""
    from checkpoints import scopes
    from finetune.train.graph import trainable_scopes
    from nets import hub, nets_factory

    spec = nets_factory.get_spec(config.net)  # a hub net's SavedModel is inspected here: a bad one is refused
    if hub.is_hub(config.net):
        return
    names = list(spec.published_variables())
    trainable = trainable_scopes(spec, config.trainable)
    unmatched = scopes.unmatched_scopes(names, trainable, spec.scope)
    if unmatched:
        raise RecipeError(f"{_blame(stage, values, 'trainable')}: scope {unmatched[0]!r} matches no variable of "
                          f"{config.net} (its scopes: {scopes.top_scopes(names)}).")
    trained = [name for name in names if scopes.matching_scope(name, trainable, spec.scope)]
    try:  # the run's own check of --lr-multiplier, so that --dry-run refuses what the run would
        check_multiplier_scopes(trained, [scope for scope, _ in config.lr_multiplier], spec.scope)
    except ValueError as error:
        raise RecipeError(f"{_blame(stage, values, 'lr_multiplier')}: {error}") from None


__all__ = ["RUN_FIELDS", "ResolvedRecipe", "ResolvedStage", "Source", "flag_name", "resolve", "uncovered_run_fields"]
