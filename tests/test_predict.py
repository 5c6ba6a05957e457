"""Predict: the exported model's top-k equal the checkpoint's in-process predictions; bad images are reported."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from test_evaluate import CLASSES, IMAGE_SIZE, make_train_dir
from test_export import _checkpoint_logits

from finetune import export, predict, synthetic
from finetune.evaluate import TrainedModel


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(model, export result, image paths): validation images at the model's size, a .pb and a SavedModel."""
    root = tmp_path_factory.mktemp("predict")
    dataset = synthetic.write_shapes_dataset(root / "shapes", CLASSES, train_per_class=1, validation_per_class=1,
                                             image_size=IMAGE_SIZE, seed=4)
    (root / "train").mkdir()
    model = TrainedModel.from_train_dir(str(make_train_dir(root / "train", dataset)))
    result = export.export(model, root / "out" / "model.pb", saved_model_dir=root / "saved_model")
    images = sorted(str(p) for p in (dataset / "validation").glob("*/*.png"))
    return model, result, images


def _expected_top(model, images, k):
    pixels = np.stack([np.asarray(Image.open(p).convert("RGB"), np.float32) for p in images])
    logits = _checkpoint_logits(model, pixels)
    return [[model.class_names[c] for c in np.argsort(-row)[:k]] for row in logits], logits


@pytest.mark.parametrize("which", ["graph", "saved_model"])
def test_predictions_equal_in_process_model(setup, which):
    model, result, images = setup
    exported = predict.load_model(getattr(result, which))
    results = predict.predict(exported, images, top_k=3, batch_size=4)
    exported.close()
    expected, logits = _expected_top(model, images, 3)
    assert [r["image"] for r in results] == images
    assert [[p["label"] for p in r["predictions"]] for r in results] == expected
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    for r, row in zip(results, probabilities):
        assert [p["probability"] for p in r["predictions"]] == pytest.approx(sorted(row)[::-1][:3], abs=1e-4)


def test_bad_images_are_reported_and_the_others_run(setup, tmp_path):
    model, result, images = setup
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"not an image at all")
    paths = [images[0], str(tmp_path / "missing.png"), str(corrupt), images[1]]
    exported = predict.load_model(result.graph)
    results = predict.predict(exported, paths, top_k=1, batch_size=2)
    exported.close()
    assert "no such file" in results[1]["error"] and "missing.png" in results[1]["error"]
    assert "not a readable image" in results[2]["error"] and "corrupt.jpg" in results[2]["error"]
    expected, _ = _expected_top(model, [images[0], images[1]], 1)
    assert [results[0]["predictions"][0]["label"], results[3]["predictions"][0]["label"]] == [e[0] for e in expected]


def test_cli_predict_json_and_table(setup, tmp_path):
    _, result, images = setup
    command = [sys.executable, "-m", "finetune.cli", "predict", "--model", result.graph, "--top-k", "2"]
    as_json = subprocess.run(command + ["--json", *images[:2]], check=False, capture_output=True, text=True, timeout=300)
    assert as_json.returncode == 0, as_json.stderr[-2000:]
    printed = json.loads(as_json.stdout)
    assert [len(r["predictions"]) for r in printed] == [2, 2]
    table = subprocess.run(command + [images[0], str(tmp_path / "gone.jpg")], check=False, capture_output=True,
                           text=True, timeout=300)
    assert table.returncode == 1
    assert printed[0]["predictions"][0]["label"] in table.stdout and "probability" in table.stdout
    assert "gone.jpg: no such file" in table.stderr
