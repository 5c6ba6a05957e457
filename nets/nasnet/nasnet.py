"""NASNet-A (Zoph et al. 2018, https://arxiv.org/abs/1707.07012) with TF-Slim's variable names.

Built with 1001 classes in training mode, every variable's name and shape equals the published
nasnet-a_mobile_04_10_2017 / nasnet-a_large_04_10_2017 checkpoints (nets/published/nasnet_*.txt). As in
TF-Slim, the variables have no common top scope: `conv0`, `cell_stem_0`, `cell_N`, `reduction_cell_N`,
`aux_N` and `final_layer` sit at the top level (NetSpec.scope is '').

This file holds what is NASNet-A's own: its two searched cells (`NORMAL_CELL`, `REDUCTION_CELL`), its
configs, its layout, its arg scopes. The cell machinery it shares with PNASNet (cells as data, stem,
drop path, auxiliary head, classifier) is in _cell_net.py. NASNet-A puts a reduction cell
(`reduction_cell_0`, `_1`) before cells num_cells/3 and 2*num_cells/3 and doubles the filters there;
each normal cell's "previous state" is the cell two back, or with skip_reduction_layer_input the one
before the reduction cell. nasnet_large has drop path (keep 0.7) in training; nasnet_mobile none.

TF-Slim's API is here too: `mobile_imagenet_config()` / `large_imagenet_config()` (HParams-style, see
nasnet_utils.HParams), `build_nasnet_mobile` / `build_nasnet_large` and `nasnet_mobile_arg_scope`.
"""

from __future__ import annotations

from collections.abc import Callable

from nets._cell_net import (
    Cell,
    Config,
    Identity,
    Pool,
    Separable,
    Step,
    build_classifier,
    cell_net,
    reduction_indices,
    register_cell_net,
    stem_steps,
)
from nets.compat import slim, tf
from nets.nasnet.nasnet_utils import HParams, to_config

NORMAL_CELL = Cell(  # NASNet-A normal cell: output depth 6 x filters
    combinations=(
        ((0, Separable(5)), (1, Separable(3))),
        ((1, Separable(5)), (1, Separable(3))),
        ((0, Pool("avg")), (1, Identity())),
        ((1, Pool("avg")), (1, Pool("avg"))),
        ((0, Separable(3)), (0, Identity())),
    ),
    concat=(1, 2, 3, 4, 5, 6),
)

REDUCTION_CELL = Cell(  # NASNet-A reduction cell (stride 2): output depth 4 x filters
    combinations=(
        ((0, Separable(5)), (1, Separable(7))),
        ((0, Pool("max")), (1, Separable(7))),
        ((0, Pool("avg")), (1, Separable(5))),
        ((3, Identity()), (2, Pool("avg"))),
        ((2, Separable(3)), (0, Pool("max"))),
    ),
    concat=(3, 4, 5, 6),
)


MOBILE_CONFIG = Config(
    num_cells=12, num_conv_filters=44, stem_multiplier=1.0, drop_path_keep_prob=1.0, skip_reduction_layer_input=False
)
LARGE_CONFIG = Config(
    num_cells=18, num_conv_filters=168, stem_multiplier=3.0, drop_path_keep_prob=0.7, skip_reduction_layer_input=True,
    aux_kernel=6,
)


def nasnet_layout(config: Config) -> list[Step]:
    """NASNet-A: stem, then normal cells with a reduction cell before each reduction index."""
    steps = stem_steps(config, REDUCTION_CELL)
    reductions = reduction_indices(config)
    scaling = 1.0
    for n in range(config.num_cells):
        outputs = len(steps) + 2  # so far: None, conv0, one per step
        prev = outputs - 2  # the output two back (past a reduction cell: with skip_reduction_layer_input)
        if n in reductions:
            k = reductions.index(n)
            scaling *= config.filter_scaling_rate
            steps.append(Step(f"reduction_cell_{k}", f"Reduction_Cell_{k}", REDUCTION_CELL, 2, scaling, outputs - 2))
            if not config.skip_reduction_layer_input:
                prev = outputs - 1  # the reduction cell's input
        steps.append(Step(f"cell_{n}", f"Cell_{n}", NORMAL_CELL, 1, scaling, prev))
    return steps


nasnet_mobile = cell_net("nasnet_mobile", MOBILE_CONFIG, nasnet_layout, 224, """\
NASNet-A Mobile (4 @ 1056, 224 px): returns (logits [B, num_classes], end_points).

    num_classes=0 (or None) returns the globally pooled features [B, 1056] (TF-Slim's 'global_pool').
    is_training switches BatchNorm, dropout, the auxiliary head ('AuxLogits') and drop path (none in this
    config). total_training_steps (default config's 250000) and current_step (default the global step)
    set the drop-path schedule. Any static image size works: global pooling ends the body, and the aux head
    (training mode only) shrinks its pool to small maps.
    """)
