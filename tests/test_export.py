"""Export: the frozen graph and the SavedModel reproduce the checkpoint graph and run without this project."""

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from helpers.runs import CLASSES, IMAGE_SIZE, checkpoint_logits, make_train_dir

from finetune.data import synthetic
from finetune.data.preprocessing import preprocess_image
from finetune.serve import export, graph, served, verify
from finetune.serve.evaluate import TrainedModel
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


def _logits_tolerance(logits: np.ndarray) -> float:
    """Export's promise: logits within 1e-4 of their scale (float rounding grows with depth)."""
    return verify.TOLERANCE * max(1.0, float(np.abs(logits).max()))


def test_frozen_graph_reproduces_checkpoint_logits(exported):
    model, result = exported
    pixels = _pixels(3)
    outputs = served.run_graph_def(served.load_graph_def(result.graph), pixels)
    expected = checkpoint_logits(model, pixels)
    assert np.abs(expected).max() > 0.1 and np.std(expected, axis=0).max() > 0.05  # outputs depend on the input
    np.testing.assert_allclose(outputs["logits"], expected, atol=_logits_tolerance(expected), rtol=0)
    exp = np.exp(expected - expected.max(axis=1, keepdims=True))
    np.testing.assert_allclose(outputs["probabilities"], exp / exp.sum(axis=1, keepdims=True), atol=verify.TOLERANCE)
    np.testing.assert_array_equal(outputs["classes"], expected.argmax(axis=1))
    assert result.max_difference["probabilities"] <= verify.TOLERANCE


