"""Inception's TF-Slim options: inception_v1_base rewritten as data (include_root_block), arg scopes with
batch_norm_scale; the same variables and outputs as tf_slim.nets' base."""

import numpy as np
import pytest
from tf_slim.nets import inception_v1 as slim_inception_v1

from nets import inception, inception_v1
from nets.compat import slim, tf
from tests.helpers.netcheck import variable_shapes


@pytest.mark.slow
def test_inception_v1_base_equals_tf_slims_variables_end_points_and_outputs(graph):
    images = tf.placeholder(tf.float32, [1, 64, 64, 3])
    with slim.arg_scope(inception.inception_v1_arg_scope()):
        reference, reference_points = slim_inception_v1.inception_v1_base(images, scope="InceptionV1")
        reference_variables = variable_shapes()
        with tf.variable_scope(tf.get_variable_scope(), reuse=True):
            net, end_points = inception.inception_v1_base(images, scope="InceptionV1")
    assert variable_shapes() == reference_variables  # no new variables: the same names and shapes
    assert list(end_points) == list(reference_points)
    assert {k: v.shape.as_list() for k, v in end_points.items()} == {
        k: v.shape.as_list() for k, v in reference_points.items()}
    with tf.Session() as session:
        session.run(tf.global_variables_initializer())
        a, b = session.run([reference, net], {images: np.random.RandomState(1).rand(1, 64, 64, 3)})
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_inception_v1_base_without_root_block_starts_at_mixed_3b(graph):
    features = tf.placeholder(tf.float32, [2, 28, 28, 192])
    with slim.arg_scope(inception.inception_v1_arg_scope()):
        net, end_points = inception_v1.inception_v1_base(features, final_endpoint="Mixed_3c", include_root_block=False)
    assert list(end_points) == ["Mixed_3b", "Mixed_3c"] and net.shape.as_list() == [2, 28, 28, 480]
    assert not [n for n in variable_shapes() if "Conv2d_1a_7x7" in n or "Conv2d_2c_3x3" in n]
    with pytest.raises(ValueError, match="final_endpoint"):
        inception_v1.inception_v1_base(features, final_endpoint="Conv2d_1a_7x7", include_root_block=False,
                                       scope="Other")


@pytest.mark.parametrize("arg_scope", [inception.inception_v1_arg_scope, inception.inception_v2_arg_scope,
                                       inception.inception_v3_arg_scope, inception.inception_v4_arg_scope,
                                       inception.inception_resnet_v2_arg_scope])
def test_arg_scopes_take_batch_norm_scale(graph, arg_scope):
    images = tf.placeholder(tf.float32, [1, 16, 16, 3])
    with slim.arg_scope(arg_scope()):
        slim.conv2d(images, 4, 3, scope="Plain")
    with slim.arg_scope(arg_scope(batch_norm_scale=True)):
        slim.conv2d(images, 4, 3, scope="Scaled")
    shapes = variable_shapes()
    assert "Plain/BatchNorm/gamma" not in shapes and shapes["Scaled/BatchNorm/gamma"] == (4,)


@pytest.mark.slow
@pytest.mark.parametrize("depth_multiplier", [1.0, 0.5])
def test_inception_v2_base_equals_tf_slims_variables_end_points_and_outputs(graph, depth_multiplier):
    from tf_slim.nets import inception_v2 as slim_inception_v2

    images = tf.placeholder(tf.float32, [1, 64, 64, 3])
    with slim.arg_scope(inception.inception_v2_arg_scope()):
        reference, reference_points = slim_inception_v2.inception_v2_base(
            images, depth_multiplier=depth_multiplier, scope="InceptionV2")
        reference_variables = variable_shapes()
        with tf.variable_scope(tf.get_variable_scope(), reuse=True):
            net, end_points = inception.inception_v2_base(images, depth_multiplier=depth_multiplier,
                                                          scope="InceptionV2")
    assert variable_shapes() == reference_variables
    assert list(end_points) == list(reference_points)
    with tf.Session() as session:
        session.run(tf.global_variables_initializer())
        a, b = session.run([reference, net], {images: np.random.RandomState(2).rand(1, 64, 64, 3)})
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_inception_v2_base_options(graph):
    from nets import inception_v2

    images = tf.placeholder(tf.float32, [1, 64, 64, 3])
    with slim.arg_scope(inception.inception_v2_arg_scope()):
        inception_v2.inception_v2_base(images, final_endpoint="Conv2d_1a_7x7", use_separable_conv=False, scope="Full")
        nchw, _ = inception_v2.inception_v2_base(tf.placeholder(tf.float32, [1, 3, 64, 64]), final_endpoint="Mixed_3b",
                                                 use_separable_conv=False, data_format="NCHW", scope="Nchw")
        mixed, points = inception_v2.inception_v2_base(tf.placeholder(tf.float32, [1, 8, 8, 192]),
                                                       final_endpoint="Mixed_3c", include_root_block=False,
                                                       scope="NoRoot")
        with pytest.raises(ValueError, match="NHWC"):
            inception_v2.inception_v2_base(images, data_format="NCHW", scope="Bad")
    assert variable_shapes()["Full/Conv2d_1a_7x7/weights"] == (7, 7, 3, 64)
    assert nchw.shape.as_list() == [1, 256, 8, 8]  # channels first
    assert list(points) == ["Mixed_3b", "Mixed_3c"] and mixed.shape.as_list() == [1, 8, 8, 320]
    assert not [n for n in variable_shapes() if n.startswith("NoRoot/Conv2d")]
