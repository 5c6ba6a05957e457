"""Inception V2 (BN-Inception): tf_slim.nets' body with TF-Slim's research-version head.

Published checkpoint: inception_v2_2016_08_28, 1001 classes (0 is background), 224 px,
inception preprocessing.
"""

from __future__ import annotations

from collections.abc import Callable

from tf_slim.nets import inception_v2 as slim_inception_v2

from nets._slim_heads import HeadNames, classifier_head
from nets.compat import slim, tf
from nets.inception_utils import inception_arg_scope
from nets.spec import NetSpec, register

inception_v2_base = slim_inception_v2.inception_v2_base
# TF-Slim's research version: the shared Inception arg scope (with batch_norm_scale, activation_fn, ...).
inception_v2_arg_scope = inception_arg_scope

_HEAD = HeadNames(pool="AvgPool_1a_{}x{}", dropout="Dropout_1b", logits="Conv2d_1c_1x1")


def inception_v2(
    inputs: tf.Tensor,
    num_classes: int = 1000,
    is_training: bool = True,
    dropout_keep_prob: float = 0.8,
    min_depth: int = 16,
    depth_multiplier: float = 1.0,
    prediction_fn: Callable = slim.softmax,
    spatial_squeeze: bool = True,
    reuse: bool | None = None,
    scope: str = "InceptionV2",
    global_pool: bool = False,
) -> tuple[tf.Tensor, dict]:
    """Inception V2 logits and end points; num_classes=0 returns the pooled features [B, 1, 1, 1024].

    depth_multiplier scales every conv's depth (not below min_depth): small variants for tests.
    """
    with (
        tf.variable_scope(scope, "InceptionV2", [inputs], reuse=reuse) as sc,
        slim.arg_scope([slim.batch_norm, slim.dropout], is_training=is_training),
    ):
        net, end_points = inception_v2_base(inputs, scope=sc, min_depth=min_depth, depth_multiplier=depth_multiplier)
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


inception_v2.default_image_size = 224

register(
    NetSpec(
        name="inception_v2",
        network_fn=inception_v2,
        arg_scope_fn=inception_v2_arg_scope,
        image_size=224,
        num_classes=1001,
        preprocessing="inception",
        scope="InceptionV2",
        classifier_scopes=("InceptionV2/Logits",),
    )
)