def test_frozen_graph_takes_images_of_any_size(exported):
    """Raw images, tall, wide, smaller and larger than the net's input, give the checkpoint's logits of the same
    images preprocessed as evaluation preprocesses them: nothing has to be resized before the graph."""
    model, result = exported
    images = verify.sample_images(IMAGE_SIZE, seed=4)
    assert {image.shape[:2] for image in images} >= {(2 * IMAGE_SIZE + 7, IMAGE_SIZE // 2 + 3),
                                                      (IMAGE_SIZE // 2 + 1, 3 * IMAGE_SIZE - 5)}
    expected = checkpoint_logits(model, images)
    assert np.std(expected, axis=0).max() > 0.05
    with served.ServedModel(result.graph) as loaded:
        assert loaded.input.shape.as_list() == [None, None, None, 3]
        outputs = loaded.run_images(images)
    np.testing.assert_allclose(outputs["logits"], expected, atol=_logits_tolerance(expected), rtol=0)


@pytest.mark.slow
def test_verification_catches_a_graph_that_resizes_before_preprocessing(exported, tmp_path, monkeypatch):
    """The defect export's check once missed: the whole image resized to the net's size, then evaluation's
    central crop. Verified on raw images of several sizes against evaluation, export now refuses it."""
    model, _ = exported

    def resize_first(model, one, input_type):
        whole = tf.image.resize(one / 255.0, [IMAGE_SIZE, IMAGE_SIZE])
        return preprocess_image(whole, IMAGE_SIZE, IMAGE_SIZE, False, model.preprocessing)

    monkeypatch.setattr(graph, "_preprocess", resize_first)
    with pytest.raises(ValueError, match="differs from the checkpoint graph"):
        export.export(model, tmp_path / "model.pb")


def test_frozen_graph_has_no_variables_and_batch_norm_folded(exported):
    _, result = exported
    graph_def = served.load_graph_def(result.graph)
    ops = {node.op for node in graph_def.node} | {n.op for f in graph_def.library.function for n in f.node_def}
    assert not ops & {"VariableV2", "VarHandleOp", "ReadVariableOp", "Assign", "AssignVariableOp", "RestoreV2"}
    assert not ops & {"FusedBatchNorm", "FusedBatchNormV3"}
    assert result.batch_norms_folded == 27 and result.batch_norms_left == 0  # MobileNet v1: 27 conv + BN


def test_sidecars_describe_the_graph(exported):
    model, result = exported
    info = json.loads(Path(result.info).read_text())
    assert info["exported_by"] == "finetune export" and served.is_export_info(Path(result.info))
    assert info["input"] == {"name": "input:0", "type": "float", "dtype": "float32",
                             "shape": [None, None, None, 3], "values": info["input"]["values"]}
    assert "not resized" in info["input"]["values"] and info["image_size"] == IMAGE_SIZE
    assert info["preprocessing"]["steps"].startswith(f"central 87.5% crop, bilinear resize to {IMAGE_SIZE}x")
    assert info["verification"]["sample_sizes"] == [f"{h}x{w}" for h, w, _ in
                                                    (i.shape for i in verify.sample_images(IMAGE_SIZE))]
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
    expected = served.run_graph_def(served.load_graph_def(result.graph), pixels)["probabilities"]
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, atol=1e-6)


@pytest.mark.slow
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
        tall = serve(input=tf.constant(np.load(sys.argv[4])[None]))  # a batch of one image of its own size
        np.save(sys.argv[5], tall["logits"].numpy())
    """
    tall = verify.sample_images(IMAGE_SIZE, seed=12)[2]
    np.save(tmp_path / "tall.npy", tall.astype(np.float32))
    done = _run_isolated(script, result.saved_model, str(tmp_path / "in.npy"), str(tmp_path / "out.npz"),
                         str(tmp_path / "tall.npy"), str(tmp_path / "tall_out.npy"))
    assert done.returncode == 0, done.stderr[-2000:]
    served = np.load(tmp_path / "out.npz")
    assert set(served.files) == {"logits", "probabilities", "classes"}
    expected = checkpoint_logits(model, pixels)
    np.testing.assert_allclose(served["logits"], expected, atol=_logits_tolerance(expected), rtol=0)
    expected_tall = checkpoint_logits(model, [tall])
    np.testing.assert_allclose(np.load(tmp_path / "tall_out.npy"), expected_tall,
                               atol=_logits_tolerance(expected_tall), rtol=0)


@pytest.mark.slow
def test_jpeg_input_decodes_inside_the_graph(exported, tmp_path):
    model, _ = exported
    result = export.export(model, tmp_path / "jpeg.pb", input_type="jpeg")
    encoded = [served.encode(image, "JPEG") for image in verify.sample_images(IMAGE_SIZE, seed=3)]
    outputs = served.run_graph_def(served.load_graph_def(result.graph), np.array(encoded, dtype=object))
    with tf.Graph().as_default(), tf.Session() as session:
        decoded = [session.run(tf.io.decode_jpeg(e, channels=3)) for e in encoded]
    assert len({d.shape for d in decoded}) == 5  # one batch of images of five sizes
    expected = checkpoint_logits(model, decoded)
    np.testing.assert_allclose(outputs["logits"], expected, atol=_logits_tolerance(expected), rtol=0)


def test_differences_above_tolerance_fail():
    reference = {"logits": np.array([[1.0, 2.0]]), "probabilities": np.array([[0.27, 0.73]]), "classes": np.array([1])}
    close = {"logits": reference["logits"] + 5e-5, "probabilities": reference["probabilities"], "classes": [1]}
    far = {"logits": reference["logits"] + [[0.0, 1e-3]], "probabilities": reference["probabilities"], "classes": [1]}
    verify.check("close", verify.max_differences(reference, close), verify.TOLERANCE)
    with pytest.raises(ValueError, match="differs from the checkpoint graph"):
        verify.check("far", verify.max_differences(reference, far), verify.TOLERANCE)


@pytest.mark.slow
def test_cli_export_and_its_errors(exported, tmp_path):
    model, _ = exported
    train_dir = str(Path(model.checkpoint).parent)
    ok = subprocess.run([sys.executable, "-m", "finetune.cli", "export", "--train-dir", train_dir,
                         "--output", str(tmp_path / "m.pb")], check=False, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "verified against finetune eval's pipeline on 6 raw images" in ok.stdout
    assert (tmp_path / "m.pb").is_file() and (tmp_path / "labels.txt").is_file() and (tmp_path / "m.json").is_file()
    bad = subprocess.run([sys.executable, "-m", "finetune.cli", "export", "--ckpt", str(tmp_path / "missing"),
                          "--net", "mobilenet_v1_025", "--output", str(tmp_path / "x.pb")],
                         check=False, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2
    assert "finetune export: error:" in bad.stderr and "missing" in bad.stderr


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_export_refuses_to_replace_a_datasets_labels(exported, tmp_path):
    """A dataset's labels.txt (or a model.json export did not write) stops export before any work, unless
    --overwrite; nothing in the folder changes."""
    model, _ = exported
    dataset = tmp_path / "flowers"
    dataset.mkdir()
    (dataset / "labels.txt").write_text("0:daisy\n1:rose\n")
    with pytest.raises(ValueError, match=r"flowers already holds labels.txt, which finetune export did not write.*"
                                         r"--overwrite"):
        export.export(model, dataset / "model.pb")
    assert _files(dataset) == {"labels.txt": b"0:daisy\n1:rose\n"}
    other = tmp_path / "other"
    other.mkdir()
    (other / "model.json").write_text('{"learning_rate": 0.1}')
    with pytest.raises(ValueError, match="already holds model.json, which finetune export did not write"):
        export.export(model, other / "model.pb")
    with pytest.raises(ValueError, match="is a directory: give the .pb file"):
        export.export(model, other)


@pytest.mark.slow
def test_export_replaces_an_earlier_export_only_with_overwrite(exported, tmp_path):
    model, result = exported
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.json").write_bytes(Path(result.info).read_bytes())  # an earlier export, recognised by it
    (out / "model.pb").write_bytes(b"an earlier graph")
    (out / "labels.txt").write_text("stale\n")
    before = _files(out)
    with pytest.raises(ValueError, match=r"holds an earlier export \(model.json\).*pass --overwrite"):
        export.export(model, out / "model.pb")
    with pytest.raises(ValueError, match=r"earlier export \(model.json\); this one would replace labels.txt"):
        export.export(model, out / "second.pb")  # another name, the same labels.txt
    saved_model = Path(result.saved_model)
    with pytest.raises(ValueError, match="holds an earlier export: pass --overwrite"):
        export.export(model, tmp_path / "new" / "model.pb", saved_model_dir=saved_model)
    assert _files(out) == before
    not_an_export = tmp_path / "not_an_export"
    not_an_export.mkdir()
    (not_an_export / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty and holds no earlier export"):
        export.export(model, tmp_path / "new" / "model.pb", saved_model_dir=not_an_export, overwrite=True)

    rewritten = export.export(model, out / "model.pb", saved_model_dir=tmp_path / "sm", overwrite=True)
    assert (out / "labels.txt").read_text().split() == CLASSES
    assert len(served.load_graph_def(out / "model.pb").node) == rewritten.nodes
    again = export.export(model, out / "model.pb", saved_model_dir=tmp_path / "sm", overwrite=True)
    assert again.saved_model_max_difference == rewritten.saved_model_max_difference
    assert sorted(p.name for p in (tmp_path / "sm").iterdir()) == ["assets.extra", "saved_model.pb", "variables"]


@pytest.mark.slow
def test_cli_export_refuses_in_one_line(exported, tmp_path):
    model, _ = exported
    (tmp_path / "labels.txt").write_text("daisy\nrose\n")
    command = [sys.executable, "-m", "finetune.cli", "export", "--train-dir", str(Path(model.checkpoint).parent),
               "--output", str(tmp_path / "model.pb")]
    refused = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    lines = [line for line in refused.stderr.splitlines() if line.startswith("finetune export: error:")]
    assert len(lines) == 1 and "labels.txt" in lines[0] and "--overwrite" in lines[0], refused.stderr
    assert (tmp_path / "labels.txt").read_text() == "daisy\nrose\n" and not (tmp_path / "model.pb").exists()


@pytest.mark.slow
def test_bench_export_smoke():
    from finetune.bench import core as bench

    began = time.perf_counter()
    result = bench.bench_export("mobilenet_v1_025", num_classes=4, image_size=32, batch_size=2, repeats=1)
    wall = time.perf_counter() - began
    assert result["pb_bytes"] > 4 * 200_000  # MobileNet v1 0.25's ~0.21M weights as float32 constants
    assert result["batch_norms_folded"] == 27
    assert result["latency_frozen"]["runs"] == 1 and 0 < result["latency_checkpoint"]["median_ms"] / 1000 < wall


def test_model_json_records_the_tolerance_export_checked(exported, tmp_path):
    """--tolerance (export's `tolerance`) is the bound the verification used: model.json says that one, not
    the default."""
    model, result = exported
    assert json.loads(Path(result.info).read_text())["verification"]["tolerance"] == verify.TOLERANCE
    loose = export.export(model, tmp_path / "loose.pb", tolerance=1e-2)
    assert json.loads(Path(loose.info).read_text())["verification"]["tolerance"] == 1e-2


def test_a_datasets_labels_txt_is_never_read_as_class_names(tmp_path):
    """labels.txt means one class name a line (train and export dirs); a TFRecord dataset's labels.txt (TF-Slim
    `label:name` lines, read by the dataset scanner only) given where class names are expected is refused in one
    line, never taken as names like '0:daisy'."""
    import argparse

    from finetune.commands import export as export_command
    from finetune.runs.files import read_labels

    dataset = tmp_path / "flowers"
    dataset.mkdir()
    (dataset / "labels.txt").write_text("0:daisy\n1:rose\n")
    with pytest.raises(ValueError, match=r"flowers/labels.txt is a TFRecord dataset's labels.txt \(TF-Slim "
                                         r"`label:name` lines\), not class names one per line"):
        read_labels(dataset / "labels.txt")
    args = argparse.Namespace(train_dir=None, ckpt=str(tmp_path / "model.ckpt"), net="mobilenet_v1_025",
                              labels=str(dataset / "labels.txt"), num_classes=None, image_size=None,
                              moving_average=False)
    with pytest.raises(ValueError, match="is a TFRecord dataset's labels.txt"):
        export_command._model(args)
    (tmp_path / "names.txt").write_text("n01:daisy\n1:rose\nplain\n")  # colons alone do not make a dataset's file
    assert read_labels(tmp_path / "names.txt") == ["n01:daisy", "1:rose", "plain"]
