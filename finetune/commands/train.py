"""`finetune [FLAGS]` (the default command): fine-tune a zoo net on an image dataset."""

from __future__ import annotations

import argparse

from finetune import config

HELP = ("Fine-tune a pretrained TF-Slim net on your images: `finetune --net NET --ckpt CKPT --trainable logits "
        "--dataset DIR`. Rerunning in the same --train-dir resumes.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    config.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from finetune import train

    summary = train.train(config.from_namespace(args))
    return 130 if summary["stopped"] == "interrupted" else 0
