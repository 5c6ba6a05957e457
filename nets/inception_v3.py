"""Inception V3: tf_slim.nets' body with TF-Slim's research-version heads (AuxLogits and Logits).

Published checkpoint: inception_v3_2016_08_28, 1001 classes (0 is background), 299 px,
inception preprocessing.
"""

from __future__ import annotations

from collections.abc import Callable

from tf_slim.nets import inception_v3 as slim_inception_v3

from nets._slim_heads import HeadNames, average_to_one_by_one, classifier_head, reduced_kernel_size
from nets.compat import slim, tf
from nets.inception_utils import inception_arg_scope
from nets.spec import NetSpec, register

inception_v3_base = slim_inception_v3.inception_v3_base
# TF-Slim's research version: the shared Inception arg scope (with batch_norm_scale, activation_fn, ...).
inception_v3_arg_scope = inception_arg_scope

_HEAD = HeadNames(pool="AvgPool_1a_{}x{}", dropout="Dropout_1b", logits="Conv2d_1c_1x1")


def _aux_logits(net: tf.Tensor, num_classes: int, depth: Callable[[int], int], spatial_squeeze: bool) -> tf.Tensor:
    """The auxiliary classifier on Mixed_6e (17x17 at 299 px); its kernels shrink to fit smaller maps.

    Above 299 px the 5x5 VALID conv leaves a spatial map, averaged before the 1x1 logits (its kernel keeps
    the published shape).
    """
    with (
        slim.arg_scope([slim.conv2d, slim.max_pool2d, slim.avg_pool2d], stride=1, padding="SAME"),
        tf.variable_scope("AuxLogits"),
    ):
        net = slim.avg_pool2d(net, reduced_kernel_size(net, 5), stride=3, padding="VALID", scope="AvgPool_1a_5x5")
        net = slim.conv2d(net, depth(128), [1, 1], scope="Conv2d_1b_1x1")
        kernel_size = reduced_kernel_size(net, 5)  # 5x5 at 299 px
        net = slim.conv2d(
            net,
            depth(768),
            kernel_size,
            weights_initializer=tf.truncated_normal_initializer(stddev=0.01),
            padding="VALID",
            scope="Conv2d_2a_{}x{}".format(*kernel_size),
        )
        net = average_to_one_by_one(net)
        net = slim.conv2d(
            net,
            num_classes,
            [1, 1],
            activation_fn=None,
            normalizer_fn=None,
            weights_initializer=tf.truncated_normal_initializer(stddev=0.001),
            scope="Conv2d_2b_1x1",
        )
        if spatial_squeeze:
            net = tf.squeeze(net, [1, 2], name="SpatialSqueeze")
    return net


def inception_v3(
    inputs: tf.Tensor,
    num_classes: int = 1000,
    is_training: bool = True,
    dropout_keep_prob: float = 0.8,
    min_depth: int = 16,
    depth_multiplier: float = 1.0,
    prediction_fn: Callable = slim.softmax,
    spatial_squeeze: bool = True,
    reuse: bool | None = None,
    create_aux_logits: bool = True,
    scope: str = "InceptionV3",
    global_pool: bool = False,
) -> tuple[tf.Tensor, dict]:
    """Inception V3 logits and end points (with 'AuxLogits'); num_classes=0 returns the pooled features.

    The smallest image it builds at is 75 px; any larger size gives [B, num_classes] logits and aux logits. depth_multiplier scales every conv's depth (not below
    min_depth): small variants for tests.
    """

    def depth(d: int) -> int:
        return max(int(d * depth_multiplier), min_depth)

    with (
        tf.variable_scope(scope, "InceptionV3", [inputs], reuse=reuse) as sc,
        slim.arg_scope([slim.batch_norm, slim.dropout], is_training=is_training),
    ):
        net, end_points = inception_v3_base(inputs, scope=sc, min_depth=min_depth, depth_multiplier=depth_multiplier)
        if create_aux_logits and num_classes:
            end_points["AuxLogits"] = _aux_logits(end_points["Mixed_6e"], num_classes, depth, spatial_squeeze)
        logits = classifier_head(
            net,
            end_points,
            _HEAD,
            num_classes=num_classes,
            dropout_keep_prob=dropout_keep_prob,
            spatial_squeeze=spatial_squeeze,
            global_pool=global_pool,
            prediction_fn=prediction_fn,
        )
    return logits, end_points


inception_v3.default_image_size = 299

register(
    NetSpec(
        name="inception_v3",
        network_fn=inception_v3,
        arg_scope_fn=inception_v3_arg_scope,
        image_size=299,
        num_classes=1001,
        preprocessing="inception",
        scope="InceptionV3",
        classifier_scopes=("InceptionV3/Logits", "InceptionV3/AuxLogits"),
    )
)