nasnet_large = cell_net("nasnet_large", LARGE_CONFIG, nasnet_layout, 331,
                        "NASNet-A Large (6 @ 4032, 331 px); as nasnet_mobile, with drop path (keep 0.7) in training.")


def nasnet_arg_scope(
    weight_decay: float = 0.00004,
    batch_norm_decay: float = 0.9997,
    batch_norm_epsilon: float = 0.001,
) -> dict:
    """TF-Slim's ImageNet training settings for NASNet and PNASNet: fan-out variance-scaling init and L2 decay
    on the weights (convolutions, separable convolutions, fully connected), BatchNorm with gamma, fused.

    TF-Slim's defaults: weight_decay 4e-5 (nasnet_mobile, pnasnet_*), 5e-5 (nasnet_large).
    """
    batch_norm_params = {"decay": batch_norm_decay, "epsilon": batch_norm_epsilon, "scale": True, "fused": True}
    with (
        slim.arg_scope(
            [slim.fully_connected, slim.conv2d, slim.separable_conv2d],
            weights_regularizer=slim.l2_regularizer(weight_decay),
            weights_initializer=slim.variance_scaling_initializer(mode="FAN_OUT"),
        ),
        slim.arg_scope([slim.batch_norm], **batch_norm_params) as scope,
    ):
        return scope


def nasnet_large_arg_scope(weight_decay: float = 0.00005, **kwargs) -> dict:
    """nasnet_arg_scope with NASNet-A Large's weight decay (5e-5)."""
    return nasnet_arg_scope(weight_decay=weight_decay, **kwargs)


register_cell_net("nasnet_mobile", nasnet_mobile, nasnet_arg_scope, MOBILE_CONFIG)
register_cell_net("nasnet_large", nasnet_large, nasnet_large_arg_scope, LARGE_CONFIG)


# TF-Slim's API (research/slim nets/nasnet/nasnet.py): configs as HParams, build_* network functions.


def mobile_imagenet_config() -> HParams:
    """NASNet-A Mobile's hyper-parameters, as TF-Slim's (change them with set_hparam before building)."""
    return HParams(stem_multiplier=1.0, dense_dropout_keep_prob=0.5, num_cells=12, filter_scaling_rate=2.0,
                   drop_path_keep_prob=1.0, num_conv_filters=44, use_aux_head=1, num_reduction_layers=2,
                   data_format="NHWC", skip_reduction_layer_input=0, total_training_steps=250000,
                   use_bounded_activation=False)


def large_imagenet_config() -> HParams:
    """NASNet-A Large's hyper-parameters, as TF-Slim's."""
    return HParams(stem_multiplier=3.0, dense_dropout_keep_prob=0.5, num_cells=18, filter_scaling_rate=2.0,
                   num_conv_filters=168, drop_path_keep_prob=0.7, use_aux_head=1, num_reduction_layers=2,
                   data_format="NHWC", skip_reduction_layer_input=1, total_training_steps=250000,
                   use_bounded_activation=False)


def nasnet_mobile_arg_scope(weight_decay: float = 4e-5, batch_norm_decay: float = 0.9997,
                            batch_norm_epsilon: float = 0.001) -> dict:
    """TF-Slim's nasnet_mobile_arg_scope (nasnet_arg_scope with weight decay 4e-5)."""
    return nasnet_arg_scope(weight_decay, batch_norm_decay, batch_norm_epsilon)


_Built = tuple[tf.Tensor, dict[str, tf.Tensor]]


def _build(layout: Callable[[Config], list[Step]], base_config: Config, images: tf.Tensor, num_classes: int | None,
           is_training: bool, final_endpoint: str | None, config: HParams | None,
           current_step: tf.Tensor | None) -> _Built:
    zoo_config = to_config(config, base_config) if config is not None else base_config
    return build_classifier(images, zoo_config, layout(zoo_config), num_classes, is_training, current_step, None,
                            final_endpoint)


def build_nasnet_mobile(images: tf.Tensor, num_classes: int | None, is_training: bool = True,
                        final_endpoint: str | None = None, config: HParams | None = None,
                        current_step: tf.Tensor | None = None) -> _Built:
    """TF-Slim's build_nasnet_mobile: (logits, end_points) of NASNet-A Mobile; config from mobile_imagenet_config()."""
    return _build(nasnet_layout, MOBILE_CONFIG, images, num_classes, is_training, final_endpoint, config, current_step)


def build_nasnet_large(images: tf.Tensor, num_classes: int | None, is_training: bool = True,
                        final_endpoint: str | None = None, config: HParams | None = None,
                        current_step: tf.Tensor | None = None) -> _Built:
    """TF-Slim's build_nasnet_large: (logits, end_points) of NASNet-A Large; config from large_imagenet_config()."""
    return _build(nasnet_layout, LARGE_CONFIG, images, num_classes, is_training, final_endpoint, config, current_step)


build_nasnet_mobile.default_image_size = 224
build_nasnet_large.default_image_size = 331
