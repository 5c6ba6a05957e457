"""Recipe: multi-stage training recipes written as Python.

`finetune.recipe` itself is what a recipe file imports (the types below, TensorFlow-free); a recipe
is loaded by `load` (as data: recipes/NAME.py found by name at run time, or a path), resolved into
every stage's values by `resolve`, printed by `show` and run by `runner`; the demo is `demo`.
The package imports config, train, runs, data, checkpoints and nets, never the `recipes/` package.
"""

from finetune.recipe.types import Data, Model, Recipe, RecipeError, Restore, Stage, Training

__all__ = ["Data", "Model", "Recipe", "RecipeError", "Restore", "Stage", "Training"]
