"""Inception V1 (GoogLeNet, BatchNorm variant): tf_slim.nets' body with TF-Slim's research-version head.

Published checkpoint: inception_v1_2016_08_28, 1001 classes (0 is background), 224 px,
inception preprocessing.
"""

from __future__ import annotations

from collections.abc import Callable

from tf_slim.nets import inception_v1 as slim_inception_v1

from nets._slim_heads import HeadNames, classifier_head
from nets.compat import slim, tf
from nets.spec import NetSpec, register

inception_v1_base = slim_inception_v1.inception_v1_base
inception_v1_arg_scope = slim_inception_v1.inception_v1_arg_scope

_HEAD = HeadNames(pool="AvgPool_0a_{}x{}", dropout="Dropout_0b", logits="Conv2d_0c_1x1")


def inception_v1(
    inputs: tf.Tensor,
    num_classes: int = 1000,
    is_training: bool = True,
    dropout_keep_prob: float = 0.8,
    prediction_fn: Callable = slim.softmax,
    spatial_squeeze: bool = True,
    reuse: bool | None = None,
    scope: str = "InceptionV1",
    global_pool: bool = False,
) -> tuple[tf.Tensor, dict]:
    """Inception V1 logits and end points; num_classes=0 returns the pooled features [B, 1, 1, 1024].

    The final pooling spans the feature map: TF-Slim's 7x7 at 224 px, shrunk below, grown above (as in
    Inception V2/V3), so any image size gives [B, num_classes]; global_pool=True takes the mean instead.
    """
    with (
        tf.variable_scope(scope, "InceptionV1", [inputs], reuse=reuse) as sc,
        slim.arg_scope([slim.batch_norm, slim.dropout], is_training=is_training),
    ):
        net, end_points = inception_v1_base(inputs, scope=sc)
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


inception_v1.default_image_size = 224

register(
    NetSpec(
        name="inception_v1",
        network_fn=inception_v1,
        arg_scope_fn=inception_v1_arg_scope,
        image_size=224,
        num_classes=1001,
        preprocessing="inception",
        scope="InceptionV1",
        classifier_scopes=("InceptionV1/Logits",),
    )
)
