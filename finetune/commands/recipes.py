"""`finetune recipes`: the shipped recipes (recipes/*.py), one line each, without importing TensorFlow
(finetune.recipe.load loads a recipe as data; resolving it, which needs the nets, is `--dry-run`'s)."""

from __future__ import annotations

import argparse

HELP = "List the recipes `finetune --recipe NAME` runs, with a one-line description each."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    from finetune.recipe.load import RecipeError, load_recipe, recipe_names

    names = recipe_names()
    width = max(map(len, names), default=0)
    broken = 0
    for name in names:
        try:
            loaded = load_recipe(name)
            stages = " -> ".join(s.name for s in loaded.recipe.stages)
            print(f"{name:<{width}}  {loaded.recipe.description}  [{stages}]")
        except RecipeError as error:
            broken += 1
            print(f"{name:<{width}}  (broken: {error})")
    print("\n`finetune --recipe NAME --dry-run` shows a recipe's every value; recipes are Python files in recipes/.")
    return 1 if broken else 0
