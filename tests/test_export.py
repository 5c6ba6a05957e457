"""Export: the frozen graph and the SavedModel reproduce the checkpoint graph and run without this project."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from test_evaluate import CLASSES, IMAGE_SIZE, make_train_dir

from finetune import export, synthetic
from finetune.evaluate import TrainedModel
from finetune.preprocessing import preprocess_image
from nets import nets_factory
from nets.compat import tf


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(model, ExportResult) of a float-input export with a SavedModel."""
    root = tmp_path_factory.mktemp("export")
    dataset = synthetic.write_shapes_dataset(root / "shapes", CLASSES, train_per_class=1, validation_per_class=1,
                                             image_size=IMAGE_SIZE, seed=2)
    (root / "train").mkdir()
    model = TrainedModel.from_train_dir(str(make_train_dir(root / "train", dataset)))
    result = export.export(model, root / "out" / "model.pb", saved_model_dir=root / "saved_model")
    return model, result


def _pixels(count: int, seed: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, [count, IMAGE_SIZE, IMAGE_SIZE, 3]).astype(np.float32)


def _checkpoint_logits(model: TrainedModel, pixels: np.ndarray) -> np.ndarray:
    """Logits of the checkpoint restored with a plain Saver, preprocessing each image as evaluation does."""
    with tf.Graph().as_default():
        images = tf.stack([preprocess_image(tf.constant(p / 255.0), IMAGE_SIZE, IMAGE_SIZE, False, model.preprocessing)
                           for p in pixels])
        logits, _ = nets_factory.get_network_fn(model.net, model.num_classes)(images)
        with tf.Session() as session:
            tf.train.Saver().restore(session, model.checkpoint)
            return session.run(logits)


def _logits_tolerance(logits: np.ndarray) -> float:
    """Export's promise: logits within 1e-4 of their scale (float rounding grows with depth)."""
    return export.TOLERANCE * max(1.0, float(np.abs(logits).max()))


def test_frozen_graph_reproduces_checkpoint_logits(exported):
    model, result = exported
    pixels = _pixels(3)
    outputs = export.run_graph_def(export.load_graph_def(result.graph), pixels)
    expected = _checkpoint_logits(model, pixels)
    assert np.abs(expected).max() > 0.1 and np.std(expected, axis=0).max() > 0.05  # outputs depend on the input
    np.testing.assert_allclose(outputs["logits"], expected, atol=_logits_tolerance(expected), rtol=0)
    exp = np.exp(expected - expected.max(axis=1, keepdims=True))
    np.testing.assert_allclose(outputs["probabilities"], exp / exp.sum(axis=1, keepdims=True), atol=export.TOLERANCE)
    np.testing.assert_array_equal(outputs["classes"], expected.argmax(axis=1))
    assert result.max_difference["probabilities"] <= export.TOLERANCE


def test_frozen_graph_has_no_variables_and_batch_norm_folded(exported):
    _, result = exported
    graph_def = export.load_graph_def(result.graph)
    ops = {node.op for node in graph_def.node} | {n.op for f in graph_def.library.function for n in f.node_def}
    assert not ops & {"VariableV2", "VarHandleOp", "ReadVariableOp", "Assign", "AssignVariableOp", "RestoreV2"}
    assert not ops & {"FusedBatchNorm", "FusedBatchNormV3"}
    assert result.batch_norms_folded == 27 and result.batch_norms_left == 0  # MobileNet v1: 27 conv + BN


def test_sidecars_describe_the_graph(exported):
    model, result = exported
    info = json.loads(Path(result.info).read_text())
    assert info["input"] == {"name": "input:0", "type": "float", "dtype": "float32",
                             "shape": [None, IMAGE_SIZE, IMAGE_SIZE, 3], "values": info["input"]["values"]}
    assert info["outputs"]["probabilities"]["shape"] == [None, len(CLASSES)]
    assert info["preprocessing"]["style"] == model.preprocessing
    assert Path(result.labels).read_text().split() == CLASSES


def _run_isolated(script: str, *args: str) -> subprocess.CompletedProcess:
    """Run a script that may import only tensorflow and numpy (and asserts it did not import this project)."""
    check = "\nimport sys\nassert not {'finetune', 'nets', 'checkpoints', 'tf_slim'} & set(sys.modules)\n"
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script) + check, *args],
                          check=False, capture_output=True, text=True, timeout=300, cwd="/")


