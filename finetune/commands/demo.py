"""`finetune demo`: transfer learning on built-in procedural images, nothing downloaded."""

from __future__ import annotations

import argparse

HELP = ("Pretrain a small net on drawn shapes (cached), fine-tune it on related shapes, and compare its validation "
        "accuracy with the same net trained from scratch. The source checkpoint is cached in the work dir, so later "
        "runs are faster.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--work-dir", default=None,
                        help="where the images, the cached source checkpoint and the runs go "
                             "(default: $FINETUNE_HOME/demo, FINETUNE_HOME defaulting to ~/.cache/finetune)")


def run(args: argparse.Namespace) -> int:
    from finetune.recipe import demo

    demo.run_demo(args.work_dir)
    return 0
