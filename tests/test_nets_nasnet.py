"""NASNet-A and PNASNet-5: TF-Slim's wiring (golden logits), the training-mode aux head, the drop-path
schedule and its total steps, frozen scopes, and the manifest of a net without a top scope.

Golden values: TF-Slim's reference code (tensorflow/models research/slim/nets/nasnet/nasnet.py @ 36179732,
pnasnet.py @ 64f40ce1, nasnet_utils.py in its later upstream version; each under its own arg scope,
5 classes) for golden_images(80) with deterministic_values() loaded: Logits with
is_training=False, AuxLogits with is_training=True at global step 0 (drop path keeps everything; BatchNorm
uses the batch's statistics). The same weights must give the same outputs.
"""

import dataclasses
import functools
import zlib
from typing import NamedTuple

import numpy as np
import pytest
from helpers.netcheck import variable_shapes

from finetune.train import graph as train_graph
from nets import _cell_net, nasnet, nets_factory, pnasnet
from nets.compat import slim, tf

GOLDEN_SIZE, GOLDEN_CLASSES = 80, 5  # 80 px: the aux head's input is 5 x 5, TF-Slim's fixed aux pool


def deterministic_values(variables: list) -> dict:
    """A fixed value per variable, derived from its name only: He-scaled weights (depthwise ones by their
    kernel area), BatchNorm gammas and variances near 1, other biases and statistics near 0; so activations
    keep their scale through the cells and the logits depend on the image."""
    values = {}
    for variable in variables:
        name, shape = variable.op.name, variable.shape.as_list()
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        if name.endswith(("/weights", "/pointwise_weights")):
            value = rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[:-1]))
        elif name.endswith("/depthwise_weights"):  # [h, w, in, multiplier]: each output sees h * w inputs
            value = rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[:2]))
        elif name.endswith(("/moving_variance", "/gamma")):
            value = rng.uniform(0.5, 1.5, shape)
        else:  # biases, beta, moving_mean
            value = 0.1 * rng.standard_normal(shape)
        values[variable] = value.astype(np.float32)
    return values


def load_deterministic_values(session, variables: list) -> None:
    """Initialize `variables` with deterministic_values() in one run (feeding each initializer's value)."""
    values = deterministic_values(variables)
    session.run([v.initializer for v in values], {v.initializer.inputs[1]: value for v, value in values.items()})


def golden_images(size: int) -> np.ndarray:
    """Two seeded random images in [-1, 1] (inception preprocessing's range): [2, size, size, 3]."""
    return np.random.default_rng(0).uniform(-1.0, 1.0, (2, size, size, 3)).astype(np.float32)


class Golden(NamedTuple):
    logits: list
    aux_logits: list


GOLDEN = {
    "nasnet_mobile": Golden(
        logits=[
            [-409.17062, -509.2089, 2523.7244, -4965.969, 1562.4296],
            [-314.72543, -442.8655, 2687.203, -4583.778, 917.82336],
        ],
        aux_logits=[
            [-0.39176548, 1.4463527, -0.06014461, -0.04751945, -0.44579563],
            [-1.1562489, -0.40244287, -0.83693635, 0.05288416, 2.425626],
        ],
    ),
    "nasnet_large": Golden(
        logits=[
            [-136011.1, 168316.97, 82665.27, -589628.1, 48073.26],
            [-126085.57, 168970.97, 82773.99, -580995.2, 49979.746],
        ],
        aux_logits=[
            [-1.0396118, 0.8503001, -0.06460341, 0.54490364, -0.17889786],
            [0.76992583, -0.838434, 1.6082003, -0.3341142, 1.5205631],
        ],
    ),
    "pnasnet_mobile": Golden(
        logits=[
            [2770.9802, 48599.816, 41948.973, 43571.195, 38289.406],
            [13960.582, 46176.453, 43984.934, 50037.29, 38203.477],
        ],
        aux_logits=[
            [1.2987422, 1.3012862, -2.198326, -0.2416541, 0.09734794],
            [-1.2239987, -0.21824989, -1.0775757, 2.0480087, -1.1967125],
        ],
    ),
    "pnasnet_large": Golden(
        logits=[
            [-9.3926330e06, 1.3086206e07, 1.0902033e07, 9.4612150e06, 8.0975780e06],
            [-8.4896410e06, 1.3795332e07, 1.0391263e07, 9.2178500e06, 8.3423440e06],
        ],
        aux_logits=[
            [-1.0710154, 0.07813491, -0.66277516, -0.22150713, 1.7176654],
            [-0.29460293, 0.4960872, -0.42442456, 0.59541947, -0.1952367],
        ],
    ),
}
LARGE = ("nasnet_large", "pnasnet_large")
NAMES = [pytest.param(name, marks=pytest.mark.slow) for name in GOLDEN]  # two full builds each

