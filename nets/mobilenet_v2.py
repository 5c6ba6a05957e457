"""MobileNet v2 (Sandler et al. 2018, https://arxiv.org/abs/1801.04381) with TF-Slim's variable names.

Built with 1001 classes, every variable's name and shape equals the published
mobilenet_v2_{1.0,1.4,0.35}_224 checkpoints; nets/published/mobilenet_v2*.txt.

The body is a list of 19 layer defs: a 3x3 stem convolution (`Conv`), 17 inverted-residual
bottlenecks (`expanded_conv`, `expanded_conv_1` ... `_16`: 1x1 `expand` + 3x3 `depthwise` with
BatchNorm and ReLU6, then a linear 1x1 `project` with BatchNorm, plus the input when shapes allow),
and a 1x1 convolution (`Conv_1`), followed by global pooling and the classifier under `Logits`.
End points follow TF-Slim: `layer_1` ... `layer_19`, `layer_N/expansion_output`,
`layer_N/depthwise_output`, `layer_N/output`, `global_pool`, `Logits`, `Predictions`.

Depths are scaled by `depth_multiplier` and rounded to a multiple of 8 (never below `min_depth`, never
more than 10% down); bottleneck expansions are rounded likewise from the actual input depth.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

from nets.compat import slim, tf
from nets.spec import NetSpec, register, width_variant


class Conv(NamedTuple):
    """A full convolution with BatchNorm and ReLU6."""

    kernel: tuple[int, int]
    stride: int
    depth: int


class Bottleneck(NamedTuple):
    """An inverted residual: expand the input depth `expansion` times, depthwise conv, project to `depth`."""

    expansion: int
    stride: int
    depth: int


# The published body: output size at 224 px in the comments.
CONV_DEFS: list[Conv | Bottleneck] = [
    Conv((3, 3), stride=2, depth=32),  # layer_1: 112 x 112 x 32
    Bottleneck(expansion=1, stride=1, depth=16),  # layer_2: 112 x 112 x 16
    Bottleneck(expansion=6, stride=2, depth=24),  # 56 x 56 x 24
    Bottleneck(expansion=6, stride=1, depth=24),
    Bottleneck(expansion=6, stride=2, depth=32),  # 28 x 28 x 32
    Bottleneck(expansion=6, stride=1, depth=32),
    Bottleneck(expansion=6, stride=1, depth=32),
    Bottleneck(expansion=6, stride=2, depth=64),  # 14 x 14 x 64
    Bottleneck(expansion=6, stride=1, depth=64),
    Bottleneck(expansion=6, stride=1, depth=64),
    Bottleneck(expansion=6, stride=1, depth=64),
    Bottleneck(expansion=6, stride=1, depth=96),  # 14 x 14 x 96
    Bottleneck(expansion=6, stride=1, depth=96),
    Bottleneck(expansion=6, stride=1, depth=96),
    Bottleneck(expansion=6, stride=2, depth=160),  # 7 x 7 x 160
    Bottleneck(expansion=6, stride=1, depth=160),
    Bottleneck(expansion=6, stride=1, depth=160),
    Bottleneck(expansion=6, stride=1, depth=320),  # layer_18: 7 x 7 x 320
    Conv((1, 1), stride=1, depth=1280),  # layer_19: 7 x 7 x 1280
]


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """`value` rounded to the nearest multiple of `divisor` (at least min_value, at most 10% below value)."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _scope_names(conv_defs: Sequence[Conv | Bottleneck]) -> list[str]:
    """Per-layer variable scopes as TF-Slim numbers them: Conv, expanded_conv, expanded_conv_1, ..., Conv_1."""
    counts: dict[str, int] = {}
    names = []
    for conv_def in conv_defs:
        base = "Conv" if isinstance(conv_def, Conv) else "expanded_conv"
        n = counts.get(base, 0)
        names.append(base if n == 0 else f"{base}_{n}")
        counts[base] = n + 1
    return names


