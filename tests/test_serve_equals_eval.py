"""Serve = evaluate: for the same image file, of any size and shape, evaluation's pipeline (finetune.data.pipeline +
finetune.serve.evaluate), `finetune predict` on the float .pb, on the jpeg .pb and on the SavedModel, and the
README's plain-TensorFlow client give the same probabilities.

The images are two real photos (tests/data/real/, CC BY 2.0, see its SOURCES.md) and versions of them
that are tall, wide, smaller than the net's input, much larger, grayscale, as JPEG, PNG and BMP.
"""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.runs import make_train_dir
from PIL import Image

from finetune.data import pipeline, scan
from finetune.runs.trained_model import TrainedModel
from finetune.serve import evaluate, export, predict
from finetune.serve.served import ServedModel
from nets.compat import tf

PHOTOS = Path(__file__).parent / "data" / "real"
IMAGE_SIZE = 32
CLASSES = ["cat", "dog", "other"]
TOLERANCE = 1e-3  # the promise: max |difference| of any probability
pytestmark = pytest.mark.slow  # two exports and an evaluation: ~25 s of CPU


def _images(root: Path) -> dict[str, list[Path]]:
    """Validation images by class: the photos as they are and resized versions of them."""
    wide, tall = Image.open(PHOTOS / "cat_720p.jpg"), Image.open(PHOTOS / "cat_test_0.jpg")
    versions = {
        "cat": [("wide_640x360.jpg", None, wide), ("tall_427x640.jpg", None, tall),
                ("small_24x14.png", (24, 14), wide)],
        "dog": [("large_1300x1950.jpg", (1300, 1950), tall), ("small_tall_13x20.bmp", (13, 20), tall)],
        "other": [("gray_200x150.png", (200, 150), wide.convert("L")), ("square_32x32.png", (32, 32), tall)],
    }
    written = {}
    for name, items in versions.items():
        folder = root / "validation" / name
        folder.mkdir(parents=True)
        written[name] = []
        for file_name, size, image in items:
            path = folder / file_name
            if size is None:
                path.write_bytes((PHOTOS / ("cat_720p.jpg" if image is wide else "cat_test_0.jpg")).read_bytes())
            else:
                image.resize(size, Image.BILINEAR).save(path, **({"quality": 90} if path.suffix == ".jpg" else {}))
            written[name].append(path)
        train = root / "train" / name
        train.mkdir(parents=True)
        wide.resize((48, 27)).save(train / "one.png")
    return written


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(model, dataset info, {name: .pb or SavedModel}, evaluation's probabilities of the validation images)
    of a small net whose outputs depend on the input (random BatchNorm statistics)."""
    root = tmp_path_factory.mktemp("serve")
    _images(root / "photos")
    info = scan.scan_dataset(str(root / "photos"))
    (root / "train").mkdir()
    model = TrainedModel.from_train_dir(str(make_train_dir(root / "train", root / "photos", image_size=IMAGE_SIZE,
                                                           class_names=CLASSES, seed=3)))
    float_export = export.export(model, root / "float" / "model.pb", saved_model_dir=root / "saved_model")
    jpeg_export = export.export(model, root / "jpeg" / "model.pb", input_type="jpeg")
    models = {"float .pb": float_export.graph, "jpeg .pb": jpeg_export.graph, "SavedModel": float_export.saved_model}
    return model, info, models, _evaluation_probabilities(model, info)


def _evaluation_probabilities(model: TrainedModel, info: scan.DatasetInfo) -> np.ndarray:
    """Probabilities of every validation image through evaluation's own pipeline (pipeline.build_dataset in
    evaluation mode, the net restored as evaluate.evaluate restores it), in info.sources order."""
    with tf.Graph().as_default():
        batches = pipeline.build_dataset(info, "validation", batch_size=3, image_size=model.image_size,
                                     preprocessing=model.preprocessing, is_training=False, num_epochs=1)
        iterator = pipeline.make_iterator(batches)
        images, _ = iterator.get_next()
        probabilities = tf.nn.softmax(tf.cast(model.logits(images), tf.float32))
        restore = model.restore_op(tf.global_variables())
        skipped = pipeline.skipped_images("validation")
        rows = []
        with tf.Session() as session:
            session.run([tf.global_variables_initializer(), tf.local_variables_initializer(), iterator.initializer])
            session.run(restore)
            while True:
                try:
                    rows.append(session.run(probabilities))
                except tf.errors.OutOfRangeError:
                    break
            assert session.run(skipped) == 0
    return np.concatenate(rows)


def _predicted_probabilities(path: str, images: list[str]) -> np.ndarray:
    """`finetune predict`'s probabilities of every class, [image, class], batches mixing sizes."""
    model = predict.load_model(path)
    try:
        results = predict.predict(model, images, top_k=len(CLASSES), batch_size=4)
    finally:
        model.close()
    assert [r["image"] for r in results] == images and not [r for r in results if "error" in r]
    table = np.zeros([len(images), len(CLASSES)])
    for row, result in zip(table, results):
        for entry in result["predictions"]:
            row[entry["class"]] = entry["probability"]
    return table


