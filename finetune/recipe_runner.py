"""Run a recipe (finetune.recipe): its stages in order, each a training run in its own train dir."""

from __future__ import annotations

from collections.abc import Mapping

from finetune.config import RunConfig
from finetune.recipe import Recipe
from finetune.run_dir import RunDir
from finetune.train import train


def run_recipe(recipe: Recipe, datasets: Mapping[str, str], train_dirs: Mapping[str, str], *, ckpt: str | None = None,
               verbose: bool = False, progress_bar: bool = True) -> dict[str, dict]:
    """Run a recipe's stages in order, each in its train dir; returns {stage: run summary}.

    A stage starts from scratch (init None), from `ckpt` ('ckpt') or from an earlier stage's final
    checkpoint. A stage whose train dir already holds a finished run is not run again.
    """
    summaries: dict[str, dict] = {}
    for stage in recipe.stages:
        init = ckpt if stage.init == "ckpt" else summaries[stage.init]["checkpoint"] if stage.init else None
        config = RunConfig(**{**recipe.base, **stage.overrides, "dataset": datasets[stage.dataset],
                              "train_dir": train_dirs[stage.name], "ckpt": init})
        done = RunDir(config.train_dir).finished(config.max_steps)
        start = f"from {stage.init}" if stage.init else "from scratch"
        print(f"[{stage.name}] {config.net}, trainable {','.join(config.trainable)}, {start}, {config.max_steps} "
              f"steps at learning rate {config.learning_rate:g} on the {stage.dataset} task"
              + (f": done before, reusing {done['checkpoint']}" if done else ""))
        summaries[stage.name] = done or train(config, verbose=verbose, progress_bar=progress_bar)
    return summaries
