"""`finetune nets`: list the zoo."""

from __future__ import annotations

import argparse

HELP = (
    "List the networks of the zoo: image size, parameters, checkpoint classes, preprocessing, the published "
    "TF-Slim checkpoint (or none) with its ImageNet top-1/top-5 and their source, classifier scopes."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", help="only these nets (default: all)")


def _published(name: str) -> tuple[str, str, str, str]:
    """(archive, top-1, top-5, source) of the net's published checkpoint, or 'none' and dashes."""
    from checkpoints import registry

    entry = registry.REGISTRY.get(name)
    if entry is None:
        return "none", "-", "-", "-"
    top5 = "-" if entry.top5 is None else f"{entry.top5:.1f}"
    return entry.archive, f"{entry.top1:.1f}", top5, entry.source


def run(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from nets import nets_factory

    specs = [nets_factory.get_spec(n) for n in args.names] if args.names else list(nets_factory.specs().values())
    rows = [
        (
            s.name,
            s.image_size,
            f"{s.num_parameters / 1e6:.2f}M",
            s.num_classes,
            s.preprocessing,
            *_published(s.name),
            ", ".join(s.classifier_scopes),
        )
        for s in specs
    ]
    headers = ["net", "image size", "parameters", "classes", "preprocessing", "checkpoint", "top-1", "top-5", "source",
               "classifier scopes"]
    print(tabulate(rows, headers=headers, disable_numparse=True))
    print("\ntop-1 / top-5: published single-crop ImageNet accuracy (%) of the checkpoint; source: its table in "
          "tensorflow/models. checkpoint none: TF-Slim published no weights for the net.")
    return 0
