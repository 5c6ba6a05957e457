"""`finetune nets`: list the zoo.

The zoo's nets are listed from nets/manifest.json (nets.manifest), without importing TensorFlow; a
`hub:PATH` (or a name the zoo does not know, for its error) goes through nets_factory.get_spec.
"""

from __future__ import annotations

import argparse

HELP = (
    "List the networks of the zoo: image size, parameters, checkpoint classes, preprocessing, the published "
    "TF-Slim checkpoint (or none) with its ImageNet top-1/top-5 and their source, classifier scopes; "
    "`finetune nets hub:PATH` shows a TF Hub image feature-vector model as a backbone."
)
HUB_NOTE = ("Also: --net hub:PATH, a TF Hub image feature-vector SavedModel (a directory, or a handle cached in "
            "$TFHUB_CACHE_DIR) as the backbone under a new classifier (HubNet/Logits).")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", help="only these nets (default: all); hub:PATH for a TF Hub model")


def _published(name: str) -> tuple[str, str, str, str]:
    """(archive, top-1, top-5, source) of the net's published checkpoint, or 'none' and dashes."""
    from checkpoints import registry

    entry = registry.REGISTRY.get(name)
    if entry is None:
        return "none", "-", "-", "-"
    top5 = "-" if entry.top5 is None else f"{entry.top5:.1f}"
    return entry.archive, f"{entry.top1:.1f}", top5, entry.source


def run(args: argparse.Namespace) -> int:
    print(table(_specs(args.names)))
    print("\ntop-1 / top-5: published single-crop ImageNet accuracy (%) of the checkpoint; source: its table in "
          "tensorflow/models. checkpoint none: TF-Slim published no weights for the net.")
    if not args.names:
        print(f"\n{HUB_NOTE}")
    return 0


def _specs(names: list[str]) -> list:
    """NetInfos of the zoo's nets (TensorFlow-free), or NetSpecs when a name is not the zoo's (hub:PATH)."""
    from nets import manifest

    zoo = manifest.load()
    if all(name in zoo for name in names):
        return [zoo[name] for name in names] if names else list(zoo.values())
    from nets import nets_factory

    return [nets_factory.get_spec(name) for name in names]


def table(specs: list) -> str:
    """The zoo's table: one row per NetSpec or NetInfo."""
    from tabulate import tabulate

    rows = [
        (
            s.name,
            s.image_size,
            f"{_parameters(s) / 1e6:.2f}M",
            "-" if _is_hub(s) else s.num_classes,
            s.preprocessing,
            *(("hub model", "-", "-", "-") if _is_hub(s) else _published(s.name)),
            ", ".join(s.classifier_scopes),
        )
        for s in specs
    ]
    headers = ["net", "image size", "parameters", "classes", "preprocessing", "checkpoint", "top-1", "top-5", "source",
               "classifier scopes"]
    return tabulate(rows, headers=headers, disable_numparse=True)


def _is_hub(spec) -> bool:
    return spec.name.startswith("hub:")


def _parameters(spec) -> int:
    """The published checkpoint's parameter count; a hub model's: its SavedModel's (the classifier apart)."""
    if _is_hub(spec):
        from nets import hub

        return hub.inspect(hub.handle_of(spec.name)).num_parameters
    return spec.num_parameters
