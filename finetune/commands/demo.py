"""`finetune demo`: transfer learning on built-in procedural images, nothing downloaded."""

from __future__ import annotations

import argparse

HELP = ("Pretrain a small net on drawn shapes (cached), fine-tune it on related shapes, and compare its validation "
        "accuracy with the same net trained from scratch. About 1.5 minutes on 2 CPU cores (under one once the "
        "source checkpoint is cached).")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--work-dir", default=None,
                        help="where the images, the cached source checkpoint and the runs go "
                             "(default: $FINETUNE_HOME/demo, FINETUNE_HOME defaulting to ~/.cache/finetune)")
    parser.add_argument("--quick", action="store_true",
                        help="a smaller plan of the same shape (shorter pretraining, fewer images): a first look "
                             "in well under a minute, with a smaller gap between fine-tuned and from scratch")


def run(args: argparse.Namespace) -> int:
    from finetune import demo
    from recipes import demo as recipes

    demo.run_demo(args.work_dir, recipes.quick() if args.quick else recipes.demo())
    return 0
