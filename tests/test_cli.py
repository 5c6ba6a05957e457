"""The `finetune` command itself: instant help, --version, mistyped commands."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from finetune import cli

_ROOT = Path(__file__).resolve().parents[1]

# Every command's --help (and `finetune --help` through main) in a fresh interpreter, which then
# reports whether TensorFlow got imported. The test process itself has imported it (conftest).
_HELP_SCRIPT = """
import contextlib, io, json, sys
from finetune import cli
seen = {}
for name in [None, *cli._command_names()]:
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):
        cli.main(["--help"] if name is None else [name, "--help"])
    seen[name or "finetune"] = [out.getvalue().startswith("usage: finetune"), "tensorflow" in sys.modules]
print(json.dumps(seen))
"""


def test_help_of_every_command_does_not_import_tensorflow():
    result = subprocess.run([sys.executable, "-c", _HELP_SCRIPT], capture_output=True, text=True, timeout=120,
                            cwd=_ROOT)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert set(seen) == {"finetune", *cli._command_names()}
    assert seen == {name: [True, False] for name in seen}
    assert result.stderr == ""


def test_version_is_the_package_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    version = tomllib.loads((_ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert capsys.readouterr().out == f"finetune {version}\n"


@pytest.mark.parametrize("word, message", [
    ("evl", "unknown command 'evl' (did you mean eval?)"),
    ("downlaod", "unknown command 'downlaod' (did you mean download?)"),
    ("frobnicate", "unknown command 'frobnicate' (commands: bench, convert, demo, download, eval, export, inspect, "
                   "nets, predict, train; `finetune --help`)"),
])
def test_a_mistyped_command_is_named_with_the_closest_one(word, message, capsys):
    assert cli.main([word, "--net", "inception_v1"]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"finetune: error: {message}\n" and captured.out == ""


def test_flags_without_a_command_still_mean_train(capsys):
    assert cli.main(["--net", "no_such_net", "--dataset", "demo"]) == 2
    assert capsys.readouterr().err.startswith("finetune train: error: Unknown net 'no_such_net'")
