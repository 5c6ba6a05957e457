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
    # 128 + the signal, as a shell reports it: the run stopped early, saved, and resumes when rerun
    return {"interrupted": 130, "terminated": 143}.get(summary["stopped"], 0)