# A NASNet-A Large of three cells and few filters: the large config's drop path on a graph that builds fast.
TINY = dataclasses.replace(nasnet.LARGE_CONFIG, num_cells=3, num_conv_filters=8, stem_multiplier=1.0,
                           drop_path_keep_prob=0.5)
TINY_NET = "tiny_nasnet_test"


@pytest.mark.parametrize("name", NAMES)
def test_same_weights_give_the_reference_logits_and_aux_logits(graph, name):
    """Training build (aux head, batch statistics) and evaluation build on the same variables, 80 px, 5 classes."""
    images = tf.constant(golden_images(GOLDEN_SIZE))
    _, training_end_points = nets_factory.get_network_fn(name, GOLDEN_CLASSES, is_training=True)(images)
    with tf.variable_scope(tf.get_variable_scope(), reuse=True):
        logits, end_points = nets_factory.get_network_fn(name, GOLDEN_CLASSES)(images)
    assert "AuxLogits" not in end_points

    spec = nets_factory.get_spec(name)
    published, built = spec.published_variables(), variable_shapes(graph)
    built.pop("global_step", None)  # the drop-path schedule's step (large nets)
    assert set(built) == set(published)
    changed = sorted(n for n in built if built[n] != published[n])
    aux = spec.classifier_scopes[1]
    # Only the classifiers change: the aux head's 'Conv' spans its (now 1 x 1) map.
    assert changed == sorted([f"{aux}/aux_logits/Conv/weights", f"{aux}/aux_logits/FC/biases",
                              f"{aux}/aux_logits/FC/weights", "final_layer/FC/biases", "final_layer/FC/weights"])

    with tf.Session() as session:
        session.run(tf.global_variables_initializer())
        load_deterministic_values(session, [v for v in tf.global_variables() if v.op.name != "global_step"])
        got_logits, got_aux = session.run([logits, training_end_points["AuxLogits"]])
    np.testing.assert_allclose(got_logits, GOLDEN[name].logits, rtol=1e-4, atol=1e-5)
    # The aux head runs in training mode: BatchNorm divides by the batch statistics of two images, which turns
    # the convolution kernels' float rounding (oneDNN picks them per CPU) into ~1e-4 of the aux logits' scale
    # (1.8e-4 on this AMD EPYC, against values up to 2.4); a wiring mistake moves them by their whole scale.
    aux_scale = float(np.abs(GOLDEN[name].aux_logits).max())
    np.testing.assert_allclose(got_aux, GOLDEN[name].aux_logits, rtol=0, atol=1e-3 * aux_scale)


@pytest.mark.parametrize(
    "name, cells, aux, features",
    [("nasnet_mobile", 12, "aux_7", 1056), ("nasnet_large", 18, "aux_11", 4032),
     ("pnasnet_mobile", 9, "aux_5", 1080), ("pnasnet_large", 12, "aux_7", 4320)],
)
def test_manifest_and_layout(name, cells, aux, features):
    spec = nets_factory.get_spec(name)
    size = 331 if name in LARGE else 224
    assert (spec.image_size, spec.network_fn.default_image_size, spec.num_classes) == (size, size, 1001)
    assert (spec.preprocessing, spec.scope, spec.classifier_scopes) == ("inception", "", ("final_layer", aux))
    published = spec.published_variables()
    assert published["final_layer/FC/weights"] == (features, 1001)
    assert f"cell_{cells - 1}/1x1/weights" in published and f"cell_{cells}/1x1/weights" not in published
    assert {n.split("/")[0] for n in published} <= {"conv0", "conv0_bn", "cell_stem_0", "cell_stem_1", "final_layer",
                                                    aux, *(f"cell_{i}" for i in range(cells)),
                                                    "reduction_cell_0", "reduction_cell_1"}


