"""Convolutions, max pools, then fully connected layers written as convolutions (fc6, fc7, fc8): AlexNet v2
and OverFeat of TF-Slim, with the body as data.

tf_slim.nets.alexnet / overfeat hard-wire fc6 as a VALID convolution the size of pool5 at the default image
size, so they fail on smaller images, and they cannot return pre-logits features. This builder writes the
same layers (same scopes, same weights) with TF-Slim's research-version options: `num_classes=0` for fc7's
features, `global_pool`, and an fc6 that fits any image (SAME padding where pool5 is smaller than its kernel).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import NamedTuple

from nets.compat import slim, tf
from nets.spec import NetSpec, register


class Conv(NamedTuple):
    """A convolution with ReLU and biases (the family's arg scope sets both)."""

    scope: str
    depth: int
    kernel: int
    stride: int = 1
    padding: str = "SAME"


class MaxPool(NamedTuple):
    scope: str
    kernel: int
    stride: int = 2


class FullyConnected(NamedTuple):
    """fc6 (a `fc6_kernel` x `fc6_kernel` convolution over pool5), fc7 (1x1); fc8 is the classifier."""

    fc6_kernel: int
    fc6_depth: int
    fc7_depth: int


def _map_smaller_than(net: tf.Tensor, kernel: int) -> bool:
    return any(dim is not None and dim < kernel for dim in net.get_shape().as_list()[1:3])


def _map_larger_than_1x1(net: tf.Tensor) -> bool:
    return any(dim is None or dim > 1 for dim in net.get_shape().as_list()[1:3])


def conv_fc_net(
    inputs: tf.Tensor,
    body: Sequence[Conv | MaxPool],
    fully_connected: FullyConnected,
    *,
    num_classes: int | None,
    is_training: bool,
    dropout_keep_prob: float,
    spatial_squeeze: bool,
    scope: str,
    fc_conv_padding: str | None,
    global_pool: bool | None,
    reuse: bool | None,
) -> tuple[tf.Tensor, dict]:
    """Logits [B, num_classes] (or [B, H, W, num_classes] without spatial_squeeze) and end points named
    '<scope>/conv1' ... '<scope>/fc7', '<scope>/fc8' (the returned logits); num_classes=0 returns fc7's
    features (globally pooled when global_pool).

    fc_conv_padding defaults to TF-Slim's 'VALID', or 'SAME' where pool5 is smaller than fc6's kernel (an image
    below the default size). global_pool=False (TF-Slim's default) keeps fc7's map: above the default size the
    logits are a spatial map (squeeze it off with spatial_squeeze=False); True averages it; None averages it
    exactly when it is not 1 x 1 (what the zoo's registry passes).
    fc6..fc8 get TF-Slim's initializers (weights N(0, 0.005) truncated, biases 0.1, fc8's biases 0).
    """
    with tf.variable_scope(scope, scope, [inputs], reuse=reuse) as sc:
        end_points_collection = sc.original_name_scope + "_end_points"
        with slim.arg_scope([slim.conv2d, slim.max_pool2d], outputs_collections=end_points_collection):
            net = inputs
            for layer in body:
                if isinstance(layer, Conv):
                    net = slim.conv2d(
                        net, layer.depth, [layer.kernel] * 2, layer.stride, padding=layer.padding, scope=layer.scope
                    )
                else:
                    net = slim.max_pool2d(net, [layer.kernel] * 2, layer.stride, scope=layer.scope)
            fc6_kernel = fully_connected.fc6_kernel
            padding = fc_conv_padding or ("SAME" if _map_smaller_than(net, fc6_kernel) else "VALID")
            with slim.arg_scope(
                [slim.conv2d],
                weights_initializer=tf.truncated_normal_initializer(0.0, 0.005),
                biases_initializer=tf.constant_initializer(0.1),
            ):
                net = slim.conv2d(net, fully_connected.fc6_depth, [fc6_kernel] * 2, padding=padding, scope="fc6")
                net = slim.dropout(net, dropout_keep_prob, is_training=is_training, scope="dropout6")
                net = slim.conv2d(net, fully_connected.fc7_depth, [1, 1], scope="fc7")
        end_points = slim.utils.convert_collection_to_dict(end_points_collection)
        return classifier_head(net, end_points, sc.name, num_classes, is_training, dropout_keep_prob,
                               spatial_squeeze, global_pool)


def classifier_head(net: tf.Tensor, end_points: dict, scope_name: str, num_classes: int | None, is_training: bool,
                    dropout_keep_prob: float, spatial_squeeze: bool, global_pool: bool | None) -> tuple[tf.Tensor, dict]:
    """fc7's features pooled (when global_pool, or by default where fc7's map is not 1 x 1), then dropout and
    fc8 (1x1, no activation, biases 0), squeezed; num_classes=0 returns the features. Shared with vgg."""
    if global_pool or (global_pool is None and _map_larger_than_1x1(net)):
        net = tf.reduce_mean(net, [1, 2], keepdims=True, name="global_pool")
        end_points["global_pool"] = net
    if not num_classes:
        return net, end_points
    net = slim.dropout(net, dropout_keep_prob, is_training=is_training, scope="dropout7")
    net = slim.conv2d(
        net,
        num_classes,
        [1, 1],
        activation_fn=None,
        normalizer_fn=None,
        biases_initializer=tf.zeros_initializer(),
        scope="fc8",
    )
    if spatial_squeeze:
        net = tf.squeeze(net, [1, 2], name="fc8/squeezed")
    end_points[f"{scope_name}/fc8"] = net
    return net, end_points


def toolkit_variant(network_fn: Callable) -> Callable:
    """`network_fn` with global_pool=None (pool fc7 exactly where its map is not 1 x 1), the toolkit's choice:
    the network functions themselves default to TF-Slim's global_pool=False (a spatial map of logits above the
    default size), and the registry passes None so fine-tuning at any image size gives [B, num_classes]."""
    return functools.update_wrapper(functools.partial(network_fn, global_pool=None), network_fn)


def register_net(network_fn, arg_scope_fn) -> None:
    """Register a net of this shape (alexnet_v2, overfeat, vgg): 1000 classes, vgg preprocessing, classifier
    `<name>/fc8` (also the logits end point), no predictions end point; the registry's network function is
    `toolkit_variant(network_fn)`."""
    name = network_fn.__name__
    register(
        NetSpec(
            name=name,
            network_fn=toolkit_variant(network_fn),
            arg_scope_fn=arg_scope_fn,
            image_size=network_fn.default_image_size,
            num_classes=1000,
            preprocessing="vgg",
            scope=name,
            classifier_scopes=(f"{name}/fc8",),
            logits_end_point=f"{name}/fc8",
            predictions_end_point=None,
        )
    )


def network(name: str, body: Sequence[Conv | MaxPool], fully_connected: FullyConnected, image_size: int):
    """The network function `name`(inputs, num_classes=1000, ...) of conv_fc_net on this body, as TF-Slim's."""

    def network_fn(
        inputs: tf.Tensor,
        num_classes: int = 1000,
        is_training: bool = True,
        dropout_keep_prob: float = 0.5,
        spatial_squeeze: bool = True,
        scope: str = name,
        fc_conv_padding: str | None = None,
        global_pool: bool | None = False,
        reuse: bool | None = None,
    ) -> tuple[tf.Tensor, dict]:
        return conv_fc_net(
            inputs,
            body,
            fully_connected,
            num_classes=num_classes,
            is_training=is_training,
            dropout_keep_prob=dropout_keep_prob,
            spatial_squeeze=spatial_squeeze,
            scope=scope,
            fc_conv_padding=fc_conv_padding,
            global_pool=global_pool,
            reuse=reuse,
        )

    network_fn.__name__ = network_fn.__qualname__ = name
    network_fn.__doc__ = f"{name} ({image_size} px): " + (conv_fc_net.__doc__ or "")
    network_fn.default_image_size = image_size
    return network_fn
