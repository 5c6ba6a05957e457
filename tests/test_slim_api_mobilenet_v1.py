"""mobilenet_v1_base's TF-Slim options: output_stride, use_explicit_padding, BatchNorm scale from the arg scope."""

import numpy as np
import pytest

from nets import mobilenet_v1
from nets.compat import slim, tf
from tests.helpers.netcheck import variable_shapes


@pytest.mark.parametrize("output_stride, size", [(None, 7), (32, 7), (16, 14), (8, 28)])
def test_output_stride_caps_the_stride_without_new_variables(graph, output_stride, size):
    images = tf.placeholder(tf.float32, [1, 224, 224, 3])
    with slim.arg_scope(mobilenet_v1.mobilenet_v1_arg_scope()):
        net, end_points = mobilenet_v1.mobilenet_v1_base(images, depth_multiplier=0.25, output_stride=output_stride)
    assert net.shape.as_list() == [1, size, size, 256]
    assert end_points["Conv2d_0"].shape.as_list() == [1, 112, 112, 8]
    shapes = variable_shapes()
    assert shapes["MobilenetV1/Conv2d_13_depthwise/depthwise_weights"] == (3, 3, 256, 1)
    assert len(shapes) == 5 + 13 * 2 * 5  # conv0 (weights + 4 BN) and 13 blocks of two such layers


def test_output_stride_must_be_8_16_or_32(graph):
    with pytest.raises(ValueError, match="output_stride"):
        mobilenet_v1.mobilenet_v1_base(tf.placeholder(tf.float32, [1, 64, 64, 3]), output_stride=4)


def test_output_stride_dilates_the_later_depthwise_convolutions(graph):
    images = tf.placeholder(tf.float32, [1, 224, 224, 3])
    with slim.arg_scope(mobilenet_v1.mobilenet_v1_arg_scope()):
        mobilenet_v1.mobilenet_v1_base(images, depth_multiplier=0.25, output_stride=8)
    # A dilated depthwise convolution runs as SpaceToBatchND with the rate as its block shape.
    rates = {op.name.split("/")[1]: list(tf.get_static_value(op.inputs[1]))
             for op in tf.get_default_graph().get_operations() if op.type == "SpaceToBatchND"}
    assert "Conv2d_6_depthwise" not in rates  # the stride-2 layer at stride 8: stride 1, rate 1
    assert rates["Conv2d_7_depthwise"] == [2, 2] and rates["Conv2d_12_depthwise"] == [2, 2]
    assert rates["Conv2d_13_depthwise"] == [4, 4]


def test_explicit_padding_matches_same_for_stride_one_and_keeps_sizes(graph):
    conv_defs = [mobilenet_v1.Conv((3, 3), stride=1, depth=8), mobilenet_v1.DepthSepConv((3, 3), stride=1, depth=8)]
    images = tf.placeholder(tf.float32, [1, 9, 9, 3])
    with slim.arg_scope(mobilenet_v1.mobilenet_v1_arg_scope(is_training=False)):
        same, _ = mobilenet_v1.mobilenet_v1_base(images, conv_defs=conv_defs, final_endpoint="Conv2d_1_pointwise",
                                                 scope="Net")
        explicit, _ = mobilenet_v1.mobilenet_v1_base(images, conv_defs=conv_defs, final_endpoint="Conv2d_1_pointwise",
                                                     use_explicit_padding=True, scope=tf.VariableScope(True, "Net"))
    assert explicit.shape.as_list() == same.shape.as_list() == [1, 9, 9, 8]
    assert any(op.type in ("Pad", "PadV2") for op in tf.get_default_graph().get_operations())
    with tf.Session() as session:
        session.run(tf.global_variables_initializer())
        a, b = session.run([same, explicit], {images: np.random.RandomState(0).rand(1, 9, 9, 3)})
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    with tf.Graph().as_default():
        odd = tf.placeholder(tf.float32, [1, 225, 225, 3])
        with slim.arg_scope(mobilenet_v1.mobilenet_v1_arg_scope()):
            net, _ = mobilenet_v1.mobilenet_v1_base(odd, depth_multiplier=0.25, use_explicit_padding=True)
        assert net.shape.as_list() == [1, 8, 8, 256]


def test_batch_norm_scale_follows_the_outer_arg_scope(graph):
    images = tf.placeholder(tf.float32, [1, 32, 32, 3])
    with slim.arg_scope([slim.conv2d, slim.separable_conv2d], normalizer_fn=slim.batch_norm):
        mobilenet_v1.mobilenet_v1_base(images, final_endpoint="Conv2d_0", scope="Plain")
    with slim.arg_scope(mobilenet_v1.mobilenet_v1_arg_scope()):
        mobilenet_v1.mobilenet_v1_base(images, final_endpoint="Conv2d_0", scope="Published")
    shapes = variable_shapes()
    assert "Plain/Conv2d_0/BatchNorm/gamma" not in shapes and "Plain/Conv2d_0/BatchNorm/beta" in shapes
    assert shapes["Published/Conv2d_0/BatchNorm/gamma"] == (32,)


def test_tf_slims_defaults_and_updates_collections(graph):
    images = tf.placeholder(tf.float32, [1, 32, 32, 3])
    with slim.arg_scope(mobilenet_v1.mobilenet_v1_arg_scope(batch_norm_updates_collections=None)):
        logits, _ = mobilenet_v1.mobilenet_v1(images, depth_multiplier=0.25)
    assert logits.shape.as_list() == [1, 1000]  # TF-Slim's default num_classes
    assert not tf.get_collection(tf.GraphKeys.UPDATE_OPS)  # updated in place instead


def test_custom_conv_defs_the_tf_slim_way(graph):
    assert mobilenet_v1.MOBILENETV1_CONV_DEFS[0] == mobilenet_v1.Conv(kernel=(3, 3), stride=2, depth=32)
    conv_defs = list(mobilenet_v1.MOBILENETV1_CONV_DEFS)  # TF-Slim's body has all 14 layers (final_endpoint)
    conv_defs[0] = mobilenet_v1.Conv(kernel=[3, 3], stride=2, depth=16)
    conv_defs[13] = mobilenet_v1.DepthSepConv(kernel=[3, 3], stride=1, depth=40)
    with slim.arg_scope(mobilenet_v1.mobilenet_v1_arg_scope()):
        logits, end_points = mobilenet_v1.mobilenet_v1(tf.placeholder(tf.float32, [1, 32, 32, 3]), num_classes=4,
                                                       conv_defs=conv_defs, depth_multiplier=0.25)
    assert end_points["Conv2d_0"].shape.as_list() == [1, 16, 16, 8]  # 16 x 0.25, at least min_depth 8
    assert end_points["Conv2d_13_pointwise"].shape.as_list() == [1, 1, 1, 10] and logits.shape.as_list() == [1, 4]