def test_pnasnet_mobile_odd_filters_go_to_the_second_path():
    """27 filters at cell_stem_1: TF-Slim's later factorized reduction gives path2 the odd one (13 + 14)."""
    published = nets_factory.get_spec("pnasnet_mobile").published_variables()
    assert published["cell_stem_1/path1_conv/weights"] == (1, 1, 32, 13)
    assert published["cell_stem_1/path2_conv/weights"] == (1, 1, 32, 14)
    assert published["cell_stem_1/final_path_bn/gamma"] == (27,)


def test_layouts_follow_tf_slim():
    """Reductions at num_cells/3 and 2*num_cells/3; NASNet's previous state skips the reduction cell only
    with skip_reduction_layer_input (large), PNASNet's cells at the reductions stride."""
    mobile, large = nasnet.nasnet_layout(nasnet.MOBILE_CONFIG), nasnet.nasnet_layout(nasnet.LARGE_CONFIG)
    assert [s.scope for s in mobile[:7]] == ["cell_stem_0", "cell_stem_1", "cell_0", "cell_1", "cell_2", "cell_3",
                                             "reduction_cell_0"]
    assert len(mobile) == 12 + 4 and len(large) == 18 + 4
    outputs = lambda layout: [None, "conv0", *(s.scope for s in layout)]  # noqa: E731
    by_scope = {s.scope: s for s in mobile}
    assert outputs(mobile)[by_scope["cell_4"].prev] == "cell_3"  # the cell before: reduction_cell_0 is its input
    assert outputs(large)[{s.scope: s for s in large}["cell_6"].prev] == "cell_4"
    assert [(s.filter_scaling, s.stride) for s in mobile if s.scope in ("cell_stem_0", "cell_3", "reduction_cell_0",
                                                                         "cell_8", "reduction_cell_1")] == [
        (0.25, 2), (1.0, 1), (2.0, 2), (4.0, 2), (4.0, 1)]
    pnas = pnasnet.pnasnet_layout(pnasnet.MOBILE_CONFIG)
    assert [(s.scope, s.stride, s.filter_scaling) for s in pnas if s.stride == 2] == [
        ("cell_stem_0", 2, 0.25), ("cell_stem_1", 2, 0.5), ("cell_3", 2, 2.0), ("cell_6", 2, 4.0)]
    assert [s.prev for s in pnas] == list(range(len(pnas)))  # outputs[i]: two cells back, always


def test_drop_path_schedule():
    """keep = 1 - progress * (cell + 1) / cells * (1 - drop_path_keep_prob), progress = min(1, step / total)."""
    with tf.Graph().as_default():
        step = tf.placeholder(tf.int64, [])
        keeps = _cell_net.drop_path_keep_probs(TINY, 4, current_step=step, total_training_steps=100)
        assert _cell_net.drop_path_keep_probs(nasnet.MOBILE_CONFIG, 4) == [None] * 4  # keep 1.0: none, no global step
        assert tf.train.get_global_step() is None
        with tf.Session() as session:
            got = {s: session.run(keeps, {step: s}) for s in (0, 50, 100, 1000)}
    np.testing.assert_allclose(got[0], [1.0] * 4)
    np.testing.assert_allclose(got[50], [1 - 0.5 * (i + 1) / 4 * 0.5 for i in range(4)], rtol=1e-6)
    np.testing.assert_allclose(got[100], [0.875, 0.75, 0.625, 0.5], rtol=1e-6)
    np.testing.assert_allclose(got[1000], got[100])


@pytest.fixture
def tiny_net(monkeypatch):
    """TINY registered as a net (the factory and the training code take registered names)."""
    network_fn = functools.update_wrapper(functools.partial(nasnet.nasnet_large, config=TINY), nasnet.nasnet_large)
    spec = dataclasses.replace(nets_factory.get_spec("nasnet_large"), name=TINY_NET, network_fn=network_fn,
                               classifier_scopes=("final_layer", f"aux_{_cell_net.aux_cell(TINY)}"))
    monkeypatch.setitem(nets_factory._REGISTRY, TINY_NET, spec)
    return spec


def _same_image_batch(size: int = 64, batch: int = 8) -> tf.Tensor:
    return tf.constant(np.repeat(golden_images(size)[:1], batch, axis=0))


