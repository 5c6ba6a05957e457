"""TF Hub: fine-tune a hub:PATH feature-vector SavedModel (frozen or trained), refuse what is no image feature
vector, and export a fine-tuned zoo net as a Hub SavedModel that a fresh TF2 process loads and trains."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from finetune import cli
from finetune.data import synthetic

_MAKE = textwrap.dedent("""
    import sys
    import numpy as np, tensorflow as tf, tf_keras as keras
    path, kind = sys.argv[1], sys.argv[2]
    if kind == "image":  # a feature vector: [None, 32, 32, 3] in [0, 1] -> [None, 4], with BatchNorm
        inputs = keras.Input([32, 32, 3])
        x = keras.layers.Conv2D(4, 3, strides=2, name="conv")(inputs)
        x = keras.layers.BatchNormalization(name="bn")(x)
        outputs = keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU()(x))
    else:  # not an image model
        inputs = keras.Input([10])
        outputs = keras.layers.Dense(3)(inputs)
    model = keras.Model(inputs, outputs)
    for layer in model.layers:  # BatchNorm statistics away from their 0/1 start, so a reset would show
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(tf.random.stateless_normal(layer.moving_mean.shape, [1, 2]))
            layer.moving_variance.assign(tf.random.stateless_uniform(layer.moving_variance.shape, [3, 4], 0.5, 2.0))
    tf.saved_model.save(model, path)
    np.savez(path + ".npz", **{v.name[:-2].replace("/", "|"): v.numpy() for v in model.variables})
