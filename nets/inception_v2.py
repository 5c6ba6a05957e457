"""Inception V2 (BN-Inception): tf_slim.nets' body with TF-Slim's research-version head.

Published checkpoint: inception_v2_2016_08_28, 1001 classes (0 is background), 224 px,
inception preprocessing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from nets._inception_common import EndPoints
from nets._slim_heads import HeadNames, classifier_head
from nets.compat import slim, tf
from nets.inception_utils import inception_arg_scope
from nets.spec import NetSpec, register

# TF-Slim's research version: the shared Inception arg scope (with batch_norm_scale, activation_fn, ...).
inception_v2_arg_scope = inception_arg_scope

_HEAD = HeadNames(pool="AvgPool_1a_{}x{}", dropout="Dropout_1b", logits="Conv2d_1c_1x1")


class _Conv(NamedTuple):
    scope: str
    depth: int
    kernel: int
    stride: int = 1
    stddev: float | None = None  # a truncated normal initializer instead of the arg scope's


class _Pool(NamedTuple):
    scope: str  # AvgPool_... or MaxPool_...
    stride: int = 1


def _module(b0: int, b1: tuple[int, int], b2: tuple[int, int, int], pool: str, b3: int) -> list:
    """BN-Inception's module: 1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 -> 3x3 | 3x3 pool -> 1x1."""
    return [
        [_Conv("Conv2d_0a_1x1", b0, 1)],
        [_Conv("Conv2d_0a_1x1", b1[0], 1, stddev=0.09), _Conv("Conv2d_0b_3x3", b1[1], 3)],
        [_Conv("Conv2d_0a_1x1", b2[0], 1, stddev=0.09), _Conv("Conv2d_0b_3x3", b2[1], 3),
         _Conv("Conv2d_0c_3x3", b2[2], 3)],
        [_Pool(f"{pool}_0a_3x3"), _Conv("Conv2d_0b_1x1", b3, 1, stddev=0.1)],
    ]


def _reduction(b0: tuple[int, int], b1: tuple[int, int, int]) -> list:
    """BN-Inception's grid reduction: 1x1 -> 3x3/2 | 1x1 -> 3x3 -> 3x3/2 | 3x3/2 max pool."""
    return [
        [_Conv("Conv2d_0a_1x1", b0[0], 1, stddev=0.09), _Conv("Conv2d_1a_3x3", b0[1], 3, stride=2)],
        [_Conv("Conv2d_0a_1x1", b1[0], 1, stddev=0.09), _Conv("Conv2d_0b_3x3", b1[1], 3),
         _Conv("Conv2d_1a_3x3", b1[2], 3, stride=2)],
        [_Pool("MaxPool_1a_3x3", stride=2)],
    ]


# Output sizes at 224 px in the comments.
ROOT = [  # Conv2d_1a_7x7 (separable or not) comes first: 112 x 112 x 64
    _Pool("MaxPool_2a_3x3", stride=2),  # 56 x 56
    _Conv("Conv2d_2b_1x1", 64, 1, stddev=0.1),
    _Conv("Conv2d_2c_3x3", 192, 3),
    _Pool("MaxPool_3a_3x3", stride=2),  # 28 x 28 x 192
]
BODY = [
    ("Mixed_3b", _module(64, (64, 64), (64, 96, 96), "AvgPool", 32)),  # 28 x 28 x 256
    ("Mixed_3c", _module(64, (64, 96), (64, 96, 96), "AvgPool", 64)),  # 28 x 28 x 320
    ("Mixed_4a", _reduction((128, 160), (64, 96, 96))),  # 14 x 14 x 576
    ("Mixed_4b", _module(224, (64, 96), (96, 128, 128), "AvgPool", 128)),
    ("Mixed_4c", _module(192, (96, 128), (96, 128, 128), "AvgPool", 128)),
    ("Mixed_4d", _module(160, (128, 160), (128, 160, 160), "AvgPool", 96)),
    ("Mixed_4e", _module(96, (128, 192), (160, 192, 192), "AvgPool", 96)),
    ("Mixed_5a", _reduction((128, 192), (192, 256, 256))),  # 7 x 7 x 1024
    ("Mixed_5b", _module(352, (192, 320), (160, 224, 224), "AvgPool", 128)),
    ("Mixed_5c", _module(352, (192, 320), (192, 224, 224), "MaxPool", 128)),  # 7 x 7 x 1024
]
ROOT_END_POINTS = ["Conv2d_1a_7x7", *(layer.scope for layer in ROOT)]