def _bottleneck(net: tf.Tensor, block: Bottleneck, depth: int, scope: str, end_points: dict, layer: str) -> tf.Tensor:
    """One inverted residual block; records its intermediate outputs as `layer/..._output` end points."""
    with tf.variable_scope(scope):
        input_depth = net.get_shape().as_list()[3]
        shortcut = net
        if block.expansion > 1:
            inner = make_divisible(input_depth * block.expansion)
            net = slim.conv2d(net, inner, [1, 1], scope="expand")
            net = end_points[f"{layer}/expansion_output"] = tf.identity(net, name="expansion_output")
        net = slim.separable_conv2d(net, None, [3, 3], depth_multiplier=1, stride=block.stride, scope="depthwise")
        net = end_points[f"{layer}/depthwise_output"] = tf.identity(net, name="depthwise_output")
        net = slim.conv2d(net, depth, [1, 1], activation_fn=None, scope="project")
        if block.stride == 1 and depth == input_depth:
            net += shortcut
        net = end_points[f"{layer}/output"] = tf.identity(net, name="output")
    return net


@contextlib.contextmanager
def architecture_scope(activation_fn=tf.nn.relu6) -> Iterator[None]:
    """Settings that define the published bodies whatever the outer arg scope: `activation_fn` unless a layer
    says otherwise (v2's ReLU6, v3's ReLU), SAME padding, BatchNorm with gamma."""
    with (
        slim.arg_scope(
            [slim.conv2d, slim.separable_conv2d],
            activation_fn=activation_fn,
            normalizer_fn=slim.batch_norm,
            padding="SAME",
        ),
        slim.arg_scope([slim.batch_norm], center=True, scale=True),
    ):
        yield


