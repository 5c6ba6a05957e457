"""The adapted families give tf_slim.nets' logits with the same weights, and work where tf_slim's do not.

Each comparison builds tf_slim's net, then ours on the same variables (reuse=True: a variable ours
would add or shape differently raises), runs both on random images and compares the outputs.
"""

from __future__ import annotations

import numpy as np
import pytest
from tf_slim.nets import (
    alexnet,
    inception_v1,
    inception_v2,
    inception_v3,
    overfeat,
    resnet_utils,
    resnet_v1,
    resnet_v2,
    vgg,
)

from nets import nets_factory
from nets.compat import slim, tf

CLASSES = 5


def _images(size: int, batch: int = 2) -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)


def _run(fetches, images: tf.Tensor, size: int):
    # Random (non-zero) BatchNorm statistics and biases, so a head wired to the wrong tensor shows.
    with tf.Session() as session:
        session.run(tf.global_variables_initializer())
        rng = np.random.default_rng(1)
        for variable in tf.global_variables():
            if variable.op.name.endswith(("moving_mean", "beta", "biases")):
                variable.load(rng.normal(0, 0.1, variable.shape.as_list()).astype(np.float32), session)
            elif variable.op.name.endswith(("moving_variance", "gamma")):
                variable.load(rng.uniform(0.5, 1.5, variable.shape.as_list()).astype(np.float32), session)
        return session.run(fetches, {images: _images(size)})


# name, tf_slim's function and arg scope, image size it builds at, what to compare (ours, theirs).
CASES = [
    ("inception_v1", inception_v1.inception_v1, inception_v1.inception_v1_arg_scope, 224, ["Logits", "Predictions"]),
    ("inception_v2", inception_v2.inception_v2, inception_v2.inception_v2_arg_scope, 64, ["Logits", "Predictions"]),
    ("inception_v3", inception_v3.inception_v3, inception_v3.inception_v3_arg_scope, 139, ["Logits", "AuxLogits"]),
    ("resnet_v1_50", resnet_v1.resnet_v1_50, resnet_utils.resnet_arg_scope, 64, ["predictions"]),
    ("resnet_v2_50", resnet_v2.resnet_v2_50, resnet_utils.resnet_arg_scope, 64, ["predictions"]),
    ("vgg_a", vgg.vgg_a, vgg.vgg_arg_scope, 224, []),
    ("vgg_16", vgg.vgg_16, vgg.vgg_arg_scope, 224, []),
    ("alexnet_v2", alexnet.alexnet_v2, alexnet.alexnet_v2_arg_scope, 224, ["alexnet_v2/fc7"]),
    ("overfeat", overfeat.overfeat, overfeat.overfeat_arg_scope, 231, ["overfeat/fc7"]),
]


# The deeper bodies take 15-50 s each on 2 cores: they run in the whole suite only.
SLOW_CASES = {"inception_v1", "inception_v2", "inception_v3", "resnet_v1_50", "resnet_v2_50"}


@pytest.mark.parametrize("name, slim_fn, slim_arg_scope, size, end_points",
                         [pytest.param(*case, id=case[0], marks=pytest.mark.slow if case[0] in SLOW_CASES else ())
                          for case in CASES])
def test_same_weights_give_tf_slims_logits(graph, name, slim_fn, slim_arg_scope, size, end_points):
    images = tf.placeholder(tf.float32, [None, size, size, 3])
    with slim.arg_scope(slim_arg_scope()):
        slim_logits, slim_end_points = slim_fn(images, num_classes=CLASSES, is_training=False)
    slim_logits = tf.reshape(slim_logits, [-1, CLASSES])  # tf_slim's resnets keep [B, 1, 1, C]
    count = len(tf.global_variables())
    with tf.variable_scope(tf.get_variable_scope(), reuse=True):
        logits, ours = nets_factory.get_network_fn(name, CLASSES)(images)
    assert len(tf.global_variables()) == count

    fetches = [logits, slim_logits] + [(ours[e], slim_end_points[e]) for e in end_points]
    got, want, *pairs = _run(fetches, images, size)
    assert got.shape == (2, CLASSES) and np.abs(want).max() > 1e-3
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    for (ours_value, slims_value), end_point in zip(pairs, end_points):
        np.testing.assert_allclose(
            np.squeeze(ours_value), np.squeeze(slims_value), rtol=1e-4, atol=1e-5, err_msg=end_point
        )


