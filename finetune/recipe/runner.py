"""Load, check, print and run a recipe (finetune.recipe.types): its stages in order, in one plan dir.

    load_recipe(NAME | path.py) -> LoadedRecipe        recipes/NAME.py's RECIPE, any mistake as FILE:LINE
    resolve(loaded, train_dir, flags) -> Plan          every stage's RunConfig, each value with its source
    format_plan(plan)                                  what `--dry-run` prints
    run_plan(plan, restart_from=None)                  the stages, resumable; TRAIN_DIR/<stage>, plan.json

A stage's values are, later winning: RunConfig's defaults, the recipe's groups (and the pool values
they pick), the stage's own groups, then command-line flags (for every stage). A stage that starts
from an earlier stage restores that stage's final checkpoint whole (TRAIN_DIR/<earlier>); the
recipe's Restore values and the restore flags apply to the stages that start from the checkpoint.

The plan dir's plan.json (finetune.runs.run_dir) records each stage's resolved values and whether it
finished. Rerunning skips finished stages, resumes the interrupted one from its latest checkpoint
(train's own resume) and refuses a recipe whose values for a finished stage changed, unless
restarted from a stage (`restart_from`), which clears that stage's and the later stages' dirs.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.util
import json
import os
import pkgutil
import re
import shutil
import sys
import traceback
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune.config import RunConfig
from finetune.recipe.types import (
    GROUPS,
    START_CKPT,
    START_SCRATCH,
    Data,
    Model,
    Recipe,
    RecipeError,
    Restore,
    Stage,
    Training,
    display_path,
    group_fields,
)
from finetune.runs.run_dir import RunDir

RECIPE_ATTRIBUTE = "RECIPE"
PLAN_VERSION = 1
_PLAN_OWNED = ("train_dir",)  # RunConfig fields the plan sets itself, per stage
# Fields that change how a run is watched or saved, not what it trains: a finished stage is not refused over them.
_NOT_COMPARED = ("train_dir", "save_interval_steps", "save_interval_secs", "keep_checkpoints",
                 "summary_interval_steps", "skip_eval", "xla", "num_devices")
_RUN_FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}


def _check_groups() -> None:
    """Every recipe group field is a RunConfig field (the recipe types cannot import the toolkit, so the check
    is here); RunConfig fields no group has are the plan's own."""
    for group in GROUPS:
        unknown = [name for name in group_fields(group) if name not in _RUN_FIELDS]
        if unknown:
            raise TypeError(f"finetune.recipe.types.{group.__name__} fields {unknown} are no RunConfig fields.")


_check_groups()


def uncovered_run_fields() -> list[str]:
    """RunConfig fields no recipe group sets and the plan does not own (a test keeps this empty)."""
    covered = {name for group in GROUPS for name in group_fields(group)} | set(_PLAN_OWNED)
    return [name for name in _RUN_FIELDS if name not in covered]


# -- loading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedRecipe:
    name: str
    path: str
    recipe: Recipe
    docstring: str


def recipe_names() -> list[str]:
    """The recipes shipped in recipes/ (every module but the pool)."""
    import recipes

    return sorted(m.name for m in pkgutil.iter_modules(recipes.__path__)
                  if not m.name.startswith("_") and m.name != "pool")


