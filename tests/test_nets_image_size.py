"""Every registered net at image sizes above its default: [B, num_classes] logits, the published variables.

Fine-tuning at a higher resolution keeps the pretrained weights, so a net built at 1.5x or 2x its default
size must have exactly the published checkpoint's variables (names and shapes) and still give one logit
per class: heads whose fixed pooling or fc-as-conv kernels would leave a spatial map average it instead.
At the default size nothing changes: the logits equal TF-Slim's own nets' bit for bit.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers.netcheck import AUX_IN_TRAINING_ONLY, QUICK_NETS, variable_shapes
from tf_slim.nets import inception_v1 as slim_inception_v1
from tf_slim.nets import inception_v3 as slim_inception_v3
from tf_slim.nets import vgg as slim_vgg

from finetune import cli
from finetune.data import synthetic
from nets import nets_factory
from nets.compat import slim, tf

SPECS = nets_factory.specs()
FACTORS = (1.5, 2.0)
CLASSES = 5


def _size_cases():
    for name in SPECS:
        for factor in FACTORS:
            # The quick nets at 1.5x in the fast set; 2x and the rest of the zoo in the whole suite.
            marks = () if name in QUICK_NETS and factor == FACTORS[0] else (pytest.mark.slow,)
            yield pytest.param(name, factor, marks=marks, id=f"{name}-{factor}x")


@pytest.mark.parametrize("name, factor", _size_cases())
def test_bigger_images_keep_the_published_variables_and_give_one_logit_per_class(graph, name, factor):
    spec = SPECS[name]
    size = int(spec.image_size * factor)
    training = name in AUX_IN_TRAINING_ONLY  # their published lists include the training-only aux head
    logits, end_points = nets_factory.get_network_fn(name, spec.num_classes, is_training=training)(
        tf.placeholder(tf.float32, [1, size, size, 3])
    )
    assert logits.shape.as_list() == [1, spec.num_classes]
    assert end_points[spec.logits_end_point] is logits
    if "AuxLogits" in end_points:
        assert end_points["AuxLogits"].shape.as_list() == [1, spec.num_classes]
    built = {n: shape for n, shape in variable_shapes(graph).items() if n != "global_step"}  # drop path's step
    published = spec.published_variables()
    assert built == published, f"{name} at {size}px: {sorted(set(built.items()) ^ set(published.items()))[:5]}"


def _random_weights(session) -> None:
    """Non-zero BatchNorm statistics and biases, so a head wired to the wrong tensor shows."""
    session.run(tf.global_variables_initializer())
    rng = np.random.default_rng(1)
    for variable in tf.global_variables():
        shape = variable.shape.as_list()
        if variable.op.name.endswith(("moving_variance", "gamma")):
            variable.load(rng.uniform(0.5, 1.5, shape).astype(np.float32), session)
        elif variable.op.name.endswith(("moving_mean", "beta", "biases")):
            variable.load(rng.normal(0, 0.1, shape).astype(np.float32), session)


def _images(size: int, batch: int = 2) -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)


# name, tf_slim's function and arg scope, default size, what else to compare, slow?
DEFAULT_SIZE_CASES = [
    pytest.param("inception_v1", slim_inception_v1.inception_v1, slim_inception_v1.inception_v1_arg_scope, 224, [],
                 id="inception_v1", marks=pytest.mark.slow),
    pytest.param("vgg_a", slim_vgg.vgg_a, slim_vgg.vgg_arg_scope, 224, [], id="vgg_a"),
    pytest.param("inception_v3", slim_inception_v3.inception_v3, slim_inception_v3.inception_v3_arg_scope, 299,
                 ["AuxLogits"], id="inception_v3", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name, slim_fn, slim_arg_scope, size, end_points", DEFAULT_SIZE_CASES)
def test_default_size_logits_are_tf_slims_bit_for_bit(graph, name, slim_fn, slim_arg_scope, size, end_points):
    """The size-adaptive heads build TF-Slim's own ops at the default size: equal logits, not just close."""
    images = tf.placeholder(tf.float32, [2, size, size, 3])
    with slim.arg_scope(slim_arg_scope()):
        want, slim_end_points = slim_fn(images, num_classes=CLASSES, is_training=False)
    with tf.variable_scope(tf.get_variable_scope(), reuse=True):
        got, ours = nets_factory.get_network_fn(name, CLASSES)(images)
    fetches = [got, want] + [(ours[e], slim_end_points[e]) for e in end_points]
    with tf.Session() as session:
        _random_weights(session)
        got, want, *pairs = session.run(fetches, {images: _images(size)})
    assert got.shape == (2, CLASSES) and np.abs(got).max() > 1e-3
    np.testing.assert_array_equal(got, want)
    for ours_value, slims_value in pairs:
        np.testing.assert_array_equal(ours_value, slims_value)


def _features_and_classifier(end_points: dict, features: str, logits_scope: str):
    weights, biases = (tf.global_variables(f"{logits_scope}/{v}")[0] for v in ("weights", "biases"))
    return end_points[features], weights, biases


def _pooled_head(feature_map: np.ndarray, weights: np.ndarray, biases: np.ndarray) -> np.ndarray:
    """What a classifier on globally averaged features computes: mean over H, W, then the 1x1 conv."""
    return feature_map.mean(axis=(1, 2)) @ weights.reshape(weights.shape[-2], -1) + biases