def _pooled_head(features: np.ndarray, weights: np.ndarray, biases: np.ndarray) -> np.ndarray:
    """What a classifier on globally averaged features computes: mean over H, W, then the 1x1 conv."""
    return features.mean(axis=(1, 2)) @ weights.reshape(weights.shape[-2], -1) + biases


# name, size tf_slim's version cannot build at, the feature end point, the logits variable scope.
SMALL_CASES = [
    ("inception_v1", 64, "Mixed_5c", "InceptionV1/Logits/Conv2d_0c_1x1"),
    ("vgg_16", 64, "vgg_16/fc7", "vgg_16/fc8"),
    ("alexnet_v2", 112, "alexnet_v2/fc7", "alexnet_v2/fc8"),
    ("overfeat", 115, "overfeat/fc7", "overfeat/fc8"),
]


@pytest.mark.parametrize("name, size, features, logits_scope",
                         [pytest.param(*case, id=case[0], marks=pytest.mark.slow if case[0] in SLOW_CASES else ())
                          for case in SMALL_CASES])
def test_small_images_pool_globally_where_tf_slim_fails(graph, name, size, features, logits_scope):
    images = tf.placeholder(tf.float32, [None, size, size, 3])
    logits, end_points = nets_factory.get_network_fn(name, CLASSES)(images)
    weights, biases = (tf.global_variables(f"{logits_scope}/{v}")[0] for v in ("weights", "biases"))
    got, feature_map, w, b = _run([logits, end_points[features], weights, biases], images, size)
    assert feature_map.shape[1] == feature_map.shape[2] == 2  # the head pools a 2x2 map, not TF-Slim's 7x7
    np.testing.assert_allclose(got, _pooled_head(feature_map, w, b), rtol=1e-4, atol=1e-5)


def test_inception_v3_aux_head_fits_its_smallest_image(graph):
    # tf_slim's 5x5 VALID aux pooling fails on the 3x3 Mixed_6e of a 75 px image; ours shrinks it.
    logits, end_points = nets_factory.get_network_fn("inception_v3", CLASSES)(
        tf.placeholder(tf.float32, [2, 75, 75, 3])
    )
    assert end_points["Mixed_6e"].shape.as_list()[1:3] == [3, 3]
    assert end_points["AuxLogits"].shape.as_list() == logits.shape.as_list() == [2, CLASSES]


@pytest.mark.parametrize("name", [pytest.param("inception_v2", marks=pytest.mark.slow), "resnet_v2_50"])
def test_is_training_switches_batch_norm(graph, name):
    images = tf.placeholder(tf.float32, [2, 64, 64, 3])
    nets_factory.get_network_fn(name, CLASSES, is_training=False)(images)
    assert not tf.get_collection(tf.GraphKeys.UPDATE_OPS)  # frozen statistics
    with tf.variable_scope(tf.get_variable_scope(), reuse=True):
        nets_factory.get_network_fn(name, CLASSES, is_training=True)(images)
    assert tf.get_collection(tf.GraphKeys.UPDATE_OPS)  # moving averages to update


@pytest.mark.parametrize("name, size", [("alexnet_v2", 288), ("overfeat", 295)])
def test_larger_images_pool_fc7_globally(graph, name, size):
    # At these sizes fc6's VALID window leaves a 3 x 3 map where tf_slim's squeeze fails; ours averages it.
    images = tf.placeholder(tf.float32, [2, size, size, 3])
    logits, end_points = nets_factory.get_network_fn(name, CLASSES)(images)
    assert end_points[f"{name}/fc7"].shape.as_list() == [2, 3, 3, 4096]
    assert end_points["global_pool"].shape.as_list() == [2, 1, 1, 4096] and logits.shape.as_list() == [2, CLASSES]
