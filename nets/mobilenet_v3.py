"""MobileNet v3 (Howard et al. 2019, https://arxiv.org/abs/1905.02244) and MobileNet EdgeTPU, TF-Slim's names.

Built with 1001 classes, every variable's name and shape equals the published checkpoints
(v3-{large,small}_224_1.0_float, v3-{large,small}-minimalistic_224_1.0_float,
mobilenet_edgetpu_224_{1.0,0.75}); nets/published/mobilenet_v3_*.txt, mobilenet_edgetpu*.txt.

Each body is a list of layer defs, as TF-Slim's research/slim/nets/mobilenet/mobilenet_v3.py has them:
full convolutions (`Conv`, `Conv_1`, ...), inverted-residual blocks (`expanded_conv`, `expanded_conv_1`,
...: 1x1 `expand`, k x k `depthwise`, optional `squeeze_excite`, linear 1x1 `project` with BatchNorm, plus
the input when shapes allow), and for v3 an average pool to 1x1 followed by a 1x1 convolution without
BatchNorm (`Conv_2`, with biases). EdgeTPU's early blocks are "fused": a full k x k `expand` convolution
in place of 1x1 expand + depthwise. The minimalistic v3 bodies are the full ones without squeeze-excite,
hard-swish or 5x5 kernels. The classifier under `Logits` is mobilenet_v2's (`Conv2d_1c_1x1`).

End points follow TF-Slim: `layer_1` ... `layer_N`, `layer_N/expansion_output`, `layer_N/depthwise_output`,
`layer_N/output`, `global_pool`, `Logits`, `Predictions`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from nets.compat import slim, tf
from nets.mobilenet_v2 import architecture_scope, classifier, make_divisible, mobilenet_v2_arg_scope
from nets.spec import NetSpec, register


def hard_swish(x: tf.Tensor) -> tf.Tensor:
    """x * relu6(x + 3) / 6."""
    with tf.name_scope("hard_swish"):
        return x * tf.nn.relu6(x + np.float32(3)) * np.float32(1.0 / 6.0)


def hard_sigmoid(x: tf.Tensor) -> tf.Tensor:
    """relu6(x + 3) * 0.16667: the squeeze-excite gate, with TF-Slim's rounded constant."""
    return tf.nn.relu6(x + 3) * 0.16667


class Conv(NamedTuple):
    """A full k x k convolution with BatchNorm (or, without it, biases) and an activation."""

    kernel: int
    stride: int
    depth: int
    activation: Callable = tf.nn.relu
    batch_norm: bool = True


class Pool(NamedTuple):
    """An average pool of the whole feature map to 1 x 1."""


class Block(NamedTuple):
    """An inverted residual: expand the input depth `expansion` times (rounded to a multiple of 8; skipped when
    that is no wider), k x k depthwise, optional squeeze-excite, linear 1x1 projection to `depth`.

    fused: expand with a full k x k convolution of the block's stride instead of 1x1 + depthwise (EdgeTPU).
    """

    expansion: float
    depth: int
    kernel: int
    stride: int = 1
    activation: Callable = tf.nn.relu
    squeeze_excite: bool = False
    fused: bool = False
    residual: bool = True


_HS = hard_swish

# The published bodies: output size at 224 px in the comments.
V3_LARGE: list[Conv | Pool | Block] = [
    Conv(3, 2, 16, _HS),  # layer_1: 112 x 112 x 16
    Block(1, 16, 3),
    Block(4, 24, 3, 2),  # 56 x 56 x 24
    Block(3, 24, 3),
    Block(3, 40, 5, 2, squeeze_excite=True),  # 28 x 28 x 40
    Block(3, 40, 5, squeeze_excite=True),
    Block(3, 40, 5, squeeze_excite=True),
    Block(6, 80, 3, 2, _HS),  # 14 x 14 x 80
    Block(2.5, 80, 3, 1, _HS),
    Block(184 / 80, 80, 3, 1, _HS),
    Block(184 / 80, 80, 3, 1, _HS),
    Block(6, 112, 3, 1, _HS, squeeze_excite=True),  # 14 x 14 x 112
    Block(6, 112, 3, 1, _HS, squeeze_excite=True),
    Block(6, 160, 5, 2, _HS, squeeze_excite=True),  # 7 x 7 x 160
    Block(6, 160, 5, 1, _HS, squeeze_excite=True),
    Block(6, 160, 5, 1, _HS, squeeze_excite=True),
    Conv(1, 1, 960, _HS),  # layer_17: 7 x 7 x 960
    Pool(),  # 1 x 1 x 960
    Conv(1, 1, 1280, _HS, batch_norm=False),  # layer_19: 1 x 1 x 1280
]

