"""Inception-ResNet-v2 (Szegedy et al. 2016, https://arxiv.org/abs/1602.07261) with TF-Slim's names.

Built with 1001 classes under `inception_resnet_v2_arg_scope()`, every variable's name and shape
equals the published inception_resnet_v2_2016_08_30 checkpoint (nets/published/inception_resnet_v2.txt).

Layout (sizes at 299 px): a stem of plain convolutions and pools down to 35 x 35, Mixed_5b, then
three stacks of residual Inception blocks separated by the reduction modules Mixed_6a and Mixed_7a:
10 x block35 (`Repeat/block35_N`), 20 x block17 (`Repeat_1/block17_N`, output 'PreAuxLogits') and
9 x block8 (`Repeat_2/block8_N`) plus a last `Block8` without activation, then Conv2d_7b_1x1.
Each residual block adds a scaled 1x1 projection of its concatenated branches to its input.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from nets._inception_common import (
    AuxScopes,
    AvgPool,
    Branch,
    Conv,
    EndPoints,
    HeadScopes,
    MaxPool,
    apply_layer,
    aux_logits,
    classifier,
    mixed,
)
from nets.compat import slim, tf
from nets.spec import NetSpec, register

# Each stem layer is its own end point, named by its scope.
STEM = (
    Conv("Conv2d_1a_3x3", 32, 3, stride=2, padding="VALID"),  # 149 x 149 x 32
    Conv("Conv2d_2a_3x3", 32, 3, padding="VALID"),  # 147 x 147 x 32
    Conv("Conv2d_2b_3x3", 64, 3),  # 147 x 147 x 64
    MaxPool("MaxPool_3a_3x3", 3, stride=2, padding="VALID"),  # 73 x 73 x 64
    Conv("Conv2d_3b_1x1", 80, 1, padding="VALID"),  # 73 x 73 x 80
    Conv("Conv2d_4a_3x3", 192, 3, padding="VALID"),  # 71 x 71 x 192
    MaxPool("MaxPool_5a_3x3", 3, stride=2, padding="VALID"),  # 35 x 35 x 192
)

MIXED_5B: tuple[Branch, ...] = (  # 35 x 35 x 320
    (Conv("Conv2d_1x1", 96, 1),),
    (Conv("Conv2d_0a_1x1", 48, 1), Conv("Conv2d_0b_5x5", 64, 5)),
    (Conv("Conv2d_0a_1x1", 64, 1), Conv("Conv2d_0b_3x3", 96, 3), Conv("Conv2d_0c_3x3", 96, 3)),
    (AvgPool("AvgPool_0a_3x3", 3), Conv("Conv2d_0b_1x1", 64, 1)),
)

# Residual blocks: branches concatenated, projected back to the input depth by `Conv2d_1x1`.
BLOCK35: tuple[Branch, ...] = (  # 35 x 35 x 320
    (Conv("Conv2d_1x1", 32, 1),),
    (Conv("Conv2d_0a_1x1", 32, 1), Conv("Conv2d_0b_3x3", 32, 3)),
    (Conv("Conv2d_0a_1x1", 32, 1), Conv("Conv2d_0b_3x3", 48, 3), Conv("Conv2d_0c_3x3", 64, 3)),
)
BLOCK17: tuple[Branch, ...] = (  # 17 x 17 x 1088
    (Conv("Conv2d_1x1", 192, 1),),
    (Conv("Conv2d_0a_1x1", 128, 1), Conv("Conv2d_0b_1x7", 160, (1, 7)), Conv("Conv2d_0c_7x1", 192, (7, 1))),
)
BLOCK8: tuple[Branch, ...] = (  # 8 x 8 x 2080
    (Conv("Conv2d_1x1", 192, 1),),
    (Conv("Conv2d_0a_1x1", 192, 1), Conv("Conv2d_0b_1x3", 224, (1, 3)), Conv("Conv2d_0c_3x1", 256, (3, 1))),
)


def mixed_6a(stride: int) -> tuple[Branch, ...]:
    """Reduction to 17 x 17 x 1088 (stride 2), or kept at 35 x 35 for output_stride 8 (stride 1)."""
    return (
        (Conv("Conv2d_1a_3x3", 384, 3, stride=stride, padding="VALID"),),
        (
            Conv("Conv2d_0a_1x1", 256, 1),
            Conv("Conv2d_0b_3x3", 256, 3),
            Conv("Conv2d_1a_3x3", 384, 3, stride=stride, padding="VALID"),
        ),
        (MaxPool("MaxPool_1a_3x3", 3, stride=stride, padding="VALID"),),
    )


MIXED_7A: tuple[Branch, ...] = (  # 8 x 8 x 2080
    (Conv("Conv2d_0a_1x1", 256, 1), Conv("Conv2d_1a_3x3", 384, 3, stride=2, padding="VALID")),
    (Conv("Conv2d_0a_1x1", 256, 1), Conv("Conv2d_1a_3x3", 288, 3, stride=2, padding="VALID")),
    (
        Conv("Conv2d_0a_1x1", 256, 1),
        Conv("Conv2d_0b_3x3", 288, 3),
        Conv("Conv2d_1a_3x3", 320, 3, stride=2, padding="VALID"),
    ),
    (MaxPool("MaxPool_1a_3x3", 3, stride=2, padding="VALID"),),
)

END_POINTS = (
    *(layer.scope for layer in STEM),
    "Mixed_5b",
    "Mixed_6a",
    "PreAuxLogits",
    "Mixed_7a",
    "Conv2d_7b_1x1",
)


def residual_block(
    net: tf.Tensor,
    branches: Sequence[Branch],
    scale: float,
    activation_fn: Callable | None,
    scope: str,
) -> tf.Tensor:
    """net + scale * Conv2d_1x1(concat(branches)), then activation_fn (if any)."""
    with tf.variable_scope(scope):
        up = slim.conv2d(
            mixed(net, branches), net.get_shape()[3], 1, normalizer_fn=None, activation_fn=None, scope="Conv2d_1x1"
        )
        scaled_up = up * scale
        if activation_fn is tf.nn.relu6:
            scaled_up = tf.clip_by_value(scaled_up, -6.0, 6.0)  # keep the sum in relu6's band, as TF-Slim does
        net += scaled_up
        return activation_fn(net) if activation_fn else net


def residual_stack(
    net: tf.Tensor,
    branches: Sequence[Branch],
    count: int,
    scale: float,
    activation_fn: Callable | None,
    scope: str,
    block_name: str,
) -> tf.Tensor:
    """`count` residual blocks scoped `scope/block_name_1` .. `scope/block_name_count` (slim.repeat's names)."""
    with tf.variable_scope(scope):
        for index in range(1, count + 1):
            net = residual_block(net, branches, scale, activation_fn, f"{block_name}_{index}")
    return net


def inception_resnet_v2_base(
    inputs: tf.Tensor,
    final_endpoint: str = "Conv2d_7b_1x1",
    output_stride: int = 16,
    align_feature_maps: bool = False,
    scope: str | tf.VariableScope | None = None,
    activation_fn: Callable = tf.nn.relu,
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """The convolutional body up to `final_endpoint` (one of END_POINTS).

    output_stride=8 keeps 35 x 35 maps after Mixed_6a (atrous block17s) and is only defined up to
    'PreAuxLogits'. align_feature_maps=True uses SAME padding where the net has VALID.
    Returns the final end point's tensor and every end point built so far, by name.
    """
    end_points = EndPoints(final_endpoint, END_POINTS)
    if output_stride not in (8, 16):
        raise ValueError(f"output_stride must be 8 or 16, got {output_stride}")
    if output_stride == 8 and END_POINTS.index(final_endpoint) > END_POINTS.index("PreAuxLogits"):
        raise ValueError("output_stride=8 is only defined up to final_endpoint='PreAuxLogits'")
    valid = "SAME" if align_feature_maps else "VALID"
    atrous = output_stride == 8

    with (
        tf.variable_scope(scope, "InceptionResnetV2", [inputs]),
        slim.arg_scope([slim.conv2d, slim.max_pool2d, slim.avg_pool2d], stride=1, padding="SAME"),
    ):
        net = inputs
        for layer in STEM:
            net = apply_layer(net, layer, valid)
            if end_points.stop_at(layer.scope, net):
                return net, end_points.tensors

        with tf.variable_scope("Mixed_5b"):
            net = mixed(net, MIXED_5B)  # 35 x 35 x 320
        if end_points.stop_at("Mixed_5b", net):
            return net, end_points.tensors
        net = residual_stack(net, BLOCK35, 10, 0.17, activation_fn, "Repeat", "block35")  # 35 x 35 x 320

        with tf.variable_scope("Mixed_6a"):
            net = mixed(net, mixed_6a(stride=1 if atrous else 2), valid)  # 17 x 17 x 1088
        if end_points.stop_at("Mixed_6a", net):
            return net, end_points.tensors
        with slim.arg_scope([slim.conv2d], rate=2 if atrous else 1):
            net = residual_stack(net, BLOCK17, 20, 0.10, activation_fn, "Repeat_1", "block17")  # 17 x 17 x 1088
        if end_points.stop_at("PreAuxLogits", net):
            return net, end_points.tensors

        with tf.variable_scope("Mixed_7a"):
            net = mixed(net, MIXED_7A, valid)  # 8 x 8 x 2080
        if end_points.stop_at("Mixed_7a", net):
            return net, end_points.tensors
        net = residual_stack(net, BLOCK8, 9, 0.20, activation_fn, "Repeat_2", "block8")  # 8 x 8 x 2080
        net = residual_block(net, BLOCK8, 1.0, None, "Block8")  # 8 x 8 x 2080
        net = slim.conv2d(net, 1536, 1, scope="Conv2d_7b_1x1")  # 8 x 8 x 1536
        end_points.stop_at("Conv2d_7b_1x1", net)
        return net, end_points.tensors


_AUX_SCOPES = AuxScopes(pool="Conv2d_1a_3x3", conv="Conv2d_2a_5x5", logits="Logits")
_HEAD_SCOPES = HeadScopes(pool="AvgPool_1a_8x8", dropout="Dropout")


def inception_resnet_v2(
    inputs: tf.Tensor,
    num_classes: int | None = 1001,
    is_training: bool = True,
    dropout_keep_prob: float = 0.8,
    reuse: bool | None = None,
    scope: str = "InceptionResnetV2",
    create_aux_logits: bool = True,
    activation_fn: Callable = tf.nn.relu,
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """Inception-ResNet-v2 classifier: returns (logits [B, num_classes], end_points).

    num_classes=0 (or None) returns the pooled features [B, 1, 1, 1536] (before dropout) and no
    aux logits. is_training switches BatchNorm (batch statistics, moving-average updates) and dropout.
    Any image size from 75 px works; the final pool spans the last map, the aux head's kernels shrink
    below 299 px (so only AuxLogits/Conv2d_2a_5x5 and the classifiers change shape) and its map is
    averaged above (all variables stay the published ones).
    """
    with (
        tf.variable_scope(scope, "InceptionResnetV2", [inputs], reuse=reuse) as net_scope,
        slim.arg_scope([slim.batch_norm, slim.dropout], is_training=is_training),
    ):
        net, end_points = inception_resnet_v2_base(inputs, scope=net_scope, activation_fn=activation_fn)
        if create_aux_logits and num_classes:
            with tf.variable_scope("AuxLogits"):
                end_points["AuxLogits"] = aux_logits(end_points["PreAuxLogits"], num_classes, _AUX_SCOPES)
        with tf.variable_scope("Logits"):
            net = classifier(net, num_classes, dropout_keep_prob, end_points, _HEAD_SCOPES)
    return net, end_points


inception_resnet_v2.default_image_size = 299


def inception_resnet_v2_arg_scope(
    weight_decay: float = 0.00004,
    batch_norm_decay: float = 0.9997,
    batch_norm_epsilon: float = 0.001,
    activation_fn: Callable = tf.nn.relu,
    batch_norm_updates_collections: str | None = tf.GraphKeys.UPDATE_OPS,
    batch_norm_scale: bool = False,
) -> dict:
    """TF-Slim's settings for Inception-ResNet-v2: L2 decay on weights and biases, BatchNorm after convs.

    batch_norm_scale=True adds BatchNorm gammas, which the published checkpoint does not have.
    """
    regularizer = slim.l2_regularizer(weight_decay)
    batch_norm_params = {
        "decay": batch_norm_decay,
        "epsilon": batch_norm_epsilon,
        "updates_collections": batch_norm_updates_collections,
        "fused": None,  # fused kernel whenever the input allows it
        "scale": batch_norm_scale,
    }
    with (
        slim.arg_scope(
            [slim.conv2d, slim.fully_connected], weights_regularizer=regularizer, biases_regularizer=regularizer
        ),
        slim.arg_scope(
            [slim.conv2d],
            activation_fn=activation_fn,
            normalizer_fn=slim.batch_norm,
            normalizer_params=batch_norm_params,
        ) as scope,
    ):
        return scope


register(
    NetSpec(
        name="inception_resnet_v2",
        network_fn=inception_resnet_v2,
        arg_scope_fn=inception_resnet_v2_arg_scope,
        image_size=299,
        num_classes=1001,
        preprocessing="inception",
        scope="InceptionResnetV2",
        classifier_scopes=("InceptionResnetV2/Logits", "InceptionResnetV2/AuxLogits"),
        logits_end_point="Logits",
        predictions_end_point="Predictions",
    )
)
