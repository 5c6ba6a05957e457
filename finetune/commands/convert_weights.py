"""`finetune convert-weights --from FORMAT FILE --net NAME --output CKPT`: weights from outside TF-Slim."""

from __future__ import annotations

import argparse

HELP = (
    "Convert another format's weights (a TF-Slim TFLite model, a keras.applications weights file) into a TF-Slim "
    "checkpoint of a zoo net with its published variable names, then verify it: the net rebuilt on the new "
    "checkpoint must give the source runtime's outputs on the same images (error above the format's tolerance)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from finetune.choices import WEIGHT_FORMATS

    parser.add_argument("file", metavar="FILE", help="the weights file (.tflite, .h5, .weights.h5)")
    parser.add_argument("--from", dest="source_format", required=True, choices=WEIGHT_FORMATS, help="the file's format")
    parser.add_argument("--net", required=True, help="the zoo net the file holds (`finetune nets`)")
    parser.add_argument("--output", required=True, metavar="CKPT", help="checkpoint prefix to write, e.g. out/model.ckpt")
    parser.add_argument("--images", nargs="+", default=[], metavar="IMAGE",
                        help="images to verify on; without them, two seeded random images")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier conversion at --output (a checkpoint convert-weights did not write "
                             "is never replaced)")
    parser.add_argument("--image-size", type=int,
                        help="size to verify at; without it, the source's input size, else the net's")


def run(args: argparse.Namespace) -> int:
    from finetune import weights

    # The CLI turns ValueError (ConversionError is one) into one line and exit status 2.
    result = weights.convert(args.source_format, args.file, args.net, args.output, args.images, args.image_size,
                             overwrite=args.overwrite)
    print(result.summary())
    return 0