def load_recipe(name_or_path: str) -> LoadedRecipe:
    """recipes/NAME.py, or a path to a .py file, and its RECIPE; RecipeError ('FILE:LINE: ...') on any mistake."""
    if name_or_path.endswith(".py") or os.sep in name_or_path:
        path = Path(name_or_path)
        if not path.is_file():
            raise RecipeError(f"recipe file {path} not found: give recipes/NAME.py's NAME or a path to a .py file.")
        name = path.stem
        module = types.ModuleType(f"_finetune_recipe_{name}")
        module.__file__ = str(path)

        def loader():  # compiled from the text each time: no bytecode cache to go stale after an edit
            exec(compile(path.read_text(), str(path), "exec"), module.__dict__)
    else:
        name = name_or_path
        if name not in recipe_names():
            close = difflib.get_close_matches(name, recipe_names(), n=1)
            raise RecipeError(f"no recipe {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                              + f": `finetune recipes` lists them ({', '.join(recipe_names())}), or give a path.py.")
        path = Path(importlib.util.find_spec(f"recipes.{name}").origin)
        module = None

        def loader():
            nonlocal module
            module = importlib.import_module(f"recipes.{name}")
    try:
        loader()
    except RecipeError:
        raise
    except SyntaxError as error:
        raise RecipeError(f"{display_path(error.filename or str(path))}:{error.lineno}: {error.msg}.") from None
    except Exception as error:  # a mistake in the recipe (or its pool): name its line
        raise RecipeError(f"{_error_line(error, path)}: {_explain(error)}") from None
    recipe = getattr(module, RECIPE_ATTRIBUTE, None)
    if not isinstance(recipe, Recipe):
        raise RecipeError(f"{display_path(str(path))}: defines no {RECIPE_ATTRIBUTE} = Recipe(...) "
                          f"(found {type(recipe).__name__}).")
    return LoadedRecipe(name=name, path=str(path), recipe=recipe, docstring=(module.__doc__ or "").strip())


def _error_line(error: Exception, path: Path) -> str:
    """FILE:LINE of the innermost frame of `error` in a recipe or pool file (else the recipe file)."""
    recipe_module = Path(sys.modules[Recipe.__module__].__file__)
    inside = [frame for frame in traceback.extract_tb(error.__traceback__)
              if not frame.filename.startswith("<") and Path(frame.filename) != recipe_module
              and Path(frame.filename).name != "dataclasses.py" and "importlib" not in frame.filename
              and Path(frame.filename) != Path(__file__)]
    frame = inside[-1] if inside else None
    return f"{display_path(frame.filename)}:{frame.lineno}" if frame else display_path(str(path))


def _explain(error: Exception) -> str:
    """A typo'd key, in words, with the nearest field name."""
    text = str(error)
    match = re.search(r"(\w+)\.__init__\(\) got an unexpected keyword argument '(\w+)'", text)
    types_ = {t.__name__: t for t in (*GROUPS, Stage, Recipe)}
    if match and match.group(1) in types_:
        kind, key = types_[match.group(1)], match.group(2)
        names = [f.name for f in dataclasses.fields(kind) if f.init]
        close = difflib.get_close_matches(key, names, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"its keys: {', '.join(names)}"
        return f"unknown key {key!r} in {kind.__name__}(...): {hint}"
    return f"{type(error).__name__}: {text}"


# -- resolving ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Where a value came from: 'recipe' / 'pool' (FILE:LINE), 'flag' (--name), 'plan' or 'default'."""

    kind: str
    where: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.where}".strip()


@dataclass(frozen=True)
class PlannedStage:
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
class Plan:
    loaded: LoadedRecipe
    train_dir: RunDir
    stages: tuple[PlannedStage, ...]
    flags: dict[str, Any]  # the training flags given on the command line

    @property
    def final(self) -> PlannedStage:
        return self.stages[-1]


def _source(layer, recipe_path: str) -> Source:
    file = layer.where.rpartition(":")[0]
    same = os.path.abspath(file) == os.path.abspath(recipe_path)
    return Source("recipe" if same else "pool", layer.where)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def resolve(loaded: LoadedRecipe, train_dir: str | None = None, flags: Mapping[str, Any] | None = None, *,
            datasets: Mapping[str, str] | None = None) -> Plan:
    """Every stage's RunConfig with each value's source, checked before anything runs (RecipeError naming the
    line or flag of the value at fault). `flags`: RunConfig field -> value given on the command line (for every
    stage); `datasets`: names a recipe's Data.dataset may use for a folder (`finetune demo`'s drawn sets)."""
    flags = dict(flags or {})
    recipe = loaded.recipe
    plan_dir = RunDir(train_dir or flags.pop("train_dir", None) or f"runs/{loaded.name}")
    flags.pop("train_dir", None)
    restore_fields = set(group_fields(Restore))
    stages = []
    for stage in recipe.stages:
        from_ckpt = stage.start == START_CKPT
        layers = [*recipe.data, *stage.data, *recipe.model, *(recipe.restore if from_ckpt else ()),
                  *recipe.training, *stage.training]
        values: dict[str, tuple[Any, Source]] = {}
        for layer in layers:
            for key, value in layer.given().items():
                _put(values, key, value, _source(layer, loaded.path))
        for key, value in flags.items():
            if key in restore_fields and not from_ckpt:
                continue  # restore flags are about the pretrained checkpoint
            _put(values, key, value, Source("flag", _flag(key)))
        values["train_dir"] = (str(plan_dir.stage(stage.name)), Source("plan", "TRAIN_DIR/<stage>"))
        if stage.start == START_SCRATCH:
            values["ckpt"] = (None, Source("plan", "starts from scratch"))
        elif not from_ckpt:
            values["ckpt"] = (str(plan_dir.stage(stage.start)), Source("plan", f"final checkpoint of {stage.start}"))
        elif values.get("ckpt", (None,))[0] is None:
            raise RecipeError(f"{stage.where}: stage {stage.name!r} starts from '{START_CKPT}' but no checkpoint is "
                              "given: set Restore(ckpt=...) in the recipe or give --ckpt.")
        dataset = values.get("dataset", (None,))[0]
        if dataset is None:
            raise RecipeError(f"{recipe.where}: the recipe names no dataset: give --dataset DIR.")
        if datasets and dataset in datasets:
            values["dataset"] = (datasets[dataset], values["dataset"][1])
        config = _run_config(stage, values)
        _check_scopes(stage, config, values)
        sources = {name: values[name][1] if name in values else Source("default") for name in _RUN_FIELDS}
        stages.append(PlannedStage(stage, config, sources))
    return Plan(loaded, plan_dir, tuple(stages), dict(flags))


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
    """--trainable and --lr-multiplier scopes against the net's variable names (nets/published), no graph built."""
    from checkpoints import scopes
    from finetune.train.graph import trainable_scopes
    from nets import nets_factory

    spec = nets_factory.get_spec(config.net)
    names = list(spec.published_variables())
    checks = {"trainable": trainable_scopes(spec, config.trainable),
              "lr_multiplier": tuple(scope for scope, _ in config.lr_multiplier)}
    for key, scope_list in checks.items():
        unmatched = scopes.unmatched_scopes(names, scope_list, spec.scope)
        if unmatched:
            raise RecipeError(f"{_blame(stage, values, key)}: scope {unmatched[0]!r} matches no variable of "
                              f"{config.net} (its scopes: {scopes.top_scopes(names)}).")


# -- printing -----------------------------------------------------------------------------------


def _start(stage: Stage, config: RunConfig) -> str:
    if stage.start == START_SCRATCH:
        return "from scratch"
    if stage.start == START_CKPT:
        return f"from the checkpoint {config.ckpt}"
    return f"from stage {stage.start}'s final checkpoint"


def _shown(value: Any) -> str:
    if isinstance(value, tuple | list):
        return ",".join(_shown(v) if not isinstance(v, tuple) else "=".join(map(str, v)) for v in value) or "-"
    if hasattr(value, "text"):
        return value.text
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def override_lines(plan: Plan) -> list[str]:
    """One line per command-line flag: what it overrides in each stage."""
    lines = []
    for key, value in plan.flags.items():
        replaced = []
        for planned in plan.stages:
            for layer in (*planned.stage.training, *planned.stage.data):
                if key in layer.given():
                    replaced.append(f"{planned.name} {_shown(layer.given()[key])}")
        recipe_layers = [*plan.loaded.recipe.data, *plan.loaded.recipe.model, *plan.loaded.recipe.restore,
                         *plan.loaded.recipe.training]
        shared = [_shown(layer.given()[key]) for layer in recipe_layers if key in layer.given()]
        was = "; ".join(([f"recipe {shared[-1]}"] if shared else []) + replaced) or "not set by the recipe"
        scope = "the stages that start from the checkpoint" if key in group_fields(Restore) else "every stage"
        lines.append(f"flag {_flag(key)} {_shown(value)} overrides {key} for {scope} (was: {was})")
    return lines


def format_plan(plan: Plan) -> str:
    """The resolved plan: every stage and every value with its source, and what plan.json says is done."""
    loaded = plan.loaded
    record = _stage_records(plan.train_dir)
    lines = [f"recipe {loaded.name} ({display_path(loaded.path)}): {loaded.recipe.description}",
             f"plan dir {plan.train_dir}: {len(plan.stages)} stages in {plan.train_dir}/<stage>, "
             f"the result is stage {plan.final.name}", *override_lines(plan)]
    width = max(map(len, _RUN_FIELDS))
    value_width = max(len(_shown(getattr(p.config, name))) for p in plan.stages for name in _RUN_FIELDS)
    for i, planned in enumerate(plan.stages, 1):
        config, stage = planned.config, planned.stage
        state = record.get(stage.name, {}).get("state", "not run")
        keep = f"; final checkpoint kept as {plan.train_dir.kept(stage.keep)}" if stage.keep else ""
        lines += ["", f"stage {i}/{len(plan.stages)} {stage.name} ({stage.where}): {_start(stage, config)}{keep} "
                      f"[{state}]"]
        for name in _RUN_FIELDS:
            lines.append(f"  {name:<{width}}  {_shown(getattr(config, name)):<{value_width}}  {planned.sources[name]}")
    return "\n".join(lines)


# -- running ------------------------------------------------------------------------------------


def _stage_records(plan_dir: RunDir) -> dict[str, dict]:
    plan = plan_dir.plan() or {}
    return {record["name"]: record for record in plan.get("stages", [])}


def _changes(recorded: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    keys = [k for k in dict.fromkeys([*recorded, *now]) if recorded.get(k) != now.get(k)]
    return [f"{k} {_shown(recorded.get(k))} -> {_shown(now.get(k))}" for k in keys]


def changed_stages(plan: Plan) -> dict[str, list[str]]:
    """Finished stages whose values differ from what plan.json recorded: {stage: ['key old -> new', ...]}."""
    records = _stage_records(plan.train_dir)
    changed = {}
    for planned in plan.stages:
        record = records.get(planned.name)
        if record and record.get("state") == "done":
            changes = _changes(record["values"], planned.compared_values())
            if record.get("start") != planned.stage.start:
                changes.insert(0, f"start {record.get('start')} -> {planned.stage.start}")
            if changes:
                changed[planned.name] = changes
    return changed


def _write_plan(plan: Plan, records: Mapping[str, dict]) -> None:
    plan.train_dir.write_plan({
        "version": PLAN_VERSION,
        "recipe": plan.loaded.name,
        "recipe_file": os.path.abspath(plan.loaded.path),
        "description": plan.loaded.recipe.description,
        "stages": [records[p.name] for p in plan.stages],
    })


def run_plan(plan: Plan, *, restart_from: str | None = None, verbose: bool = True,
             progress_bar: bool | None = None) -> dict[str, dict]:
    """Run the plan's stages in order in TRAIN_DIR/<stage>; returns {stage: run summary} of the stages run or
    found done. Stops (without error) after a stage that did not finish (interrupted): rerun to continue."""
    from finetune.serve.evaluate import validation_accuracy
    from finetune.train.loop import train

    names = [p.name for p in plan.stages]
    if restart_from is not None and restart_from not in names:
        raise ValueError(f"--restart-from {restart_from!r} is no stage of recipe {plan.loaded.name}: "
                         f"its stages are {', '.join(names)}.")
    restart_at = names.index(restart_from) if restart_from else len(names)
    changed = {k: v for k, v in changed_stages(plan).items() if names.index(k) < restart_at}
    if changed:
        name, changes = next(iter(changed.items()))
        raise ValueError(f"stage {name!r} of {plan.train_dir} finished with other values than the recipe's now "
                         f"({'; '.join(changes)}): rerun with --restart-from {name} to train it and the later stages "
                         "again, or use another --train-dir.")
    old = _stage_records(plan.train_dir)
    if plan.train_dir.path.is_dir() and not old and any(plan.train_dir.path.iterdir()):
        raise ValueError(f"{plan.train_dir} is not empty and holds no {plan.loaded.name} plan: give a new "
                         "--train-dir for the recipe.")
    if old and plan.train_dir.plan().get("recipe") != plan.loaded.name:
        raise ValueError(f"{plan.train_dir} holds a plan of recipe {plan.train_dir.plan().get('recipe')!r}, not "
                         f"{plan.loaded.name!r}: give another --train-dir.")
    for planned in plan.stages:  # before anything is written
        if not Path(planned.config.dataset).exists():
            source = planned.sources["dataset"]
            raise ValueError(f"{source.where if source.kind in ('recipe', 'pool') else source}: stage {planned.name!r}: dataset {planned.config.dataset} does "
                             "not exist: give --dataset DIR (an image folder or TFRecords).")
    for line in override_lines(plan):
        print(line)
    records = {}
    for i, planned in enumerate(plan.stages):
        record = old.get(planned.name)
        if i >= restart_at:
            for path in (plan.train_dir.stage(planned.name).path,
                         *([plan.train_dir.kept(planned.stage.keep).path] if planned.stage.keep else [])):
                if path.exists():
                    shutil.rmtree(path)
                    print(f"--restart-from {restart_from}: removed {path}")
            record = None
        records[planned.name] = record or {"name": planned.name, "start": planned.stage.start, "state": "not run",
                                           "values": planned.compared_values()}
    _write_plan(plan, records)

    summaries: dict[str, dict] = {}
    for i, planned in enumerate(plan.stages, 1):
        stage, config, record = planned.stage, planned.config, records[planned.name]
        run_dir = RunDir(config.train_dir)
        done = run_dir.summary() if record["state"] == "done" else None
        header = f"[{stage.name}] stage {i}/{len(plan.stages)}: {config.net}, trainable {_shown(config.trainable)}, " \
                 f"{_start(stage, config)}, " + (f"{config.max_steps} steps" if config.max_steps else
                                                  f"{config.epochs:g} epochs") + \
                 f" at learning rate {config.learning_rate:g} ({config.optimizer}, {config.lr_schedule}), {run_dir}"
        if done and done.get("checkpoint") and _checkpoint_exists(done["checkpoint"]):
            print(f"{header}: finished before, not run again (final checkpoint {done['checkpoint']})")
            summaries[stage.name] = done
            continue
        print(header)
        record.update(state="running", values=planned.compared_values())
        _write_plan(plan, records)
        summary = train(config, verbose=verbose, progress_bar=progress_bar, validate=validation_accuracy)
        summaries[stage.name] = summary
        if summary["stopped"] != "max_steps":
            record["state"] = "stopped"
            _write_plan(plan, records)
            print(f"[{stage.name}] stopped at step {summary['final_step']} ({summary['stopped']}): rerun the same "
                  "command to continue this stage.")
            return summaries
        record.update(state="done", checkpoint=summary["checkpoint"], final_step=summary["final_step"],
                      validation_accuracy=summary["validation_accuracy"])
        if stage.keep:
            record["kept"] = run_dir.copy_checkpoint(summary["checkpoint"], plan.train_dir.kept(stage.keep))
            print(f"[{stage.name}] final checkpoint kept as {record['kept']}")
        _write_plan(plan, records)
    accuracy = summaries[plan.final.name].get("validation_accuracy")
    print(f"plan {plan.loaded.name} done: the result is stage {plan.final.name}"
          + (f" (validation accuracy {100 * accuracy:.1f}%)" if accuracy is not None else "")
          + f"; `finetune export --train-dir {plan.train_dir} --output model.pb` exports it.")
    return summaries


def _checkpoint_exists(checkpoint: str) -> bool:
    from nets.compat import tf

    return tf.train.checkpoint_exists(checkpoint)


__all__ = ["Data", "LoadedRecipe", "Model", "Plan", "PlannedStage", "Recipe", "RecipeError", "Restore", "Source",
           "Stage", "Training", "changed_stages", "format_plan", "load_recipe", "recipe_names", "resolve",
           "run_plan", "uncovered_run_fields"]
