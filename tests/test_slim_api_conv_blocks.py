"""nets.mobilenet.conv_blocks.expanded_conv: TF-Slim's scopes and end points; under MobileNet v2's scope it is the
zoo's layer (same variables, same output)."""

import numpy as np
import pytest

from nets import mobilenet_v2 as zoo_v2
from nets.compat import slim, tf
from nets.mobilenet import conv_blocks, mobilenet_v2
from tests.helpers.netcheck import variable_shapes


def _v2_defaults():
    return (slim.arg_scope([slim.conv2d, slim.separable_conv2d], activation_fn=tf.nn.relu6),
            slim.arg_scope([conv_blocks.expanded_conv], normalizer_fn=slim.batch_norm))


def test_expanded_conv_is_mobilenet_v2s_layer(graph):
    images = tf.placeholder(tf.float32, [1, 32, 32, 3])
    with slim.arg_scope(mobilenet_v2.training_scope(is_training=False)):
        _, end_points = zoo_v2.mobilenet_v2_base(images, final_endpoint="layer_3", scope="MobilenetV2")
        known = variable_shapes()
        activations, block_points = end_points["layer_2"], {}
        first, second = _v2_defaults()
        with first, second, tf.variable_scope("MobilenetV2", reuse=True):
            net = conv_blocks.expanded_conv(activations, 24, stride=2, endpoints=block_points,
                                            scope="expanded_conv_1")
    assert variable_shapes() == known  # the same variables, reused
    assert set(block_points) == {"expansion_output", "depthwise_output", "projection_output"}
    assert block_points["expansion_output"].shape.as_list() == [1, 16, 16, 96]  # 16 x 6
    with tf.Session() as session:
        session.run(tf.global_variables_initializer())
        a, b = session.run([end_points["layer_3"], net], {images: np.random.RandomState(4).rand(1, 32, 32, 3)})
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_no_expansion_when_it_is_not_wider_and_residual(graph):
    net = tf.placeholder(tf.float32, [1, 8, 8, 16])
    first, second = _v2_defaults()
    with first, second:
        out = conv_blocks.expanded_conv(net, 16, expansion_size=conv_blocks.expand_input_by_factor(1, divisible_by=1),
                                        scope="block")
    assert "block/expand/weights" not in variable_shapes()
    assert variable_shapes()["block/depthwise/depthwise_weights"] == (3, 3, 16, 1)
    assert any(op.type in ("Add", "AddV2") and op.name.startswith("block/") for op in graph.get_operations())
    assert out.shape.as_list() == [1, 8, 8, 16]
    with pytest.raises(ValueError, match="split"):
        conv_blocks.expanded_conv(net, 16, split_expansion=2, scope="split")
