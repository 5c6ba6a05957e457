"""ResNet V1 (He et al. 2015) with TF-Slim's research-version API: `resnet_v1_block`, the generic `resnet_v1`
taking a block list, and resnet_v1_50/101/152/200 with `min_base_depth` and `depth_multiplier`.

The bottleneck units, root block and block stacking are tf_slim.nets.resnet_v1's (the same variables);
the head is TF-Slim's research version (nets/_slim_heads.resnet_head).

Published checkpoints: resnet_v1_{50,101,152}_2016_08_28 (converted from Kaiming He's Caffe
models), 1000 classes (no background), 224 px, vgg preprocessing. TF-Slim published no
resnet_v1_200 checkpoint; it is registered with the family's class count.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tf_slim.nets import resnet_v1 as slim_resnet_v1

from nets import resnet_utils
from nets._slim_heads import resnet_head
from nets.compat import slim, tf
from nets.spec import NetSpec, register

resnet_arg_scope = resnet_utils.resnet_arg_scope
bottleneck = slim_resnet_v1.bottleneck
resnet_v1_block = slim_resnet_v1.resnet_v1_block  # (scope, base_depth, num_units, stride) -> Block


def resnet_v1(
    inputs: tf.Tensor,
    blocks: Sequence[resnet_utils.Block],
    num_classes: int | None = None,
    is_training: bool = True,
    global_pool: bool = True,
    output_stride: int | None = None,
    include_root_block: bool = True,
    spatial_squeeze: bool = True,
    store_non_strided_activations: bool = False,
    reuse: bool | None = None,
    scope: str | None = None,
) -> tuple[tf.Tensor, dict]:
    """A ResNet v1 of `blocks` (TF-Slim's generator): logits [B, num_classes] (spatial_squeeze=False: [B, 1, 1, C])
    or, with num_classes None/0, the features ([B, 1, 1, C] with global_pool, else the last block's map).

    store_non_strided_activations keeps each block's end point at the block's input resolution (the stride
    moves after it), for dense prediction.
    """
    with tf.variable_scope(scope, "resnet_v1", [inputs], reuse=reuse) as sc:
        net, end_points = _body(inputs, blocks, is_training, global_pool, output_stride, include_root_block,
                                store_non_strided_activations, sc)
        return resnet_head(net, end_points, sc.name, num_classes, global_pool, spatial_squeeze)


def _body(inputs: tf.Tensor, blocks: Sequence[resnet_utils.Block], is_training: bool, global_pool: bool,
          output_stride: int | None, include_root_block: bool, store_non_strided_activations: bool,
          sc: tf.VariableScope) -> tuple[tf.Tensor, dict]:
    """Root block (7x7/2 conv1, 3x3/2 pool1), the blocks, the global mean: tf_slim's layers and end points."""
    collection = sc.original_name_scope + "_end_points"
    with (
        slim.arg_scope([slim.conv2d, bottleneck, resnet_utils.stack_blocks_dense], outputs_collections=collection),
        slim.arg_scope([slim.batch_norm], is_training=is_training),
    ):
        net = inputs
        if include_root_block:
            if output_stride is not None:
                if output_stride % 4 != 0:
                    raise ValueError("The output_stride needs to be a multiple of 4.")
                output_stride //= 4
            net = resnet_utils.conv2d_same(net, 64, 7, stride=2, scope="conv1")
            net = slim.max_pool2d(net, [3, 3], stride=2, scope="pool1")
        net = resnet_utils.stack_blocks_dense(net, blocks, output_stride, store_non_strided_activations)
        if global_pool:
            net = tf.reduce_mean(net, [1, 2], name="pool5", keepdims=True)
    return net, slim.utils.convert_collection_to_dict(collection)


resnet_v1.default_image_size = 224

_UNITS = {"resnet_v1_50": (3, 4, 6, 3), "resnet_v1_101": (3, 4, 23, 3), "resnet_v1_152": (3, 8, 36, 3),
          "resnet_v1_200": (3, 24, 36, 3)}


def _named(name: str) -> Callable:
    units = _UNITS[name]

    def network_fn(
        inputs: tf.Tensor,
        num_classes: int | None = None,
        is_training: bool = True,
        global_pool: bool = True,
        output_stride: int | None = None,
        spatial_squeeze: bool = True,
        store_non_strided_activations: bool = False,
        min_base_depth: int = 8,
        depth_multiplier: float = 1,
        reuse: bool | None = None,
        scope: str = name,
    ) -> tuple[tf.Tensor, dict]:
        def depth(d: int) -> int:
            return max(int(d * depth_multiplier), min_base_depth)

        blocks = [
            resnet_v1_block(f"block{i + 1}", base_depth=depth(base), num_units=n, stride=stride)
            for i, (base, n, stride) in enumerate(zip((64, 128, 256, 512), units, (2, 2, 2, 1)))
        ]
        return resnet_v1(inputs, blocks, num_classes, is_training, global_pool, output_stride, True,
                         spatial_squeeze, store_non_strided_activations, reuse, scope)

    network_fn.__name__ = network_fn.__qualname__ = name
    network_fn.__doc__ = (f"{name}: see resnet_v1(). depth_multiplier scales each block's bottleneck depth "
                          "(never below min_base_depth).")
    network_fn.default_image_size = 224
    return network_fn


resnet_v1_50 = _named("resnet_v1_50")
resnet_v1_101 = _named("resnet_v1_101")
resnet_v1_152 = _named("resnet_v1_152")
resnet_v1_200 = _named("resnet_v1_200")

for _network_fn in (resnet_v1_50, resnet_v1_101, resnet_v1_152, resnet_v1_200):
    _name = _network_fn.__name__
    register(
        NetSpec(
            name=_name,
            network_fn=_network_fn,
            arg_scope_fn=resnet_arg_scope,
            image_size=224,
            num_classes=1000,
            preprocessing="vgg",
            scope=_name,
            classifier_scopes=(f"{_name}/logits",),
            logits_end_point=f"{_name}/logits",
            predictions_end_point="predictions",
        )
    )
