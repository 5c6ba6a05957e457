"""The mobilenet_v1 / mobilenet_v2 families: published variables, fine-tuning shapes, end points, modes."""

import numpy as np
import pytest
from helpers.netcheck import variable_shapes

from nets import mobilenet_v1, mobilenet_v2, nets_factory
from nets.compat import slim, tf

V1_NAMES = ["mobilenet_v1", "mobilenet_v1_075", "mobilenet_v1_050", "mobilenet_v1_025"]
V2_NAMES = ["mobilenet_v2", "mobilenet_v2_140", "mobilenet_v2_035"]
SMALL = ["mobilenet_v1_025", "mobilenet_v2_035"]  # one small net per family


def _build(name, num_classes, size, batch=2, is_training=False, weight_decay=0.0, **kwargs):
    network_fn = nets_factory.get_network_fn(name, num_classes, weight_decay=weight_decay, is_training=is_training)
    images = tf.placeholder(tf.float32, [batch, size, size, 3], name="images")
    logits, end_points = network_fn(images, **kwargs)
    return images, logits, end_points


def _under(name: str, scopes) -> bool:
    return any(name.startswith(scope + "/") for scope in scopes)


# First conv and last body conv as the published checkpoints have them: min_depth, make_divisible and
# "Conv_1 keeps 1280 channels below width 1" are facts the checkpoints fix.
WIDTH_FACTS = {
    "mobilenet_v1_025": {
        "MobilenetV1/Conv2d_0/weights": (3, 3, 3, 8),
        "MobilenetV1/Conv2d_13_pointwise/weights": (1, 1, 256, 256),
    },
    "mobilenet_v2_035": {"MobilenetV2/Conv/weights": (3, 3, 3, 16), "MobilenetV2/Conv_1/weights": (1, 1, 112, 1280)},
    "mobilenet_v2_140": {"MobilenetV2/Conv/weights": (3, 3, 3, 48), "MobilenetV2/Conv_1/weights": (1, 1, 448, 1792)},
}


@pytest.mark.parametrize("name", sorted(WIDTH_FACTS))
def test_published_lists_hold_the_width_rules(name):
    published = nets_factory.get_spec(name).published_variables()
    assert {n: published[n] for n in WIDTH_FACTS[name]} == WIDTH_FACTS[name]


@pytest.mark.parametrize("name", V1_NAMES + V2_NAMES)
def test_manifest(name):
    spec = nets_factory.get_spec(name)
    family = "MobilenetV1" if name.startswith("mobilenet_v1") else "MobilenetV2"
    assert (spec.image_size, spec.num_classes, spec.preprocessing) == (224, 1001, "inception")
    assert (spec.scope, spec.classifier_scopes) == (family, (f"{family}/Logits",))
    assert spec.network_fn.default_image_size == 224
    assert nets_factory.get_network_fn(name, 5).default_image_size == 224
    assert spec.num_parameters == sum(int(np.prod(s)) for s in spec.published_variables().values())


@pytest.mark.parametrize("name", SMALL)
def test_new_class_count_at_small_size_changes_only_classifier(graph, name):
    _, logits, end_points = _build(name, 5, 64)
    spec = nets_factory.get_spec(name)
    published = spec.published_variables()
    built = variable_shapes()
    assert set(built) == set(published)
    changed = {n for n in built if built[n] != published[n]}
    assert changed and all(_under(n, spec.classifier_scopes) for n in changed)
    assert logits.shape.as_list() == [2, 5]
    assert end_points["Predictions"].shape.as_list() == [2, 5]


@pytest.mark.parametrize("name, depth", [("mobilenet_v1_025", 256), ("mobilenet_v2_035", 1280)])
def test_num_classes_zero_returns_pooled_features(graph, name, depth):
    _, features, end_points = _build(name, 0, 64)
    assert features.shape.as_list() == [2, 1, 1, depth]
    assert "Logits" not in end_points and "Predictions" not in end_points
    assert not [n for n in variable_shapes() if "/Logits/" in n]


