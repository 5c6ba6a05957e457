"""Helpers the zoo tests share: a graph's variables as {name: shape}, the published-size build, and the
deterministic weights and images that golden-value tests feed both TF-Slim's reference build and ours."""

import zlib

import numpy as np

from nets import nets_factory
from nets.compat import tf


def variable_shapes(graph: tf.Graph | None = None) -> dict[str, tuple[int, ...]]:
    """Every global variable of `graph` (default: the default graph) by name; no two may share a name."""
    variables = (graph or tf.get_default_graph()).get_collection(tf.GraphKeys.GLOBAL_VARIABLES)
    shapes = {v.op.name: tuple(v.shape.as_list()) for v in variables}
    assert len(shapes) == len(variables), "two variables share a name"
    return shapes


def build_published(name: str) -> tuple[tf.Graph, tf.Tensor, dict]:
    """The net as the factory builds it for its published checkpoint (its size and classes, eval mode),
    from a batch-1 placeholder that is never run: (graph, logits, end_points)."""
    spec = nets_factory.get_spec(name)
    with tf.Graph().as_default() as graph:
        network_fn = nets_factory.get_network_fn(name, num_classes=spec.num_classes)
        logits, end_points = network_fn(tf.placeholder(tf.float32, [1, spec.image_size, spec.image_size, 3]))
    return graph, logits, end_points


def deterministic_values(variables: list) -> dict:
    """A fixed value per variable, derived from its name only: He-scaled weights (depthwise ones by their
    kernel area), BatchNorm gammas and variances near 1, other biases and statistics near 0."""
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