def _rows_identical(features: np.ndarray) -> bool:
    """Every row equals the first up to float rounding: oneDNN's kernels on some CPUs (this AMD EPYC) give copies
    of one image up to ~1e-4 apart in a batch (after training-mode BatchNorm); a dropped path changes a row by the path's whole contribution."""
    scale = float(np.abs(features).max())
    return bool(np.allclose(features, features[:1], rtol=1e-3, atol=1e-3 * scale))


@pytest.mark.slow
def test_factory_passes_the_runs_total_steps_to_the_drop_path(graph, tiny_net):
    """Eight copies of one image: per-example drop path makes their features differ at global step 100 of a
    100-step run (progress 1), not at step 0. With TF-Slim's default 250000 steps, step 100 would barely drop."""
    step = tf.train.get_or_create_global_step()
    network_fn = nets_factory.get_network_fn(TINY_NET, 3, is_training=True, total_training_steps=100)
    _, end_points = network_fn(_same_image_batch())
    drop_paths = {op.name.split("/drop_path/")[0] for op in graph.get_operations() if "/drop_path/" in op.name}
    assert drop_paths and all(op.startswith(("cell_", "reduction_cell_")) for op in drop_paths)
    with tf.Session() as session:
        session.run(tf.global_variables_initializer())
        at_start = session.run(end_points["global_pool"])
        session.run(step.assign(100))
        at_end = session.run(end_points["global_pool"])
    assert _rows_identical(at_start) and not _rows_identical(at_end)


@pytest.mark.parametrize("trainable, dropped", [("logits", False), ("all", True)])
@pytest.mark.slow
def test_drop_path_is_off_in_frozen_scopes(graph, tiny_net, trainable, dropped):
    """train_graph.build_logits: cells outside the trainable scopes run drop path (like dropout) in inference mode."""
    step = tf.train.get_or_create_global_step()
    scopes = train_graph.trainable_scopes(tiny_net, (trainable,))
    _, end_points = train_graph.build_logits(tiny_net, _same_image_batch(), 3, scopes, weight_decay=0.0,
                                             train_bn_stats=False, total_steps=100)
    with tf.Session() as session:
        session.run(tf.global_variables_initializer())
        session.run(step.assign(100))
        features = session.run(end_points["global_pool"])
    assert _rows_identical(features) is not dropped


@pytest.mark.slow
def test_trainable_scopes_of_a_net_without_top_scope(graph, tiny_net):
    with slim.arg_scope(nasnet.nasnet_arg_scope()):
        nasnet.nasnet_large(_same_image_batch(), 3, is_training=False, config=TINY)
    variables = tf.trainable_variables()
    assert train_graph.trainable_scopes(tiny_net, ("logits",)) == ("final_layer", "aux_1")
    everything = train_graph.trainable_scopes(tiny_net, ("all",))
    assert train_graph.select_trainable(variables, everything, tiny_net.scope) == variables
    scopes = train_graph.trainable_scopes(tiny_net, ("cell_2", "final_layer"))
    assert scopes == ("cell_2", "final_layer")
    chosen = {v.op.name.split("/")[0] for v in train_graph.select_trainable(variables, scopes, tiny_net.scope)}
    assert chosen == {"cell_2", "final_layer"}


@pytest.mark.slow
def test_training_mode_without_classes_gives_features_and_updates_batch_norm(graph):
    images = tf.constant(golden_images(64))
    with slim.arg_scope(nasnet.nasnet_arg_scope()):
        features, end_points = nasnet.nasnet_large(images, 0, is_training=True, config=TINY,
                                                   current_step=tf.constant(0))
    assert features is end_points["global_pool"] and features.shape.as_list() == [2, 6 * 8 * 4]
    assert not {"Logits", "Predictions", "AuxLogits"} & set(end_points)
    assert not [name for name in variable_shapes(graph) if name.startswith(("final_layer", "aux_"))]
    (mean,) = [v for v in tf.global_variables() if v.op.name == "conv0_bn/moving_mean"]
    update_ops = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
    assert len(update_ops) == 2 * len([v for v in tf.global_variables() if v.op.name.endswith("/moving_mean")])
    with tf.Session() as session:
        session.run(tf.global_variables_initializer())
        session.run(update_ops)
        assert np.any(session.run(mean) != 0)


def test_images_need_a_static_size(graph):
    with pytest.raises(ValueError, match="static height and width"):
        nasnet.nasnet_mobile(tf.placeholder(tf.float32, [1, None, None, 3]), 5, is_training=False)