V3_SMALL: list[Conv | Pool | Block] = [
    Conv(3, 2, 16, _HS),  # layer_1: 112 x 112 x 16
    Block(1, 16, 3, 2, squeeze_excite=True),  # 56 x 56 x 16
    Block(72 / 16, 24, 3, 2),  # 28 x 28 x 24
    Block(88 / 24, 24, 3),
    Block(4, 40, 5, 2, _HS, squeeze_excite=True),  # 14 x 14 x 40
    Block(6, 40, 5, 1, _HS, squeeze_excite=True),
    Block(6, 40, 5, 1, _HS, squeeze_excite=True),
    Block(3, 48, 5, 1, _HS, squeeze_excite=True),  # 14 x 14 x 48
    Block(3, 48, 5, 1, _HS, squeeze_excite=True),
    Block(6, 96, 5, 2, _HS, squeeze_excite=True),  # 7 x 7 x 96
    Block(6, 96, 5, 1, _HS, squeeze_excite=True),
    Block(6, 96, 5, 1, _HS, squeeze_excite=True),
    Conv(1, 1, 576, _HS),  # layer_13: 7 x 7 x 576
    Pool(),  # 1 x 1 x 576
    Conv(1, 1, 1024, _HS, batch_norm=False),  # layer_15: 1 x 1 x 1024
]


def minimalistic(conv_defs: Sequence[Conv | Pool | Block]) -> list[Conv | Pool | Block]:
    """The same body without squeeze-excite, hard-swish or 5x5 kernels (ReLU and 3x3 throughout)."""
    plain = []
    for conv_def in conv_defs:
        if isinstance(conv_def, Conv):
            conv_def = conv_def._replace(activation=tf.nn.relu)
        elif isinstance(conv_def, Block):
            conv_def = conv_def._replace(activation=tf.nn.relu, squeeze_excite=False, kernel=min(conv_def.kernel, 3))
        plain.append(conv_def)
    return plain


V3_LARGE_MINIMALISTIC = minimalistic(V3_LARGE)
V3_SMALL_MINIMALISTIC = minimalistic(V3_SMALL)

EDGETPU: list[Conv | Pool | Block] = [
    Conv(3, 2, 32),  # layer_1: 112 x 112 x 32
    Block(1, 16, 3, fused=True),  # no wider than its input: only the projection
    Block(8, 32, 3, 2, fused=True),  # 56 x 56 x 32
    Block(4, 32, 3, fused=True),
    Block(4, 32, 3, fused=True),
    Block(4, 32, 3, fused=True),
    Block(8, 48, 3, 2, fused=True),  # 28 x 28 x 48
    Block(4, 48, 3, fused=True),
    Block(4, 48, 3, fused=True),
    Block(4, 48, 3, fused=True),
    Block(8, 96, 3, 2),  # 14 x 14 x 96
    Block(4, 96, 3),
    Block(4, 96, 3),
    Block(4, 96, 3),
    Block(8, 96, 3, residual=False),
    Block(4, 96, 3),
    Block(4, 96, 3),
    Block(4, 96, 3),
    Block(8, 160, 5, 2),  # 7 x 7 x 160
    Block(4, 160, 5),
    Block(4, 160, 5),
    Block(4, 160, 5),
    Block(8, 192, 3),  # 7 x 7 x 192
    Conv(1, 1, 1280),  # layer_24: 7 x 7 x 1280
]


def _scope_names(conv_defs: Sequence[Conv | Pool | Block]) -> list[str | None]:
    """Per-layer variable scopes as TF-Slim numbers them: Conv, Conv_1, ..., expanded_conv, expanded_conv_1, ...;
    None for the pool, which has no variables."""
    counts: dict[str, int] = {}
    names: list[str | None] = []
    for conv_def in conv_defs:
        if isinstance(conv_def, Pool):
            names.append(None)
            continue
        base = "Conv" if isinstance(conv_def, Conv) else "expanded_conv"
        n = counts.get(base, 0)
        names.append(base if n == 0 else f"{base}_{n}")
        counts[base] = n + 1
    return names


