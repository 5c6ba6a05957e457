"""Inception-v4 (Szegedy et al. 2016, https://arxiv.org/abs/1602.07261) with TF-Slim's names.

Built with 1001 classes under `inception_v4_arg_scope()`, every variable's name and shape equals
the published inception_v4_2016_09_09 checkpoint (nets/published/inception_v4.txt).

The whole body is the table STAGES: a stem (three convolutions, Mixed_3a/4a/5a) down to
35 x 35, then 4 x Inception-A (Mixed_5b-e), Reduction-A (Mixed_6a), 7 x Inception-B (Mixed_6b-h),
Reduction-B (Mixed_7a) and 3 x Inception-C (Mixed_7b-d). Every stage is an end point.
"""

from __future__ import annotations

from nets._inception_common import (
    AuxScopes,
    AvgPool,
    Branch,
    Conv,
    EndPoints,
    Fork,
    HeadScopes,
    Layer,
    MaxPool,
    apply_layer,
    aux_logits,
    classifier,
    mixed,
)
from nets.compat import slim, tf
from nets.inception_utils import inception_arg_scope
from nets.spec import NetSpec, register

MIXED_3A: tuple[Branch, ...] = (  # 73 x 73 x 160
    (MaxPool("MaxPool_0a_3x3", 3, stride=2, padding="VALID"),),
    (Conv("Conv2d_0a_3x3", 96, 3, stride=2, padding="VALID"),),
)
MIXED_4A: tuple[Branch, ...] = (  # 71 x 71 x 192
    (Conv("Conv2d_0a_1x1", 64, 1), Conv("Conv2d_1a_3x3", 96, 3, padding="VALID")),
    (
        Conv("Conv2d_0a_1x1", 64, 1),
        Conv("Conv2d_0b_1x7", 64, (1, 7)),
        Conv("Conv2d_0c_7x1", 64, (7, 1)),
        Conv("Conv2d_1a_3x3", 96, 3, padding="VALID"),
    ),
)
MIXED_5A: tuple[Branch, ...] = (  # 35 x 35 x 384
    (Conv("Conv2d_1a_3x3", 192, 3, stride=2, padding="VALID"),),
    (MaxPool("MaxPool_1a_3x3", 3, stride=2, padding="VALID"),),
)
INCEPTION_A: tuple[Branch, ...] = (  # 35 x 35 x 384
    (Conv("Conv2d_0a_1x1", 96, 1),),
    (Conv("Conv2d_0a_1x1", 64, 1), Conv("Conv2d_0b_3x3", 96, 3)),
    (Conv("Conv2d_0a_1x1", 64, 1), Conv("Conv2d_0b_3x3", 96, 3), Conv("Conv2d_0c_3x3", 96, 3)),
    (AvgPool("AvgPool_0a_3x3", 3), Conv("Conv2d_0b_1x1", 96, 1)),
)
REDUCTION_A: tuple[Branch, ...] = (  # 17 x 17 x 1024
    (Conv("Conv2d_1a_3x3", 384, 3, stride=2, padding="VALID"),),
    (
        Conv("Conv2d_0a_1x1", 192, 1),
        Conv("Conv2d_0b_3x3", 224, 3),
        Conv("Conv2d_1a_3x3", 256, 3, stride=2, padding="VALID"),
    ),
    (MaxPool("MaxPool_1a_3x3", 3, stride=2, padding="VALID"),),
)
INCEPTION_B: tuple[Branch, ...] = (  # 17 x 17 x 1024
    (Conv("Conv2d_0a_1x1", 384, 1),),
    (Conv("Conv2d_0a_1x1", 192, 1), Conv("Conv2d_0b_1x7", 224, (1, 7)), Conv("Conv2d_0c_7x1", 256, (7, 1))),
    (
        Conv("Conv2d_0a_1x1", 192, 1),
        Conv("Conv2d_0b_7x1", 192, (7, 1)),
        Conv("Conv2d_0c_1x7", 224, (1, 7)),
        Conv("Conv2d_0d_7x1", 224, (7, 1)),
        Conv("Conv2d_0e_1x7", 256, (1, 7)),
    ),
    (AvgPool("AvgPool_0a_3x3", 3), Conv("Conv2d_0b_1x1", 128, 1)),
)
REDUCTION_B: tuple[Branch, ...] = (  # 8 x 8 x 1536
    (Conv("Conv2d_0a_1x1", 192, 1), Conv("Conv2d_1a_3x3", 192, 3, stride=2, padding="VALID")),
    (
        Conv("Conv2d_0a_1x1", 256, 1),
        Conv("Conv2d_0b_1x7", 256, (1, 7)),
        Conv("Conv2d_0c_7x1", 320, (7, 1)),
        Conv("Conv2d_1a_3x3", 320, 3, stride=2, padding="VALID"),
    ),
    (MaxPool("MaxPool_1a_3x3", 3, stride=2, padding="VALID"),),
)
INCEPTION_C: tuple[Branch, ...] = (  # 8 x 8 x 1536
    (Conv("Conv2d_0a_1x1", 256, 1),),
    (Conv("Conv2d_0a_1x1", 384, 1), Fork((Conv("Conv2d_0b_1x3", 256, (1, 3)), Conv("Conv2d_0c_3x1", 256, (3, 1))))),
    (
        Conv("Conv2d_0a_1x1", 384, 1),
        Conv("Conv2d_0b_3x1", 448, (3, 1)),
        Conv("Conv2d_0c_1x3", 512, (1, 3)),
        Fork((Conv("Conv2d_0d_1x3", 256, (1, 3)), Conv("Conv2d_0e_3x1", 256, (3, 1)))),
    ),
    (AvgPool("AvgPool_0a_3x3", 3), Conv("Conv2d_0b_1x1", 256, 1)),
)

