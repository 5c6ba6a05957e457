"""PNASNet-5 (Liu et al. 2018, https://arxiv.org/abs/1712.00559) with TF-Slim's variable names.

Built with 1001 classes in training mode, every variable's name and shape equals the published
pnasnet-5_mobile_2017_12_13 / pnasnet-5_large_2017_12_13 checkpoints (nets/published/pnasnet_*.txt).

PNASNet-5 uses one searched cell everywhere (`CELL`, output depth 5 x filters): in the two stride-2
stem cells and in the stack, where the cells at num_cells/3 and 2*num_cells/3 stride by 2 and double
the filters (no separate reduction cells, so all are `cell_N`). Each cell's previous state is the
output two cells back. Everything else (stem convolution, cell wiring, auxiliary head in training
mode, final_layer, drop path, arg scope) is NASNet's: see _cell_net.py and nasnet.py.
"""

from __future__ import annotations

from nets._cell_net import (
    Cell,
    Config,
    Identity,
    Pool,
    Separable,
    Step,
    cell_net,
    reduction_indices,
    register_cell_net,
    stem_steps,
)
from nets.nasnet import nasnet_arg_scope

CELL = Cell(
    combinations=(
        ((1, Separable(5)), (1, Pool("max"))),
        ((0, Separable(7)), (0, Pool("max"))),
        ((0, Separable(5)), (0, Separable(3))),
        ((4, Separable(3)), (0, Pool("max"))),
        ((1, Separable(3)), (0, Identity())),
    ),
    concat=(2, 3, 4, 5, 6),
)

MOBILE_CONFIG = Config(
    num_cells=9, num_conv_filters=54, stem_multiplier=1.0, drop_path_keep_prob=1.0, skip_reduction_layer_input=True
)
LARGE_CONFIG = Config(
    num_cells=12, num_conv_filters=216, stem_multiplier=3.0, drop_path_keep_prob=0.6, skip_reduction_layer_input=True,
    aux_kernel=6,
)


def pnasnet_layout(config: Config) -> list[Step]:
    """Stem, then num_cells cells, those at the reduction indices with stride 2 and doubled filters.

    Without skip_reduction_layer_input a reducing cell keeps the previous cell's previous state (TF-Slim's rule).
    """
    steps = stem_steps(config, CELL)
    reductions = reduction_indices(config)
    scaling, prev = 1.0, 1
    for n in range(config.num_cells):
        reduces = n in reductions
        if reduces:
            scaling *= config.filter_scaling_rate
        if config.skip_reduction_layer_input or not reduces:
            prev = len(steps)  # outputs[-2]: outputs hold None, conv0 and one output per step
        steps.append(Step(f"cell_{n}", f"Cell_{n}", CELL, 2 if reduces else 1, scaling, prev))
    return steps


pnasnet_mobile = cell_net("pnasnet_mobile", MOBILE_CONFIG, pnasnet_layout, 224, """\
PNASNet-5 Mobile (224 px): returns (logits [B, num_classes], end_points); arguments as nasnet_mobile's.

    num_classes=0 returns the pooled features [B, 1080].
    """)
pnasnet_large = cell_net("pnasnet_large", LARGE_CONFIG, pnasnet_layout, 331, """\
PNASNet-5 Large (331 px), with drop path (keep 0.6) in training; as pnasnet_mobile otherwise.

    num_classes=0 returns the pooled features [B, 4320].
    """)

# TF-Slim's pnasnet arg scopes are nasnet's with weight decay 4e-5 (nasnet_arg_scope's default).
register_cell_net("pnasnet_mobile", pnasnet_mobile, nasnet_arg_scope, MOBILE_CONFIG)
register_cell_net("pnasnet_large", pnasnet_large, nasnet_arg_scope, LARGE_CONFIG)
