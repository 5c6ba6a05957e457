"""nets/inception_resnet_v2.py: the published checkpoint's variables, fine-tuning sizes, wiring, modes.

Only one build at 299 px (a placeholder, never run); everything that runs uses 75-107 px images.
"""

import zlib

import numpy as np
import pytest

from nets import _inception_common, nets_factory
from nets.compat import slim, tf
from nets.inception_resnet_v2 import inception_resnet_v2_arg_scope, inception_resnet_v2_base

NAME = "inception_resnet_v2"
SCOPE = "InceptionResnetV2"
GOLDEN_SIZE, GOLDEN_CLASSES = 107, 5  # 107 px: the smallest input whose aux head sees a 5 x 5 map

# Logits and AuxLogits of TF-Slim's reference code (tensorflow/models research/slim/nets/
# inception_resnet_v2.py @ 608bd221, under its arg scope, is_training=False, 5 classes) for
# golden_images() with deterministic_values() loaded: the same weights must give the same outputs.
GOLDEN_LOGITS = [
    [-10.272041, -2.8560803, 0.90480042, -11.225296, -10.725502],
    [-10.512483, -3.8381407, -0.075255893, -10.949909, -10.52497],
]
GOLDEN_AUX_LOGITS = [
    [-1.0992241, 4.8345823, -3.0316288, -3.2511632, -1.4627147],
    [-0.96816546, 4.8598151, -2.9898884, -3.3032181, -1.463964],
]


def deterministic_values(variables: list) -> dict:
    """A fixed value per variable, derived from its name only: He-scaled weights, BN stats near (0, 1)."""
    values = {}
    for variable in variables:
        name, shape = variable.op.name, variable.shape.as_list()
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        if name.endswith("/weights"):
            value = rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[:-1]))
        elif name.endswith("/moving_variance"):
            value = rng.uniform(0.5, 1.5, shape)
        else:  # biases, beta, moving_mean
            value = 0.1 * rng.standard_normal(shape)
        values[variable] = value.astype(np.float32)
    return values


def load_deterministic_values(session, variables: list) -> None:
    """Initialize `variables` with deterministic_values() in one run (feeding each initializer's value)."""
    values = deterministic_values(variables)
    session.run([v.initializer for v in values], {v.initializer.inputs[1]: value for v, value in values.items()})


def golden_images(size: int = GOLDEN_SIZE) -> np.ndarray:
    return np.random.default_rng(0).uniform(-1.0, 1.0, (2, size, size, 3)).astype(np.float32)


def _variables(graph: tf.Graph) -> dict:
    return {v.op.name: tuple(v.shape.as_list()) for v in graph.get_collection(tf.GraphKeys.GLOBAL_VARIABLES)}


@pytest.fixture(scope="module")
def published_build():
    """The net as the factory builds it for the published checkpoint: 299 px, 1001 classes, eval mode."""
    with tf.Graph().as_default() as graph:
        network_fn = nets_factory.get_network_fn(NAME, num_classes=1001)
        logits, end_points = network_fn(tf.placeholder(tf.float32, [1, 299, 299, 3]))
    return graph, logits, end_points


def test_variables_are_the_published_checkpoints(published_build):
    graph, _, _ = published_build
    published = nets_factory.get_spec(NAME).published_variables()
    built = _variables(graph)
    assert len(built) == len(published) == 908
    assert sorted(set(built) - set(published)) == [] and sorted(set(published) - set(built)) == []
    assert built == published  # shapes too


def test_end_points_at_299(published_build):
    _, logits, end_points = published_build
    shapes = {name: tensor.shape.as_list() for name, tensor in end_points.items()}
    assert shapes == {
        "Conv2d_1a_3x3": [1, 149, 149, 32],
        "Conv2d_2a_3x3": [1, 147, 147, 32],
        "Conv2d_2b_3x3": [1, 147, 147, 64],
        "MaxPool_3a_3x3": [1, 73, 73, 64],
        "Conv2d_3b_1x1": [1, 73, 73, 80],
        "Conv2d_4a_3x3": [1, 71, 71, 192],
        "MaxPool_5a_3x3": [1, 35, 35, 192],
        "Mixed_5b": [1, 35, 35, 320],
        "Mixed_6a": [1, 17, 17, 1088],
        "PreAuxLogits": [1, 17, 17, 1088],
        "Mixed_7a": [1, 8, 8, 2080],
        "Conv2d_7b_1x1": [1, 8, 8, 1536],
        "AuxLogits": [1, 1001],
        "global_pool": [1, 1, 1, 1536],
        "PreLogitsFlatten": [1, 1536],
        "Logits": [1, 1001],
        "Predictions": [1, 1001],
    }
    assert logits is end_points["Logits"]
    assert end_points["Predictions"].op.name == f"{SCOPE}/Logits/Predictions"


def test_eval_mode_has_no_batch_norm_updates(published_build):
    graph, _, _ = published_build
    assert graph.get_collection(tf.GraphKeys.UPDATE_OPS) == []