# (end point, a single layer scoped by that name, or a mixed module's branches), sizes at 299 px.
STAGES: tuple[tuple[str, Layer | tuple[Branch, ...]], ...] = (
    ("Conv2d_1a_3x3", Conv("Conv2d_1a_3x3", 32, 3, stride=2, padding="VALID")),  # 149 x 149 x 32
    ("Conv2d_2a_3x3", Conv("Conv2d_2a_3x3", 32, 3, padding="VALID")),  # 147 x 147 x 32
    ("Conv2d_2b_3x3", Conv("Conv2d_2b_3x3", 64, 3)),  # 147 x 147 x 64
    ("Mixed_3a", MIXED_3A),  # 73 x 73 x 160
    ("Mixed_4a", MIXED_4A),  # 71 x 71 x 192
    ("Mixed_5a", MIXED_5A),  # 35 x 35 x 384
    *((f"Mixed_5{letter}", INCEPTION_A) for letter in "bcde"),  # 35 x 35 x 384
    ("Mixed_6a", REDUCTION_A),  # 17 x 17 x 1024
    *((f"Mixed_6{letter}", INCEPTION_B) for letter in "bcdefgh"),  # 17 x 17 x 1024
    ("Mixed_7a", REDUCTION_B),  # 8 x 8 x 1536
    *((f"Mixed_7{letter}", INCEPTION_C) for letter in "bcd"),  # 8 x 8 x 1536
)
END_POINTS = tuple(name for name, _ in STAGES)
AUX_END_POINT = "Mixed_6h"


def inception_v4_base(
    inputs: tf.Tensor,
    final_endpoint: str = "Mixed_7d",
    scope: str | tf.VariableScope | None = None,
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """The convolutional body up to `final_endpoint` (one of END_POINTS).

    Returns the final end point's tensor and every end point built so far, by name.
    """
    end_points = EndPoints(final_endpoint, END_POINTS)
    with (
        tf.variable_scope(scope, "InceptionV4", [inputs]),
        slim.arg_scope([slim.conv2d, slim.max_pool2d, slim.avg_pool2d], stride=1, padding="SAME"),
    ):
        net = inputs
        for name, body in STAGES:
            if isinstance(body, Layer):
                net = apply_layer(net, body)
            else:
                with tf.variable_scope(name):
                    net = mixed(net, body)
            if end_points.stop_at(name, net):
                break
    return net, end_points.tensors


_AUX_SCOPES = AuxScopes(pool="AvgPool_1a_5x5", conv="Conv2d_2a", logits="Aux_logits")
_HEAD_SCOPES = HeadScopes(pool="AvgPool_1a", dropout="Dropout_1b", flatten="PreLogitsFlatten")


def inception_v4(
    inputs: tf.Tensor,
    num_classes: int | None = 1001,
    is_training: bool = True,
    dropout_keep_prob: float = 0.8,
    reuse: bool | None = None,
    scope: str = "InceptionV4",
    create_aux_logits: bool = True,
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """Inception-v4 classifier: returns (logits [B, num_classes], end_points).

    num_classes=0 (or None) returns the pooled features [B, 1, 1, 1536] (before dropout) and no
    aux logits. is_training switches BatchNorm (batch statistics, moving-average updates) and dropout.
    Any image size from 75 px works; the final pool spans the last map, the aux head's kernels shrink
    below 299 px (so only AuxLogits/Conv2d_2a and the classifiers change shape) and its map is averaged
    above (all variables stay the published ones).
    """
    with (
        tf.variable_scope(scope, "InceptionV4", [inputs], reuse=reuse) as net_scope,
        slim.arg_scope([slim.batch_norm, slim.dropout], is_training=is_training),
    ):
        net, end_points = inception_v4_base(inputs, scope=net_scope)
        with slim.arg_scope([slim.conv2d, slim.max_pool2d, slim.avg_pool2d], stride=1, padding="SAME"):
            if create_aux_logits and num_classes:
                with tf.variable_scope("AuxLogits"):
                    end_points["AuxLogits"] = aux_logits(end_points[AUX_END_POINT], num_classes, _AUX_SCOPES)
            with tf.variable_scope("Logits"):
                net = classifier(net, num_classes, dropout_keep_prob, end_points, _HEAD_SCOPES)
    return net, end_points


inception_v4.default_image_size = 299

# TF-Slim's shared Inception arg scope (nets/inception_utils.py, which the published inception_v4 was trained
# with): L2 weight decay, variance-scaling init, BatchNorm (decay 0.9997, epsilon 0.001) and ReLU after every conv.
inception_v4_arg_scope = inception_arg_scope


register(
    NetSpec(
        name="inception_v4",
        network_fn=inception_v4,
        arg_scope_fn=inception_v4_arg_scope,
        image_size=299,
        num_classes=1001,
        preprocessing="inception",
        scope="InceptionV4",
        classifier_scopes=("InceptionV4/Logits", "InceptionV4/AuxLogits"),
        logits_end_point="Logits",
        predictions_end_point="Predictions",
    )
)
