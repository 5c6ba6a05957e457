"""TF-Slim's `nets/nasnet/pnasnet.py` API over the zoo's PNASNet-5 (nets/pnasnet.py, which registers the nets):
`build_pnasnet_mobile|large`, `pnasnet_*_arg_scope`, `*_imagenet_config()`."""

from __future__ import annotations

from nets._cell_net import Config, build_classifier
from nets.compat import tf
from nets.nasnet.nasnet import nasnet_arg_scope
from nets.nasnet.nasnet_utils import HParams, to_config
from nets.pnasnet import CELL, LARGE_CONFIG, MOBILE_CONFIG, pnasnet_large, pnasnet_layout, pnasnet_mobile

__all__ = ["CELL", "build_pnasnet_large", "build_pnasnet_mobile", "large_imagenet_config", "mobile_imagenet_config",
           "pnasnet_large", "pnasnet_large_arg_scope", "pnasnet_layout", "pnasnet_mobile", "pnasnet_mobile_arg_scope"]


def large_imagenet_config() -> HParams:
    """PNASNet-5 Large's hyper-parameters, as TF-Slim's."""
    return HParams(stem_multiplier=3.0, dense_dropout_keep_prob=0.5, num_cells=12, filter_scaling_rate=2.0,
                   num_conv_filters=216, drop_path_keep_prob=0.6, use_aux_head=1, num_reduction_layers=2,
                   data_format="NHWC", skip_reduction_layer_input=1, total_training_steps=250000,
                   use_bounded_activation=False)


def mobile_imagenet_config() -> HParams:
    """PNASNet-5 Mobile's hyper-parameters, as TF-Slim's."""
    return HParams(stem_multiplier=1.0, dense_dropout_keep_prob=0.5, num_cells=9, filter_scaling_rate=2.0,
                   num_conv_filters=54, drop_path_keep_prob=1.0, use_aux_head=1, num_reduction_layers=2,
                   data_format="NHWC", skip_reduction_layer_input=1, total_training_steps=250000,
                   use_bounded_activation=False)


def pnasnet_large_arg_scope(weight_decay: float = 4e-5, batch_norm_decay: float = 0.9997,
                            batch_norm_epsilon: float = 0.001) -> dict:
    return nasnet_arg_scope(weight_decay, batch_norm_decay, batch_norm_epsilon)


pnasnet_mobile_arg_scope = pnasnet_large_arg_scope


_Built = tuple[tf.Tensor, dict[str, tf.Tensor]]


def _build(base: Config, images: tf.Tensor, num_classes: int | None, is_training: bool, final_endpoint: str | None,
           config: HParams | None) -> _Built:
    zoo_config = to_config(config, base) if config is not None else base
    return build_classifier(images, zoo_config, pnasnet_layout(zoo_config), num_classes, is_training, None, None,
                            final_endpoint)


def build_pnasnet_large(images: tf.Tensor, num_classes: int | None, is_training: bool = True,
                         final_endpoint: str | None = None, config: HParams | None = None) -> _Built:
    """TF-Slim's build_pnasnet_large: (logits, end_points) of PNASNet-5 Large."""
    return _build(LARGE_CONFIG, images, num_classes, is_training, final_endpoint, config)


def build_pnasnet_mobile(images: tf.Tensor, num_classes: int | None, is_training: bool = True,
                         final_endpoint: str | None = None, config: HParams | None = None) -> _Built:
    """TF-Slim's build_pnasnet_mobile: (logits, end_points) of PNASNet-5 Mobile."""
    return _build(MOBILE_CONFIG, images, num_classes, is_training, final_endpoint, config)


build_pnasnet_large.default_image_size = 331
build_pnasnet_mobile.default_image_size = 224
