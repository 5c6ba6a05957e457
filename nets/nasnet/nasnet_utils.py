"""TF-Slim's `nets/nasnet/nasnet_utils.py`, the parts a user calls directly: `calc_reduction_layers`,
`global_avg_pool`, `factorized_reduction`, `drop_path`, `get_channel_index`/`get_channel_dim`, and `HParams`
(the `set_hparam`/`values` object TF-Slim's `*_config()` functions return).

Not here: TF-Slim's cell classes (NasNetABaseCell, NasNetANormalCell, NasNetAReductionCell, PNasNetCell);
the zoo states its cells as data (nets/_cell_net.py).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from nets import _cell_net
from nets.compat import slim, tf

INVALID = "null"  # TF-Slim's marker of an unused hidden state


class HParams:
    """A small stand-in for tf.contrib.training.HParams: attributes, `set_hparam`, `values`."""

    def __init__(self, **hparams: Any):
        self.__dict__.update(hparams)

    def set_hparam(self, name: str, value: Any) -> None:
        if name not in self.__dict__:
            raise ValueError(f"Unknown hyperparameter {name!r}")
        self.__dict__[name] = value

    def values(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __repr__(self) -> str:
        return f"HParams({self.__dict__!r})"


def to_config(hparams: HParams, base: _cell_net.Config) -> _cell_net.Config:
    """The zoo's Config from TF-Slim-style hparams (`base` gives what hparams do not hold, e.g. aux_kernel)."""
    values = hparams.values()
    if values.get("data_format", "NHWC") != "NHWC":
        raise ValueError("Only data_format='NHWC' is supported by this nets package")
    if values.get("use_bounded_activation"):
        raise ValueError("use_bounded_activation=True is not supported by this nets package")
    fields = {field.name for field in dataclasses.fields(_cell_net.Config)}
    kept = {name: value for name, value in values.items() if name in fields}
    kept["use_aux_head"] = bool(kept.get("use_aux_head", base.use_aux_head))
    kept["skip_reduction_layer_input"] = bool(kept.get("skip_reduction_layer_input", base.skip_reduction_layer_input))
    return dataclasses.replace(base, **kept)


def calc_reduction_layers(num_cells: int, num_reduction_layers: int) -> list[int]:
    """The cell indices before which the net reduces: calc_reduction_layers(12, 2) == [4, 8]."""
    return [int(float(k) / (num_reduction_layers + 1) * num_cells) for k in range(1, num_reduction_layers + 1)]


def get_channel_index(data_format: str = "NHWC") -> int:
    return 3 if data_format == "NHWC" else 1


def get_channel_dim(shape: list[int], data_format: str = "NHWC") -> int:
    if len(shape) != 4:
        raise ValueError(f"Not a 4-D shape: {shape}")
    return int(shape[get_channel_index(data_format)])


def global_avg_pool(x: tf.Tensor, data_format: str = "NHWC") -> tf.Tensor:
    """The mean over height and width: [B, C]."""
    return tf.reduce_mean(x, [1, 2] if data_format == "NHWC" else [2, 3])


def factorized_reduction(net: tf.Tensor, output_filters: int, stride: int, data_format: str = "NHWC") -> tf.Tensor:
    """`output_filters` channels at 1/stride of the size, TF-Slim's scopes (path_conv / path1_conv, path2_conv,
    final_path_bn); NHWC only."""
    if data_format != "NHWC":
        raise ValueError("Only data_format='NHWC' is supported by this nets package")
    return _cell_net.factorized_reduction(net, output_filters, stride)


def drop_path(net: tf.Tensor, keep_prob: float | tf.Tensor, is_training: bool = True) -> tf.Tensor:
    """Drop whole examples' paths with probability 1 - keep_prob, scaling the kept ones by 1/keep_prob."""
    if not is_training:
        return net
    return slim.dropout(net, keep_prob=keep_prob, noise_shape=[None, 1, 1, 1], is_training=True, scope="drop_path")
