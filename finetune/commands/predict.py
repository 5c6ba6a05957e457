"""`finetune predict`: top-k labels of image files from an exported model."""

from __future__ import annotations

import argparse
import sys

HELP = (
    "Classify images with an exported model (.pb, SavedModel dir or .tflite): the top-k labels and probabilities of "
    "each image, as a table or JSON. Unreadable images are reported by name (exit status 1); the rest still run."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="the .pb, SavedModel directory or .tflite `finetune export` wrote")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    parser.add_argument("--top-k", type=int, default=5, help="labels per image")
    parser.add_argument("--batch-size", type=int, default=32, help="images per run of the model")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from finetune.serve import predict

    model = predict.load_model(args.model)
    try:
        results = predict.predict(model, args.images, top_k=args.top_k, batch_size=args.batch_size)
    finally:
        model.close()
    print(predict.format_json(results) if args.json else predict.format_table(results))
    failed = [r for r in results if "error" in r]
    for result in failed:
        print(f"finetune predict: error: {result['error']}", file=sys.stderr)
    return 1 if failed else 0
