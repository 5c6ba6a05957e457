"""TF-Slim's `nets/mobilenet/conv_blocks.py`, its main blocks: `expanded_conv` (the inverted residual of
MobileNet v2/v3) and `expand_input_by_factor`.

Scopes and end points as TF-Slim's (`expand`, `depthwise`, `project`; 'expansion_output', 'depthwise_output',
'projection_output'), so a block built here under the same scope holds the published variables. Not
supported (they raise): split_projection / split_expansion above 1, use_explicit_padding, expansion_transform,
custom depthwise/expansion/projection functions; `split_conv`, `squeeze_excite` and `split_separable_conv2d`
are not here.
"""

from __future__ import annotations

from collections.abc import Callable

from nets import mobilenet_v2 as _zoo
from nets.compat import slim, tf


def expand_input_by_factor(n: float, divisible_by: int = 8) -> Callable[..., int]:
    """The expansion size `n` x the input depth, rounded to `divisible_by` (TF-Slim's helper)."""
    return lambda num_inputs, **_: _zoo.make_divisible(num_inputs * n, divisible_by)


_EXPAND_BY_6 = expand_input_by_factor(6)


def _check_supported(split_projection: int, split_expansion: int, use_explicit_padding: bool) -> None:
    if split_projection != 1 or split_expansion != 1:
        raise ValueError("split_projection / split_expansion above 1 are not supported by this nets package")
    if use_explicit_padding:
        raise ValueError("use_explicit_padding is not supported by this nets package's expanded_conv")


@slim.add_arg_scope
def expanded_conv(
    input_tensor: tf.Tensor,
    num_outputs: int,
    expansion_size: int | Callable[..., int] = _EXPAND_BY_6,
    stride: int = 1,
    rate: int = 1,
    kernel_size: tuple[int, int] = (3, 3),
    residual: bool | Callable = True,
    normalizer_fn: Callable | None = None,
    split_projection: int = 1,
    split_expansion: int = 1,
    depthwise_location: str = "expansion",
    depthwise_channel_multiplier: int = 1,
    endpoints: dict | None = None,
    use_explicit_padding: bool = False,
    padding: str = "SAME",
    inner_activation_fn: Callable | None = None,
    depthwise_activation_fn: Callable | None = None,
    project_activation_fn: Callable = tf.identity,
    scope: str | None = None,
) -> tf.Tensor:
    """Expand (1x1, when the expansion is wider than the input), depthwise k x k, project (1x1, linear), plus the
    input where stride is 1 and depths match (residual); depthwise_location 'input' / 'output' moves the
    depthwise conv before the expansion / after the projection, as TF-Slim's."""
    _check_supported(split_projection, split_expansion, use_explicit_padding)
    if depthwise_location not in ("input", "output", "expansion"):
        raise ValueError(f"depthwise_location must be 'input', 'output' or 'expansion', got {depthwise_location!r}")
    inner_args = {} if inner_activation_fn is None else {"activation_fn": inner_activation_fn}
    depthwise_args = {} if depthwise_activation_fn is None else {"activation_fn": depthwise_activation_fn}

    def depthwise(net: tf.Tensor) -> tf.Tensor:
        net = slim.separable_conv2d(net, None, kernel_size, depth_multiplier=depthwise_channel_multiplier,
                                    stride=stride, rate=rate, normalizer_fn=normalizer_fn, padding=padding,
                                    scope="depthwise", **depthwise_args)
        return _record(net, "depthwise_output", endpoints)

    with tf.variable_scope(scope, default_name="expanded_conv"):
        net = input_tensor
        input_depth = net.get_shape().as_list()[3]
        if depthwise_location == "input":
            net = depthwise(net)
        inner = expansion_size(num_inputs=input_depth) if callable(expansion_size) else expansion_size
        if inner > net.get_shape().as_list()[3]:
            net = slim.conv2d(net, inner, [1, 1], normalizer_fn=normalizer_fn, scope="expand", **inner_args)
            net = _record(net, "expansion_output", endpoints)
        if depthwise_location == "expansion":
            net = depthwise(net)
        net = slim.conv2d(net, num_outputs, [1, 1], normalizer_fn=normalizer_fn, activation_fn=project_activation_fn,
                          scope="project")
        net = _record(net, "projection_output", endpoints)
        if depthwise_location == "output":
            net = depthwise(net)
        if callable(residual):
            net = residual(input_tensor=input_tensor, output_tensor=net)
        elif residual and stride == 1 and net.get_shape().as_list()[3] == input_depth:
            net += input_tensor
        return tf.identity(net, name="output")


def _record(net: tf.Tensor, name: str, endpoints: dict | None) -> tf.Tensor:
    net = tf.identity(net, name=name)
    if endpoints is not None:
        endpoints[name] = net
    return net
