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


# One quick net per family: with `-m "not slow"` every family is still built; the rest of the zoo
# (deep ResNets, Inceptions, wide MobileNets) runs in the whole suite.
QUICK_NETS = {"mobilenet_v1_025", "mobilenet_v2_035", "mobilenet_v3_small", "mobilenet_edgetpu_075", "vgg_a",
              "inception_v1", "resnet_v1_50", "resnet_v2_50", "alexnet_v2", "overfeat"}


def zoo_params(names=None, also_slow=()) -> list:
    """pytest params over the zoo (or `names`), the nets outside QUICK_NETS (or in `also_slow`) marked slow."""
    import pytest

    return [pytest.param(name, marks=() if name in QUICK_NETS and name not in also_slow else pytest.mark.slow)
            for name in (names if names is not None else nets_factory.specs())]

# Nets whose published lists hold an auxiliary head that TF-Slim builds only in training mode.
AUX_IN_TRAINING_ONLY = {"nasnet_mobile", "nasnet_large", "pnasnet_mobile", "pnasnet_large"}