def _pool_to_1x1(net: tf.Tensor) -> tf.Tensor:
    """Average the whole map: TF-Slim's kernel-sized VALID pool on a known size, a mean on an unknown one."""
    height, width = net.get_shape().as_list()[1:3]
    if height is None or width is None:
        return tf.reduce_mean(net, [1, 2], keepdims=True, name="AvgPool2D")
    return slim.avg_pool2d(net, [height, width], stride=1, padding="VALID", scope="AvgPool2D")


def _squeeze_excite(net: tf.Tensor) -> tf.Tensor:
    """Scale each channel by a gate computed from the channel means (squeeze to a quarter, ReLU, hard sigmoid)."""
    with tf.variable_scope("squeeze_excite"):
        channels = net.get_shape().as_list()[3]
        pooled = tf.reduce_mean(net, [1, 2], keepdims=True)
        squeeze = slim.conv2d(
            pooled, make_divisible(channels / 4), [1, 1], normalizer_fn=None, activation_fn=tf.nn.relu, scope="Conv"
        )
        gate = slim.conv2d(squeeze, channels, [1, 1], normalizer_fn=None, activation_fn=hard_sigmoid, scope="Conv_1")
        return net * gate


def _block(net: tf.Tensor, block: Block, depth: int, scope: str, end_points: dict, layer: str) -> tf.Tensor:
    """One inverted residual block; records its intermediate outputs as `layer/..._output` end points."""
    with tf.variable_scope(scope):
        input_depth = net.get_shape().as_list()[3]
        shortcut = net
        inner = make_divisible(input_depth * block.expansion)
        with slim.arg_scope([slim.conv2d, slim.separable_conv2d], activation_fn=block.activation):
            if inner > input_depth:
                kernel, stride = (block.kernel, block.stride) if block.fused else (1, 1)
                net = slim.conv2d(net, inner, [kernel, kernel], stride=stride, scope="expand")
                net = end_points[f"{layer}/expansion_output"] = tf.identity(net, name="expansion_output")
            if not block.fused:
                net = slim.separable_conv2d(
                    net, None, [block.kernel, block.kernel], depth_multiplier=1, stride=block.stride, scope="depthwise"
                )
                net = end_points[f"{layer}/depthwise_output"] = tf.identity(net, name="depthwise_output")
            if block.squeeze_excite:
                net = _squeeze_excite(net)
        net = slim.conv2d(net, depth, [1, 1], activation_fn=None, scope="project")
        if block.residual and block.stride == 1 and depth == input_depth:
            net += shortcut
        net = end_points[f"{layer}/output"] = tf.identity(net, name="output")
    return net


