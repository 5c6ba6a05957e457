"""The mobilenet_v3 family (v3 large/small, their minimalistic bodies, EdgeTPU 1.0/0.75): TF-Slim's wiring
(golden logits), end points, modes, width rules and errors. Variables against the published lists: test_nets_zoo.

Golden values: logits of TF-Slim's reference code (tensorflow/models research/slim/nets/mobilenet/
mobilenet_v3.py @ 03cdc5fe, conv_blocks.py @ 10cf1c0a, mobilenet.py's tf_slim port; mobilenet_v3.large, .small,
.large_minimalistic, .small_minimalistic, .edge_tpu, .edge_tpu_075 under mobilenet_v3.training_scope(is_training=
False)) at 64 px and 5 classes, for golden_images() with golden_values() loaded.
"""

import zlib

import numpy as np
import pytest
from helpers.netcheck import variable_shapes

from nets import mobilenet_v3, nets_factory
from nets.compat import tf

NAMES = [
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    "mobilenet_v3_large_minimalistic",
    "mobilenet_v3_small_minimalistic",
    "mobilenet_edgetpu",
    "mobilenet_edgetpu_075",
]
GOLDEN_SIZE, GOLDEN_CLASSES = 64, 5
GOLDEN_LOGITS = {
    "mobilenet_v3_large": [
        [-0.19831604, -0.37436485, -0.19703119, -0.085681982, -0.091240644],
        [-0.1983619, -0.37442923, -0.19702676, -0.085684538, -0.091342151],
    ],
    "mobilenet_v3_small": [
        [-0.10153699, -0.11211789, 0.010949656, -0.53448796, 0.0054950714],
        [-0.10153699, -0.11214526, 0.010981411, -0.53450078, 0.0054683387],
    ],
    "mobilenet_v3_large_minimalistic": [
        [-0.40486404, -0.5032863, -0.77400512, 0.61144215, -0.033350393],
        [-0.40231478, -0.50279671, -0.77402061, 0.61095333, -0.032914743],
    ],
    "mobilenet_v3_small_minimalistic": [
        [0.24133238, 0.37614262, -0.01786406, -0.58500111, -0.73937297],
        [0.24448946, 0.37450492, -0.017215226, -0.58501625, -0.73526394],
    ],
    "mobilenet_edgetpu": [
        [-2.8385861, -0.16183598, 5.5859714, -0.56458253, 0.52601367],
        [-1.4485422, -0.391323, 5.969069, 0.28038108, 0.75997245],
    ],
    "mobilenet_edgetpu_075": [
        [-4.2161794, -1.2687289, 4.9158263, -5.2848015, -2.3945341],
        [-5.3703876, -1.3001651, 4.7442341, -5.6746931, -2.2776277],
    ],
}


def golden_values(variables: list) -> dict:
    """variable -> a value seeded by its name only: He-scaled weights, BatchNorm gamma and moving variance in
    [0.5, 1.5] (a gamma near 0 would leave these deep nets' logits independent of the image), the rest
    (biases, beta, moving mean, depthwise weights) 0.1 * N(0, 1)."""
    values = {}
    for variable in variables:
        name, shape = variable.op.name, variable.shape.as_list()
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        if name.endswith("/weights"):
            value = rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[:-1]))
        elif name.endswith(("/moving_variance", "/gamma")):
            value = rng.uniform(0.5, 1.5, shape)
        else:
            value = 0.1 * rng.standard_normal(shape)
        values[variable] = value.astype(np.float32)
    return values


def golden_images() -> np.ndarray:
    return np.random.default_rng(0).uniform(-1.0, 1.0, (2, GOLDEN_SIZE, GOLDEN_SIZE, 3)).astype(np.float32)


def _build(name, num_classes, size, batch=2, is_training=False, weight_decay=0.0, **kwargs):
    network_fn = nets_factory.get_network_fn(name, num_classes, weight_decay=weight_decay, is_training=is_training)
    images = tf.placeholder(tf.float32, [batch, size, size, 3] if size else [batch, None, None, 3], name="images")
    logits, end_points = network_fn(images, **kwargs)
    return images, logits, end_points


@pytest.mark.parametrize("name", [pytest.param(name, marks=() if "small" in name else pytest.mark.slow)  # 6-9 s each
                                  for name in NAMES])
