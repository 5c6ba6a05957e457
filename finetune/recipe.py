"""The types recipes are written in (recipes/*.py): a plan of training stages as plain values.

This module imports nothing of the toolkit, so a recipe depends on it alone; finetune.recipe_runner
runs a plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Stage:
    """One training run of a plan: a name, where its weights start, and the fields it changes.

    init: None (from scratch), 'ckpt' (the plan's pretrained checkpoint), or the name of an earlier stage
    (its final checkpoint, e.g. all layers after the classifier).
    """

    name: str
    init: str | None
    overrides: dict[str, Any] = field(default_factory=dict)
    dataset: str = "target"  # which of the plan's datasets this stage trains on


@dataclass(frozen=True)
class Recipe:
    """A multi-stage plan as values: a base config (fields shared by every stage) and the stages in order."""

    name: str
    description: str
    base: dict[str, Any]
    stages: tuple[Stage, ...]
    extra: dict[str, Any] = field(default_factory=dict)  # recipe-specific values (e.g. the demo's data sizes)

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise ValueError(f"recipe {self.name!r} has no stage {name!r}; stages: {', '.join(s.name for s in self.stages)}.")
