"""Classifier heads with TF-Slim's research-version conventions, on top of tf_slim.nets' bodies.

tf_slim 1.1.0 builds its heads inside its network functions without conventions of TF-Slim's
later research versions that users rely on: `num_classes=0` for pre-logits features, `global_pool`,
pooling that fits small images, squeezed ResNet logits. The final pooling here also spans larger
maps, so any image size gives [B, num_classes] logits (TF-Slim's fixed kernel would leave a spatial map). These heads add them with the same scope
names, so the variables stay those of the published checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nets.compat import slim, tf


@dataclass(frozen=True)
class HeadNames:
    """Scope names of one Inception version's head (under its `Logits` scope)."""

    pool: str  # formatted with the kernel size, e.g. "AvgPool_1a_{}x{}"
    dropout: str
    logits: str


def reduced_kernel_size(net: tf.Tensor, size: int) -> list[int]:
    """`size` x `size`, reduced to the feature map's height and width where those are smaller (TF-Slim's rule)."""
    _, height, width, _ = net.get_shape().as_list()
    return [min(height or size, size), min(width or size, size)]


def is_one_by_one(net: tf.Tensor) -> bool:
    """True if `net`'s height and width are statically 1."""
    return net.get_shape().as_list()[1:3] == [1, 1]


def average_to_one_by_one(net: tf.Tensor, name: str = "global_pool") -> tf.Tensor:
    """`net` averaged over height and width to [B, 1, 1, C]; `net` itself where it already is 1x1.

    A fully-convolutional head (a fixed VALID kernel) leaves a spatial map above the default image size;
    its classifier being linear, averaging before it equals averaging the spatial logits.
    """
    return net if is_one_by_one(net) else tf.reduce_mean(net, [1, 2], keepdims=True, name=name)


def classifier_head(
    net: tf.Tensor,
    end_points: dict,
    names: HeadNames,
    *,
    num_classes: int,
    dropout_keep_prob: float,
    spatial_squeeze: bool,
    global_pool: bool,
    prediction_fn: Callable,
) -> tf.Tensor:
    """Pool, dropout, 1x1 conv to logits under the current scope's `Logits`; fills end_points.

    Returns the logits, or with num_classes=0 the pooled pre-logits features [B, 1, 1, C].
    Without global_pool the average pool's kernel is the whole feature map (TF-Slim's fixed kernel at the
    default image size, shrunk below it as TF-Slim does, grown above it); with global_pool, or where the
    map's size is unknown, a mean over height and width.
    """
    with tf.variable_scope("Logits"):
        height, width = net.get_shape().as_list()[1:3]
        if global_pool or height is None or width is None:
            net = tf.reduce_mean(net, [1, 2], keepdims=True, name="global_pool")
            end_points["global_pool"] = net
        else:
            net = slim.avg_pool2d(net, [height, width], padding="VALID", scope=names.pool.format(height, width))
        if not num_classes:
            return net
        net = slim.dropout(net, keep_prob=dropout_keep_prob, scope=names.dropout)
        end_points["PreLogits"] = net
        logits = slim.conv2d(net, num_classes, [1, 1], activation_fn=None, normalizer_fn=None, scope=names.logits)
        if spatial_squeeze:
            logits = tf.squeeze(logits, [1, 2], name="SpatialSqueeze")
    end_points["Logits"] = logits
    end_points["Predictions"] = prediction_fn(logits, scope="Predictions")
    return logits


def resnet_head(
    net: tf.Tensor, end_points: dict, scope_name: str, num_classes: int | None, global_pool: bool, spatial_squeeze: bool
) -> tuple[tf.Tensor, dict]:
    """TF-Slim's research-version ResNet head on a tf_slim.nets ResNet body, in the net's scope; returns
    (logits, end_points), or with num_classes 0/None the body's (pooled) features.

    End points as TF-Slim's research version ('global_pool', '<scope>/spatial_squeeze', 'predictions'), except
    that '<scope>/logits' is the returned logits, squeezed when spatial_squeeze (research: [B, 1, 1, C]).
    """
    if global_pool:
        end_points["global_pool"] = net
    if not num_classes:
        return net, end_points
    logits = slim.conv2d(net, num_classes, [1, 1], activation_fn=None, normalizer_fn=None, scope="logits")
    if spatial_squeeze:
        logits = tf.squeeze(logits, [1, 2], name="SpatialSqueeze")
        end_points[f"{scope_name}/spatial_squeeze"] = logits
    end_points[f"{scope_name}/logits"] = logits
    end_points["predictions"] = slim.softmax(logits, scope="predictions")
    return logits, end_points