def test_v1_end_points(graph):
    _, logits, end_points = _build("mobilenet_v1_025", 1001, 224, batch=1)
    body = ["Conv2d_0"] + [f"Conv2d_{i}_{part}" for i in range(1, 14) for part in ("depthwise", "pointwise")]
    assert set(end_points) == set(body) | {"AvgPool_1a", "Logits", "Predictions"}
    assert end_points["Conv2d_0"].shape.as_list() == [1, 112, 112, 8]
    assert end_points["Conv2d_13_pointwise"].shape.as_list() == [1, 7, 7, 256]
    assert end_points["AvgPool_1a"].shape.as_list() == [1, 1, 1, 256]
    assert end_points["Logits"] is logits


def test_v2_end_points(graph):
    _, logits, end_points = _build("mobilenet_v2", 1001, 224, batch=1)
    assert {f"layer_{i}" for i in range(1, 20)} <= set(end_points)
    assert end_points["layer_1"].shape.as_list() == [1, 112, 112, 32]
    assert end_points["layer_15/expansion_output"].shape.as_list() == [1, 14, 14, 576]
    assert end_points["layer_18/output"].shape.as_list() == [1, 7, 7, 320]
    assert end_points["layer_19"].shape.as_list() == [1, 7, 7, 1280]
    assert end_points["global_pool"].shape.as_list() == [1, 1, 1, 1280]
    assert "layer_2/expansion_output" not in end_points  # the first bottleneck does not expand
    assert end_points["Logits"] is logits


@pytest.mark.parametrize("name", ["mobilenet_v1_025", pytest.param("mobilenet_v2_035", marks=pytest.mark.slow)])
def test_is_training_switches_batch_norm_and_dropout(graph, name):
    images, logits, _ = _build(name, 5, 32, is_training=True, dropout_keep_prob=0.5)
    training_updates = len(tf.get_collection(tf.GraphKeys.UPDATE_OPS))
    moving_stats = [n for n in variable_shapes() if n.endswith(("moving_mean", "moving_variance"))]
    assert training_updates == len(moving_stats) > 0
    with tf.variable_scope("eval"):
        _, eval_logits, _ = _build(name, 5, 32, is_training=False, dropout_keep_prob=0.5)
    assert len(tf.get_collection(tf.GraphKeys.UPDATE_OPS)) == training_updates  # eval adds no updates
    x = np.random.RandomState(0).uniform(-1, 1, images.shape.as_list()).astype(np.float32)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        eval_feed = {graph.get_tensor_by_name("eval/images:0"): x}
        np.testing.assert_array_equal(sess.run(eval_logits, eval_feed), sess.run(eval_logits, eval_feed))
        assert not np.array_equal(sess.run(logits, {images: x}), sess.run(logits, {images: x}))  # dropout


@pytest.mark.parametrize(
    "name, expected",
    [("mobilenet_v1_025", 1 + 13 + 1), ("mobilenet_v2_035", 1 + 16 + 17 + 1 + 1)],  # stem, 1x1 convs, head, logits
)
def test_weight_decay_regularizes_convolutions_not_depthwise(graph, name, expected):
    _build(name, 5, 32, weight_decay=1e-4)
    losses = tf.get_collection(tf.GraphKeys.REGULARIZATION_LOSSES)
    assert len(losses) == expected
    assert not [loss for loss in losses if "depthwise" in loss.name]


def test_v1_small_inputs_pooling_and_squeeze(graph):
    images = tf.placeholder(tf.float32, [2, 32, 48, 3])
    with slim.arg_scope(mobilenet_v1.mobilenet_v1_arg_scope()):
        logits, end_points = mobilenet_v1.mobilenet_v1_025(images, num_classes=7, spatial_squeeze=False)
        assert end_points["AvgPool_1a"].shape.as_list() == [2, 1, 1, 256]  # 1x2 map, kernel reduced to 1x2
        assert logits.shape.as_list() == [2, 1, 1, 7]
        pooled, end_points = mobilenet_v1.mobilenet_v1_025(
            tf.placeholder(tf.float32, [2, None, None, 3]), num_classes=0, global_pool=True, reuse=True
        )
    assert pooled.shape.as_list() == [2, 1, 1, 256] and "global_pool" in end_points


