"""VGG A (11 layers), 16 and 19 of TF-Slim, with the body as data.

tf_slim.nets.vgg hard-wires fc6 as a 7x7 VALID conv, so its nets fail below 224 px, give spatial
logits above 255 px and cannot return pre-logits features. This family writes the same layers (same
scopes, same weights) from a table, with TF-Slim's research-version options: `fc_conv_padding`,
`global_pool`, `num_classes=0`.

Published checkpoints: vgg_16_2016_08_28, vgg_19_2016_08_28 (converted from the Oxford Caffe
models), 1000 classes (no background), 224 px, vgg preprocessing. TF-Slim published no vgg_a
checkpoint.
"""

from __future__ import annotations

from tf_slim.nets import vgg as slim_vgg

from nets._conv_fc import classifier_head, register_net
from nets.compat import slim, tf

vgg_arg_scope = slim_vgg.vgg_arg_scope

_BLOCK_DEPTHS = (64, 128, 256, 512, 512)  # conv1..conv5, each followed by a 2x2 max pool
_CONVS_PER_BLOCK = {"vgg_a": (1, 1, 2, 2, 2), "vgg_16": (2, 2, 3, 3, 3), "vgg_19": (2, 2, 4, 4, 4)}
_FC6_KERNEL = 7  # pool5 is 7x7 at 224 px


def _vgg(
    inputs: tf.Tensor,
    convs_per_block: tuple[int, ...],
    num_classes: int,
    is_training: bool,
    dropout_keep_prob: float,
    spatial_squeeze: bool,
    scope: str,
    fc_conv_padding: str | None,
    global_pool: bool | None,
    reuse: bool | None,
) -> tuple[tf.Tensor, dict]:
    """conv1..conv5 (`convs_per_block` 3x3 convs each, then a 2x2 max pool), fc6, fc7, fc8 as convs."""
    with tf.variable_scope(scope, scope, [inputs], reuse=reuse) as sc:
        end_points_collection = sc.original_name_scope + "_end_points"
        with slim.arg_scope([slim.conv2d, slim.max_pool2d], outputs_collections=end_points_collection):
            net = inputs
            for block, (repeats, depth) in enumerate(zip(convs_per_block, _BLOCK_DEPTHS), start=1):
                net = slim.repeat(net, repeats, slim.conv2d, depth, [3, 3], scope=f"conv{block}")
                net = slim.max_pool2d(net, [2, 2], scope=f"pool{block}")
            small = _smaller_than_fc6(net)
            padding = fc_conv_padding or ("SAME" if small else "VALID")
            net = slim.conv2d(net, 4096, [_FC6_KERNEL, _FC6_KERNEL], padding=padding, scope="fc6")
            net = slim.dropout(net, dropout_keep_prob, is_training=is_training, scope="dropout6")
            net = slim.conv2d(net, 4096, [1, 1], scope="fc7")
        end_points = slim.utils.convert_collection_to_dict(end_points_collection)
        return classifier_head(net, end_points, sc.name, num_classes, is_training, dropout_keep_prob,
                               spatial_squeeze, global_pool)


def _smaller_than_fc6(net: tf.Tensor) -> bool:
    """True if pool5's (static) height or width is below fc6's 7x7 kernel: an image under 224 px."""
    return any(dim is not None and dim < _FC6_KERNEL for dim in net.get_shape().as_list()[1:3])


def _network_fn(name: str):
    def vgg(
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
        return _vgg(
            inputs,
            _CONVS_PER_BLOCK[name],
            num_classes,
            is_training,
            dropout_keep_prob,
            spatial_squeeze,
            scope,
            fc_conv_padding,
            global_pool,
            reuse,
        )

    vgg.__name__ = vgg.__qualname__ = name
    vgg.__doc__ = (
        f"{name}: logits [B, num_classes] and end points ('{name}/fc8' is the logits; no predictions end point);\n"
        "num_classes=0 returns fc7's features [B, 1, 1, 4096].\n\n"
        "fc_conv_padding defaults to TF-Slim's 'VALID' at 224 px and above and to 'SAME' below, where fc6's 7x7\n"
        "kernel no longer fits pool5. global_pool defaults to TF-Slim's False: above 255 px the logits are a\n"
        "spatial map (spatial_squeeze=False keeps it). True averages fc7 before fc8 (the same as averaging the\n"
        "spatial logits); None does so wherever fc7 is not 1x1 (the zoo registry's choice). At 224 px it is\n"
        "TF-Slim's net; the weights are the same at any size."
    )
    vgg.default_image_size = 224
    return vgg


vgg_a = _network_fn("vgg_a")
vgg_16 = _network_fn("vgg_16")
vgg_19 = _network_fn("vgg_19")
vgg_d = vgg_16  # TF-Slim's aliases (not registered under these names)
vgg_e = vgg_19

for _network in (vgg_a, vgg_16, vgg_19):
    register_net(_network, vgg_arg_scope)
