"""The `finetune` command: parse, then call one function.

`finetune [TRAIN FLAGS]` trains (the default action); `finetune COMMAND ...` runs a subcommand.
Each subcommand is a module of `finetune.commands` with `HELP`, `add_arguments(parser)` and
`run(args) -> int`; this file lists them by looking, so adding a command touches only its module.

Flags are matched whole (no prefix matching: `--lr` does not pick `--lr-schedule`); an unknown flag is one
error line naming the closest flags, exit status 2. Errors begin `finetune COMMAND:` when the user typed the
command, `finetune:` otherwise. `--help` shows a flag's default once, as a user types it, and none for unset.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import logging
import os
import pkgutil
import re
import sys
import warnings

from finetune import __version__, commands
from finetune.config import default_text

DEFAULT_COMMAND = "train"
_DEBUG_ENV = "FINETUNE_DEBUG"


def _command_names() -> list[str]:
    # A module `convert_weights.py` is the command `convert-weights`.
    return sorted(m.name.replace("_", "-") for m in pkgutil.iter_modules(commands.__path__)
                  if not m.name.startswith("_"))


def _load(name: str):
    return importlib.import_module(f"finetune.commands.{name.replace('-', '_')}")


# Help that says its default already: "(default: the net's)", "default: random weights", "(default 5 ...)".
_SAYS_DEFAULT = re.compile(r"(?<!by )\bdefault\b(?!s)")


class _HelpFormatter(argparse.HelpFormatter):
    """A flag's default once, as a user types it (`logits`, not `('logits',)`); none when unset (None, empty),
    for a switch (False) or where the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text, default = action.help or "", action.default
        if (default is None or default is False or default is argparse.SUPPRESS or not action.option_strings
                or _SAYS_DEFAULT.search(text) or not default_text(default)):
            return text
        return f"{text} (default: {default_text(default).replace('%', '%%')})"


class _Parser(argparse.ArgumentParser):
    """argparse without prefix matching, whose unknown flags are one line with the closest known ones."""

    def __init__(self, **kwargs):
        super().__init__(allow_abbrev=False, formatter_class=_HelpFormatter, **kwargs)

    def parse_args(self, args=None, namespace=None) -> argparse.Namespace:
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:
            self.exit(2, f"{self.prog}: error: unrecognized arguments: {' '.join(extras)} ({self._hint(extras)})\n")
        return namespace

    def _hint(self, extras: list[str]) -> str:
        flags = [flag for action in self._actions for flag in action.option_strings if flag.startswith("--")]
        close = _closest_flags(next((extra.split("=")[0] for extra in extras if extra.startswith("-")), ""), flags)
        if not close:
            return f"`{self.prog} --help` lists the flags"
        listed = f"{', '.join(close[:-1])} or {close[-1]}" if len(close) > 1 else close[0]
        return f"did you mean {listed}?"


def _closest_flags(word: str, flags: list[str]) -> list[str]:
    """Up to three flags `word` may have meant: a typo of one (--datset), its initials (--lr: --learning-rate),
    or the start of one (the flags argparse's prefix matching would have chosen between)."""
    name = word.lstrip("-")
    typo = ["--" + close for close in difflib.get_close_matches(name, [f[2:] for f in flags], n=1, cutoff=0.6)]
    initials = [f for f in flags if "".join(part[:1] for part in f[2:].split("-")) == name]
    started = [f for f in flags if word.startswith("--") and f.startswith(word)]
    return list(dict.fromkeys([*typo, *initials, *started]))[:3]


def build_parser(name: str, prog: str | None = None) -> argparse.ArgumentParser:
    """The parser of command `name`; `prog` names it in usage and errors (default: `finetune NAME`, `finetune`
    for the default command)."""
    module = _load(name)
    others = [n for n in _command_names() if n != DEFAULT_COMMAND]
    if name == DEFAULT_COMMAND:
        parser = _Parser(
            prog=prog or "finetune",
            description=module.HELP,
            epilog="other commands: " + ", ".join(others) + " (`finetune COMMAND --help` for each)",
        )
        parser.add_argument("--version", action="version", version=f"finetune {__version__}")
    else:
        parser = _Parser(prog=prog or f"finetune {name}", description=module.HELP)
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
    name, prog = DEFAULT_COMMAND, "finetune"  # `finetune: error:` unless the user typed the command
    if argv and argv[0] in _command_names():
        name = argv.pop(0)
        prog = f"finetune {name}"
    elif argv and not argv[0].startswith("-"):
        # The default command takes flags only, so a bare first word is a mistyped command.
        print(f"finetune: error: {_unknown_command(argv[0])}", file=sys.stderr)
        return 2
    args = build_parser(name, prog).parse_args(argv)
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
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