def test_frozen_graph_runs_with_plain_tensorflow(exported, tmp_path):
    _, result = exported
    pixels = _pixels(2, seed=9)
    np.save(tmp_path / "in.npy", pixels)
    script = """
        import sys
        import numpy as np
        import tensorflow as tf
        graph_def = tf.compat.v1.GraphDef()
        graph_def.ParseFromString(open(sys.argv[1], "rb").read())
        with tf.Graph().as_default() as graph:
            tf.import_graph_def(graph_def, name="")
            with tf.compat.v1.Session(graph=graph) as session:
                probabilities = session.run("probabilities:0", {"input:0": np.load(sys.argv[2])})
        np.save(sys.argv[3], probabilities)
    """
    done = _run_isolated(script, result.graph, str(tmp_path / "in.npy"), str(tmp_path / "out.npy"))
    assert done.returncode == 0, done.stderr[-2000:]
    expected = export.run_graph_def(export.load_graph_def(result.graph), pixels)["probabilities"]
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, atol=1e-6)


def test_saved_model_serves_through_its_signature(exported, tmp_path):
    model, result = exported
    pixels = _pixels(2, seed=11)
    np.save(tmp_path / "in.npy", pixels)
    script = """
        import sys
        import numpy as np
        import tensorflow as tf
        serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
        outputs = serve(input=tf.constant(np.load(sys.argv[2])))
        np.savez(sys.argv[3], **{name: value.numpy() for name, value in outputs.items()})
    """
    done = _run_isolated(script, result.saved_model, str(tmp_path / "in.npy"), str(tmp_path / "out.npz"))
    assert done.returncode == 0, done.stderr[-2000:]
    served = np.load(tmp_path / "out.npz")
    assert set(served.files) == {"logits", "probabilities", "classes"}
    expected = _checkpoint_logits(model, pixels)
    np.testing.assert_allclose(served["logits"], expected, atol=_logits_tolerance(expected), rtol=0)


def test_jpeg_input_decodes_inside_the_graph(exported, tmp_path):
    model, _ = exported
    result = export.export(model, tmp_path / "jpeg.pb", input_type="jpeg", num_samples=2)
    encoded = export.sample_inputs("jpeg", IMAGE_SIZE, count=2, seed=3)
    outputs = export.run_graph_def(export.load_graph_def(result.graph), encoded)
    with tf.Graph().as_default(), tf.Session() as session:
        decoded = np.stack([session.run(tf.io.decode_jpeg(e, channels=3)) for e in encoded]).astype(np.float32)
    expected = _checkpoint_logits(model, decoded)
    np.testing.assert_allclose(outputs["logits"], expected, atol=_logits_tolerance(expected), rtol=0)


def test_differences_above_tolerance_fail():
    reference = {"logits": np.array([[1.0, 2.0]]), "probabilities": np.array([[0.27, 0.73]]), "classes": np.array([1])}
    close = {"logits": reference["logits"] + 5e-5, "probabilities": reference["probabilities"], "classes": [1]}
    far = {"logits": reference["logits"] + [[0.0, 1e-3]], "probabilities": reference["probabilities"], "classes": [1]}
    export._check("close", export.max_differences(reference, close), export.TOLERANCE)
    with pytest.raises(ValueError, match="differs from the checkpoint graph"):
        export._check("far", export.max_differences(reference, far), export.TOLERANCE)


def test_cli_export_and_its_errors(exported, tmp_path):
    model, _ = exported
    train_dir = str(Path(model.checkpoint).parent)
    ok = subprocess.run([sys.executable, "-m", "finetune.cli", "export", "--train-dir", train_dir,
                         "--output", str(tmp_path / "m.pb")], check=False, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "verified against the checkpoint graph" in ok.stdout
    assert (tmp_path / "m.pb").is_file() and (tmp_path / "labels.txt").is_file() and (tmp_path / "m.json").is_file()
    bad = subprocess.run([sys.executable, "-m", "finetune.cli", "export", "--ckpt", str(tmp_path / "missing"),
                          "--net", "mobilenet_v1_025", "--output", str(tmp_path / "x.pb")],
                         check=False, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2
    assert "finetune export: error:" in bad.stderr and "missing" in bad.stderr


def test_bench_export_smoke():
    from finetune import bench

    result = bench.bench_export("mobilenet_v1_025", num_classes=4, image_size=32, batch_size=2, repeats=1)
    assert result["pb_bytes"] > 4 * 200_000  # MobileNet v1 0.25's ~0.21M weights as float32 constants
    assert result["batch_norms_folded"] == 27
    assert result["latency_frozen"]["runs"] == 1 and result["latency_checkpoint"]["median_ms"] > 0