def test_same_weights_give_the_reference_logits(graph, name):
    """64 px, 5 classes: only the classifier changes shape, and the wiring is TF-Slim's."""
    spec = nets_factory.get_spec(name)
    logits, _ = nets_factory.get_network_fn(name, GOLDEN_CLASSES)(tf.constant(golden_images()))
    published, built = spec.published_variables(), variable_shapes(graph)
    assert set(built) == set(published)
    changed = sorted(n for n in built if built[n] != published[n])
    assert changed == [f"{spec.scope}/Logits/Conv2d_1c_1x1/{v}" for v in ("biases", "weights")]
    with tf.Session() as session:
        values = golden_values(tf.global_variables())
        session.run([v.initializer for v in values], {v.initializer.inputs[1]: value for v, value in values.items()})
        got = session.run(logits)
    np.testing.assert_allclose(got, GOLDEN_LOGITS[name], rtol=1e-4, atol=1e-5)


def test_v3_large_end_points(graph):
    _, logits, end_points = _build("mobilenet_v3_large", 1001, 224, batch=1)
    assert {f"layer_{i}" for i in range(1, 20)} <= set(end_points) and "layer_20" not in end_points
    assert end_points["layer_1"].shape.as_list() == [1, 112, 112, 16]
    assert "layer_2/expansion_output" not in end_points  # 16 -> 16: no expansion
    assert end_points["layer_5/expansion_output"].shape.as_list() == [1, 56, 56, 72]
    assert end_points["layer_5/depthwise_output"].shape.as_list() == [1, 28, 28, 72]  # 5x5, stride 2
    assert end_points["layer_16/output"].shape.as_list() == [1, 7, 7, 160]
    assert end_points["layer_17"].shape.as_list() == [1, 7, 7, 960]
    assert end_points["layer_18"].shape.as_list() == [1, 1, 1, 960]  # the pool
    assert end_points["layer_19"].shape.as_list() == end_points["global_pool"].shape.as_list() == [1, 1, 1, 1280]
    assert end_points["Logits"] is logits and end_points["Predictions"].shape.as_list() == [1, 1001]


def test_edgetpu_fused_blocks_have_no_depthwise(graph):
    _, _, end_points = _build("mobilenet_edgetpu", 1001, 224, batch=1)
    names = variable_shapes()
    fused = [f"MobilenetEdgeTPU/expanded_conv_{i}" for i in range(1, 9)]  # layers 3-10; layer 2 only projects
    assert all(
        f"{scope}/expand/weights" in names and f"{scope}/depthwise/depthwise_weights" not in names for scope in fused
    )
    assert names["MobilenetEdgeTPU/expanded_conv_1/expand/weights"] == (3, 3, 16, 128)  # a full 3x3, stride 2
    assert "layer_3/depthwise_output" not in end_points
    assert end_points["layer_3/expansion_output"].shape.as_list() == [1, 56, 56, 128]
    assert end_points["layer_24"].shape.as_list() == [1, 7, 7, 1280]
    assert not [n for n in names if "squeeze_excite" in n]


# Facts the published checkpoints fix: 0.75 of 32 rounds to 24, of 16 up to 16 (a multiple of 8 within 10%),
# and finegrain_classification_mode keeps the last layer at 1280.
WIDTH_FACTS = {
    "mobilenet_edgetpu_075": {
        "MobilenetEdgeTPU/Conv/weights": (3, 3, 3, 24),
        "MobilenetEdgeTPU/expanded_conv/project/weights": (1, 1, 24, 16),
        "MobilenetEdgeTPU/Conv_1/weights": (1, 1, 144, 1280),
    },
    "mobilenet_v3_small": {
        "MobilenetV3/expanded_conv/squeeze_excite/Conv/weights": (1, 1, 16, 8),
        "MobilenetV3/expanded_conv_2/expand/weights": (1, 1, 24, 88),
        "MobilenetV3/Conv_2/biases": (1024,),
    },
}


@pytest.mark.parametrize("name", sorted(WIDTH_FACTS))
def test_published_lists_hold_the_width_rules(name):
    published = nets_factory.get_spec(name).published_variables()
    assert {n: published[n] for n in WIDTH_FACTS[name]} == WIDTH_FACTS[name]