def mobilenet_v2_base(
    inputs: tf.Tensor,
    final_endpoint: str | None = None,
    depth_multiplier: float = 1.0,
    min_depth: int = 8,
    finegrain_classification_mode: bool = True,
    conv_defs: Sequence[Conv | Bottleneck] | None = None,
    scope: str | tf.VariableScope | None = None,
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """The convolutional body up to `final_endpoint` ('layer_1' ... 'layer_19'; None: all of it).

    finegrain_classification_mode keeps the last layer at its full depth (1280) when depth_multiplier < 1,
    as every published checkpoint with a multiplier below 1 has it. BatchNorm runs in the mode the
    surrounding arg scope sets (mobilenet_v2 sets it from its is_training).
    """
    if depth_multiplier <= 0:
        raise ValueError(f"depth_multiplier must be greater than zero, got {depth_multiplier}")
    conv_defs = list(conv_defs or CONV_DEFS)
    end_points: dict[str, tf.Tensor] = {}
    with tf.variable_scope(scope, "MobilenetV2", [inputs]), architecture_scope():
        net = inputs
        for i, (conv_def, layer_scope) in enumerate(zip(conv_defs, _scope_names(conv_defs))):
            layer = f"layer_{i + 1}"
            is_head = i == len(conv_defs) - 1
            multiplier = max(depth_multiplier, 1.0) if is_head and finegrain_classification_mode else depth_multiplier
            depth = make_divisible(conv_def.depth * multiplier, min_value=min_depth)
            if isinstance(conv_def, Conv):
                net = slim.conv2d(net, depth, conv_def.kernel, stride=conv_def.stride, scope=layer_scope)
            else:
                net = _bottleneck(net, conv_def, depth, layer_scope, end_points, layer)
            end_points[layer] = net
            if layer == final_endpoint:
                return net, end_points
    if final_endpoint is not None:
        raise ValueError(f"Unknown final_endpoint {final_endpoint!r}; valid: layer_1 ... layer_{len(conv_defs)}")
    return net, end_points


def mobilenet_v2(
    inputs: tf.Tensor,
    num_classes: int = 1001,
    depth_multiplier: float = 1.0,
    is_training: bool = True,
    dropout_keep_prob: float = 0.8,
    min_depth: int = 8,
    finegrain_classification_mode: bool = True,
    conv_defs: Sequence[Conv | Bottleneck] | None = None,
    prediction_fn: Callable | None = slim.softmax,
    reuse: bool | None = None,
    scope: str = "MobilenetV2",
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """MobileNet v2 classifier: returns (logits [B, num_classes], end_points).

    num_classes=0 (or None) returns the globally pooled features [B, 1, 1, depth] instead.
    is_training switches BatchNorm (batch statistics, moving-average updates) and dropout.
    Any input size works: the features are averaged globally before the classifier.
    """
    return classifier(
        mobilenet_v2_base, inputs, scope, "MobilenetV2", reuse, is_training, num_classes, dropout_keep_prob,
        prediction_fn, depth_multiplier=depth_multiplier, min_depth=min_depth,
        finegrain_classification_mode=finegrain_classification_mode, conv_defs=conv_defs,
    )


def classifier(
    base_fn: Callable, inputs: tf.Tensor, scope: str, default_scope: str, reuse: bool | None, is_training: bool,
    num_classes: int | None, dropout_keep_prob: float, prediction_fn: Callable | None, **base_kwargs,
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """`base_fn(inputs, scope=..., **base_kwargs)` under the net's scope with BatchNorm and dropout in
    is_training's mode, then `logits_head`. Shared by the mobilenet_v2 and mobilenet_v3 families."""
    if inputs.get_shape().ndims != 4:
        raise ValueError(f"{scope} wants images of shape [batch, height, width, 3], got {inputs.get_shape()}")
    with (
        tf.variable_scope(scope, default_scope, [inputs], reuse=reuse) as net_scope,
        slim.arg_scope([slim.batch_norm, slim.dropout], is_training=is_training),
    ):
        net, end_points = base_fn(inputs, scope=net_scope, **base_kwargs)
        return logits_head(net, end_points, num_classes, dropout_keep_prob, prediction_fn)


def logits_head(
    net: tf.Tensor, end_points: dict, num_classes: int | None, dropout_keep_prob: float, prediction_fn: Callable | None
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """TF-Slim's mobilenet head under `Logits`: global average pool, dropout, 1x1 conv `Conv2d_1c_1x1`, squeeze.

    Fills end_points ('global_pool', 'Logits', 'Predictions'); num_classes=0 (or None) returns the pooled
    features [B, 1, 1, depth].
    """
    with tf.variable_scope("Logits"):
        net = tf.reduce_mean(net, [1, 2], keepdims=True, name="global_pool")
        end_points["global_pool"] = net
        if not num_classes:
            return net, end_points
        net = slim.dropout(net, keep_prob=dropout_keep_prob, scope="Dropout")
        logits = slim.conv2d(
            net,
            num_classes,
            [1, 1],
            activation_fn=None,
            normalizer_fn=None,
            biases_initializer=tf.zeros_initializer(),
            scope="Conv2d_1c_1x1",
        )
        logits = tf.squeeze(logits, [1, 2], name="output")
    end_points["Logits"] = logits
    if prediction_fn:
        end_points["Predictions"] = prediction_fn(logits, scope="Predictions")
    return logits, end_points


mobilenet_v2.default_image_size = 224


def mobilenet_v2_arg_scope(
    is_training: bool | None = True,
    weight_decay: float = 0.00004,
    stddev: float = 0.09,
    batch_norm_decay: float = 0.997,
    batch_norm_epsilon: float = 0.001,
) -> dict:
    """TF-Slim's training settings for MobileNet v2: initializer, L2 weight decay (not on depthwise), BatchNorm.

    stddev < 0 uses Xavier initialization. is_training=None leaves BatchNorm's mode to the network
    function (which always sets it).
    """
    batch_norm_params = {"decay": batch_norm_decay, "epsilon": batch_norm_epsilon}
    if is_training is not None:
        batch_norm_params["is_training"] = is_training
    initializer = slim.xavier_initializer() if stddev < 0 else tf.truncated_normal_initializer(stddev=stddev)
    with (
        slim.arg_scope(
            [slim.conv2d, slim.separable_conv2d], weights_initializer=initializer, normalizer_fn=slim.batch_norm
        ),
        slim.arg_scope([slim.batch_norm], **batch_norm_params),
        slim.arg_scope([slim.conv2d], weights_regularizer=slim.l2_regularizer(weight_decay)),
        slim.arg_scope([slim.separable_conv2d], weights_regularizer=None) as scope,
    ):
        return scope


mobilenet_v2_140 = width_variant(mobilenet_v2, 1.4)
mobilenet_v2_035 = width_variant(mobilenet_v2, 0.35)


def _register(name: str, network_fn: Callable) -> None:
    register(
        NetSpec(
            name=name,
            network_fn=network_fn,
            arg_scope_fn=mobilenet_v2_arg_scope,
            image_size=224,
            num_classes=1001,
            preprocessing="inception",  # TF-Slim trained and evaluates mobilenets on [-1, 1] inputs
            scope="MobilenetV2",
            classifier_scopes=("MobilenetV2/Logits",),
        )
    )


_register("mobilenet_v2", mobilenet_v2)
_register("mobilenet_v2_140", mobilenet_v2_140)
_register("mobilenet_v2_035", mobilenet_v2_035)
