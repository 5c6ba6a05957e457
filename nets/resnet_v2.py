"""ResNet V2 (pre-activation, He et al. 2016) with TF-Slim's research-version API: `resnet_v2_block`, the
generic `resnet_v2` taking a block list, and resnet_v2_50/101/152/200.

The units, root block and block stacking are tf_slim.nets.resnet_v2's (the same variables); the head is
TF-Slim's research version (nets/_slim_heads.resnet_head).

Published checkpoints: resnet_v2_{50,101,152}_2017_04_14, 1001 classes (0 is background), trained
and evaluated at 299 px (TF-Slim's README; the network function's own default_image_size says 224)
with INCEPTION preprocessing (inputs in [-1, 1]); TF-Slim's own factory wires them to vgg
preprocessing, which silently costs accuracy. TF-Slim published no resnet_v2_200 checkpoint; it is
registered like its family.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tf_slim.nets import resnet_v2 as slim_resnet_v2

from nets import resnet_utils
from nets._slim_heads import resnet_head
from nets.compat import tf
from nets.spec import NetSpec, register

resnet_arg_scope = resnet_utils.resnet_arg_scope
bottleneck = slim_resnet_v2.bottleneck
resnet_v2_block = slim_resnet_v2.resnet_v2_block  # (scope, base_depth, num_units, stride) -> Block


def resnet_v2(
    inputs: tf.Tensor,
    blocks: Sequence[resnet_utils.Block],
    num_classes: int | None = None,
    is_training: bool = True,
    global_pool: bool = True,
    output_stride: int | None = None,
    include_root_block: bool = True,
    spatial_squeeze: bool = True,
    reuse: bool | None = None,
    scope: str | None = None,
) -> tuple[tf.Tensor, dict]:
    """A ResNet v2 of `blocks` (TF-Slim's generator): logits [B, num_classes] (spatial_squeeze=False: [B, 1, 1, C])
    or, with num_classes None/0, the features ([B, 1, 1, C] with global_pool, else the post-norm map)."""
    with tf.variable_scope(scope, "resnet_v2", [inputs], reuse=reuse) as sc:
        net, end_points = slim_resnet_v2.resnet_v2(
            inputs, blocks, None, is_training, global_pool, output_stride, include_root_block, reuse=reuse, scope=sc
        )
        return resnet_head(net, end_points, sc.name, num_classes, global_pool, spatial_squeeze)


resnet_v2.default_image_size = 224

_UNITS = {"resnet_v2_50": (3, 4, 6, 3), "resnet_v2_101": (3, 4, 23, 3), "resnet_v2_152": (3, 8, 36, 3),
          "resnet_v2_200": (3, 24, 36, 3)}


def _named(name: str) -> Callable:
    units = _UNITS[name]

    def network_fn(
        inputs: tf.Tensor,
        num_classes: int | None = None,
        is_training: bool = True,
        global_pool: bool = True,
        output_stride: int | None = None,
        spatial_squeeze: bool = True,
        reuse: bool | None = None,
        scope: str = name,
    ) -> tuple[tf.Tensor, dict]:
        blocks = [
            resnet_v2_block(f"block{i + 1}", base_depth=base, num_units=n, stride=stride)
            for i, (base, n, stride) in enumerate(zip((64, 128, 256, 512), units, (2, 2, 2, 1)))
        ]
        return resnet_v2(inputs, blocks, num_classes, is_training, global_pool, output_stride, True,
                         spatial_squeeze, reuse, scope)

    network_fn.__name__ = network_fn.__qualname__ = name
    network_fn.__doc__ = f"{name}: see resnet_v2()."
    network_fn.default_image_size = 224
    return network_fn


resnet_v2_50 = _named("resnet_v2_50")
resnet_v2_101 = _named("resnet_v2_101")
resnet_v2_152 = _named("resnet_v2_152")
resnet_v2_200 = _named("resnet_v2_200")

for _network_fn in (resnet_v2_50, resnet_v2_101, resnet_v2_152, resnet_v2_200):
    _name = _network_fn.__name__
    register(
        NetSpec(
            name=_name,
            network_fn=_network_fn,
            arg_scope_fn=resnet_arg_scope,
            image_size=299,  # the checkpoints' size, not tf_slim's default_image_size
            num_classes=1001,
            preprocessing="inception",
            scope=_name,
            classifier_scopes=(f"{_name}/logits",),
            logits_end_point=f"{_name}/logits",
            predictions_end_point="predictions",
        )
    )
