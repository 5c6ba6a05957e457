"""MobileNet v1 (Howard et al. 2017, https://arxiv.org/abs/1704.04861) with TF-Slim's variable names.

Built with 1001 classes, every variable's name and shape equals the published
mobilenet_v1_{1.0,0.75,0.5,0.25}_224 checkpoints (2018_08_02); nets/published/mobilenet_v1*.txt.

The body is a list of conv defs: one full 3x3 convolution, then 13 depthwise-separable blocks
(3x3 depthwise + 1x1 pointwise, each with BatchNorm and ReLU6). Layer i is scoped `Conv2d_i` (full
conv) or `Conv2d_i_depthwise` / `Conv2d_i_pointwise`; the classifier lives under `Logits`.
The width variants scale every depth by `depth_multiplier`, never below `min_depth`.
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


class DepthSepConv(NamedTuple):
    """A depthwise convolution then a 1x1 pointwise one, each with BatchNorm and ReLU6."""

    kernel: tuple[int, int]
    stride: int
    depth: int


# The published body: output size at 224 px in the comments.
CONV_DEFS: list[Conv | DepthSepConv] = [
    Conv((3, 3), stride=2, depth=32),  # 112 x 112 x 32
    DepthSepConv((3, 3), stride=1, depth=64),  # 112 x 112 x 64
    DepthSepConv((3, 3), stride=2, depth=128),  # 56 x 56 x 128
    DepthSepConv((3, 3), stride=1, depth=128),  # 56 x 56 x 128
    DepthSepConv((3, 3), stride=2, depth=256),  # 28 x 28 x 256
    DepthSepConv((3, 3), stride=1, depth=256),  # 28 x 28 x 256
    DepthSepConv((3, 3), stride=2, depth=512),  # 14 x 14 x 512
    DepthSepConv((3, 3), stride=1, depth=512),  # 14 x 14 x 512
    DepthSepConv((3, 3), stride=1, depth=512),  # 14 x 14 x 512
    DepthSepConv((3, 3), stride=1, depth=512),  # 14 x 14 x 512
    DepthSepConv((3, 3), stride=1, depth=512),  # 14 x 14 x 512
    DepthSepConv((3, 3), stride=1, depth=512),  # 14 x 14 x 512
    DepthSepConv((3, 3), stride=2, depth=1024),  # 7 x 7 x 1024
    DepthSepConv((3, 3), stride=1, depth=1024),  # 7 x 7 x 1024
]

MOBILENETV1_CONV_DEFS = CONV_DEFS  # TF-Slim's name

FINAL_ENDPOINT = "Conv2d_13_pointwise"


def _check_rank(inputs: tf.Tensor) -> None:
    if inputs.get_shape().ndims != 4:
        raise ValueError(f"MobilenetV1 wants images of shape [batch, height, width, 3], got {inputs.get_shape()}")


@contextlib.contextmanager
def _architecture_scope(padding: str) -> Iterator[None]:
    """Settings that define the published body (ReLU6, BatchNorm after every conv) whatever the outer arg scope.

    BatchNorm's own options (scale, center, decay, ...) follow the outer arg scope, as in TF-Slim:
    mobilenet_v1_arg_scope sets scale=True, which the published checkpoints have.
    """
    with slim.arg_scope(
        [slim.conv2d, slim.separable_conv2d],
        activation_fn=tf.nn.relu6,
        normalizer_fn=slim.batch_norm,
        padding=padding,
    ):
        yield


def _fixed_padding(inputs: tf.Tensor, kernel: Sequence[int], rate: int = 1) -> tf.Tensor:
    """Pad height and width so that a VALID conv of `kernel` (dilated by `rate`) acts as SAME at any input size."""
    pads = []
    for k in kernel:
        total = k + (k - 1) * (rate - 1) - 1
        pads.append([total // 2, total - total // 2])
    return tf.pad(inputs, [[0, 0], pads[0], pads[1], [0, 0]])


class _Strides:
    """TF-Slim's output_stride rule: once the running stride reaches output_stride, later strides become
    atrous rates of the depthwise convolutions instead."""

    def __init__(self, output_stride: int | None):
        if output_stride is not None and output_stride not in (8, 16, 32):
            raise ValueError(f"Only allowed output_stride values are 8, 16, 32, got {output_stride}")
        self.output_stride, self.current, self.rate = output_stride, 1, 1

    def next(self, stride: int) -> tuple[int, int]:
        """(the layer's stride, its rate)."""
        if self.output_stride is not None and self.current == self.output_stride:
            layer_rate = self.rate
            self.rate *= stride
            return 1, layer_rate
        self.current *= stride
        return stride, 1


def mobilenet_v1_base(
    inputs: tf.Tensor,
    final_endpoint: str = FINAL_ENDPOINT,
    min_depth: int = 8,
    depth_multiplier: float = 1.0,
    conv_defs: Sequence[Conv | DepthSepConv] | None = None,
    output_stride: int | None = None,
    use_explicit_padding: bool = False,
    scope: str | tf.VariableScope | None = None,
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """The convolutional body up to `final_endpoint` (e.g. 'Conv2d_0', 'Conv2d_5_depthwise').

    Returns the final end point's tensor and every end point built so far, by name. BatchNorm runs in
    the mode the surrounding arg scope sets (mobilenet_v1 sets it from its is_training). output_stride
    (8, 16 or 32) caps the body's stride, later layers dilating instead (TF-Slim's rule);
    use_explicit_padding pads explicitly and convolves VALID (the same outputs as SAME, TF-Slim's option).
    """
    if depth_multiplier <= 0:
        raise ValueError(f"depth_multiplier must be greater than zero, got {depth_multiplier}")

    def depth(d: int) -> int:
        return max(int(d * depth_multiplier), min_depth)

    end_points: dict[str, tf.Tensor] = {}
    strides = _Strides(output_stride)

    def add(name: str, net: tf.Tensor) -> bool:
        """Record an end point; True when it is the last one asked for."""
        end_points[name] = net
        return name == final_endpoint

    def pad(net: tf.Tensor, kernel: Sequence[int], rate: int = 1) -> tf.Tensor:
        return _fixed_padding(net, kernel, rate) if use_explicit_padding else net

    with (
        tf.variable_scope(scope, "MobilenetV1", [inputs]),
        _architecture_scope("VALID" if use_explicit_padding else "SAME"),
    ):
        net = inputs
        for i, conv_def in enumerate(conv_defs or CONV_DEFS):
            stride, rate = strides.next(conv_def.stride)
            if isinstance(conv_def, Conv):
                net = slim.conv2d(pad(net, conv_def.kernel), depth(conv_def.depth), conv_def.kernel, stride=stride,
                                  scope=f"Conv2d_{i}")
                if add(f"Conv2d_{i}", net):
                    return net, end_points
                continue
            # num_outputs=None: slim.separable_conv2d builds the depthwise part only.
            net = slim.separable_conv2d(pad(net, conv_def.kernel, rate), None, conv_def.kernel, depth_multiplier=1,
                                        stride=stride, rate=rate, scope=f"Conv2d_{i}_depthwise")
            if add(f"Conv2d_{i}_depthwise", net):
                return net, end_points
            net = slim.conv2d(net, depth(conv_def.depth), [1, 1], stride=1, scope=f"Conv2d_{i}_pointwise")
            if add(f"Conv2d_{i}_pointwise", net):
                return net, end_points
    raise ValueError(f"Unknown final_endpoint {final_endpoint!r}; valid: {', '.join(end_points)}")


def mobilenet_v1(
    inputs: tf.Tensor,
    num_classes: int = 1000,
    dropout_keep_prob: float = 0.999,
    is_training: bool = True,
    min_depth: int = 8,
    depth_multiplier: float = 1.0,
    conv_defs: Sequence[Conv | DepthSepConv] | None = None,
    prediction_fn: Callable | None = slim.softmax,
    spatial_squeeze: bool = True,
    reuse: bool | None = None,
    scope: str = "MobilenetV1",
    global_pool: bool = False,
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """MobileNet v1 classifier: returns (logits [B, num_classes], end_points).

    num_classes=0 (or None) returns the pooled features [B, 1, 1, depth] before dropout instead.
    is_training switches BatchNorm (batch statistics, moving-average updates) and dropout.
    The final average pool spans the feature map: the published net's 7x7 at 224 px, shrunk below it as
    in TF-Slim and grown above it (where TF-Slim's fixed 7x7 would leave a spatial map), so any input size
    gives [B, num_classes]. global_pool=True, or a map of unknown size, takes the mean over height and
    width instead. spatial_squeeze=False keeps logits 4-D.
    """
    _check_rank(inputs)
    with (
        tf.variable_scope(scope, "MobilenetV1", [inputs], reuse=reuse) as net_scope,
        slim.arg_scope([slim.batch_norm, slim.dropout], is_training=is_training),
    ):
        net, end_points = mobilenet_v1_base(
            inputs, min_depth=min_depth, depth_multiplier=depth_multiplier, conv_defs=conv_defs, scope=net_scope
        )
        with tf.variable_scope("Logits"):
            height, width = net.get_shape().as_list()[1:3]
            if global_pool or height is None or width is None:
                net = tf.reduce_mean(net, [1, 2], keepdims=True, name="global_pool")
                end_points["global_pool"] = net
            else:
                net = slim.avg_pool2d(net, [height, width], padding="VALID", scope="AvgPool_1a")
                end_points["AvgPool_1a"] = net
            if not num_classes:
                return net, end_points
            net = slim.dropout(net, keep_prob=dropout_keep_prob, scope="Dropout_1b")  # 1 x 1 x 1024
            logits = slim.conv2d(
                net, num_classes, [1, 1], activation_fn=None, normalizer_fn=None, scope="Conv2d_1c_1x1"
            )
            if spatial_squeeze:
                logits = tf.squeeze(logits, [1, 2], name="SpatialSqueeze")
        end_points["Logits"] = logits
        if prediction_fn:
            end_points["Predictions"] = prediction_fn(logits, scope="Predictions")
    return logits, end_points


mobilenet_v1.default_image_size = 224


def mobilenet_v1_arg_scope(
    is_training: bool | None = True,
    weight_decay: float = 0.00004,
    stddev: float = 0.09,
    regularize_depthwise: bool = False,
    batch_norm_decay: float = 0.9997,
    batch_norm_epsilon: float = 0.001,
    batch_norm_updates_collections: str | None = tf.GraphKeys.UPDATE_OPS,
) -> dict:
    """TF-Slim's training settings for MobileNet v1: initializer, L2 weight decay, BatchNorm decay/epsilon (and
    where its moving-average updates go: None updates them in place).

    is_training=None leaves BatchNorm's mode to the network function (which always sets it).
    """
    batch_norm_params = {"center": True, "scale": True, "decay": batch_norm_decay, "epsilon": batch_norm_epsilon,
                         "updates_collections": batch_norm_updates_collections}
    if is_training is not None:
        batch_norm_params["is_training"] = is_training
    regularizer = slim.l2_regularizer(weight_decay)
    with (
        slim.arg_scope(
            [slim.conv2d, slim.separable_conv2d],
            weights_initializer=tf.truncated_normal_initializer(stddev=stddev),
            activation_fn=tf.nn.relu6,
            normalizer_fn=slim.batch_norm,
        ),
        slim.arg_scope([slim.batch_norm], **batch_norm_params),
        slim.arg_scope([slim.conv2d], weights_regularizer=regularizer),
        slim.arg_scope(
            [slim.separable_conv2d], weights_regularizer=regularizer if regularize_depthwise else None
        ) as scope,
    ):
        return scope


mobilenet_v1_075 = width_variant(mobilenet_v1, 0.75)
mobilenet_v1_050 = width_variant(mobilenet_v1, 0.50)
mobilenet_v1_025 = width_variant(mobilenet_v1, 0.25)


def _register(name: str, network_fn: Callable) -> None:
    register(
        NetSpec(
            name=name,
            network_fn=network_fn,
            arg_scope_fn=mobilenet_v1_arg_scope,
            image_size=224,
            num_classes=1001,
            preprocessing="inception",  # TF-Slim trained and evaluates mobilenets on [-1, 1] inputs
            scope="MobilenetV1",
            classifier_scopes=("MobilenetV1/Logits",),
        )
    )


_register("mobilenet_v1", mobilenet_v1)
_register("mobilenet_v1_075", mobilenet_v1_075)
_register("mobilenet_v1_050", mobilenet_v1_050)
_register("mobilenet_v1_025", mobilenet_v1_025)
