"""TF-Slim's `nets/mobilenet/mobilenet_v3.py` API: `mobilenet`, `mobilenet_base`, `training_scope`, `large`,
`small`, `large_minimalistic`, `small_minimalistic`, `edge_tpu`, `edge_tpu_075` and the `V3_*` conv defs,
over the zoo's MobileNet v3 / EdgeTPU bodies (nets/mobilenet_v3.py).

`V3_LARGE` etc. are the zoo's conv-def lists (not TF-Slim's dicts of op specs). Not supported:
use_groupnorm=True, output_stride, use_explicit_padding (they raise). The global pool is a mean either way,
so use_reduce_mean_for_pooling is accepted and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from nets import mobilenet_v3 as _zoo
from nets.compat import slim, tf
from nets.mobilenet import mobilenet as lib
from nets.mobilenet.mobilenet_v2 import check_unsupported, wrapped_partial

V3_LARGE = _zoo.V3_LARGE
V3_SMALL = _zoo.V3_SMALL
V3_LARGE_MINIMALISTIC = _zoo.V3_LARGE_MINIMALISTIC
V3_SMALL_MINIMALISTIC = _zoo.V3_SMALL_MINIMALISTIC
V3_EDGETPU = _zoo.EDGETPU
hard_swish = _zoo.hard_swish
hard_sigmoid = _zoo.hard_sigmoid
training_scope = lib.training_scope


def mobilenet(
    input_tensor: tf.Tensor,
    num_classes: int | None = 1001,
    depth_multiplier: float = 1.0,
    scope: str = "MobilenetV3",
    conv_defs=None,
    finegrain_classification_mode: bool = False,
    use_groupnorm: bool = False,
    min_depth: int | None = None,
    prediction_fn: Callable | None = slim.softmax,
    reuse: bool | None = None,
    base_only: bool = False,
    is_training: bool | None = None,
    final_endpoint: str | None = None,
    **kwargs,
) -> tuple[tf.Tensor, dict]:
    """TF-Slim's mobilenet_v3.mobilenet: (logits [B, num_classes], end_points); base_only: (features, end_points).

    conv_defs defaults to V3_LARGE.
    """
    if use_groupnorm:
        raise ValueError("use_groupnorm=True is not supported by this nets package's mobilenet_v3")
    check_unsupported(kwargs, "mobilenet_v3.mobilenet")
    return lib.mobilenet(
        _zoo.mobilenet_v3_base, input_tensor, num_classes, prediction_fn, reuse, scope, "MobilenetV3", base_only,
        is_training, conv_defs=conv_defs or V3_LARGE, depth_multiplier=depth_multiplier, min_depth=min_depth or 8,
        finegrain_classification_mode=finegrain_classification_mode,
        **({"final_endpoint": final_endpoint} if base_only else {}),
    )


mobilenet.default_image_size = 224
mobilenet_base = wrapped_partial(mobilenet, base_only=True)

large = wrapped_partial(mobilenet, conv_defs=V3_LARGE)
small = wrapped_partial(mobilenet, conv_defs=V3_SMALL)
large_minimalistic = wrapped_partial(mobilenet, conv_defs=V3_LARGE_MINIMALISTIC)
small_minimalistic = wrapped_partial(mobilenet, conv_defs=V3_SMALL_MINIMALISTIC)
edge_tpu = wrapped_partial(mobilenet, scope="MobilenetEdgeTPU", conv_defs=V3_EDGETPU)
edge_tpu_075 = wrapped_partial(mobilenet, scope="MobilenetEdgeTPU", conv_defs=V3_EDGETPU, depth_multiplier=0.75,
                               finegrain_classification_mode=True)