def mobilenet_v3_base(
    inputs: tf.Tensor,
    conv_defs: Sequence[Conv | Pool | Block] = V3_LARGE,
    final_endpoint: str | None = None,
    depth_multiplier: float = 1.0,
    min_depth: int = 8,
    finegrain_classification_mode: bool = False,
    scope: str | tf.VariableScope | None = None,
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """The body up to `final_endpoint` ('layer_1' ... 'layer_N'; None: all of it).

    Depths are scaled by depth_multiplier and rounded to a multiple of 8 (at least min_depth); block
    expansions are rounded likewise from the actual input depth. finegrain_classification_mode keeps the
    last layer at its full depth (as mobilenet_edgetpu_075 has it). BatchNorm runs in the mode the
    surrounding arg scope sets (mobilenet_v3 sets it from its is_training).
    """
    if depth_multiplier <= 0:
        raise ValueError(f"depth_multiplier must be greater than zero, got {depth_multiplier}")
    conv_defs = list(conv_defs)
    end_points: dict[str, tf.Tensor] = {}
    with tf.variable_scope(scope, "MobilenetV3", [inputs]), architecture_scope(tf.nn.relu):
        net = inputs
        for i, (conv_def, layer_scope) in enumerate(zip(conv_defs, _scope_names(conv_defs))):
            layer = f"layer_{i + 1}"
            if isinstance(conv_def, Pool):
                net = _pool_to_1x1(net)
            else:
                keep = finegrain_classification_mode and i == len(conv_defs) - 1
                depth = (
                    conv_def.depth if keep else make_divisible(conv_def.depth * depth_multiplier, min_value=min_depth)
                )
                if isinstance(conv_def, Conv):
                    net = slim.conv2d(
                        net,
                        depth,
                        [conv_def.kernel, conv_def.kernel],
                        stride=conv_def.stride,
                        activation_fn=conv_def.activation,
                        normalizer_fn=slim.batch_norm if conv_def.batch_norm else None,
                        scope=layer_scope,
                    )
                else:
                    net = _block(net, conv_def, depth, layer_scope, end_points, layer)
            end_points[layer] = net
            if layer == final_endpoint:
                return net, end_points
    if final_endpoint is not None:
        raise ValueError(f"Unknown final_endpoint {final_endpoint!r}; valid: layer_1 ... layer_{len(conv_defs)}")
    return net, end_points


def mobilenet_v3(
    inputs: tf.Tensor,
    num_classes: int = 1001,
    depth_multiplier: float = 1.0,
    is_training: bool = True,
    dropout_keep_prob: float = 0.8,
    min_depth: int = 8,
    finegrain_classification_mode: bool = False,
    conv_defs: Sequence[Conv | Pool | Block] = V3_LARGE,
    prediction_fn: Callable | None = slim.softmax,
    reuse: bool | None = None,
    scope: str = "MobilenetV3",
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """A MobileNet v3 / EdgeTPU classifier: returns (logits [B, num_classes], end_points).

    num_classes=0 (or None) returns the globally pooled features [B, 1, 1, depth] instead.
    is_training switches BatchNorm (batch statistics, moving-average updates) and dropout.
    Any input size works: the body's pool and the head average the whole feature map.
    """
    return classifier(
        mobilenet_v3_base, inputs, scope, "MobilenetV3", reuse, is_training, num_classes, dropout_keep_prob,
        prediction_fn, conv_defs=conv_defs, depth_multiplier=depth_multiplier, min_depth=min_depth,
        finegrain_classification_mode=finegrain_classification_mode,
    )


mobilenet_v3.default_image_size = 224
mobilenet_v3_arg_scope = mobilenet_v2_arg_scope  # TF-Slim's mobilenet_v3.training_scope is mobilenet's, as for v2


def _variant(name: str, doc: str, **defaults) -> Callable:
    """mobilenet_v3 with other defaults (body, scope, width), named `name`."""
    network_fn = functools.update_wrapper(functools.partial(mobilenet_v3, **defaults), mobilenet_v3)
    network_fn.__name__ = network_fn.__qualname__ = name
    network_fn.__doc__ = f"{name}: {doc}\n\n{mobilenet_v3.__doc__}"
    return network_fn


mobilenet_v3_large = _variant("mobilenet_v3_large", "MobileNet v3 Large, width 1.0.", conv_defs=V3_LARGE)
mobilenet_v3_small = _variant("mobilenet_v3_small", "MobileNet v3 Small, width 1.0.", conv_defs=V3_SMALL)
mobilenet_v3_large_minimalistic = _variant(
    "mobilenet_v3_large_minimalistic", "Large without squeeze-excite, hard-swish, 5x5.", conv_defs=V3_LARGE_MINIMALISTIC
)
mobilenet_v3_small_minimalistic = _variant(
    "mobilenet_v3_small_minimalistic", "Small without squeeze-excite, hard-swish, 5x5.", conv_defs=V3_SMALL_MINIMALISTIC
)
mobilenet_edgetpu = _variant(
    "mobilenet_edgetpu", "MobileNet EdgeTPU, width 1.0.", conv_defs=EDGETPU, scope="MobilenetEdgeTPU"
)
mobilenet_edgetpu_075 = _variant(
    "mobilenet_edgetpu_075",
    "MobileNet EdgeTPU, width 0.75 (the last layer keeps 1280 channels).",
    conv_defs=EDGETPU,
    scope="MobilenetEdgeTPU",
    depth_multiplier=0.75,
    finegrain_classification_mode=True,
)

for _network in (
    mobilenet_v3_large,
    mobilenet_v3_small,
    mobilenet_v3_large_minimalistic,
    mobilenet_v3_small_minimalistic,
    mobilenet_edgetpu,
    mobilenet_edgetpu_075,
):
    _scope = _network.keywords.get("scope", "MobilenetV3")
    register(
        NetSpec(
            name=_network.__name__,
            network_fn=_network,
            arg_scope_fn=mobilenet_v3_arg_scope,
            image_size=224,
            num_classes=1001,
            preprocessing="inception",  # [-1, 1] inputs, as TF-Slim trained and evaluates its mobilenets
            scope=_scope,
            classifier_scopes=(f"{_scope}/Logits",),
        )
    )
