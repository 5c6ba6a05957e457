"""Recipe: multi-stage training plans written as Python.

`finetune.recipe` itself is what a recipe file imports (the types below); loading, resolving,
printing and running plans is `finetune.recipe.runner`'s, and the demo is `finetune.recipe.demo`.
Imports train, runs, data, checkpoints and nets, never the `recipes/` package.
"""

from finetune.recipe.types import Data, Model, Recipe, RecipeError, Restore, Stage, Training

__all__ = ["Data", "Model", "Recipe", "RecipeError", "Restore", "Stage", "Training"]
