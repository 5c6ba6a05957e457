"""TF-Slim's `nets/mobilenet/mobilenet.py`, the parts users call: `training_scope`, `global_pool`,
`depth_multiplier` (the depth rule), `mobilenet`/`mobilenet_base` over a body function.

Where TF-Slim's library reads conv defs given as dicts of `op(...)` specs, this package's bodies are the
zoo's conv-def lists (nets/mobilenet_v2.CONV_DEFS, nets/mobilenet_v3.V3_*): same layers, scopes and end
points (`layer_N`, `layer_N/expansion_output`, `layer_N/depthwise_output`, `global_pool`, `Logits`,
`Predictions`). BatchNorm and dropout run in the mode of the surrounding arg scope (training_scope's
is_training) unless `is_training` is passed, as in TF-Slim.
"""

from __future__ import annotations

from collections.abc import Callable

from nets import mobilenet_v2 as _zoo_v2
from nets.compat import slim, tf

make_divisible = _zoo_v2.make_divisible


def depth_multiplier(output_params: dict, multiplier: float, divisible_by: int = 8, min_depth: int = 8,
                     **unused_kwargs) -> None:
    """TF-Slim's rule: scale `output_params['num_outputs']` in place, rounded to `divisible_by`."""
    if "num_outputs" not in output_params:
        return
    depth = output_params["num_outputs"]
    output_params["num_outputs"] = make_divisible(depth * multiplier, divisible_by, min_depth)


def global_pool(input_tensor: tf.Tensor, pool_op: Callable = tf.nn.avg_pool2d) -> tf.Tensor:
    """Average over the whole (static or dynamic) spatial map, keeping [B, 1, 1, C]."""
    shape = input_tensor.get_shape().as_list()
    if shape[1] is None or shape[2] is None:
        return tf.reduce_mean(input_tensor, [1, 2], keepdims=True, name="global_pool")
    return pool_op(input_tensor, ksize=[1, shape[1], shape[2], 1], strides=[1, 1, 1, 1], padding="VALID")


def training_scope(
    is_training: bool | None = True,
    weight_decay: float = 0.00004,
    stddev: float = 0.09,
    dropout_keep_prob: float | None = 0.8,
    bn_decay: float = 0.997,
) -> dict:
    """TF-Slim's mobilenet training scope: initializer (stddev < 0: Xavier), L2 decay on full convolutions,
    BatchNorm (decay bn_decay, mode is_training) and dropout (keep dropout_keep_prob, mode is_training).

    is_training=None leaves the modes unset (then the network function's default, inference, applies).
    """
    dropout_params = {} if dropout_keep_prob is None else {"keep_prob": dropout_keep_prob}
    if is_training is not None:
        dropout_params["is_training"] = is_training
    with (
        slim.arg_scope(_zoo_v2.mobilenet_v2_arg_scope(is_training, weight_decay, stddev, bn_decay)),
        slim.arg_scope([slim.dropout], **dropout_params) as scope,
    ):
        return scope


def _from_scope(op: Callable, name: str, default):
    return slim.current_arg_scope().get(slim.arg_scope_func_key(op), {}).get(name, default)


def mobilenet(
    base_fn: Callable,
    inputs: tf.Tensor,
    num_classes: int | None,
    prediction_fn: Callable | None,
    reuse: bool | None,
    scope: str,
    default_scope: str,
    base_only: bool,
    is_training: bool | None,
    **base_kwargs,
) -> tuple[tf.Tensor, dict]:
    """A zoo body under TF-Slim's calling conventions (see the module docstring); base_only returns the body's
    output and end points; num_classes 0/None returns the pooled features [B, 1, 1, C]."""
    if is_training is None:
        is_training = _from_scope(slim.batch_norm, "is_training", False)
    keep_prob = _from_scope(slim.dropout, "keep_prob", 0.8)
    if base_only:
        if inputs.get_shape().ndims != 4:
            raise ValueError(f"{scope} wants images of shape [batch, height, width, 3], got {inputs.get_shape()}")
        with (
            tf.variable_scope(scope, default_scope, [inputs], reuse=reuse) as net_scope,
            slim.arg_scope([slim.batch_norm], is_training=is_training),
        ):
            return base_fn(inputs, scope=net_scope, **base_kwargs)
    return _zoo_v2.classifier(base_fn, inputs, scope, default_scope, reuse, is_training, num_classes, keep_prob,
                              prediction_fn, **base_kwargs)
