"""export --tflite: the .tflite computes what the .pb computes on the same image (float32 to 1e-5, int8 with uint8
or int8 input quantized by its own parameters), carries labels.txt and model.json, is refused when it disagrees
with the float graph, and predict reads it as it reads the .pb; the whole loop on real quantized weights."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.runs import CLASSES, IMAGE_SIZE, make_train_dir

from finetune import cli
from finetune.data import synthetic
from finetune.serve import export, predict, served, tflite, tflite_export
from finetune.serve.evaluate import TrainedModel
from nets.compat import tf

REAL = Path(__file__).parent / "data" / "real"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(train dir, validation image paths, the run's .pb)."""
    root = tmp_path_factory.mktemp("tflite")
    dataset = synthetic.write_shapes_dataset(root / "shapes", CLASSES, train_per_class=2, validation_per_class=1,
                                             image_size=IMAGE_SIZE, seed=3)
    (root / "train").mkdir()
    train_dir = make_train_dir(root / "train", dataset)
    pb = export.export(TrainedModel.from_train_dir(str(train_dir)), root / "pb" / "model.pb").graph
    return train_dir, sorted(str(p) for p in (dataset / "validation").glob("*/*.png")), pb


def _export(args, capsys) -> tuple[int, str, str]:
    code = cli.main(["export", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_float32_tflite_computes_what_the_pb_computes(run, tmp_path, capsys):
    train_dir, images, pb = run
    output = tmp_path / "model.tflite"
    code, out, err = _export(["--train-dir", train_dir, "--tflite", "float32", "--output", output], capsys)
    assert code == 0, err
    assert "top-1 agreement 100.0%" in out and err == ""  # no interpreter notices on stderr
    info = json.loads((tmp_path / "model.json").read_text())
    assert info["format"] == "tflite" and info["quantization"] == "float32"
    assert info["input"]["shape"] == [1, IMAGE_SIZE, IMAGE_SIZE, 3] and info["input"]["dtype"] == "float32"
    assert info["verification"]["images"] == len(images) and info["verification"]["top1_agreement"] == 1.0
    assert (tmp_path / "labels.txt").read_text().split() == CLASSES
    with tflite.TFLiteModel(output) as lite, served.ServedModel(pb) as graph:
        pixels = [lite.decode(Path(p).read_bytes()) for p in images] + [np.full((50, 20, 3), 200, np.uint8)]
        fitted = [tflite.fit(p, IMAGE_SIZE) for p in pixels]
        np.testing.assert_allclose(lite.probabilities(pixels), graph.probabilities(fitted), atol=1e-5)
        assert lite.labels == CLASSES


@pytest.mark.parametrize("input_type, zero_point", [("uint8", 0), ("int8", -128)])
def test_int8_tflite_is_integer_with_the_input_the_user_chose(run, tmp_path, capsys, input_type, zero_point):
    train_dir, images, _ = run
    output = tmp_path / "model.tflite"
    # A random-weight net has near-tied classes: its agreement is measured, not held to the default.
    code, out, err = _export(["--train-dir", train_dir, "--tflite", "int8", "--tflite-input", input_type,
                              "--min-agreement", "0", "--output", output], capsys)
    assert code == 0, err
    assert "calibrated on 12 images (the train split" in out
    with tflite.TFLiteModel(output) as lite:
        assert lite.input["dtype"] == np.dtype(input_type)
        assert lite.input["quantization"][1] == zero_point and abs(lite.input["quantization"][0] - 1.0) < 0.02
        assert any(d["dtype"] == np.int8 for d in lite.interpreter.get_tensor_details() if "Conv2d_1" in d["name"])
    info = json.loads((tmp_path / "model.json").read_text())
    assert info["input"]["dtype"] == input_type and info["input"]["quantization"]["zero_point"] == zero_point
    assert info["calibration"]["images"] == 12 and output.stat().st_size < 0.45 * (2**20)


def test_predict_reads_a_tflite_as_it_reads_a_pb(run, tmp_path, capsys):
    train_dir, images, _ = run
    output = tmp_path / "model.tflite"
    assert _export(["--train-dir", train_dir, "--tflite", "dynamic", "--output", output], capsys)[0] == 0
    assert cli.main(["predict", "--model", str(output), "--json", "--top-k", "2", *images, "/nonexistent.png"]) == 1
    results = json.loads(capsys.readouterr().out)
    with tflite.TFLiteModel(output) as lite:
        expected = lite.probabilities([lite.decode(Path(p).read_bytes()) for p in images])
    for result, row in zip(results, expected):
        assert [p["label"] for p in result["predictions"]] == [CLASSES[c] for c in np.argsort(-row)[:2]]
        assert result["predictions"][0]["probability"] == pytest.approx(float(row.max()), abs=1e-6)
    assert results[-1] == {"image": "/nonexistent.png", "error": "/nonexistent.png: no such file"}
    assert isinstance(predict.load_model(output), tflite.TFLiteModel)


def test_disagreeing_tflite_is_refused_and_not_written(run, tmp_path, capsys, monkeypatch):
    train_dir, _, _ = run
    real_run = tflite.TFLiteModel.run

    def rolled(self, inputs, names=("logits", "probabilities", "classes")):  # a conversion that broke
        return {name: np.roll(value, 1, axis=-1) for name, value in real_run(self, inputs, names).items()}

    monkeypatch.setattr(tflite.TFLiteModel, "run", rolled)
    code, _, err = _export(["--train-dir", train_dir, "--tflite", "float32", "--output", tmp_path / "model.tflite"],
                           capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "agrees with the float graph on the top-1 class of 0.0%" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_an_op_tflite_lacks_is_named_in_one_line(run, tmp_path, capsys, monkeypatch):
    from tensorflow.lite.python.convert_phase import ConverterError

    def fail(self):
        raise ConverterError("<unknown>:0: error: loc(\"MobilenetV1/x\"): 'tf.ExtractImagePatches' op is neither a "
                             "custom op nor a flex op\n<unknown>:0: note: see current operation: ...\n")

    monkeypatch.setattr(tf.lite.TFLiteConverter, "convert", fail)
    train_dir, _, _ = run
    code, _, err = _export(["--train-dir", train_dir, "--tflite", "float16", "--output", tmp_path / "m.tflite"],
                           capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "uses the TensorFlow op ExtractImagePatches" in lines[0]
    assert not (tmp_path / "m.tflite").exists()


@pytest.mark.parametrize("extra, words", [
    (["--tflite", "int8"], "int8 needs calibration images: give --calibration DIR"),
    (["--tflite", "int8", "--calibration", "EMPTY"], "holds no images"),
    (["--tflite", "float32", "--saved-model", "sm"], "--tflite writes one .tflite"),
    (["--tflite", "float32", "--min-agreement", "95"], "--min-agreement is a fraction in [0, 1]"),
    (["--tflite", "float16", "--tflite-input", "int8"], "--tflite-input is the int8 model's input type"),
])
def test_ckpt_export_mistakes_are_one_line(run, tmp_path, capsys, extra, words):
    train_dir, _, _ = run
    (tmp_path / "EMPTY").mkdir()
    extra = [str(tmp_path / e) if e == "EMPTY" else e for e in extra]
    code, _, err = _export(["--ckpt", train_dir, "--net", "mobilenet_v1_025", "--num-classes", len(CLASSES),
                            "--image-size", IMAGE_SIZE, "--output", tmp_path / "out" / "model.tflite", *extra], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and words in lines[0], err
    assert not (tmp_path / "out").exists()


def test_output_must_be_a_tflite(run, tmp_path, capsys):
    code, _, err = _export(["--train-dir", run[0], "--tflite", "float32", "--output", tmp_path / "model.pb"], capsys)
    assert code == 2 and "must end in .tflite" in err and not (tmp_path / "model.pb").exists()


def test_calibration_sample_is_seeded_and_bounded():
    items = list(range(1000))
    chosen = tflite_export.sample(items, 200)
    assert len(chosen) == 200 and chosen == sorted(chosen) and chosen == tflite_export.sample(items, 200)
    assert tflite_export.sample(items[:5], 200) == items[:5]


def _cli(*args):
    result = subprocess.run([sys.executable, "-m", "finetune.cli", *map(str, args)], capture_output=True, text=True,
                            timeout=900, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_real_weights_fine_tuned_exported_int8_agree_with_the_pb_on_held_out_photos(tmp_path):
    """TF-Slim's quantized MobileNet v1 0.25 (128 px) converted, its classifier fine-tuned on cat/dog/hotdog photos,
    exported int8 (calibrated on the training photos): on the held-out photos its top-1 is the .pb's and right."""
    for photo in REAL.glob("*_t*_*.jpg"):
        label, split = photo.stem.split("_")[:2]
        folder = tmp_path / "photos" / ("train" if split == "train" else "validation") / label
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(photo, folder)
    checkpoint = tmp_path / "quant.ckpt"
    _cli("convert-weights", "--from", "tflite", REAL / "mobilenet_v1_0.25_128_quant.tflite", "--net",
         "mobilenet_v1_025", "--output", checkpoint)
    _cli("--net", "mobilenet_v1_025", "--dataset", tmp_path / "photos", "--image-size", 128, "--batch-size", 4,
         "--max-steps", 30, "--seed", 0, "--ckpt", checkpoint, "--trainable", "logits", "--train-dir", tmp_path / "run")
    out = _cli("export", "--train-dir", tmp_path / "run", "--tflite", "int8", "--output", tmp_path / "lite" / "m.tflite")
    assert "top-1 agreement 100.0%" in out and "calibrated on 4 images" in out
    _cli("export", "--train-dir", tmp_path / "run", "--output", tmp_path / "pb" / "model.pb")
    held_out = sorted((tmp_path / "photos" / "validation").glob("*/*.jpg"))
    tops = {}
    for model in (tmp_path / "lite" / "m.tflite", tmp_path / "pb" / "model.pb"):
        results = json.loads(_cli("predict", "--model", model, "--json", "--top-k", "1", *held_out))
        tops[model.suffix] = [(r["predictions"][0]["label"], r["predictions"][0]["probability"]) for r in results]
    assert [label for label, _ in tops[".tflite"]] == [label for label, _ in tops[".pb"]] == \
        [p.parent.name for p in held_out]
    assert max(abs(a[1] - b[1]) for a, b in zip(tops[".tflite"], tops[".pb"])) < 0.05
    info = json.loads((tmp_path / "lite" / "m.json").read_text())
    assert info["input"]["dtype"] == "uint8" and info["verification"]["top1_agreement"] == 1.0


@pytest.mark.slow
def test_bench_export_times_the_tflite_variants_beside_the_pb():
    from finetune.bench import core as bench

    result = bench.bench_export("mobilenet_v1_025", num_classes=4, image_size=32, repeats=2,
                                tflite_variants=("float32", "int8"))
    assert set(result["tflite"]) == {"float32", "int8"} and result["tflite_threads"] == 2
    float32, int8 = result["tflite"]["float32"], result["tflite"]["int8"]
    assert float32["top1_agreement"] == 1.0 and float32["max_probability_difference"] < 1e-4
    assert int8["bytes"] < 0.5 * float32["bytes"] and abs(float32["bytes"] - result["pb_bytes"]) < 0.1 * result["pb_bytes"]
    assert all(row["latency"]["runs"] == 2 and row["latency"]["median_ms"] > 0 for row in result["tflite"].values())
