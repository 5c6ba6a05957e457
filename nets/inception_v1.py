"""Inception V1 (GoogLeNet, BatchNorm variant): tf_slim.nets' body with TF-Slim's research-version head.

Published checkpoint: inception_v1_2016_08_28, 1001 classes (0 is background), 224 px,
inception preprocessing.
"""

from __future__ import annotations

from collections.abc import Callable

from nets._inception_common import Conv, EndPoints, MaxPool, mixed
from nets._slim_heads import HeadNames, classifier_head
from nets.compat import slim, tf
from nets.inception_utils import inception_arg_scope
from nets.spec import NetSpec, register

# TF-Slim's research version: the shared Inception arg scope (with batch_norm_scale, activation_fn, ...).
inception_v1_arg_scope = inception_arg_scope

_HEAD = HeadNames(pool="AvgPool_0a_{}x{}", dropout="Dropout_0b", logits="Conv2d_0c_1x1")

# The root block (before Mixed_3b); output sizes at 224 px in the comments.
ROOT = [
    Conv("Conv2d_1a_7x7", 64, 7, stride=2),  # 112 x 112 x 64
    MaxPool("MaxPool_2a_3x3", 3, stride=2),  # 56 x 56
    Conv("Conv2d_2b_1x1", 64, 1),
    Conv("Conv2d_2c_3x3", 192, 3),  # 56 x 56 x 192
    MaxPool("MaxPool_3a_3x3", 3, stride=2),  # 28 x 28
]


def _module(b0: int, b1: tuple[int, int], b2: tuple[int, int], b3: int, b2_last: str = "Conv2d_0b_3x3") -> list:
    """An Inception (GoogLeNet) module: 1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 | 3x3 max pool -> 1x1."""
    return [
        (Conv("Conv2d_0a_1x1", b0, 1),),
        (Conv("Conv2d_0a_1x1", b1[0], 1), Conv("Conv2d_0b_3x3", b1[1], 3)),
        (Conv("Conv2d_0a_1x1", b2[0], 1), Conv(b2_last, b2[1], 3)),
        (MaxPool("MaxPool_0a_3x3", 3), Conv("Conv2d_0b_1x1", b3, 1)),
    ]


# The published modules' depths (Branch_2's last conv of Mixed_5b is scoped Conv2d_0a_3x3 in the checkpoint).
BODY = [
    ("Mixed_3b", _module(64, (96, 128), (16, 32), 32)),  # 28 x 28 x 256
    ("Mixed_3c", _module(128, (128, 192), (32, 96), 64)),  # 28 x 28 x 480
    ("MaxPool_4a_3x3", MaxPool("MaxPool_4a_3x3", 3, stride=2)),  # 14 x 14
    ("Mixed_4b", _module(192, (96, 208), (16, 48), 64)),
    ("Mixed_4c", _module(160, (112, 224), (24, 64), 64)),
    ("Mixed_4d", _module(128, (128, 256), (24, 64), 64)),
    ("Mixed_4e", _module(112, (144, 288), (32, 64), 64)),
    ("Mixed_4f", _module(256, (160, 320), (32, 128), 128)),  # 14 x 14 x 832
    ("MaxPool_5a_2x2", MaxPool("MaxPool_5a_2x2", 2, stride=2)),  # 7 x 7
    ("Mixed_5b", _module(256, (160, 320), (32, 128), 128, b2_last="Conv2d_0a_3x3")),
    ("Mixed_5c", _module(384, (192, 384), (48, 128), 128)),  # 7 x 7 x 1024
]
ROOT_END_POINTS = [layer.scope for layer in ROOT]
BODY_END_POINTS = [name for name, _ in BODY]


def inception_v1_base(
    inputs: tf.Tensor,
    final_endpoint: str = "Mixed_5c",
    include_root_block: bool = True,
    scope: str | tf.VariableScope = "InceptionV1",
) -> tuple[tf.Tensor, dict]:
    """Inception V1 from the inputs up to `final_endpoint`: (its tensor, every end point so far).

    include_root_block=False leaves out the layers before Mixed_3b (the inputs go straight into Mixed_3b), as
    TF-Slim's option. Convolutions get TF-Slim's truncated normal (stddev 0.01) initializer.
    """
    end_points = EndPoints(final_endpoint, (ROOT_END_POINTS if include_root_block else []) + BODY_END_POINTS)
    with (
        tf.variable_scope(scope, "InceptionV1", [inputs]),
        slim.arg_scope([slim.conv2d, slim.fully_connected], weights_initializer=tf.truncated_normal_initializer(0.0, 0.01)),
        slim.arg_scope([slim.conv2d, slim.max_pool2d], stride=1, padding="SAME"),
    ):
        net = inputs
        for layer in ROOT if include_root_block else []:
            if isinstance(layer, Conv):
                net = slim.conv2d(net, layer.depth, layer.kernel, stride=layer.stride, scope=layer.scope)
            else:
                net = slim.max_pool2d(net, layer.kernel, stride=layer.stride, scope=layer.scope)
            if end_points.stop_at(layer.scope, net):
                return net, end_points.tensors
        for name, layer in BODY:
            if isinstance(layer, MaxPool):
                net = slim.max_pool2d(net, layer.kernel, stride=layer.stride, scope=layer.scope)
            else:
                with tf.variable_scope(name):
                    net = mixed(net, layer, valid_padding="SAME")
            if end_points.stop_at(name, net):
                return net, end_points.tensors
    raise AssertionError("unreachable: EndPoints checked final_endpoint")


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
