"""Evaluation: metrics equal a hand computation from the same logits; reports are written and readable."""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.runs import CLASSES, IMAGE_SIZE, make_train_dir

from finetune.data import scan, synthetic
from finetune.data.preprocessing import preprocess_image
from finetune.runs.run_dir import RunDir
from finetune.runs.trained_model import TrainedModel
from finetune.serve import evaluate
from nets import nets_factory
from nets.compat import tf


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(train_dir, dataset_dir) with 6 classes x 2 validation images."""
    root = tmp_path_factory.mktemp("eval")
    dataset = synthetic.write_shapes_dataset(root / "shapes", CLASSES, train_per_class=1, validation_per_class=2,
                                             image_size=40, seed=1)
    train_dir = root / "train"
    train_dir.mkdir()
    return make_train_dir(train_dir, dataset), dataset


def _logits_by_hand(model: TrainedModel, info: scan.DatasetInfo, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Logits of every image of the split, one at a time, with its own decode + preprocessing + Saver restore."""
    with tf.Graph().as_default():
        path = tf.placeholder(tf.string, [])
        image = tf.io.decode_png(tf.io.read_file(path), channels=3)
        images = preprocess_image(image, model.image_size, model.image_size, False, model.preprocessing)[None]
        logits = nets_factory.get_network_fn(model.net, model.num_classes)(images)[0]
        with tf.Session() as session:
            tf.train.Saver(tf.global_variables()).restore(session, model.checkpoint)
            rows = [session.run(logits, {path: p})[0] for p in info.sources[split]]
    return np.array(rows), np.array(info.labels[split])


