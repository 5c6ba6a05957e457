"""Predict: the exported model's top-k equal the checkpoint's in-process predictions; bad images are reported."""

import json
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from helpers.runs import CLASSES, IMAGE_SIZE, checkpoint_logits, make_train_dir
from PIL import Image

from finetune.data import synthetic
from finetune.serve import export, predict, served
from finetune.serve.evaluate import TrainedModel
from nets.compat import tf


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
    logits = checkpoint_logits(model, pixels)
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


def _png_header(path, width: int, height: int) -> str:
    """A PNG whose header claims width x height RGB pixels, with one row of data: a decompression bomb's
    shape (a few bytes on disk, width * height * 3 bytes once decoded)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    row = zlib.compress(b"\0" * (1 + 3 * width))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", row) + chunk(b"IEND", b""))
    return str(path)


def test_huge_images_are_reported_by_name_before_decoding(setup, tmp_path):
    """A 20000x20000 PNG (past PIL's bomb limit) and a 10000x10000 one (past predict's): named, never decoded
    (their data would not decode: an error saying so would mean predict tried), and the others still run."""
    model, result, images = setup
    bomb = _png_header(tmp_path / "bomb.png", 20000, 20000)
    large = _png_header(tmp_path / "large.png", 10000, 10000)
    assert 10000 * 10000 > predict.MAX_PIXELS > 9000 * 9000
    exported = predict.load_model(result.graph)
    results = predict.predict(exported, [images[0], bomb, large, images[1]], top_k=1, batch_size=4)
    exported.close()
    assert results[1]["error"].startswith(f"{bomb}: too large to decode (Image size (400000000 pixels)")
    assert results[2]["error"].startswith(f"{large}: 10000x10000 pixels is too large to decode")
    expected, _ = _expected_top(model, [images[0], images[1]], 1)
    assert [results[0]["predictions"][0]["label"], results[3]["predictions"][0]["label"]] == [e[0] for e in expected]


@pytest.mark.slow
def test_a_file_the_jpeg_graph_cannot_decode_is_named_and_the_batch_still_runs(setup, tmp_path):
    """A JPEG cut in half: its header reads, the graph's decoder fails; that batch runs again image by image."""
    model, result, images = setup
    jpeg = export.export(model, tmp_path / "jpeg" / "model.pb", input_type="jpeg")
    whole = served.encode(np.asarray(Image.open(images[2]).convert("RGB")), "JPEG")
    (tmp_path / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    paths = [images[0], str(tmp_path / "cut.jpg"), images[1]]
    for graph in (jpeg.graph, result.graph):  # jpeg input: in the graph; float input: predict's decoder
        exported = predict.load_model(graph)
        results = predict.predict(exported, paths, top_k=1, batch_size=3)
        exported.close()
        assert results[1]["error"].startswith(f"{paths[1]}: not a readable image (")
        expected, _ = _expected_top(model, [images[0], images[1]], 1)
        assert [results[0]["predictions"][0]["label"], results[2]["predictions"][0]["label"]] == [e[0] for e in expected]


def test_an_export_that_needs_resized_images_is_refused(tmp_path):
    """A float graph of a fixed input size (an earlier finetune's export, resized by predict before the graph's
    central crop, so its predictions differ from eval's) is refused in words."""
    with tf.Graph().as_default() as graph:
        pixels = tf.placeholder(tf.float32, [None, 32, 32, 3], name="input")
        logits = tf.identity(tf.reduce_mean(pixels, axis=[1, 2]), name="logits")
        tf.nn.softmax(logits, name="probabilities")
        tf.argmax(logits, axis=1, name="classes")
    (tmp_path / "old.pb").write_bytes(graph.as_graph_def().SerializeToString())
    with pytest.raises(ValueError, match=r"takes images resized to \[32, 32\].*export it again"):
        predict.load_model(tmp_path / "old.pb")


@pytest.mark.slow
def test_cli_predict_json_and_table(setup, tmp_path):
    _, result, images = setup
    command = [sys.executable, "-m", "finetune.cli", "predict", "--model", result.graph, "--top-k", "2"]
    as_json = subprocess.run(command + ["--json", *images[:2]], check=False, capture_output=True, text=True, timeout=300)
    assert as_json.returncode == 0, as_json.stderr[-2000:]
    printed = json.loads(as_json.stdout)
    assert [len(r["predictions"]) for r in printed] == [2, 2]
    bomb = _png_header(tmp_path / "bomb.png", 20000, 20000)
    table = subprocess.run(command + [images[0], str(tmp_path / "gone.jpg"), bomb], check=False, capture_output=True,
                           text=True, timeout=300)
    assert table.returncode == 1 and "Traceback" not in table.stderr
    assert printed[0]["predictions"][0]["label"] in table.stdout and "probability" in table.stdout
    errors = [line for line in table.stderr.splitlines() if line.startswith("finetune predict: error:")]
    assert len(errors) == 2 and errors[0] == f"finetune predict: error: {tmp_path / 'gone.jpg'}: no such file"
    assert errors[1].startswith(f"finetune predict: error: {bomb}: too large to decode (")
    assert "400000000 pixels" in errors[1] and errors[1].endswith("give a smaller image")


def test_class_names_come_from_the_exports_own_files_only(setup, tmp_path):
    """A .pb copied into a TFRecord dataset's folder sits beside its labels.txt of TF-Slim `label:name` lines:
    predict never takes those for class names (no export's model.json names them), it names classes by index.
    With the export's model.json beside it, the labels.txt it names is read."""
    import shutil
    from pathlib import Path

    _, result, images = setup
    dataset = tmp_path / "tfrecords"
    dataset.mkdir()
    shutil.copyfile(result.graph, dataset / "model.pb")
    (dataset / "labels.txt").write_text("".join(f"{i}:{name}\n" for i, name in enumerate(CLASSES)))
    with predict.load_model(dataset / "model.pb") as exported:
        assert exported.labels == [str(i) for i in range(len(CLASSES))]
        labels = {p["label"] for r in predict.predict(exported, images, top_k=len(CLASSES)) for p in r["predictions"]}
    assert labels == {str(i) for i in range(len(CLASSES))}

    shutil.copyfile(result.info, dataset / "model.json")  # now the export's files: its labels.txt is the model's
    (dataset / "labels.txt").write_text("".join(f"{name}\n" for name in CLASSES))
    with predict.load_model(dataset / "model.pb") as exported:
        assert exported.labels == CLASSES
    (dataset / "labels.txt").write_text("daisy\nrose\n")
    with pytest.raises(ValueError, match=r"labels.txt has 2 names for a 6-class model"):
        predict.load_model(dataset / "model.pb")
    assert Path(result.labels).read_text().split() == CLASSES
