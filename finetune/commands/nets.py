"""`finetune nets`: list the zoo."""

from __future__ import annotations

import argparse

HELP = "List the networks of the zoo: image size, parameters, checkpoint classes, classifier scopes."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", help="only these nets (default: all)")


def run(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from nets import nets_factory

    specs = [nets_factory.get_spec(n) for n in args.names] if args.names else list(nets_factory.specs().values())
    rows = [
        (s.name, s.image_size, f"{s.num_parameters / 1e6:.2f}M", s.num_classes, s.preprocessing, ", ".join(s.classifier_scopes))
        for s in specs
    ]
    print(tabulate(rows, headers=["net", "image size", "parameters", "classes", "preprocessing", "classifier scopes"]))
    return 0
