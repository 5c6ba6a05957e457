"""`finetune download NAME` / `finetune download --list`: the public TF-Slim checkpoints."""

from __future__ import annotations

import argparse

HELP = ("Download a public TF-Slim checkpoint (resumable, verified) into $FINETUNE_HOME (default "
        "~/.cache/finetune) and print its path; --list shows the known ones.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="checkpoint name (the zoo net's name, e.g. inception_v3)")
    parser.add_argument("--list", action="store_true", help="list the known checkpoints and what is cached")


def run(args: argparse.Namespace) -> int:
    from checkpoints import download

    if args.list or not args.name:
        print(download.table())
        return 0
    print(download.fetch(args.name))
    return 0
