"""Print a resolved recipe: what `--dry-run` shows, and the words the runner prints about stages and values.

    format_resolved(resolved)     every stage and every value with its source, and what plan.json says is done
    override_lines(resolved)      one line per command-line flag: what it overrides in each stage
"""

from __future__ import annotations

from typing import Any

from finetune.recipe.resolve import RUN_FIELDS, ResolvedRecipe, flag_name
from finetune.recipe.types import START_CKPT, START_SCRATCH, Restore, Stage, display_path, group_fields


def start_words(stage: Stage, ckpt: str | None) -> str:
    """Where a stage's weights start, in words."""
    if stage.start == START_SCRATCH:
        return "from scratch"
    if stage.start == START_CKPT:
        return f"from the checkpoint {ckpt}"
    return f"from stage {stage.start}'s final checkpoint"


def shown(value: Any) -> str:
    """A value as the printout and plan.json's change lines write it ('-' for None and empty)."""
    if isinstance(value, tuple | list):
        return ",".join(shown(v) if not isinstance(v, tuple) else "=".join(map(str, v)) for v in value) or "-"
    if hasattr(value, "text"):
        return value.text
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def override_lines(resolved: ResolvedRecipe) -> list[str]:
    """One line per command-line flag: what it overrides in each stage."""
    recipe = resolved.loaded.recipe
    lines = []
    for key, value in resolved.flags.items():
        replaced = []
        for stage in resolved.stages:
            for layer in (*stage.stage.training, *stage.stage.data):
                if key in layer.given():
                    replaced.append(f"{stage.name} {shown(layer.given()[key])}")
        recipe_layers = [*recipe.data, *recipe.model, *recipe.restore, *recipe.training]
        shared = [shown(layer.given()[key]) for layer in recipe_layers if key in layer.given()]
        was = "; ".join(([f"recipe {shared[-1]}"] if shared else []) + replaced) or "not set by the recipe"
        scope = "the stages that start from the checkpoint" if key in group_fields(Restore) else "every stage"
        lines.append(f"flag {flag_name(key)} {shown(value)} overrides {key} for {scope} (was: {was})")
    return lines


def format_resolved(resolved: ResolvedRecipe) -> str:
    """The resolved recipe: every stage and every value with its source, and what plan.json says is done."""
    loaded, train_dir = resolved.loaded, resolved.train_dir
    records = resolved.records()
    lines = [f"recipe {loaded.name} ({display_path(loaded.path)}): {loaded.recipe.description}",
             f"plan dir {train_dir}: {len(resolved.stages)} stages in {train_dir}/<stage>, "
             f"the result is stage {resolved.final.name}", *override_lines(resolved)]
    width = max(map(len, RUN_FIELDS))
    value_width = max(len(shown(getattr(s.config, name))) for s in resolved.stages for name in RUN_FIELDS)
    for i, resolved_stage in enumerate(resolved.stages, 1):
        config, stage = resolved_stage.config, resolved_stage.stage
        state = records.get(stage.name, {}).get("state", "not run")
        keep = f"; final checkpoint kept as {train_dir.kept(stage.keep)}" if stage.keep else ""
        lines += ["", f"stage {i}/{len(resolved.stages)} {stage.name} ({stage.where}): "
                      f"{start_words(stage, config.ckpt)}{keep} [{state}]"]
        for name in RUN_FIELDS:
            lines.append(f"  {name:<{width}}  {shown(getattr(config, name)):<{value_width}}  "
                         f"{resolved_stage.sources[name]}")
    return "\n".join(lines)


__all__ = ["format_resolved", "override_lines", "shown", "start_words"]
