"""Run a resolved recipe (finetune.recipe.resolve): its stages in order, in one train dir, resumable.

    run_recipe(resolved, restart_from=None) -> {stage: run summary}     TRAIN_DIR/<stage>, TRAIN_DIR/plan.json
    changed_stages(resolved) -> {stage: ['key old -> new', ...]}        finished stages whose values changed

The train dir's plan.json (finetune.runs.run_dir) records each stage's resolved values and whether it
finished. Rerunning skips finished stages, resumes the interrupted one from its latest checkpoint
(train's own resume) and refuses a recipe whose values for a finished stage changed, unless
restarted from a stage (`restart_from`), which clears that stage's and the later stages' dirs.

This is the recipe API the commands use: it also offers load_recipe (finetune.recipe.load), resolve
(finetune.recipe.resolve) and format_resolved (finetune.recipe.show, what `--dry-run` prints).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from finetune.recipe.load import LoadedRecipe, load_recipe, recipe_names
from finetune.recipe.resolve import ResolvedRecipe, ResolvedStage, Source, resolve, uncovered_run_fields
from finetune.recipe.show import format_resolved, override_lines, shown, start_words
from finetune.recipe.types import RecipeError
from finetune.runs.run_dir import LOCK_FILE, RunDir

PLAN_VERSION = 1  # of plan.json's content


def _changes(recorded: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    keys = [k for k in dict.fromkeys([*recorded, *now]) if recorded.get(k) != now.get(k)]
    return [f"{k} {shown(recorded.get(k))} -> {shown(now.get(k))}" for k in keys]


def changed_stages(resolved: ResolvedRecipe) -> dict[str, list[str]]:
    """Finished stages whose values differ from what plan.json recorded: {stage: ['key old -> new', ...]}."""
    records = resolved.records()
    changed = {}
    for stage in resolved.stages:
        record = records.get(stage.name)
        if record and record.get("state") == "done":
            changes = _changes(record["values"], stage.compared_values())
            if record.get("start") != stage.stage.start:
                changes.insert(0, f"start {record.get('start')} -> {stage.stage.start}")
            if changes:
                changed[stage.name] = changes
    return changed


def _write_plan_json(resolved: ResolvedRecipe, records: Mapping[str, dict]) -> None:
    resolved.train_dir.write_plan({
        "version": PLAN_VERSION,
        "recipe": resolved.loaded.name,
        "recipe_file": os.path.abspath(resolved.loaded.path),
        "description": resolved.loaded.recipe.description,
        "stages": [records[s.name] for s in resolved.stages],
    })


def _restart_index(resolved: ResolvedRecipe, restart_from: str | None) -> int:
    """The index of the first stage to train anew (len(stages) when none); ValueError when the recipe cannot
    run in its train dir as it stands."""
    names = [s.name for s in resolved.stages]
    name, train_dir = resolved.loaded.name, resolved.train_dir
    if restart_from is not None and restart_from not in names:
        raise ValueError(f"--restart-from {restart_from!r} is no stage of recipe {name}: "
                         f"its stages are {', '.join(names)}.")
    restart_at = names.index(restart_from) if restart_from else len(names)
    changed = {k: v for k, v in changed_stages(resolved).items() if names.index(k) < restart_at}
    if changed:
        stage, changes = next(iter(changed.items()))
        raise ValueError(f"stage {stage!r} of {train_dir} finished with other values than the recipe's now "
                         f"({'; '.join(changes)}): rerun with --restart-from {stage} to train it and the later stages "
                         "again, or use another --train-dir.")
    recorded = resolved.records()
    if train_dir.path.is_dir() and not recorded and any(p.name != LOCK_FILE for p in train_dir.path.iterdir()):
        raise ValueError(f"{train_dir} is not empty and holds no {name} plan: give a new --train-dir for the recipe.")
    if recorded and train_dir.plan().get("recipe") != name:
        raise ValueError(f"{train_dir} holds a plan of recipe {train_dir.plan().get('recipe')!r}, not "
                         f"{name!r}: give another --train-dir.")
    for stage in resolved.stages:  # before anything is written
        if not Path(stage.config.dataset).exists():
            source = stage.sources["dataset"]
            raise ValueError(f"{source.where if source.kind in ('recipe', 'pool') else source}: stage {stage.name!r}: "
                             f"dataset {stage.config.dataset} does not exist: give --dataset DIR (an image folder or "
                             "TFRecords).")
    return restart_at


def _fresh_records(resolved: ResolvedRecipe, restart_at: int, restart_from: str | None) -> dict[str, dict]:
    """plan.json's stage records to start from: the recorded ones, the restarted stages' dirs cleared."""
    old = resolved.records()
    records = {}
    for i, stage in enumerate(resolved.stages):
        record = old.get(stage.name)
        if i >= restart_at:
            for path in (resolved.train_dir.stage(stage.name).path,
                         *([resolved.train_dir.kept(stage.stage.keep).path] if stage.stage.keep else [])):
                if path.exists():
                    shutil.rmtree(path)
                    print(f"--restart-from {restart_from}: removed {path}")
            record = None
        records[stage.name] = record or {"name": stage.name, "start": stage.stage.start, "state": "not run",
                                         "values": stage.compared_values()}
    return records


def _header(i: int, resolved: ResolvedRecipe, stage: ResolvedStage, run_dir: RunDir) -> str:
    config = stage.config
    length = f"{config.max_steps} steps" if config.max_steps else f"{config.epochs:g} epochs"
    return (f"[{stage.name}] stage {i}/{len(resolved.stages)}: {config.net}, trainable {shown(config.trainable)}, "
            f"{start_words(stage.stage, config.ckpt)}, {length} at learning rate {config.learning_rate:g} "
            f"({config.optimizer}, {config.lr_schedule}), {run_dir}")


def _run_stage(resolved: ResolvedRecipe, stage: ResolvedStage, record: dict, records: Mapping[str, dict], *,
               verbose: bool, progress_bar: bool | None) -> dict:
    """Train one stage (after saying so) and record how it ended; its run summary."""
    from finetune.serve.evaluate import validation_accuracy
    from finetune.train.loop import train

    record.update(state="running", values=stage.compared_values())
    _write_plan_json(resolved, records)
    summary = train(stage.config, verbose=verbose, progress_bar=progress_bar, validate=validation_accuracy)
    if summary["stopped"] != "max_steps":
        record["state"] = "stopped"
        _write_plan_json(resolved, records)
        print(f"[{stage.name}] stopped at step {summary['final_step']} ({summary['stopped']}): rerun the same "
              "command to continue this stage.")
        return summary
    record.update(state="done", checkpoint=summary["checkpoint"], final_step=summary["final_step"],
                  validation_accuracy=summary["validation_accuracy"])
    if stage.stage.keep:
        kept = resolved.train_dir.kept(stage.stage.keep)
        record["kept"] = RunDir(stage.config.train_dir).copy_checkpoint(summary["checkpoint"], kept)
        print(f"[{stage.name}] final checkpoint kept as {record['kept']}")
    _write_plan_json(resolved, records)
    return summary


def run_recipe(resolved: ResolvedRecipe, *, restart_from: str | None = None, verbose: bool = True,
               progress_bar: bool | None = None) -> dict[str, dict]:
    """Run the recipe's stages in order in TRAIN_DIR/<stage>; returns {stage: run summary} of the stages run or
    found done. Stops (without error) after a stage that did not finish (interrupted): rerun to continue."""
    restart_at = _restart_index(resolved, restart_from)
    for line in override_lines(resolved):
        print(line)
    records = _fresh_records(resolved, restart_at, restart_from)
    _write_plan_json(resolved, records)
    summaries: dict[str, dict] = {}
    for i, stage in enumerate(resolved.stages, 1):
        record, run_dir = records[stage.name], RunDir(stage.config.train_dir)
        done = run_dir.summary() if record["state"] == "done" else None
        header = _header(i, resolved, stage, run_dir)
        if done and done.get("checkpoint") and _checkpoint_exists(done["checkpoint"]):
            print(f"{header}: finished before, not run again (final checkpoint {done['checkpoint']})")
            summaries[stage.name] = done
            continue
        print(header)
        summaries[stage.name] = _run_stage(resolved, stage, record, records, verbose=verbose, progress_bar=progress_bar)
        if summaries[stage.name]["stopped"] != "max_steps":
            return summaries
    accuracy = summaries[resolved.final.name].get("validation_accuracy")
    print(f"recipe {resolved.loaded.name} done: the result is stage {resolved.final.name}"
          + (f" (validation accuracy {100 * accuracy:.1f}%)" if accuracy is not None else "")
          + f"; `finetune export --train-dir {resolved.train_dir} --output model.pb` exports it.")
    return summaries


def _checkpoint_exists(checkpoint: str) -> bool:
    from nets.compat import tf

    return tf.train.checkpoint_exists(checkpoint)


__all__ = ["LoadedRecipe", "RecipeError", "ResolvedRecipe", "ResolvedStage", "Source", "changed_stages",
           "format_resolved", "load_recipe", "recipe_names", "resolve", "run_recipe", "uncovered_run_fields"]
