"""inception_resnet_v2 and inception_v4 at a fine-tuning size: TF-Slim's wiring (golden logits), the
classifier variables that change shape, and training mode without classes.

Golden values: Logits and AuxLogits of TF-Slim's reference code (tensorflow/models research/slim/nets/
inception_resnet_v2.py @ 608bd221 under its arg scope; inception_v4.py @ 03cdc5fe under
inception_utils.inception_arg_scope; is_training=False, 5 classes) for golden_images() with
helpers.weights.named_values() loaded: the same weights must give the same outputs.
"""

from typing import NamedTuple

import numpy as np
import pytest
from helpers.netcheck import variable_shapes
from helpers.weights import load_values, named_values

from nets import nets_factory
from nets.compat import tf

pytestmark = pytest.mark.slow  # full-depth Inception-ResNet-v2 and Inception-v4 builds and runs

GOLDEN_SIZE, GOLDEN_CLASSES = 107, 5  # 107 px: the smallest input whose aux head sees a 5 x 5 map


class Case(NamedTuple):
    name: str
    scope: str
    logits: list
    aux_logits: list
    changed: tuple  # variables whose shape differs from the published checkpoint's at 107 px, 5 classes


CASES = [
    Case(
        "inception_resnet_v2",
        "InceptionResnetV2",
        logits=[
            [-10.272041, -2.8560803, 0.90480042, -11.225296, -10.725502],
            [-10.512483, -3.8381407, -0.075255893, -10.949909, -10.52497],
        ],
        aux_logits=[
            [-1.0992241, 4.8345823, -3.0316288, -3.2511632, -1.4627147],
            [-0.96816546, 4.8598151, -2.9898884, -3.3032181, -1.463964],
        ],
        changed=(
            "AuxLogits/Conv2d_2a_5x5/weights",  # its kernel spans the aux map: 1 x 1 at 107 px
            "AuxLogits/Logits/biases",
            "AuxLogits/Logits/weights",
            "Logits/Logits/biases",
            "Logits/Logits/weights",
        ),
    ),
    Case(
        "inception_v4",
        "InceptionV4",
        logits=[
            [0.43299434, 0.7548753, -0.20741397, 0.34747171, 0.093939759],
            [0.43321142, 0.76939034, -0.19329453, 0.34842029, 0.11777794],
        ],
        aux_logits=[
            [0.48504278, -2.1200409, 0.8581695, -0.077858187, -1.1692282],
            [0.47752842, -2.1042283, 0.82891899, -0.078944542, -1.1886425],
        ],
        changed=(
            "AuxLogits/Aux_logits/biases",
            "AuxLogits/Aux_logits/weights",
            "AuxLogits/Conv2d_2a/weights",  # its kernel spans the aux map: 1 x 1 at 107 px
            "Logits/Logits/biases",
            "Logits/Logits/weights",
        ),
    ),
]


def golden_images(size: int = GOLDEN_SIZE) -> np.ndarray:
    return np.random.default_rng(0).uniform(-1.0, 1.0, (2, size, size, 3)).astype(np.float32)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_same_weights_give_the_reference_logits_at_a_fine_tuning_size(graph, case):
    """107 px, 5 classes: only the classifier variables change shape, and the wiring is TF-Slim's."""
    network_fn = nets_factory.get_network_fn(case.name, num_classes=GOLDEN_CLASSES)
    logits, end_points = network_fn(tf.constant(golden_images()))

    published = nets_factory.get_spec(case.name).published_variables()
    built = variable_shapes(graph)
    assert set(built) == set(published)
    changed = sorted(name for name in built if built[name] != published[name])
    assert changed == [f"{case.scope}/{name}" for name in case.changed]
    assert built[f"{case.scope}/Logits/Logits/weights"] == (1536, GOLDEN_CLASSES)

    with tf.Session() as session:
        load_values(session, named_values(tf.global_variables()))
        got_logits, got_aux = session.run([logits, end_points["AuxLogits"]])
    np.testing.assert_allclose(got_logits, case.logits, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got_aux, case.aux_logits, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_training_mode_without_classes_gives_features_and_updates_batch_norm(graph, case):
    """num_classes=0, any image size, is_training=True: pooled features, BatchNorm moving averages update."""
    network_fn = nets_factory.get_network_fn(case.name, num_classes=0, is_training=True)
    images = tf.placeholder(tf.float32, [None, None, None, 3])
    features, end_points = network_fn(images)
    assert features is end_points["global_pool"]
    assert not {"Logits", "Predictions", "AuxLogits", "PreLogitsFlatten"} & set(end_points)
    assert not [name for name in variable_shapes(graph) if "Logits" in name]

    moving_means = [v for v in tf.global_variables() if v.op.name.endswith("/moving_mean")]
    update_ops = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
    assert len(update_ops) == 2 * len(moving_means)  # a mean and a variance update per BatchNorm
    (stem_mean,) = [v for v in moving_means if v.op.name == f"{case.scope}/Conv2d_1a_3x3/BatchNorm/moving_mean"]
    with tf.Session() as session:
        session.run(tf.global_variables_initializer())
        before = session.run(stem_mean)
        got, _ = session.run([features, update_ops], {images: golden_images(75)})
        after = session.run(stem_mean)
    assert got.shape == (2, 1, 1, 1536)
    assert np.all(before == 0) and np.any(after != 0)