def test_manifest():
    spec = nets_factory.get_spec(NAME)
    assert (spec.image_size, spec.num_classes, spec.label_offset, spec.preprocessing) == (299, 1001, 1, "inception")
    assert spec.classifier_scopes == (f"{SCOPE}/Logits", f"{SCOPE}/AuxLogits")
    assert (spec.logits_end_point, spec.predictions_end_point) == ("Logits", "Predictions")
    assert nets_factory.get_network_fn(NAME, 10).default_image_size == 299


def test_same_weights_give_the_reference_logits_at_a_fine_tuning_size(graph):
    """107 px, 5 classes: only the classifier variables change shape, and the wiring is TF-Slim's."""
    network_fn = nets_factory.get_network_fn(NAME, num_classes=GOLDEN_CLASSES)
    logits, end_points = network_fn(tf.constant(golden_images()))

    published = nets_factory.get_spec(NAME).published_variables()
    built = _variables(graph)
    assert set(built) == set(published)
    changed = sorted(name for name in built if built[name] != published[name])
    assert changed == [
        f"{SCOPE}/AuxLogits/Conv2d_2a_5x5/weights",  # its kernel spans the aux map: 1 x 1 at 107 px
        f"{SCOPE}/AuxLogits/Logits/biases",
        f"{SCOPE}/AuxLogits/Logits/weights",
        f"{SCOPE}/Logits/Logits/biases",
        f"{SCOPE}/Logits/Logits/weights",
    ]
    assert built[f"{SCOPE}/Logits/Logits/weights"] == (1536, GOLDEN_CLASSES)

    with tf.Session() as session:
        load_deterministic_values(session, tf.global_variables())
        got_logits, got_aux = session.run([logits, end_points["AuxLogits"]])
    np.testing.assert_allclose(got_logits, GOLDEN_LOGITS, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got_aux, GOLDEN_AUX_LOGITS, rtol=1e-4, atol=1e-5)


def test_training_mode_without_classes_gives_features_and_updates_batch_norm(graph):
    """num_classes=0, any image size, is_training=True: pooled features, BatchNorm moving averages update."""
    network_fn = nets_factory.get_network_fn(NAME, num_classes=0, is_training=True)
    images = tf.placeholder(tf.float32, [None, None, None, 3])
    features, end_points = network_fn(images)
    assert features is end_points["global_pool"]
    assert not {"Logits", "Predictions", "AuxLogits", "PreLogitsFlatten"} & set(end_points)
    assert not [name for name in _variables(graph) if "Logits" in name]

    moving_means = [v for v in tf.global_variables() if v.op.name.endswith("/moving_mean")]
    update_ops = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
    assert len(update_ops) == 2 * len(moving_means)  # a mean and a variance update per BatchNorm
    (stem_mean,) = [v for v in moving_means if v.op.name == f"{SCOPE}/Conv2d_1a_3x3/BatchNorm/moving_mean"]
    with tf.Session() as session:
        session.run(tf.global_variables_initializer())
        before = session.run(stem_mean)
        got, _ = session.run([features, update_ops], {images: golden_images(75)})
        after = session.run(stem_mean)
    assert got.shape == (2, 1, 1, 1536)
    assert np.all(before == 0) and np.any(after != 0)


def test_base_stops_at_the_final_endpoint_and_supports_output_stride_8(graph):
    with slim.arg_scope(inception_resnet_v2_arg_scope()):
        net, end_points = inception_resnet_v2_base(
            tf.placeholder(tf.float32, [1, 64, 64, 3]),
            final_endpoint="PreAuxLogits",
            output_stride=8,
            align_feature_maps=True,
        )
    assert list(end_points)[-1] == "PreAuxLogits" and net is end_points["PreAuxLogits"]
    assert net.shape.as_list() == [1, 8, 8, 1088]  # SAME padding, stride 8
    published = nets_factory.get_spec(NAME).published_variables()
    built = _variables(graph)
    assert built and all(published[name] == shape for name, shape in built.items())
    assert not any(name.startswith(f"{SCOPE}/Mixed_7a") for name in built)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"final_endpoint": "Mixed_9z"}, "Unknown final_endpoint 'Mixed_9z'"),
        ({"output_stride": 4}, "output_stride must be 8 or 16"),
        ({"output_stride": 8}, "only defined up to final_endpoint='PreAuxLogits'"),
    ],
)
def test_base_rejects_bad_arguments(graph, kwargs, message):
    with pytest.raises(ValueError, match=message):
        inception_resnet_v2_base(tf.placeholder(tf.float32, [1, 75, 75, 3]), **kwargs)
    assert _variables(graph) == {}


def test_aux_head_needs_a_static_size(graph):
    with pytest.raises(ValueError, match="create_aux_logits=False"):
        _inception_common.aux_logits(
            tf.placeholder(tf.float32, [1, None, None, 1088]), 5, _inception_common.AuxScopes("P", "C", "L")
        )
