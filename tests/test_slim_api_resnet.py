"""resnet_v1's body written here (for TF-Slim's store_non_strided_activations): tf_slim's variables, end points and
outputs for the same weights, at full density and with output_stride; the non-strided end points."""

import numpy as np
import pytest
from tf_slim.nets import resnet_v1 as slim_resnet_v1

from nets import resnet_utils, resnet_v1
from nets.compat import slim, tf
from tests.helpers.netcheck import variable_shapes


def _blocks() -> list:
    return [resnet_v1.resnet_v1_block("block1", base_depth=2, num_units=2, stride=2),
            resnet_v1.resnet_v1_block("block2", base_depth=4, num_units=2, stride=2),
            resnet_v1.resnet_v1_block("block3", base_depth=4, num_units=1, stride=1)]


@pytest.mark.parametrize("output_stride", [None, 8])
def test_body_equals_tf_slims(graph, output_stride):
    images = tf.placeholder(tf.float32, [2, 64, 64, 3])
    with slim.arg_scope(resnet_utils.resnet_arg_scope()):
        reference, reference_points = slim_resnet_v1.resnet_v1(images, _blocks(), 3, is_training=False,
                                                               output_stride=output_stride, scope="net")
        reference_variables = variable_shapes()
        with tf.variable_scope(tf.get_variable_scope(), reuse=True):
            logits, end_points = resnet_v1.resnet_v1(images, _blocks(), 3, is_training=False, spatial_squeeze=False,
                                                     output_stride=output_stride, scope="net")
    assert variable_shapes() == reference_variables
    assert set(reference_points) <= set(end_points)
    for name in ("net/block1", "net/block2/unit_1/bottleneck_v1", "net/conv1"):
        assert end_points[name].shape.as_list() == reference_points[name].shape.as_list()
    with tf.Session() as session:
        session.run(tf.global_variables_initializer())
        a, b = session.run([reference, logits], {images: np.random.RandomState(3).rand(2, 64, 64, 3)})
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_store_non_strided_activations_keeps_dense_end_points(graph):
    images = tf.placeholder(tf.float32, [1, 64, 64, 3])
    with slim.arg_scope(resnet_utils.resnet_arg_scope()):
        net, dense = resnet_v1.resnet_v1(images, _blocks(), global_pool=False, store_non_strided_activations=True,
                                         scope="dense")
        plain_net, plain = resnet_v1.resnet_v1(images, _blocks(), global_pool=False, scope="plain")
    assert plain["plain/block1"].shape.as_list() == [1, 8, 8, 8]
    assert dense["dense/block1"].shape.as_list() == [1, 16, 16, 8]  # before the block's stride
    assert net.shape.as_list() == plain_net.shape.as_list() == [1, 4, 4, 16]


def test_output_stride_that_cannot_be_reached_refuses(graph):
    with pytest.raises(ValueError, match="output_stride"):
        resnet_v1.resnet_v1(tf.placeholder(tf.float32, [1, 64, 64, 3]), _blocks(), output_stride=6)