def test_reuse_adds_no_variables(graph):
    _build("mobilenet_v2_035", 5, 32)
    count = len(tf.global_variables())
    _build("mobilenet_v2_035", 5, 32, reuse=True)
    assert len(tf.global_variables()) == count


def test_base_final_endpoint(graph):
    images = tf.placeholder(tf.float32, [1, 64, 64, 3])
    net, end_points = mobilenet_v1.mobilenet_v1_base(images, final_endpoint="Conv2d_3_depthwise", depth_multiplier=0.25)
    assert list(end_points)[-1] == "Conv2d_3_depthwise" and net.shape.as_list() == [1, 16, 16, 32]
    net, end_points = mobilenet_v2.mobilenet_v2_base(images, final_endpoint="layer_4", scope="V2")
    assert list(end_points)[-1] == "layer_4" and net.shape.as_list() == [1, 16, 16, 24]


@pytest.mark.parametrize(
    "name, base_fn",
    [("mobilenet_v1_025", mobilenet_v1.mobilenet_v1_base), ("mobilenet_v2_035", mobilenet_v2.mobilenet_v2_base)],
)
def test_base_alone_builds_the_published_body(graph, name, base_fn):
    spec = nets_factory.get_spec(name)
    with slim.arg_scope(spec.arg_scope_fn()):  # mobilenet_v1's BatchNorm scale follows the arg scope, as TF-Slim's
        base_fn(tf.placeholder(tf.float32, [1, 64, 64, 3]), depth_multiplier=spec.network_fn.keywords["depth_multiplier"])
    body = {n: s for n, s in spec.published_variables().items() if not _under(n, spec.classifier_scopes)}
    assert variable_shapes() == body


def test_bad_arguments_say_what_is_wrong(graph):
    images = tf.placeholder(tf.float32, [1, 64, 64, 3])
    with pytest.raises(ValueError, match="shape"):
        mobilenet_v1.mobilenet_v1(tf.placeholder(tf.float32, [64, 64, 3]))
    with pytest.raises(ValueError, match="shape"):
        mobilenet_v2.mobilenet_v2(tf.placeholder(tf.float32, [64, 64, 3]))
    with pytest.raises(ValueError, match="depth_multiplier"):
        mobilenet_v2.mobilenet_v2(images, depth_multiplier=0)
    with pytest.raises(ValueError, match="final_endpoint"):
        mobilenet_v1.mobilenet_v1_base(images, final_endpoint="Conv2d_99", scope="A")
    with pytest.raises(ValueError, match="final_endpoint"):
        mobilenet_v2.mobilenet_v2_base(images, final_endpoint="layer_99", scope="B")


def test_mobilenet_v1_025_trains_quickly_at_64px(graph):
    # The toolkit's demo net: a few steps on a fixed batch must drive the loss down.
    tf.set_random_seed(0)  # initial weights and dropout: the same run every time
    images, logits, _ = _build("mobilenet_v1_025", 3, 64, batch=6, is_training=True)
    labels = tf.constant([0, 1, 2, 0, 1, 2], tf.int64)
    loss = tf.losses.sparse_softmax_cross_entropy(labels, logits)
    with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
        train_op = tf.train.AdamOptimizer(0.01).minimize(loss)
    rng = np.random.RandomState(0)
    x = rng.uniform(-1, 1, (6, 64, 64, 3)).astype(np.float32)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        first = sess.run(loss, {images: x})
        for _ in range(15):
            sess.run(train_op, {images: x})
        last = sess.run(loss, {images: x})
    assert last < 0.5 * first
