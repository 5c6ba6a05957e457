"""`finetune eval`: accuracy, per-class accuracy, loss and confusion matrix of a checkpoint on a split."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = (
    "Evaluate a checkpoint on a dataset split: top-1/top-5 and per-class accuracy, loss, confusion matrix "
    "(metrics.json and confusion_matrix.png). --watch follows a running training and logs to TensorBoard."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_argument_group("what to evaluate (a train dir, or a checkpoint and its net)")
    source.add_argument("--train-dir", help="a training run's directory: its latest checkpoint and run_config.json")
    source.add_argument("--ckpt", help="a checkpoint (prefix, file or directory); with --train-dir, this one of it")
    source.add_argument("--net", help="the checkpoint's network (with --ckpt outside a train dir)")
    source.add_argument("--num-classes", type=int, help="the checkpoint's class count (default: the dataset's)")
    source.add_argument("--image-size", type=int, help="input size in pixels (default: the run's, else the net's)")
    source.add_argument("--moving-average", action="store_true",
                        help="evaluate the checkpoint's ExponentialMovingAverage shadow weights (with --ckpt)")
    parser.add_argument("--dataset", help="dataset directory (default: the train dir's dataset)")
    parser.add_argument("--split", default="validation", choices=("train", "validation"))
    parser.add_argument("--validation-fraction", type=float, default=0.1,
                        help="held-out share per class when the dataset has no validation/ folder (as in training)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--output-dir", help="where metrics.json and confusion_matrix.png go "
                        "(default: TRAIN_DIR/eval_SPLIT, else beside the checkpoint)")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.add_argument("--watch", action="store_true",
                        help="evaluate each new checkpoint of --train-dir as training writes it (TensorBoard logs)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="with --watch: stop after this many seconds without a new checkpoint")


def _model(args: argparse.Namespace, info):
    from finetune.runs.trained_model import TrainedModel

    if args.train_dir:
        return TrainedModel.from_train_dir(args.train_dir, checkpoint=args.ckpt, image_size=args.image_size)
    return TrainedModel.from_checkpoint(
        args.ckpt, args.net, args.num_classes or info.num_classes, image_size=args.image_size,
        class_names=info.class_names, use_moving_average=args.moving_average,
    )


def _dataset(args: argparse.Namespace):
    from finetune.data import scan
    from finetune.runs.run_dir import RunDir

    path = args.dataset
    if not path and args.train_dir:
        path = RunDir(args.train_dir).final_run().run_config().get("dataset")  # a plan dir: its last stage's
    if not path:
        raise ValueError("no dataset: give --dataset DIR.")
    return scan.scan_dataset(path, validation_fraction=args.validation_fraction)


def _output_dir(args: argparse.Namespace, checkpoint: str | None) -> str:
    from finetune.runs.run_dir import RunDir, report_dir

    if args.output_dir:
        return args.output_dir
    return report_dir(RunDir(args.train_dir).final_run().path if args.train_dir else Path(checkpoint).parent,
                      args.split)


def _render(metrics: dict, as_json: bool) -> str:
    from finetune.serve.evaluate import format_metrics

    return json.dumps(metrics, indent=2) if as_json else format_metrics(metrics)


def run(args: argparse.Namespace) -> int:
    if args.watch and not args.train_dir:  # what to evaluate is asked for first, before the dataset
        raise ValueError("--watch follows a training run: give --train-dir DIR.")
    if not args.train_dir and not (args.ckpt and args.net):
        raise ValueError("say what to evaluate: --train-dir DIR, or --ckpt PATH --net NAME.")
    from finetune.runs.run_dir import CONFUSION_PNG, METRICS_FILE
    from finetune.serve import evaluate

    info = _dataset(args)
    if args.watch:
        output_dir = _output_dir(args, None)
        for metrics in evaluate.watch(args.train_dir, info, output_dir=output_dir, split=args.split,
                                      batch_size=args.batch_size, image_size=args.image_size, timeout=args.timeout):
            print(_render(metrics, args.json), flush=True)
        return 0
    model = _model(args, info)
    output_dir = _output_dir(args, model.checkpoint)
    metrics = evaluate.evaluate(model, info, split=args.split, batch_size=args.batch_size, output_dir=output_dir)
    print(_render(metrics, args.json))
    if not args.json:
        print(f"wrote {Path(output_dir) / METRICS_FILE} and {Path(output_dir) / CONFUSION_PNG}")
    return 0
