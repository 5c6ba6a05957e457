"""Find and load a recipe: recipes/NAME.py (found by name at run time) or any path.py, as a `LoadedRecipe`.

    recipe_names() -> ['demo', 'flowers_inception_v3', ...]     the shipped recipes (every module but the pool)
    load_recipe(NAME | path.py) -> LoadedRecipe                 its RECIPE, any mistake as 'FILE:LINE: ...'

A recipe is data to this module: the `recipes` package is located and its modules imported by name at
run time (importlib), never imported statically, so `finetune/` does not depend on it. This module
imports nothing of the toolkit but finetune.recipe.types, and no TensorFlow: `finetune recipes` lists
the recipes without it (a recipe file imports finetune.recipe and recipes.pool, both TensorFlow-free).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.util
import os
import pkgutil
import re
import sys
import traceback
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finetune.recipe.types import GROUPS, Recipe, RecipeError, Stage, display_path

RECIPE_ATTRIBUTE = "RECIPE"
RECIPES_PACKAGE = "recipes"  # the shipped recipes' package, found at run time (never imported statically)
POOL_MODULE = "pool"  # recipes/pool.py: values recipes pick from, no recipe itself


@dataclass(frozen=True)
class LoadedRecipe:
    """A recipe file's RECIPE, where it is, its docstring, and the file's other top-level UPPER_CASE values
    (`named`: what a recipe states beside its stages, e.g. the demo's drawn image sets)."""

    name: str
    path: str
    recipe: Recipe
    docstring: str
    named: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


def _recipes_dirs() -> list[str]:
    spec = importlib.util.find_spec(RECIPES_PACKAGE)
    return list(spec.submodule_search_locations or []) if spec else []


def recipe_names() -> list[str]:
    """The recipes shipped in recipes/ (every module but the pool)."""
    return sorted(m.name for m in pkgutil.iter_modules(_recipes_dirs())
                  if not m.name.startswith("_") and m.name != POOL_MODULE)


def _file_loader(path: Path) -> tuple[types.ModuleType, Any]:
    if not path.is_file():
        raise RecipeError(f"recipe file {path} not found: give recipes/NAME.py's NAME or a path to a .py file.")
    module = types.ModuleType(f"_finetune_recipe_{path.stem}")
    module.__file__ = str(path)

    def loader():  # compiled from the text each time: no bytecode cache to go stale after an edit
        exec(compile(path.read_text(), str(path), "exec"), module.__dict__)
        return module
    return module, loader


def _named_loader(name: str) -> tuple[Path, Any]:
    names = recipe_names()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1)
        raise RecipeError(f"no recipe {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                          + f": `finetune recipes` lists them ({', '.join(names)}), or give a path.py.")
    module_name = f"{RECIPES_PACKAGE}.{name}"
    path = Path(importlib.util.find_spec(module_name).origin)
    return path, lambda: importlib.import_module(module_name)


def load_recipe(name_or_path: str) -> LoadedRecipe:
    """recipes/NAME.py, or a path to a .py file, and its RECIPE; RecipeError ('FILE:LINE: ...') on any mistake."""
    if name_or_path.endswith(".py") or os.sep in name_or_path:
        path = Path(name_or_path)
        name = path.stem
        _, loader = _file_loader(path)
    else:
        name = name_or_path
        path, loader = _named_loader(name)
    try:
        module = loader()
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
    named = {key: value for key, value in vars(module).items()
             if key.isupper() and key != RECIPE_ATTRIBUTE and not isinstance(value, types.ModuleType)}
    return LoadedRecipe(name=name, path=str(path), recipe=recipe, docstring=(module.__doc__ or "").strip(),
                        named=types.MappingProxyType(named))


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


__all__ = ["LoadedRecipe", "RecipeError", "load_recipe", "recipe_names"]
