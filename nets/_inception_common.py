"""Building blocks shared by inception_v4.py and inception_resnet_v2.py (Szegedy et al. 2016).

Both nets are stacks of "mixed" modules: parallel branches (`Branch_0`, `Branch_1`, ...) of
convolutions and pools whose outputs are concatenated along depth. Here a branch is data, a tuple
of `Conv` / `MaxPool` / `AvgPool` / `Fork` layers, so each family file states its modules as
tables and builds them with `mixed()`. Also here: the end-point recorder, the auxiliary
classifier and the final pooled classifier, which differ between the two nets only in scope names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from nets.compat import slim, tf


class Conv(NamedTuple):
    """slim.conv2d under the net's arg scope (BatchNorm + ReLU)."""

    scope: str
    depth: int
    kernel: int | tuple[int, int]
    stride: int = 1
    padding: str = "SAME"


class MaxPool(NamedTuple):
    scope: str
    kernel: int = 3
    stride: int = 1
    padding: str = "SAME"


class AvgPool(NamedTuple):
    scope: str
    kernel: int = 3
    stride: int = 1
    padding: str = "SAME"


class Fork(NamedTuple):
    """Layers applied to the same input, outputs concatenated (Inception-C's 1x3 | 3x1 split)."""

    layers: tuple[Conv, ...]


Layer = Conv | MaxPool | AvgPool | Fork
Branch = tuple[Layer, ...]


class EndPoints:
    """Collects a base network's end points and says when the requested final one is reached."""

    def __init__(self, final_endpoint: str, valid_names: Sequence[str]):
        if final_endpoint not in valid_names:
            raise ValueError(f"Unknown final_endpoint {final_endpoint!r}; valid: {', '.join(valid_names)}")
        self.final_endpoint = final_endpoint
        self.tensors: dict[str, tf.Tensor] = {}

    def stop_at(self, name: str, net: tf.Tensor) -> bool:
        """Record `net` as end point `name`; True when it is the final one asked for."""
        self.tensors[name] = net
        return name == self.final_endpoint


def apply_layer(net: tf.Tensor, layer: Layer, valid_padding: str = "VALID") -> tf.Tensor:
    """Build one layer; layers declared 'VALID' use `valid_padding` instead (IRv2's align_feature_maps)."""
    if isinstance(layer, Fork):
        return tf.concat([apply_layer(net, sub, valid_padding) for sub in layer.layers], axis=3)
    padding = valid_padding if layer.padding == "VALID" else layer.padding
    if isinstance(layer, Conv):
        return slim.conv2d(net, layer.depth, layer.kernel, stride=layer.stride, padding=padding, scope=layer.scope)
    pool = slim.max_pool2d if isinstance(layer, MaxPool) else slim.avg_pool2d
    return pool(net, layer.kernel, stride=layer.stride, padding=padding, scope=layer.scope)


def mixed(net: tf.Tensor, branches: Sequence[Branch], valid_padding: str = "VALID") -> tf.Tensor:
    """Branch_0..Branch_n in the current variable scope, concatenated along depth."""
    outputs = []
    for index, branch in enumerate(branches):
        with tf.variable_scope(f"Branch_{index}"):
            out = net
            for layer in branch:
                out = apply_layer(out, layer, valid_padding)
            outputs.append(out)
    return tf.concat(outputs, axis=3)


def _static_size(net: tf.Tensor) -> tuple[int | None, int | None]:
    height, width = net.get_shape().as_list()[1:3]
    return height, width


class AuxScopes(NamedTuple):
    """Scope names inside `<Net>/AuxLogits`: they differ between the published checkpoints."""

    pool: str
    conv: str
    logits: str


def aux_logits(net: tf.Tensor, num_classes: int, scopes: AuxScopes) -> tf.Tensor:
    """The auxiliary classifier on the 17 x 17 end point (at 299 px): [B, num_classes].

    5x5/3 average pool -> 1x1 conv 128 -> 5x5 VALID conv 768 -> fully connected. Below 299 px both
    kernels shrink to the map (TF-Slim's conv always spans the map); above it the conv keeps the published
    5x5 and its spatial output is averaged (the fully connected layer being linear, as averaging the logits).
    """
    height, width = _static_size(net)
    if height is None or width is None:
        raise ValueError("The auxiliary logits need a static image height and width; pass create_aux_logits=False.")
    aux = slim.avg_pool2d(net, [min(height, 5), min(width, 5)], stride=3, padding="VALID", scope=scopes.pool)
    aux = slim.conv2d(aux, 128, 1, scope="Conv2d_1b_1x1")  # 5 x 5 x 128
    height, width = _static_size(aux)
    aux = slim.conv2d(aux, 768, [min(height, 5), min(width, 5)], padding="VALID", scope=scopes.conv)  # 1 x 1 x 768
    if height > 5 or width > 5:  # a spatial map above 299 px
        aux = tf.reduce_mean(aux, axis=[1, 2], keepdims=True, name="global_pool")
    aux = slim.flatten(aux)
    return slim.fully_connected(aux, num_classes, activation_fn=None, scope=scopes.logits)


class HeadScopes(NamedTuple):
    """Op scope names inside `<Net>/Logits` (they hold no variables but name the exported nodes)."""

    pool: str
    dropout: str
    flatten: str = "Flatten"


def classifier(
    net: tf.Tensor,
    num_classes: int | None,
    dropout_keep_prob: float,
    end_points: dict[str, tf.Tensor],
    scopes: HeadScopes,
) -> tf.Tensor:
    """Average pool over the whole map, dropout, fully connected `Logits`; records the end points.

    With num_classes 0/None returns the pooled features [B, 1, 1, C] (before dropout) instead.
    """
    height, width = _static_size(net)
    if height is None or width is None:
        net = tf.reduce_mean(net, axis=[1, 2], keepdims=True, name="global_pool")
    else:
        net = slim.avg_pool2d(net, [height, width], padding="VALID", scope=scopes.pool)  # 1 x 1 x C
    end_points["global_pool"] = net
    if not num_classes:
        return net
    net = slim.flatten(net, scope=scopes.flatten)
    net = slim.dropout(net, dropout_keep_prob, scope=scopes.dropout)
    end_points["PreLogitsFlatten"] = net
    logits = slim.fully_connected(net, num_classes, activation_fn=None, scope="Logits")
    end_points["Logits"] = logits
    end_points["Predictions"] = tf.nn.softmax(logits, name="Predictions")
    return logits