def test_metrics_equal_hand_computation(run, tmp_path):
    train_dir, dataset = run
    model = TrainedModel.from_train_dir(str(train_dir))
    info = scan.scan_dataset(str(dataset))
    metrics = evaluate.evaluate(model, info, split="validation", batch_size=5, output_dir=str(tmp_path),
                                progress=False)

    logits, labels = _logits_by_hand(model, info, "validation")
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    predicted = logits.argmax(axis=1)
    k = 5
    ranks = (logits > logits[np.arange(len(labels)), labels][:, None]).sum(axis=1)
    confusion = np.zeros([6, 6], int)
    for true, guess in zip(labels, predicted):
        confusion[true, guess] += 1

    assert metrics["num_examples"] == 12
    assert metrics["top_k"] == k
    assert metrics["top1"] == pytest.approx(np.mean(predicted == labels))
    assert metrics["top5"] == pytest.approx(np.mean(ranks < k))
    assert metrics["loss"] == pytest.approx(-log_probs[np.arange(len(labels)), labels].mean(), rel=1e-5)
    assert metrics["confusion_matrix"] == confusion.tolist()
    for c, name in enumerate(CLASSES):
        assert metrics["per_class"][name]["accuracy"] == pytest.approx(np.mean(predicted[labels == c] == c))
        assert metrics["per_class"][name]["count"] == 2
    assert metrics["global_step"] == 7
    assert json.loads((tmp_path / "metrics.json").read_text())["confusion_matrix"] == confusion.tolist()
    assert (tmp_path / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_metrics_from_counts_top_k_and_empty_class():
    confusion = np.array([[3, 1, 0], [0, 0, 0], [2, 0, 2]])
    metrics = evaluate.metrics_from_counts(confusion, top_k_correct=7, loss_sum=4.0, class_names=["a", "b", "c"],
                                           top_k=2)
    assert metrics["top1"] == pytest.approx(5 / 8)
    assert metrics["top2"] == pytest.approx(7 / 8)
    assert metrics["loss"] == pytest.approx(0.5)
    assert metrics["per_class"]["a"]["accuracy"] == pytest.approx(0.75)
    assert metrics["per_class"]["b"] == {"accuracy": None, "count": 0}
    assert metrics["per_class"]["c"]["accuracy"] == pytest.approx(0.5)


def test_class_count_mismatch_is_a_clear_error(run, tmp_path):
    train_dir, _ = run
    other = synthetic.write_shapes_dataset(tmp_path / "two", ["circle", "ring"], train_per_class=1,
                                           validation_per_class=1, image_size=32, seed=0)
    model = TrainedModel.from_train_dir(str(train_dir))
    with pytest.raises(ValueError, match="has 6 classes, dataset .* has 2"):
        evaluate.evaluate(model, str(other), progress=False)


def test_missing_train_dir_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        TrainedModel.from_train_dir(str(tmp_path / "nope"))


def test_watch_writes_tensorboard_metrics(run, tmp_path):
    train_dir, dataset = run
    results = list(evaluate.watch(str(train_dir), str(dataset), output_dir=str(tmp_path), batch_size=6, timeout=0))
    assert [m["global_step"] for m in results] == [7]
    tags = {}
    for event_file in tmp_path.glob("events.out.tfevents.*"):
        for event in tf.train.summary_iterator(str(event_file)):
            for value in event.summary.value:
                tags[value.tag] = (event.step, value.simple_value)
    assert tags["eval_validation/top1"] == (7, pytest.approx(results[0]["top1"]))
    assert "eval_validation/confusion_matrix" in tags


@pytest.mark.slow
def test_cli_eval_train_dir(run, tmp_path):
    train_dir, _ = run
    out = tmp_path / "report"
    result = subprocess.run(
        [sys.executable, "-m", "finetune.cli", "eval", "--train-dir", str(train_dir), "--batch-size", "6",
         "--output-dir", str(out), "--json"],
        check=False, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed == json.loads((out / "metrics.json").read_text())
    assert printed["num_examples"] == 12


def test_cli_eval_reports_where_training_does(tmp_path):
    from finetune.commands import eval as eval_command

    args = argparse.Namespace(output_dir=None, train_dir=str(tmp_path), split="validation")
    assert eval_command._output_dir(args, None) == str(tmp_path / "eval_validation")
    assert RunDir(tmp_path).report_dir("validation") == str(tmp_path / "eval_validation")  # what training uses
    checkpoint = str(tmp_path / "elsewhere" / "model.ckpt-3")
    assert eval_command._output_dir(argparse.Namespace(output_dir=None, train_dir=None, split="train"), checkpoint) == \
        str(tmp_path / "elsewhere" / "eval_train")


def test_checkpoint_of_another_net_is_a_clear_error(run):
    train_dir, dataset = run
    model = TrainedModel.from_checkpoint(str(train_dir), "mobilenet_v1_050", len(CLASSES),
                                                  image_size=IMAGE_SIZE, class_names=CLASSES)
    with pytest.raises(ValueError, match=r"^\d+ variables do not fit .*: MobilenetV1/Conv2d_0/weights \[3,3,3,16\] vs "
                                         r"\[3,3,3,8\].* and \d+ more; it is not a mobilenet_v1_050 with 6 classes: "
                                         "give the --net and --num-classes it was trained with") as error:
        evaluate.evaluate(model, str(dataset), progress=False)
    assert "\n" not in str(error.value) and len(str(error.value)) < 300


def test_eval_counts_skipped_images_as_num_skipped(run, tmp_path):
    """Eval's count of undecodable images is `num_skipped` (the run summary's `skipped_images` is a list of
    names): one name, one meaning. The report is written through RunDir, which reads it back."""
    import shutil

    train_dir, dataset = run
    copy = tmp_path / "shapes"
    shutil.copytree(dataset, copy)
    (copy / "validation" / CLASSES[0] / "broken.png").write_bytes(b"not a png")
    model = TrainedModel.from_train_dir(str(train_dir))
    report = RunDir(tmp_path / "run").report_dir("validation")
    metrics = evaluate.evaluate(model, str(copy), batch_size=6, output_dir=report, progress=False)
    assert metrics["num_skipped"] == 1 and "skipped_images" not in metrics
    assert metrics["num_examples"] == 12
    assert RunDir(tmp_path / "run").eval_metrics("validation") == metrics
    assert RunDir(tmp_path / "run").eval_metrics("train") is None
    assert ", 1 images skipped (corrupt)" in evaluate.format_metrics(metrics).splitlines()[0]
    assert sorted(p.name for p in Path(report).iterdir()) == ["confusion_matrix.png", "metrics.json"]  # no temp files
