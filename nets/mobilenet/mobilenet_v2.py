"""TF-Slim's `nets/mobilenet/mobilenet_v2.py` API: `mobilenet`, `mobilenet_base`, `training_scope`, `V2_DEF`,
`mobilenet_v2_140/_050/_035`, over the zoo's MobileNet v2 body (nets/mobilenet_v2.py).

`V2_DEF` is the zoo's conv-def list (not TF-Slim's dict of op specs): pass it, or a list of the zoo's
`Conv`/`Bottleneck`, as conv_defs. Not supported: output_stride, use_explicit_padding, divisible_by,
activation_fn other than ReLU6 (they raise).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from nets import mobilenet_v2 as _zoo
from nets.compat import slim, tf
from nets.mobilenet import mobilenet as lib

V2_DEF = _zoo.CONV_DEFS
Conv = _zoo.Conv
Bottleneck = _zoo.Bottleneck
training_scope = lib.training_scope


_UNSUPPORTED = {"output_stride": (None,), "use_explicit_padding": (False,), "divisible_by": (None, 8),
                "activation_fn": (None,), "use_reduce_mean_for_pooling": (False, True)}


def check_unsupported(kwargs: dict, where: str) -> None:
    """Raise for TF-Slim options this package does not implement (or for unknown ones)."""
    for name, allowed in _UNSUPPORTED.items():
        if kwargs.pop(name, allowed[0]) not in allowed:
            raise ValueError(f"{name} is not supported by this nets package's {where}")
    if kwargs:
        raise TypeError(f"{where} got unexpected arguments: {', '.join(sorted(kwargs))}")


def mobilenet(
    input_tensor: tf.Tensor,
    num_classes: int | None = 1001,
    depth_multiplier: float = 1.0,
    scope: str = "MobilenetV2",
    conv_defs=None,
    finegrain_classification_mode: bool = False,
    min_depth: int | None = None,
    prediction_fn: Callable | None = slim.softmax,
    reuse: bool | None = None,
    base_only: bool = False,
    is_training: bool | None = None,
    final_endpoint: str | None = None,
    **kwargs,
) -> tuple[tf.Tensor, dict]:
    """TF-Slim's mobilenet_v2.mobilenet: (logits [B, num_classes], end_points); base_only: (features, end_points).

    finegrain_classification_mode keeps the last layer at 1280 channels when depth_multiplier < 1.
    """
    check_unsupported(kwargs, "mobilenet_v2.mobilenet")
    return lib.mobilenet(
        _zoo.mobilenet_v2_base, input_tensor, num_classes, prediction_fn, reuse, scope, "MobilenetV2", base_only,
        is_training, depth_multiplier=depth_multiplier, min_depth=min_depth or 8,
        finegrain_classification_mode=finegrain_classification_mode, conv_defs=conv_defs,
        **({"final_endpoint": final_endpoint} if base_only else {}),
    )


mobilenet.default_image_size = 224


def wrapped_partial(func: Callable, *args, **kwargs) -> Callable:
    partial = functools.partial(func, *args, **kwargs)
    functools.update_wrapper(partial, func)
    return partial


mobilenet_v2_140 = wrapped_partial(mobilenet, depth_multiplier=1.4)
mobilenet_v2_050 = wrapped_partial(mobilenet, depth_multiplier=0.50, finegrain_classification_mode=True)
mobilenet_v2_035 = wrapped_partial(mobilenet, depth_multiplier=0.35, finegrain_classification_mode=True)
mobilenet_base = wrapped_partial(mobilenet, base_only=True)