def _apply(net: tf.Tensor, layer: _Conv | _Pool, depth: Callable[[int], int]) -> tf.Tensor:
    if isinstance(layer, _Pool):
        pool = slim.max_pool2d if layer.scope.startswith("Max") else slim.avg_pool2d
        return pool(net, [3, 3], stride=layer.stride, scope=layer.scope)
    init = {} if layer.stddev is None else {"weights_initializer": tf.truncated_normal_initializer(0.0, layer.stddev)}
    return slim.conv2d(net, depth(layer.depth), [layer.kernel] * 2, stride=layer.stride, scope=layer.scope, **init)


def _first_conv(inputs: tf.Tensor, depth: Callable[[int], int], use_separable_conv: bool) -> tf.Tensor:
    """Conv2d_1a_7x7/2: separable (depthwise multiplier min(depth(64) / 3, 8)) as published, or a full conv."""
    init = tf.truncated_normal_initializer(0.0, 1.0)
    if not use_separable_conv:
        return slim.conv2d(inputs, depth(64), [7, 7], stride=2, weights_initializer=init, scope="Conv2d_1a_7x7")
    return slim.separable_conv2d(inputs, depth(64), [7, 7], depth_multiplier=min(int(depth(64) / 3), 8), stride=2,
                                 weights_initializer=init, scope="Conv2d_1a_7x7")


def inception_v2_base(
    inputs: tf.Tensor,
    final_endpoint: str = "Mixed_5c",
    min_depth: int = 16,
    depth_multiplier: float = 1.0,
    use_separable_conv: bool = True,
    data_format: str = "NHWC",
    include_root_block: bool = True,
    scope: str | tf.VariableScope | None = None,
) -> tuple[tf.Tensor, dict]:
    """Inception V2 (BN-Inception) from the inputs up to `final_endpoint`: (its tensor, every end point so far).

    depth_multiplier scales every depth (not below min_depth). use_separable_conv=False makes the first layer a
    full 7x7 convolution (not the published net); data_format 'NCHW' needs it. include_root_block=False feeds
    the inputs straight into Mixed_3b. These are TF-Slim's options, with its defaults.
    """
    if depth_multiplier <= 0:
        raise ValueError("depth_multiplier is not greater than zero.")
    if data_format not in ("NHWC", "NCHW"):
        raise ValueError(f"data_format must be 'NHWC' or 'NCHW', got {data_format!r}")
    if data_format == "NCHW" and use_separable_conv:
        raise ValueError("separable convolution only supports NHWC layout; pass use_separable_conv=False")

    def depth(d: int) -> int:
        return max(int(d * depth_multiplier), min_depth)

    root = ROOT_END_POINTS if include_root_block else []
    end_points = EndPoints(final_endpoint, root + [name for name, _ in BODY])
    channels = 3 if data_format == "NHWC" else 1
    with (
        tf.variable_scope(scope, "InceptionV2", [inputs]),
        slim.arg_scope([slim.conv2d, slim.max_pool2d, slim.avg_pool2d, slim.separable_conv2d], stride=1,
                       padding="SAME"),
        slim.arg_scope([slim.conv2d, slim.max_pool2d, slim.avg_pool2d], data_format=data_format),
    ):
        net = inputs
        if include_root_block:
            net = _first_conv(inputs, depth, use_separable_conv)
            if end_points.stop_at("Conv2d_1a_7x7", net):
                return net, end_points.tensors
            for layer in ROOT:
                net = _apply(net, layer, depth)
                if end_points.stop_at(layer.scope, net):
                    return net, end_points.tensors
        for name, branches in BODY:
            net = _mixed(net, name, branches, depth, channels)
            if end_points.stop_at(name, net):
                return net, end_points.tensors
    raise AssertionError("unreachable: EndPoints checked final_endpoint")


def _mixed(net: tf.Tensor, name: str, branches: Sequence[list], depth: Callable[[int], int], axis: int) -> tf.Tensor:
    outputs = []
    with tf.variable_scope(name):
        for index, branch in enumerate(branches):
            with tf.variable_scope(f"Branch_{index}"):
                out = net
                for layer in branch:
                    out = _apply(out, layer, depth)
                outputs.append(out)
    return tf.concat(outputs, axis=axis)


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