def test_the_images_cover_the_shapes_clients_send(served):
    _, info, _, _ = served
    sizes = [Image.open(path).size for path in info.sources["validation"]]
    assert any(h > 1.4 * w for w, h in sizes) and any(w > 1.4 * h for w, h in sizes)  # tall, wide
    assert any(max(w, h) < IMAGE_SIZE for w, h in sizes)  # smaller than the net's input
    assert any(min(w, h) > 30 * IMAGE_SIZE for w, h in sizes)  # much larger
    assert len(set(sizes)) == len(sizes)


@pytest.mark.parametrize("which", ["float .pb", "jpeg .pb", "SavedModel"])
def test_predict_gives_evaluations_probabilities(served, which):
    _, info, models, expected = served
    images = info.sources["validation"]
    assert expected.std(axis=0).max() > 0.05  # the probabilities depend on the image
    got = _predicted_probabilities(models[which], images)
    print(f"{which}: max |probability difference| from evaluation {np.abs(got - expected).max():.2e}")
    np.testing.assert_allclose(got, expected, atol=TOLERANCE, rtol=0)


def test_finetune_eval_metrics_equal_those_of_predict(served):
    """`finetune eval`'s loss and accuracy (evaluate.evaluate) from predict's probabilities of the same files."""
    model, info, models, _ = served
    metrics = evaluate.evaluate(model, info, batch_size=3, progress=False)
    probabilities = _predicted_probabilities(models["float .pb"], info.sources["validation"])
    labels = np.array(info.labels["validation"])
    loss = -np.mean(np.log(probabilities[np.arange(len(labels)), labels]))
    assert metrics["num_examples"] == len(labels) and metrics["num_skipped"] == 0
    assert metrics["loss"] == pytest.approx(loss, abs=TOLERANCE)
    assert metrics["top1"] == pytest.approx(np.mean(probabilities.argmax(axis=1) == labels))


def test_resizing_before_the_graph_would_be_caught(served):
    """The earlier defect, reproduced: the whole photo resized to the net's size, then the graph's central crop.
    It moves the probabilities far beyond the tolerance, so the tests above can fail."""
    _, info, models, expected = served
    images = info.sources["validation"]
    resized = [np.asarray(Image.open(p).convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)) for p in images]
    with ServedModel(models["float .pb"]) as graph:
        got = graph.run(np.stack(resized).astype(np.float32))["probabilities"]
    print(f"resized before the graph: max |probability difference| from evaluation {np.abs(got - expected).max():.2e}, "
          f"top-1 differs on {(got.argmax(1) != expected.argmax(1)).sum()} of {len(images)}")
    assert np.abs(got - expected).max() > 20 * TOLERANCE


def _readme_client() -> str:
    """The plain-TensorFlow serving snippet of README.md."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    return re.search(r"Serving\s+needs\s+only\s+TensorFlow:\s+```python\n(.*?)```", readme, re.S).group(1)


def test_readme_plain_tensorflow_client_agrees(served, tmp_path):
    _, info, models, _ = served
    snippet = _readme_client()
    files = re.findall(r'open\("([^"]+)"', snippet)
    assert files == ["model.pb", "labels.txt", "daisy.jpg"]
    graph = Path(models["float .pb"])
    (tmp_path / "model.pb").write_bytes(graph.read_bytes())
    (tmp_path / "labels.txt").write_bytes((graph.parent / "labels.txt").read_bytes())
    image = next(p for p in info.sources["validation"] if "tall_427x640" in p)
    (tmp_path / "daisy.jpg").write_bytes(Path(image).read_bytes())
    check = "\nimport sys\nassert not {'finetune', 'nets', 'checkpoints', 'tf_slim'} & set(sys.modules)\n"
    done = subprocess.run([sys.executable, "-c", snippet + check], check=False, capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    label, probability = done.stdout.split()[-2:]
    expected = _predicted_probabilities(models["float .pb"], [image])[0]
    assert label == CLASSES[expected.argmax()]
    assert float(probability) == pytest.approx(expected.max(), abs=TOLERANCE)
