"""The `finetune` command: parse, then call one function.

`finetune [TRAIN FLAGS]` trains (the default action); `finetune COMMAND ...` runs a subcommand.
Each subcommand is a module of `finetune.commands` with `HELP`, `add_arguments(parser)` and
`run(args) -> int`; this file lists them by looking, so adding a command touches only its module.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import logging
import os
import pkgutil
import sys
import warnings

from finetune import __version__, commands

DEFAULT_COMMAND = "train"
_DEBUG_ENV = "FINETUNE_DEBUG"


def _command_names() -> list[str]:
    # A module `convert_weights.py` is the command `convert-weights`.
    return sorted(m.name.replace("_", "-") for m in pkgutil.iter_modules(commands.__path__)
                  if not m.name.startswith("_"))


def _load(name: str):
    return importlib.import_module(f"finetune.commands.{name.replace('-', '_')}")


def build_parser(name: str) -> argparse.ArgumentParser:
    module = _load(name)
    others = [n for n in _command_names() if n != DEFAULT_COMMAND]
    if name == DEFAULT_COMMAND:
        parser = argparse.ArgumentParser(
            prog="finetune",
            description=module.HELP,
            epilog="other commands: " + ", ".join(others) + " (`finetune COMMAND --help` for each)",
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        parser.add_argument("--version", action="version", version=f"finetune {__version__}")
    else:
        parser = argparse.ArgumentParser(
            prog=f"finetune {name}", description=module.HELP, formatter_class=argparse.ArgumentDefaultsHelpFormatter
        )
    module.add_arguments(parser)
    return parser


def _unknown_command(word: str) -> str:
    names = _command_names()
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}?" if close else f"commands: {', '.join(names)}; `finetune --help`"
    return f"unknown command {word!r} ({hint})"


def _quiet_tensorflow() -> None:
    """Keep TF's deprecation notices (about its own v1 APIs, which slim needs) off the user's screen."""
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=r"`[^`]+` is deprecated", category=UserWarning)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if hasattr(sys.stdout, "reconfigure"):
        # Line by line into a log file too: what a run said (resuming, lock taken over) is there even when the
        # process is killed a moment later.
        sys.stdout.reconfigure(line_buffering=True)
    if not os.environ.get(_DEBUG_ENV):
        _quiet_tensorflow()
    name = DEFAULT_COMMAND
    if argv and argv[0] in _command_names():
        name = argv.pop(0)
    elif argv and not argv[0].startswith("-"):
        # The default command takes flags only, so a bare first word is a mistyped command.
        print(f"finetune: error: {_unknown_command(argv[0])}", file=sys.stderr)
        return 2
    args = build_parser(name).parse_args(argv)
    try:
        return int(_load(name).run(args) or 0)
    except KeyboardInterrupt:
        print("finetune: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError) as error:
        # User-facing failures (bad flag values, missing files, checkpoints that do not fit) are
        # raised as ValueError/OSError with a message that names the thing and the fix.
        if os.environ.get(_DEBUG_ENV):
            raise
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"finetune {name}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
