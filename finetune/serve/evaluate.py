"""Evaluate a checkpoint on a dataset split: top-1/top-k accuracy, per-class accuracy, loss, confusion.

The model is a `finetune.runs.trained_model.TrainedModel`: a checkpoint and what rebuilds its graph.

`evaluate(model, dataset, split=...)` runs the net in inference mode over one pass of the split and
returns the metrics as a dict; with `output_dir` it also writes `metrics.json` and
`confusion_matrix.png` there. Per batch the graph yields the predicted class, whether the label is in
the top k, and the cross-entropy; everything else follows from the confusion matrix, so memory does
not grow with the split.

`watch(model, dataset, ...)` evaluates each new checkpoint of a running training as it appears
(`tf.train.checkpoints_iterator`, as TF-Slim's evaluation loop) and writes the metrics to TensorBoard.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from finetune.runs.run_dir import write_eval_report
from finetune.runs.trained_model import TrainedModel
from nets.compat import tf

TOP_K = 5
_MAX_ANNOTATED_CLASSES = 30
_MAX_NAMED_CLASSES = 60


# ---------------------------------------------------------------------------------------------
# Metrics


def metrics_from_counts(
    confusion: np.ndarray, top_k_correct: int, loss_sum: float, class_names: Sequence[str], top_k: int
) -> dict:
    """The metrics dict from a confusion matrix (rows: true class, columns: predicted) and running sums."""
    total = int(confusion.sum())
    per_class_count = confusion.sum(axis=1)
    correct = np.diag(confusion)
    per_class = {
        name: {"accuracy": float(correct[i] / per_class_count[i]) if per_class_count[i] else None,
               "count": int(per_class_count[i])}
        for i, name in enumerate(class_names)
    }
    return {
        "num_examples": total,
        "top1": float(correct.sum() / total),
        f"top{top_k}": float(top_k_correct / total),
        "top_k": top_k,
        "loss": float(loss_sum / total),
        "per_class": per_class,
        "class_names": list(class_names),
        "confusion_matrix": confusion.astype(int).tolist(),
    }


def _eval_tensors(model: TrainedModel, images: tf.Tensor, labels: tf.Tensor, top_k: int) -> dict[str, tf.Tensor]:
    """Per-batch outputs: labels, predicted class, label-in-top-k, cross-entropy."""
    logits = tf.cast(model.logits(images), tf.float32)
    return {
        "labels": labels,
        "predictions": tf.argmax(logits, axis=1),
        "in_top_k": tf.math.in_top_k(predictions=logits, targets=labels, k=top_k),
        "losses": tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits),
    }


def _check_classes(model: TrainedModel, info) -> None:
    if model.num_classes != info.num_classes:
        raise ValueError(
            f"checkpoint {model.checkpoint} has {model.num_classes} classes, dataset {info.root} has "
            f"{info.num_classes}: evaluate on the dataset the model was trained on."
        )


def evaluate(
    model: TrainedModel,
    dataset,
    *,
    split: str = "validation",
    batch_size: int = 32,
    output_dir: str | None = None,
    progress: bool = True,
) -> dict:
    """Metrics of `model` on one pass over `split` of `dataset` (a DatasetInfo or a dataset path).

    Returns {"checkpoint", "global_step", "net", "split", "num_examples", "top1", "top5" (or top{k} for
    fewer than 5 classes), "top_k", "loss", "per_class", "class_names", "confusion_matrix",
    "num_skipped"}: `num_skipped` counts the split's images that did not decode (skipped, never a crash).
    With `output_dir`, also writes metrics.json and confusion_matrix.png there.
    """
    from finetune.data import pipeline, scan

    info = scan.scan_dataset(dataset) if isinstance(dataset, str | os.PathLike) else dataset
    _check_classes(model, info)
    top_k = min(TOP_K, model.num_classes)
    with tf.Graph().as_default():
        batches = pipeline.build_dataset(
            info, split, batch_size=batch_size, image_size=model.image_size, preprocessing=model.preprocessing,
            is_training=False, num_epochs=1,
        )
        iterator = pipeline.make_iterator(batches)
        images, labels = iterator.get_next()
        fetches = _eval_tensors(model, images, labels, top_k)
        plan = model.restore_plan(tf.global_variables())
        restore = plan.restore_op()
        init = plan.remainder_initializer()  # the restored variables' random initial values would be overwritten
        skipped = pipeline.skipped_images(split)
        with tf.Session() as session:
            session.run([init, tf.local_variables_initializer(), iterator.initializer])
            session.run(restore)
            counts = _accumulate(session, fetches, model.num_classes, _progress(progress, info, split, batch_size))
            num_skipped = int(session.run(skipped))
    metrics = {
        "checkpoint": model.checkpoint,
        "global_step": model.global_step,
        "net": model.net,
        "split": split,
        **metrics_from_counts(*counts, model.class_names, top_k),
        "num_skipped": num_skipped,
    }
    if output_dir:
        write_report(metrics, output_dir)
    return metrics


def validation_accuracy(run_dir, checkpoint: str, info, batch_size: int) -> float:
    """Top-1 accuracy of `checkpoint` of the run dir (finetune.runs.run_dir.RunDir) on the validation split of
    `info`, the report in TRAIN_DIR/eval_validation (where `finetune eval --train-dir` writes too): the final
    validation a training run is given (finetune.train.loop.train's `validate`)."""
    model = TrainedModel.from_train_dir(str(run_dir), checkpoint)
    metrics = evaluate(model, info, split="validation", batch_size=batch_size,
                       output_dir=run_dir.report_dir("validation"), progress=False)
    return float(metrics["top1"])


def _progress(enabled: bool, info, split: str, batch_size: int):
    from tqdm import tqdm

    total = math.ceil(info.num_examples[split] / batch_size)
    return tqdm(total=total, desc=f"eval {split}", unit="batch", disable=not enabled, leave=False)


def _accumulate(session: tf.Session, fetches: dict[str, tf.Tensor], num_classes: int, bar) -> tuple[np.ndarray, int, float]:
    """Run the split once: (confusion matrix, top-k hits, summed loss)."""
    confusion = np.zeros([num_classes, num_classes], np.int64)
    top_k_correct, loss_sum = 0, 0.0
    with bar:
        while True:
            try:
                batch = session.run(fetches)
            except tf.errors.OutOfRangeError:
                break
            np.add.at(confusion, (batch["labels"], batch["predictions"]), 1)
            top_k_correct += int(batch["in_top_k"].sum())
            loss_sum += float(batch["losses"].sum())
            bar.update()
    if not confusion.sum():
        raise ValueError("no image of the split could be read: check the dataset (every image was skipped).")
    return confusion, top_k_correct, loss_sum


# ---------------------------------------------------------------------------------------------
# Reports


def write_report(metrics: dict, output_dir: str) -> tuple[Path, Path]:
    """Write metrics.json and confusion_matrix.png into output_dir (through `finetune.runs.run_dir`, each
    file whole); return their paths."""
    png = confusion_png(np.array(metrics["confusion_matrix"]), metrics["class_names"], title=_title(metrics))
    return write_eval_report(output_dir, metrics, png)


def _title(metrics: dict) -> str:
    step = f" step {metrics['global_step']}" if metrics.get("global_step") is not None else ""
    k = metrics["top_k"]
    return (f"{metrics['net']}{step}, {metrics['split']} ({metrics['num_examples']} images): "
            f"top-1 {metrics['top1']:.1%}, top-{k} {metrics[f'top{k}']:.1%}")


def confusion_png(confusion: np.ndarray, class_names: Sequence[str], title: str = "") -> bytes:
    """A confusion matrix as PNG bytes: rows true class, columns predicted, colour = share of the row."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    n = len(class_names)
    rows = confusion.sum(axis=1, keepdims=True)
    shares = np.divide(confusion, rows, out=np.zeros(confusion.shape, float), where=rows > 0)
    side = min(max(5.0, 0.45 * n + 2.5), 40.0)
    figure, axes = plt.subplots(figsize=(side + 1.5, side))
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of the true class")
    if n <= _MAX_NAMED_CLASSES:
        axes.set_xticks(range(n), labels=class_names, rotation=45, ha="right", rotation_mode="anchor")
        axes.set_yticks(range(n), labels=class_names)
    if n <= _MAX_ANNOTATED_CLASSES:
        for (i, j), count in np.ndenumerate(confusion):
            if count:
                colour = "white" if shares[i, j] > 0.5 else "black"
                axes.text(j, i, str(count), ha="center", va="center", color=colour, fontsize=9)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def format_metrics(metrics: dict) -> str:
    """A short readable summary: the headline numbers and a per-class table."""
    from tabulate import tabulate

    head = _title(metrics) + f", loss {metrics['loss']:.4f}"
    if metrics.get("num_skipped"):
        head += f", {metrics['num_skipped']} images skipped (corrupt)"
    rows = [
        (name, entry["count"], "-" if entry["accuracy"] is None else f"{entry['accuracy']:.1%}")
        for name, entry in metrics["per_class"].items()
    ]
    return head + "\n" + tabulate(rows, headers=["class", "images", "accuracy"])


# ---------------------------------------------------------------------------------------------
# Watching a running training


def watch(
    train_dir: str,
    dataset,
    *,
    output_dir: str,
    split: str = "validation",
    batch_size: int = 32,
    image_size: int | None = None,
    timeout: float | None = None,
    min_interval_secs: float = 0,
) -> Iterator[dict]:
    """Evaluate every new checkpoint of a running training in train_dir as it appears; yield each metrics dict.

    Writes metrics.json and confusion_matrix.png (of the latest) and TensorBoard scalars plus the
    confusion image at each checkpoint's global step into output_dir. Stops after `timeout` seconds
    without a new checkpoint (None: waits for ever).
    """
    from finetune.data import scan

    info = scan.scan_dataset(dataset) if isinstance(dataset, str | os.PathLike) else dataset
    with tf.Graph().as_default():
        writer = tf.summary.FileWriter(output_dir)
    try:
        for checkpoint in tf.train.checkpoints_iterator(train_dir, min_interval_secs=min_interval_secs,
                                                        timeout=timeout):
            model = TrainedModel.from_train_dir(train_dir, checkpoint=checkpoint, image_size=image_size)
            metrics = evaluate(model, info, split=split, batch_size=batch_size, output_dir=output_dir,
                               progress=False)
            writer.add_summary(metrics_summary(metrics), metrics["global_step"] or 0)
            writer.flush()
            yield metrics
    finally:
        writer.close()


def metrics_summary(metrics: dict) -> tf.Summary:
    """The headline metrics as TensorBoard scalars under eval_<split>/, plus the confusion-matrix image."""
    split = metrics["split"]
    k = metrics["top_k"]
    scalars = {"top1": metrics["top1"], f"top{k}": metrics[f"top{k}"], "loss": metrics["loss"]}
    values = [tf.Summary.Value(tag=f"eval_{split}/{name}", simple_value=value) for name, value in scalars.items()]
    png = confusion_png(np.array(metrics["confusion_matrix"]), metrics["class_names"], title=_title(metrics))
    height, width = _png_size(png)
    image = tf.Summary.Image(height=height, width=width, colorspace=4, encoded_image_string=png)
    values.append(tf.Summary.Value(tag=f"eval_{split}/confusion_matrix", image=image))
    return tf.Summary(value=values)


def _png_size(png: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        return image.height, image.width
