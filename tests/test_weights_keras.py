"""`finetune convert-weights --from keras`: keras.applications models with random weights (BatchNorm statistics and
biases randomized too, so a wrong pairing shows) are saved, converted, and the zoo net restored from the checkpoint in
this process (which never imports Keras) gives the Keras model's outputs within 1e-4 relative."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from finetune import cli
from nets import nets_factory
from nets.compat import tf

# Runs in its own process: build the Keras model, randomize it, save its weights, its inputs after Keras'
# preprocessing and its outputs on seeded images.
_MAKE = textwrap.dedent("""
    import os, sys
    import numpy as np
    lib, app, module, size, top, out, kwargs = sys.argv[1:8]
    size, top, kwargs = int(size), top == "top", eval(kwargs)
    if lib == "tf_keras":
        import tf_keras as keras
    else:
        os.environ["KERAS_BACKEND"] = "tensorflow"
        import keras
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    extra = {"classifier_activation": None} if top else {}
    model = getattr(keras.applications, app)(weights=None, include_top=top, input_shape=(size, size, 3),
                                             **extra, **kwargs)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0, 0.5, n).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2, n).astype("float32"))
            if layer.scale:
                layer.gamma.assign(rng.uniform(0.5, 1.5, n).astype("float32"))
            if layer.center:
                layer.beta.assign(rng.normal(0, 0.2, n).astype("float32"))
        elif getattr(layer, "use_bias", False) and layer.weights:
            layer.bias.assign(rng.normal(0, 0.2, layer.bias.shape).astype("float32"))
    model.save_weights(out)
    images = rng.integers(0, 256, size=(2, size, size, 3)).astype("float32")
    inputs = getattr(keras.applications, module).preprocess_input(images.copy())
    np.save(out + ".inputs.npy", inputs)
    np.save(out + ".outputs.npy", model.predict(inputs, verbose=0))
""")

CASES = [
    # (library, keras application, module, zoo net, image size, with classifier, kwargs, zoo end point)
    pytest.param("keras", "MobileNet", "mobilenet", "mobilenet_v1_025", 64, True, {"alpha": 0.25}, "Logits",
                 id="mobilenet_v1_025", marks=pytest.mark.slow),
    pytest.param("tf_keras", "MobileNetV2", "mobilenet_v2", "mobilenet_v2_035", 64, True, {"alpha": 0.35}, "Logits",
                 id="mobilenet_v2_035-legacy-h5", marks=pytest.mark.slow),
    pytest.param("keras", "MobileNetV2", "mobilenet_v2", "mobilenet_v2_140", 64, False, {"alpha": 1.4}, "layer_19",
                 id="mobilenet_v2_140-notop", marks=pytest.mark.slow),
    pytest.param("keras", "InceptionV3", "inception_v3", "inception_v3", 75, True, {}, "Logits",
                 id="inception_v3", marks=pytest.mark.slow),
    pytest.param("keras", "InceptionResNetV2", "inception_resnet_v2", "inception_resnet_v2", 75, True, {}, "Logits",
                 id="inception_resnet_v2", marks=pytest.mark.slow),
    pytest.param("keras", "VGG16", "vgg16", "vgg_16", 32, False, {}, "vgg_16/pool5", id="vgg_16-notop",
                 marks=pytest.mark.slow),
]


def _run(*args, timeout=600):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          check=False)


def _make(tmp_path, lib, app, module, size, top, kwargs):
    weights = str(tmp_path / ("model.h5" if lib == "tf_keras" else "model.weights.h5"))
    made = _run("-c", _MAKE, lib, app, module, size, "top" if top else "notop", weights, repr(kwargs))
    assert made.returncode == 0, made.stderr[-3000:]
    return weights


def _convert(weights, net, output, size):
    return _run("-m", "finetune.cli", "convert-weights", "--from", "keras", weights, "--net", net,
                "--output", output, "--image-size", size)


@pytest.mark.parametrize("lib, app, module, net, size, top, kwargs, end_point", CASES)
def test_converted_net_gives_the_keras_outputs(tmp_path, lib, app, module, net, size, top, kwargs, end_point):
    weights = _make(tmp_path, lib, app, module, size, top, kwargs)
    checkpoint = str(tmp_path / "converted.ckpt")
    converted = _convert(weights, net, checkpoint, size)
    assert converted.returncode == 0, converted.stderr[-3000:]
    assert "relative tolerance 0.0001" in converted.stdout

    inputs, expected = np.load(weights + ".inputs.npy"), np.load(weights + ".outputs.npy")
    if module.startswith("vgg"):
        inputs = inputs[..., ::-1]  # Keras' VGG takes BGR; the converted net takes RGB
    spec = nets_factory.get_spec(net)
    num_classes = expected.shape[-1] if top else 0
    with tf.Graph().as_default():
        network_fn = nets_factory.get_network_fn(net, num_classes)
        images = tf.placeholder(tf.float32, [None, size, size, 3])
        kwargs = {"create_aux_logits": False} if top and "inception" in net else {}
        logits, end_points = network_fn(images, **kwargs)
        output = logits if end_point == "Logits" else end_points[end_point]
        stored = set(dict(tf.train.list_variables(checkpoint)))
        restored = [v for v in tf.global_variables() if v.op.name in stored]
        assert all(v.op.name.startswith(f"{spec.scope}/fc") for v in tf.global_variables() if v not in restored)
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            tf.train.Saver(restored).restore(session, checkpoint)
            ours = session.run(output, {images: inputs}).reshape(expected.shape)
    assert np.abs(expected).max() > 0.1  # a real signal, not zeros on both sides
    assert np.abs(ours - expected).max() <= 1e-4 * np.abs(expected).max()


@pytest.mark.parametrize("net, words", [("resnet_v1_50", "stride"), ("resnet_v2_101", "pool1"),
                                        ("inception_v4", "keras.applications has no inception_v4")])
def test_nets_without_an_exact_mapping_are_refused_in_one_line(tmp_path, net, words, capsys):
    weights = tmp_path / "resnet.weights.h5"
    weights.write_bytes(b"not read: the net is refused first")
    assert cli.main(["convert-weights", "--from", "keras", str(weights), "--net", net,
                     "--output", str(tmp_path / "x.ckpt")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("finetune convert-weights: error:") and words in lines[0]
    assert not list(tmp_path.glob("x.ckpt*"))


@pytest.mark.slow
def test_wrong_width_is_one_line_error(tmp_path):
    weights = _make(tmp_path, "keras", "MobileNet", "mobilenet", 64, True, {"alpha": 0.25})
    result = _convert(weights, "mobilenet_v1_050", tmp_path / "x.ckpt", 64)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and lines[-1].startswith("finetune convert-weights: error:"), result.stderr[-2000:]
    assert "mobilenet_v1_050" in lines[-1] and not list(tmp_path.glob("x.ckpt*"))
