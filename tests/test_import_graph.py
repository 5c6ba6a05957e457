"""The import graph reads as the architecture: `finetune/` never imports the top-level `recipes/` package,
and imports run one way, `commands -> {recipe, bench} -> {train, serve, weights} -> {runs, data} ->
checkpoints -> nets`, with `config` (and `choices`) beside them; nothing but commands imports `bench`,
and no module imports itself back through others. Read from the source with `ast` (every import, at
the top or inside a function), nothing imported."""

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOP = ("finetune", "checkpoints", "nets")

# finetune's packages by layer: a package imports only packages of lower layers (skipping is fine).
LAYER = {"nets": 0, "checkpoints": 1, "runs": 2, "data": 2, "train": 3, "serve": 3, "weights": 3,
         "recipe": 4, "bench": 4, "commands": 5, "cli": 6}
BESIDE = {"config", "choices", "finetune"}  # imported by any layer; they import nets, checkpoints and each other
BESIDE_IMPORTS = {"nets", "checkpoints", *BESIDE}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, absolute ('from a import b' counts as a and a.b)."""
    module, found = _module_name(path), set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


@functools.cache
def _graph() -> dict[str, set[str]]:
    """Module -> the project's modules it imports."""
    files = {_module_name(p): p for top in TOP for p in (ROOT / top).rglob("*.py")}
    return {module: {name for name in _imports(path) if name in files and name != module}
            for module, path in files.items()}


def _package(module: str) -> str:
    """The layer unit of a module: 'nets', 'checkpoints', or finetune's package ('train', 'config', 'cli', ...)."""
    parts = module.split(".")
    return parts[1] if parts[0] == "finetune" and len(parts) > 1 else parts[0]


def test_finetune_never_imports_the_recipes_package():
    # A recipe is found by name or path at run time and loaded as data (finetune.recipe.load).
    offenders = [f"{path.relative_to(ROOT)}: {name}" for path in sorted((ROOT / "finetune").rglob("*.py"))
                 for name in _imports(path) if name == "recipes" or name.startswith("recipes.")]
    assert offenders == []


@pytest.mark.parametrize("package", sorted({*LAYER, *BESIDE}))
def test_a_package_imports_only_lower_layers(package):
    graph = _graph()
    upward = []
    for module, imported in sorted(graph.items()):
        if _package(module) != package:
            continue
        for name in sorted(imported):
            target = _package(name)
            if target == package or target in BESIDE and package not in BESIDE:
                continue
            allowed = target in BESIDE_IMPORTS if package in BESIDE else LAYER.get(target, 99) < LAYER[package]
            if not allowed:
                upward.append(f"{module} -> {name}")
    assert upward == []


def test_nothing_but_commands_imports_bench():
    importers = sorted(f"{m} -> {n}" for m, names in _graph().items() for n in names
                       if _package(n) == "bench" and _package(m) not in ("bench", "commands"))
    assert importers == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize("package", sorted({*LAYER, *BESIDE}))
def test_no_module_imports_itself_back(package):
    # A package's __init__ re-exporting its modules is no cycle: edges into a package's own __init__ are left out.
    graph = {m: {n for n in names if not m.startswith(n + ".")} for m, names in _graph().items()}
    assert [cycle for cycle in _cycles(graph) if _package(cycle[0]) == package] == []
