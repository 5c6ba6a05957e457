"""The `finetune` command itself: instant help, --version, mistyped commands."""

from __future__ import annotations

import json
import os
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
    ("frobnicate", "unknown command 'frobnicate' (commands: bench, convert, convert-weights, demo, download, eval, "
                   "export, inspect, nets, predict, recipes, train; `finetune --help`)"),
])
def test_a_mistyped_command_is_named_with_the_closest_one(word, message, capsys):
    assert cli.main([word, "--net", "inception_v1"]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"finetune: error: {message}\n" and captured.out == ""


def test_flags_without_a_command_still_mean_train(capsys):
    assert cli.main(["--net", "no_such_net", "--dataset", "demo"]) == 2
    assert capsys.readouterr().err.startswith("finetune: error: Unknown net 'no_such_net'")  # nobody typed `train`
    assert cli.main(["train", "--net", "no_such_net", "--dataset", "demo"]) == 2
    assert capsys.readouterr().err.startswith("finetune train: error: Unknown net 'no_such_net'")


def test_a_command_that_imports_tensorflow_prints_no_startup_chatter():
    result = subprocess.run([sys.executable, "-m", "finetune.cli", "nets", "vgg_a"], capture_output=True, text=True,
                            timeout=300, cwd=_ROOT)
    row = next(line for line in result.stdout.splitlines() if line.startswith("vgg_a "))
    assert result.returncode == 0 and row.split()[1:3] == ["224", "132.86M"]
    assert result.stderr == ""  # no absl banner, no oneDNN / cudart_stub INFO lines, no cuInit ERROR line


_BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
_ONEDNN = "I0000 00:00:1796000509.767596    4656 port.cc:153] oneDNN custom operations are on.\n"
_NO_DRIVER = ("I0000 00:00:1796000509.767977    4656 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
              "GPU will not be used.\n")
_CUINIT = ("E0000 00:00:1796000512.778938    4656 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
           "Failed call to cuInit: UNKNOWN ERROR (303)\n")
_REAL_ERROR = "E0000 00:00:1796000512.778938    4656 op_kernel.cc:1830] OP_REQUIRES failed: out of memory\n"


@pytest.mark.parametrize("written, shown", [
    # Without a CUDA driver, cuInit's failure only repeats that no GPU will be used.
    ([_BANNER, _ONEDNN, _NO_DRIVER, "a python warning\n", _CUINIT, _REAL_ERROR], ["a python warning\n", _REAL_ERROR]),
    # With a driver that fails, it is news and stays.
    ([_BANNER, _ONEDNN, _CUINIT, "Traceback (most recent call last):\n"],
     [_CUINIT, "Traceback (most recent call last):\n"]),
])
def test_quiet_startup_drops_the_chatter_and_nothing_else(written, shown, capfd, monkeypatch):
    from nets import compat

    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    with pytest.raises(RuntimeError), compat.quiet_startup():
        for line in written:
            os.write(2, line.encode())
        raise RuntimeError("the import failed")
    assert capfd.readouterr().err == "".join(shown)

    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")  # the user asked for TensorFlow's INFO lines: all pass
    with compat.quiet_startup():
        for line in written:
            os.write(2, line.encode())
    assert capfd.readouterr().err == "".join(written)
