"""nets/ imports run one way: nets_factory -> {families, hub} -> spec, and spec needs no TensorFlow."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

NETS = Path(__file__).resolve().parent.parent / "nets"


def _imported_nets_modules(path: Path) -> set[str]:
    """The nets.* modules a file imports (at any depth of the file)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "nets":
            if node.module == "nets":
                found |= {alias.name for alias in node.names}
            else:
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("nets.")}
    return found


def test_no_module_of_nets_imports_one_that_imports_it_back():
    graph = {path.stem: _imported_nets_modules(path) for path in NETS.glob("*.py")}

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for name in graph.get(start, ()):
            if name == target or (name not in seen and reaches(name, target, seen | {name})):
                return True
        return False

    cycles = sorted(name for name in graph if reaches(name, name, {name}))
    assert cycles == []
    assert "nets_factory" not in graph["hub"]


def test_spec_reads_the_published_variables_without_tensorflow():
    code = ("import sys; from nets import spec; "
            "assert spec.published_parameters('vgg_16') == 138357544; "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=NETS.parent)