""")


def _save_keras(path, kind):
    """A tiny Keras model saved with tf.saved_model.save (in a fresh TF2 process); its variables' values."""
    result = subprocess.run([sys.executable, "-c", _MAKE, str(path), kind], capture_output=True, text=True,
                            env=os.environ, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    with np.load(f"{path}.npz") as values:
        return {name.replace("|", "/"): values[name] for name in values.files}


@pytest.fixture(scope="module")
def hub_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("hub") / "feature_vector"
    return path, _save_keras(path, "image")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return synthetic.write_shapes_dataset(tmp_path_factory.mktemp("data") / "shapes", ["circle", "square"],
                                          train_per_class=4, validation_per_class=2, image_size=36, seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("trainable", ["logits", "all"])
def test_fine_tunes_a_hub_model(hub_model, dataset, trainable, tmp_path, capsys):
    import tensorflow as tf

    path, saved = hub_model
    train_dir = tmp_path / trainable
    assert cli.main(["--net", f"hub:{path}", "--dataset", str(dataset), "--batch-size", "4", "--max-steps", "2",
                     "--train-dir", str(train_dir), "--trainable", trainable, "--learning-rate", "0.1"]) == 0
    out = capsys.readouterr().out
    assert "image size 32 (from the model), input range 0,1 (from the default)" in out
    assert "6 of 8 variables restored from the hub SavedModel" in out
    reader = tf.train.load_checkpoint(str(train_dir))
    backbone = {name: reader.get_tensor(f"HubNet/backbone/{name}") for name in saved}
    assert reader.get_tensor("HubNet/Logits/weights").shape == (4, 2)
    equal = {name: np.array_equal(backbone[name], saved[name]) for name in saved}
    if trainable == "logits":
        assert all(equal.values()), equal  # frozen: bit-equal, BatchNorm statistics included
    else:
        assert not any(equal.values()), equal  # weights train and BatchNorm statistics update
    config = json.loads((train_dir / "run_config.json").read_text())
    assert config["input_range"] == [0.0, 1.0] and config["image_size"] == 32
    report = json.loads((train_dir / "restore_report.json").read_text())
    assert len(report["restored"]) == 6 and len(report["fresh"]) == 2 and report["source"] == "hub SavedModel"
    assert all(e["variable"].startswith("HubNet/backbone/") for e in report["restored"])
    # resume: the train dir's checkpoint holds everything
    assert cli.main(["--net", f"hub:{path}", "--dataset", str(dataset), "--batch-size", "4", "--max-steps", "3",
                     "--train-dir", str(train_dir), "--trainable", trainable, "--skip-eval"]) == 0
    assert "Resuming from" in capsys.readouterr().out
    if trainable == "all":
        # eval and a frozen export (hub weights inlined) of the hub run, as for a zoo net
        assert cli.main(["eval", "--train-dir", str(train_dir)]) == 0
        assert cli.main(["export", "--train-dir", str(train_dir), "--output", str(tmp_path / "model.pb")]) == 0
        assert "verified against finetune eval's pipeline" in capsys.readouterr().out
        from finetune.serve import graph as serving
        from finetune.serve import served

        graph_def = served.load_graph_def(tmp_path / "model.pb")  # the backbone's weights inlined as constants
        assert not [n.name for n in graph_def.node if n.op in serving.VARIABLE_OPS]
        assert {n.name: n.op for n in graph_def.node}["HubNet/backbone/conv/kernel"] == "Const"
        # and as a TF Hub model again: the fine-tuned backbone and classifier, reloaded elsewhere
        loaded, expected = _export_and_reload(train_dir, tmp_path)
        assert np.abs(np.array(loaded["logits"]) - expected).max() <= 1e-4
        assert loaded["trainable"] == loaded["grads"] == 4 and loaded["variables"] == 8 and loaded["features"] == 4
        assert loaded["inference_kept_stats"] and loaded["training_moved_stats"]


@pytest.mark.slow
def test_refuses_what_is_no_image_feature_vector(tmp_path, dataset, capsys):
    _save_keras(tmp_path / "dense", "dense")
    assert cli.main(["--net", f"hub:{tmp_path / 'dense'}", "--dataset", str(dataset)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not an image feature vector: it takes float32 [None, 10]" in err[0]
    assert cli.main(["--net", f"hub:{tmp_path / 'missing'}", "--dataset", str(dataset)]) == 2
    assert "not found" in capsys.readouterr().err


_RELOAD = textwrap.dedent("""
    import json, sys
    import numpy as np, tensorflow as tf, tensorflow_hub as hub, tf_keras as keras
    directory, images = sys.argv[1], np.load(sys.argv[2])
    loaded = hub.load(directory)  # before anything trains: the checkpoint's values
    logits = loaded.signatures["classification"](images=tf.constant(images))["logits"].numpy()
    layer = hub.KerasLayer(directory, trainable=True)
    model = keras.Sequential([keras.Input([32, 32, 3]), layer])
    moving_mean = [v for v in layer.variables if "moving_mean" in v.name][0]
    before = moving_mean.numpy().copy()
    layer(images)  # inference mode: the statistics stay
    unchanged = bool(np.array_equal(before, moving_mean.numpy()))
    with tf.GradientTape() as tape:
        features = model(images, training=True)
        loss = tf.reduce_sum(features ** 2)
    grads = tape.gradient(loss, layer.trainable_variables)
    print(json.dumps({"logits": logits.tolist(), "trainable": len(layer.trainable_variables),
                      "variables": len(layer.variables), "grads": sum(g is not None for g in grads),
                      "features": layer(images).numpy().shape[-1], "inference_kept_stats": unchanged,
                      "training_moved_stats": not np.array_equal(before, moving_mean.numpy())}))
""")


@pytest.mark.slow
def test_zoo_net_exports_as_a_hub_model(dataset, tmp_path):
    train_dir = tmp_path / "run"
    assert cli.main(["--net", "mobilenet_v1_025", "--dataset", str(dataset), "--batch-size", "4", "--image-size",
                     "32", "--max-steps", "1", "--trainable", "all", "--skip-eval", "--train-dir",
                     str(train_dir)]) == 0
    loaded, expected = _export_and_reload(train_dir, tmp_path)
    assert np.abs(np.array(loaded["logits"]) - expected).max() <= 1e-4
    from nets.compat import tf

    names = tf.train.load_checkpoint(str(train_dir)).get_variable_to_shape_map()
    backbone = [n for n in names if n.startswith("MobilenetV1/") and not n.startswith("MobilenetV1/Logits/")
                and n.endswith(("weights", "/beta", "/gamma"))]  # what trains in the features (no slots, no statistics)
    assert loaded["trainable"] == len(backbone) and loaded["grads"] == loaded["trainable"]
    # + BatchNorm statistics (variables, not trained by gradients) and the classifier (not in the features)
    assert loaded["variables"] > loaded["trainable"] + 2
    assert loaded["features"] == 256  # mobilenet_v1_025's pre-logits width
    assert loaded["inference_kept_stats"] and loaded["training_moved_stats"]  # BatchNorm follows `training`
    metadata = json.loads((tmp_path / "hub" / "assets.extra" / "finetune_hub.json").read_text())
    assert metadata["image_size"] == 32 and metadata["input_range"] == [0.0, 1.0]
    # and the export is itself a backbone for `--net hub:DIR`, its size and range stated
    from nets import hub

    again = hub.inspect(str(tmp_path / "hub"))
    assert (again.image_size, again.input_range, again.feature_dim) == (32, (0.0, 1.0), 256)


def _export_and_reload(train_dir, tmp_path):
    """`finetune export --hub` of the run, reloaded with hub.KerasLayer in a fresh TF2 process: what it printed,
    and the checkpoint graph's logits for the same [0, 1] images (scaled to [-1, 1] as the nets take them)."""
    from finetune.runs.trained_model import TrainedModel
    from nets.compat import tf

    # TF2 saving needs eager execution, which this test process has switched off (conftest)
    export = subprocess.run([sys.executable, "-m", "finetune.cli", "export", "--train-dir", str(train_dir), "--hub",
                             str(tmp_path / "hub")], capture_output=True, text=True, env=os.environ, timeout=300)
    assert export.returncode == 0, export.stderr[-2000:]
    assert "wrote TF Hub SavedModel" in export.stdout
    images = np.random.default_rng(0).uniform(0, 1, [3, 32, 32, 3]).astype(np.float32)
    np.save(tmp_path / "images.npy", images)
    model = TrainedModel.from_train_dir(str(train_dir))
    with tf.Graph().as_default() as graph:
        logits = model.logits(tf.constant(images * 2.0 - 1.0))
        restore = model.restore_op(tf.global_variables())
        with tf.Session(graph=graph) as session:
            session.run(tf.global_variables_initializer())
            session.run(restore)
            expected = session.run(logits)
    result = subprocess.run([sys.executable, "-c", _RELOAD, str(tmp_path / "hub"), str(tmp_path / "images.npy")],
                            capture_output=True, text=True, env=os.environ, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), expected


def test_handle_cached_in_tfhub_cache_dir(hub_model, tmp_path, monkeypatch):
    import hashlib
    import shutil

    from nets import hub, nets_factory

    handle = "https://tfhub.dev/finetune-tests/tiny-feature-vector/1"
    cached = tmp_path / "cache" / hashlib.sha1(handle.encode()).hexdigest()  # tensorflow_hub's cache layout
    shutil.copytree(hub_model[0], cached)
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "cache"))
    spec = nets_factory.get_spec(f"hub:{handle}")  # no network: the cached copy
    assert spec.image_size == 32 and spec.scope == "HubNet" and spec.classifier_scopes == ("HubNet/Logits",)
    assert hub.inspect(handle).path == str(cached) and hub.inspect(handle).feature_dim == 4


def test_image_size_and_range_sources(hub_model):
    from nets import hub

    model = hub.inspect(str(hub_model[0]))
    assert (model.image_size, model.input_range) == (32, None)
    size, value_range, line = hub.resolve_input(model, None, "-1,1")
    assert (size, value_range) == (32, (-1.0, 1.0)) and "input range -1,1 (from --input-range)" in line
    with pytest.raises(ValueError, match="--image-size 64: hub model .* takes 32 px"):
        hub.resolve_input(model, 64, None)
    stated = hub.HubModel("h", "p", None, (0.0, 1.0), 8)
    assert hub.resolve_input(stated, 48, None)[:2] == (48, (0.0, 1.0))
    with pytest.raises(ValueError, match="--input-range -1,1: hub model h states 0,1"):
        hub.resolve_input(stated, None, "-1,1")
    with pytest.raises(ValueError, match="--input-range must be 0,1 or -1,1"):
        hub.parse_range("0,255")


def test_nets_lists_the_hub_form(hub_model, capsys):
    assert cli.main(["nets", "mobilenet_v1_025"]) == 0 and "hub:" not in capsys.readouterr().out
    assert cli.main(["nets"]) == 0 and "--net hub:PATH" in capsys.readouterr().out
    assert cli.main(["nets", f"hub:{hub_model[0]}"]) == 0
    row = capsys.readouterr().out.splitlines()[2].split()
    assert row[1:3] == ["32", f"{(3 * 3 * 3 * 4 + 4 + 4 * 4) / 1e6:.2f}M"] and row[-1] == "HubNet/Logits"


def test_config_of_a_hub_net(hub_model):
    from finetune.config import RunConfig

    net = f"hub:{hub_model[0]}"
    assert RunConfig(net=net, dataset="d", trainable="all").learning_rate == 0.001  # the backbone is pretrained
    assert RunConfig(net=net, dataset="d").learning_rate == 0.01
    assert RunConfig(net=net, dataset="d").train_dir == "runs/hub_" + str(hub_model[0]).strip("/").replace("/", "_")
    assert RunConfig(net=net, dataset="d", input_range="-1,1").input_range == "-1,1"
    with pytest.raises(ValueError, match="--input-range is for hub:PATH nets"):
        RunConfig(net="mobilenet_v1_025", dataset="d", input_range="0,1")


def test_export_needs_an_output_or_a_hub_dir(tmp_path, capsys):
    assert cli.main(["export", "--train-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--output model.pb (frozen graph) and/or --hub DIR" in err[0]


def test_hub_restore_report_has_the_warm_start_schema(hub_model, tmp_path):
    from finetune.train import start
    from nets import nets_factory
    from nets.compat import slim, tf

    net = f"hub:{hub_model[0]}"
    with tf.Graph().as_default():
        nets_factory.get_network_fn(net, 2)(tf.zeros([1, 32, 32, 3]))
        begun = start.hub_backbone(net, slim.get_model_variables())
    report = json.loads(json.dumps(begun.report))
    _check_report_schema(report)
    warm = _warm_start_report(tmp_path)
    _check_report_schema(warm)  # one schema, whatever the start
    assert warm["source"] == "checkpoint" and warm["restored"] and not warm["fresh"][0]["variable"].startswith("HubNet")
    assert {e["variable"] for e in warm["skipped"]} == {"MobilenetV1/Logits/Conv2d_1c_1x1/weights",
                                                        "MobilenetV1/Logits/Conv2d_1c_1x1/biases"}
    assert report["source"] == "hub SavedModel" and report["checkpoint"] == str(hub_model[0])
    assert len(report["restored"]) == 6 and [e["variable"] for e in report["fresh"]] == ["HubNet/Logits/weights",
                                                                                       "HubNet/Logits/biases"]
    assert begun.text.startswith("6 of 8 variables restored from the hub SavedModel")


def _warm_start_report(tmp_path) -> dict:
    """restore_report.json of a warm start of mobilenet_v1_025 (5 classes) from a 1001-class checkpoint."""
    from helpers.weights import save_random_checkpoint

    from checkpoints import plan_restore
    from finetune.train import start
    from nets import nets_factory
    from nets.compat import slim, tf

    NET = "mobilenet_v1_025"
    spec = nets_factory.get_spec(NET)
    with tf.Graph().as_default():
        nets_factory.get_network_fn(NET, 1001)(tf.zeros([1, 32, 32, 3]))
        save_random_checkpoint(str(tmp_path / "k1001" / "model.ckpt"))
    with tf.Graph().as_default():
        nets_factory.get_network_fn(NET, 5)(tf.zeros([1, 32, 32, 3]))
        plan = plan_restore(slim.get_model_variables(), str(tmp_path / "k1001" / "model.ckpt"), net=spec)
        return json.loads(json.dumps(start.restore_report(plan)))


def _check_report_schema(report: dict) -> None:
    """The one restore_report.json schema (finetune.train.start)."""
    from finetune.train import start

    assert list(report) == list(start.REPORT_KEYS)
    assert isinstance(report["checkpoint"], str) and report["source"] in (start.SOURCE_CHECKPOINT, start.SOURCE_HUB)
    assert isinstance(report["summary"], str) and isinstance(report["options"], dict)
    for key in ("restored", "skipped", "fresh", "errors"):
        assert isinstance(report[key], list), key
        for entry in report[key]:
            assert isinstance(entry["variable"], str) and isinstance(entry["shape"], list), entry
            assert isinstance(entry["status"], str) and isinstance(entry["size"], int), entry
    assert isinstance(report["renamed"], list) and isinstance(report["unused"], list)


_MAKE_UNLISTED = textwrap.dedent("""
    import sys
    import numpy as np, tensorflow as tf

    class Features(tf.Module):  # a plain tf.Module: no `variables` / `trainable_variables` attributes are saved
        def __init__(self):
            super().__init__()
            self.kernel = tf.Variable(tf.random.stateless_normal([3, 3, 3, 4], [1, 2]) * 0.3, name="kernel")
            self.bias = tf.Variable(tf.random.stateless_normal([4], [3, 4]) * 0.1, name="bias")

        @tf.function(input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.float32)])
        def __call__(self, images):
            return tf.reduce_mean(tf.nn.relu(tf.nn.conv2d(images, self.kernel, 2, "VALID") + self.bias), axis=[1, 2])

    module = Features()
    tf.saved_model.save(module, sys.argv[1])
    np.savez(sys.argv[1] + ".npz", kernel=module.kernel.numpy(), bias=module.bias.numpy())
""")


@pytest.fixture(scope="module")
def unlisted_model(tmp_path_factory):
    """A hub feature vector whose SavedModel does not list its (two) variables, and their values."""
    path = tmp_path_factory.mktemp("hub") / "unlisted"
    result = subprocess.run([sys.executable, "-c", _MAKE_UNLISTED, str(path)], capture_output=True, text=True,
                            env=os.environ, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    with np.load(f"{path}.npz") as values:
        return path, {name: values[name] for name in values.files}


@pytest.mark.slow  # the SavedModel written by a fresh TF2 process; a run with its evaluation
def test_a_saved_model_that_lists_no_variables(unlisted_model, dataset, tmp_path, capsys, caplog):
    """Issue 18: such a model said '0 of 2 variables restored', logged Keras' 'trainable but has zero trainable
    weights' twice with --trainable logits, and with --trainable all its backbone silently did not train."""
    from nets import hub
    from nets.compat import tf

    path, saved = unlisted_model
    model = hub.inspect(str(path))
    assert (model.listed_variables, model.trainable_variables, model.saved_variables) == (0, 0, 2)
    assert model.num_parameters == 3 * 3 * 3 * 4 + 4 and model.unlisted and not model.trainable
    common = ["--net", f"hub:{path}", "--dataset", str(dataset), "--batch-size", "4", "--max-steps", "2"]
    assert cli.main([*common, "--trainable", "logits", "--train-dir", str(tmp_path / "logits")]) == 0
    out = capsys.readouterr().out
    assert f"2 of 4 variables restored from the hub SavedModel {path}; it does not list 2 of them (112 parameters" in out
    assert "zero trainable weights" not in caplog.text + out  # the backbone is built frozen: nothing to warn about
    report = json.loads((tmp_path / "logits" / "restore_report.json").read_text())
    assert sorted(e["variable"] for e in report["restored"]) == ["HubNet/backbone/bias", "HubNet/backbone/kernel"]
    assert all("does not list" in e["reason"] for e in report["restored"]) and len(report["fresh"]) == 2
    reader = tf.train.load_checkpoint(str(tmp_path / "logits"))
    for name, value in saved.items():  # the backbone ran on the SavedModel's weights, unchanged
        assert np.array_equal(reader.get_tensor(f"HubNet/backbone/{name}"), value)
    for trainable in ("all", "backbone", "HubNet/backbone"):
        assert cli.main([*common, "--trainable", trainable, "--train-dir", str(tmp_path / "refused")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"--trainable {trainable} asks the backbone of hub model" in err[0], err
        assert "lists no trainable variables" in err[0] and "use --trainable logits, or re-save" in err[0]
        assert not (tmp_path / "refused").exists()