# name, size above its default, the end point the head pools, the logits' variable scope, its map there.
POOLED_CASES = [
    pytest.param("mobilenet_v1_025", 448, "Conv2d_13_pointwise", "MobilenetV1/Logits/Conv2d_1c_1x1", 14,
                 id="mobilenet_v1_025"),
    pytest.param("inception_v1", 336, "Mixed_5c", "InceptionV1/Logits/Conv2d_0c_1x1", 11, id="inception_v1",
                 marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name, size, features, logits_scope, map_size", POOLED_CASES)
def test_bigger_images_pool_the_whole_map(graph, name, size, features, logits_scope, map_size):
    images = tf.placeholder(tf.float32, [2, size, size, 3])
    logits, end_points = nets_factory.get_network_fn(name, CLASSES)(images)
    fetches = [logits, *_features_and_classifier(end_points, features, logits_scope)]
    with tf.Session() as session:
        _random_weights(session)
        got, feature_map, weights, biases = session.run(fetches, {images: _images(size)})
    assert feature_map.shape[1:3] == (map_size, map_size)  # not TF-Slim's 7x7: the pool spans the map
    np.testing.assert_allclose(got, _pooled_head(feature_map, weights, biases), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_vgg_above_its_default_size_averages_the_fully_convolutional_logits(graph):
    """336 px: fc6 (7x7 VALID) leaves a 4x4 map; the logits are the mean of the 4x4 map of fc8 logits."""
    images = tf.placeholder(tf.float32, [2, 336, 336, 3])
    network_fn = nets_factory.get_network_fn("vgg_a", CLASSES)
    logits, _ = network_fn(images)
    with tf.variable_scope(tf.get_variable_scope(), reuse=True):
        spatial, _ = network_fn(images, global_pool=False, spatial_squeeze=False)
    assert spatial.shape.as_list() == [2, 4, 4, CLASSES]
    with tf.Session() as session:
        _random_weights(session)
        got, logits_map = session.run([logits, spatial], {images: _images(336)})
    assert np.abs(logits_map - logits_map.mean(axis=(1, 2), keepdims=True)).max() > 1e-3  # the map varies
    np.testing.assert_allclose(got, logits_map.mean(axis=(1, 2)), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_inception_v3_aux_logits_above_299_are_the_mean_of_tf_slims_spatial_ones(graph):
    """448 px: TF-Slim's aux head (same 5x5 kernel, same variables) gives a 4x4 map of logits; ours its mean."""
    images = tf.placeholder(tf.float32, [1, 448, 448, 3])
    with slim.arg_scope(slim_inception_v3.inception_v3_arg_scope()):
        _, slim_end_points = slim_inception_v3.inception_v3(
            images, num_classes=CLASSES, is_training=False, spatial_squeeze=False
        )
    count = len(tf.global_variables())
    with tf.variable_scope(tf.get_variable_scope(), reuse=True):
        _, end_points = nets_factory.get_network_fn("inception_v3", CLASSES)(images)
    assert len(tf.global_variables()) == count
    assert slim_end_points["AuxLogits"].shape.as_list() == [1, 4, 4, CLASSES]
    with tf.Session() as session:
        _random_weights(session)
        got, want = session.run([end_points["AuxLogits"], slim_end_points["AuxLogits"]], {images: _images(448, 1)})
    np.testing.assert_allclose(got, want.mean(axis=(1, 2)), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_default_size_global_pool_on_and_off_agree(graph):
    """At 224 px the 7x7 pool and the mean over the 7x7 map are the same average (up to float rounding)."""
    images = tf.placeholder(tf.float32, [2, 224, 224, 3])
    network_fn = nets_factory.get_network_fn("mobilenet_v1_025", CLASSES)
    pooled, end_points = network_fn(images)
    assert "AvgPool_1a" in end_points and "global_pool" not in end_points
    with tf.variable_scope(tf.get_variable_scope(), reuse=True):
        mean, end_points = network_fn(images, global_pool=True)
    assert "global_pool" in end_points
    with tf.Session() as session:
        _random_weights(session)
        got_pooled, got_mean = session.run([pooled, mean], {images: _images(224)})
    assert np.abs(got_pooled).max() > 1e-3
    np.testing.assert_allclose(got_pooled, got_mean, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_cli_fine_tunes_at_a_bigger_image_size_from_a_default_size_checkpoint(tmp_path, capsys):
    """Train 2 steps at 224 px, then fine-tune at 336 px from that checkpoint: every variable restores."""
    data = synthetic.write_shapes_dataset(tmp_path / "data", ["circle", "square"], train_per_class=4,
                                          validation_per_class=2, image_size=64, seed=0)
    common = ["--net", "mobilenet_v1_025", "--dataset", str(data), "--batch-size", "2", "--max-steps", "2"]
    assert cli.main([*common, "--image-size", "224", "--train-dir", str(tmp_path / "base"), "--trainable", "all",
                     "--skip-eval"]) == 0
    assert cli.main([*common, "--image-size", "336", "--train-dir", str(tmp_path / "big"),
                     "--ckpt", str(tmp_path / "base"), "--skip-eval"]) == 0
    capsys.readouterr()
    report = json.loads((tmp_path / "big" / "restore_report.json").read_text())
    assert not report["errors"] and not report["skipped"] and not report["fresh"]
    restored = {entry["variable"] for entry in report["restored"]}
    assert {"MobilenetV1/Conv2d_13_pointwise/weights", "MobilenetV1/Logits/Conv2d_1c_1x1/weights"} <= restored
    run_config = json.loads((tmp_path / "big" / "run_config.json").read_text())
    assert run_config["image_size"] == 336
    summary = json.loads((tmp_path / "big" / "run_summary.json").read_text())
    assert summary["final_step"] == 2
