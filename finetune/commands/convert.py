"""`finetune convert`: write an image folder as TF-Slim TFRecords."""

from __future__ import annotations

import argparse

HELP = (
    "Write an image folder (one sub-folder per class, optional train/ and validation/) as sharded TFRecords "
    "in TF-Slim's format (image/encoded, image/format, image/class/label) with labels.txt."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", required=True, metavar="DIR", help="the image folder to convert")
    parser.add_argument("--output", required=True, metavar="DIR", help="where to write the TFRecords (new or empty)")
    parser.add_argument("--shards", type=int, default=5, help="TFRecord files per split (fewer if fewer images)")
    parser.add_argument(
        "--validation-fraction",
        type=float,
        default=0.1,
        help="share of each class held out for validation when the folder has no validation/ sub-folder",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the validation split and the example order")


def run(args: argparse.Namespace) -> int:
    from finetune.data import tfrecords

    result = tfrecords.convert_to_tfrecords(
        args.images, args.output, shards=args.shards, validation_fraction=args.validation_fraction, seed=args.seed
    )
    counts = ", ".join(f"{n} {split}" for split, n in result.num_examples.items())
    print(
        f"wrote {counts} examples of {len(result.class_names)} classes to {result.output} ({len(result.files)} files)"
    )
    if result.skipped:
        print(
            f"{len(result.skipped)} images skipped (corrupt): {', '.join(result.skipped[:5])}"
            + (" ..." if len(result.skipped) > 5 else "")
        )
    return 0