def test_any_image_size_and_features_without_classes(graph):
    images, features, end_points = _build("mobilenet_v3_small", 0, None)
    assert "Logits" not in end_points and not [n for n in variable_shapes() if "/Logits/" in n]
    with tf.variable_scope(tf.get_variable_scope(), reuse=True):
        wide = tf.placeholder(tf.float32, [2, 64, 96, 3])
        wide_features, _ = nets_factory.get_network_fn("mobilenet_v3_small", 0)(wide)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 64, 96, 3)).astype(np.float32)
    with tf.Session() as session:
        session.run(tf.global_variables_initializer())
        unknown_size, known_size = session.run([features, wide_features], {images: x, wide: x})
    assert unknown_size.shape == (2, 1, 1, 1024)
    np.testing.assert_allclose(unknown_size, known_size, rtol=1e-5, atol=1e-6)  # a non-square map pools whole


def test_is_training_switches_batch_norm_and_dropout(graph):
    images, logits, _ = _build("mobilenet_v3_small_minimalistic", 5, 32, is_training=True, dropout_keep_prob=0.5)
    moving_stats = [n for n in variable_shapes() if n.endswith(("moving_mean", "moving_variance"))]
    assert len(tf.get_collection(tf.GraphKeys.UPDATE_OPS)) == len(moving_stats) > 0
    x = np.random.default_rng(0).uniform(-1, 1, images.shape.as_list()).astype(np.float32)
    with tf.Session() as session:
        session.run(tf.global_variables_initializer())
        assert not np.array_equal(session.run(logits, {images: x}), session.run(logits, {images: x}))  # dropout


def test_weight_decay_regularizes_convolutions_not_depthwise(graph):
    _build("mobilenet_v3_small", 5, 32, weight_decay=1e-4)
    losses = tf.get_collection(tf.GraphKeys.REGULARIZATION_LOSSES)
    # stem, 11 projections, 10 expansions (the first block has none), 2 per squeeze-excite (9), Conv_1, Conv_2, logits
    assert len(losses) == 1 + 11 + 10 + 2 * 9 + 3
    assert not [loss for loss in losses if "depthwise" in loss.name]


@pytest.mark.slow
def test_reuse_and_base_final_endpoint(graph):
    _build("mobilenet_edgetpu", 5, 32)
    count = len(tf.global_variables())
    _build("mobilenet_edgetpu", 5, 32, reuse=True)
    assert len(tf.global_variables()) == count
    images = tf.placeholder(tf.float32, [1, 64, 64, 3])
    net, end_points = mobilenet_v3.mobilenet_v3_base(images, mobilenet_v3.V3_SMALL, final_endpoint="layer_4", scope="S")
    assert list(end_points)[-1] == "layer_4" and net.shape.as_list() == [1, 8, 8, 24]


def test_bad_arguments_say_what_is_wrong(graph):
    images = tf.placeholder(tf.float32, [1, 64, 64, 3])
    with pytest.raises(ValueError, match="shape"):
        mobilenet_v3.mobilenet_v3_large(tf.placeholder(tf.float32, [64, 64, 3]))
    with pytest.raises(ValueError, match="depth_multiplier"):
        mobilenet_v3.mobilenet_v3_small(images, depth_multiplier=0)
    with pytest.raises(ValueError, match="final_endpoint"):
        mobilenet_v3.mobilenet_v3_base(images, final_endpoint="layer_99", scope="B")


def test_minimalistic_bodies_drop_squeeze_excite_hard_swish_and_5x5():
    for full, plain in [
        (mobilenet_v3.V3_LARGE, mobilenet_v3.V3_LARGE_MINIMALISTIC),
        (mobilenet_v3.V3_SMALL, mobilenet_v3.V3_SMALL_MINIMALISTIC),
    ]:
        assert [type(d) for d in plain] == [type(d) for d in full]
        assert any(getattr(d, "squeeze_excite", False) for d in full)
        assert not any(getattr(d, "squeeze_excite", False) or getattr(d, "kernel", 3) > 3 for d in plain)
        assert all(getattr(d, "activation", tf.nn.relu) is tf.nn.relu for d in plain)
        assert [getattr(d, "depth", None) for d in plain] == [getattr(d, "depth", None) for d in full]
