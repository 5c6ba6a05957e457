"""Helpers the zoo tests share: a graph's variables as {name: shape}, the published-size build."""

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
