"""The cell machinery of NASNet-A (nasnet.py) and PNASNet-5 (pnasnet.py), with TF-Slim's variable names.

A searched cell is data (`Cell`): five combinations, each the sum of two operations (`Separable`,
`Pool`, `Identity`) applied to earlier hidden states. State 0 is the cell's input after a ReLU-1x1
conv-BatchNorm (`1x1`, `beginning_bn`), state 1 the output of the cell before it, matched to state 0's
size and depth (`path1_conv`/`path2_conv`/`final_path_bn` when it is larger, `prev_1x1`/`prev_bn` when
only its depth differs); states 2..6 are the combinations' outputs. The cell's output concatenates the
states listed in `Cell.concat`. A stride-2 cell strides the operations that read states 0 and 1.

A net is a stem convolution (`conv0`, `conv0_bn`), two stride-2 stem cells (`cell_stem_0`, `cell_stem_1`,
at 1/4 and 1/2 of the filters) and a stack of cells: its layout (`Step`s), which each family computes
from its `Config`. The body ends in ReLU and global average pooling; the classifier is dropout and a
fully connected layer (`final_layer/FC`). The auxiliary head (`aux_N/aux_logits`, on the cell before
the second reduction) exists only in training mode with classes, as in TF-Slim. As in TF-Slim, the
variables have no common top scope (NetSpec.scope is ''); `register_cell_net` registers such a net.

Drop path (training only, when the config's drop_path_keep_prob < 1): each operation's output (except
identities) is dropped for whole examples with probability rising linearly with the cell's depth and
with training progress, current_step / total_training_steps (TF-Slim's 'v3' schedule; current_step
defaults to the global step). It runs as `slim.dropout` with one draw per example, so it follows the
dropout mode of its scope. Only NHWC and static image sizes are supported (the cell wiring depends on
the feature-map sizes).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

from nets.compat import slim, tf
from nets.spec import NetSpec, register


class Separable(NamedTuple):
    """ReLU, separable conv kernel x kernel, BatchNorm; `layers` times (only the first strides).

    Scopes `separable_KxK_i` and `bn_sep_KxK_i`, i = 1 .. layers.
    """

    kernel: int
    layers: int = 2


class Pool(NamedTuple):
    """3x3 average or max pooling ('SAME'); a 1x1 conv `1x1` + BatchNorm `bn_1` when the depth must change."""

    kind: str  # "avg" or "max"
    kernel: int = 3


class Identity(NamedTuple):
    """The state itself; ReLU, 1x1 conv `1x1` (strided) + BatchNorm `bn_1` when it must stride or change depth."""


Op = Separable | Pool | Identity
Combination = tuple[tuple[int, Op], tuple[int, Op]]  # (state index, op) for the `left` and `right` inputs


class Cell(NamedTuple):
    """Five combinations (`comb_iter_0` .. `_4`) and the hidden states concatenated into the output."""

    combinations: tuple[Combination, ...]
    concat: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Config:
    """A NASNet/PNASNet ImageNet model's hyper-parameters (TF-Slim's HParams of the same names)."""

    num_cells: int  # normal cells (PNASNet: all cells) after the stem
    num_conv_filters: int  # filters of the first stage's cells
    stem_multiplier: float  # conv0 has int(32 * stem_multiplier) filters
    drop_path_keep_prob: float  # at the last cell, at the end of training
    skip_reduction_layer_input: bool
    dense_dropout_keep_prob: float = 0.5
    filter_scaling_rate: float = 2.0
    num_reduction_layers: int = 2
    use_aux_head: bool = True
    total_training_steps: int = 250000  # the drop-path schedule's length when the caller gives none
    aux_kernel: int = 4  # the aux head's `Conv` kernel in the published checkpoint (its map at the default size)


class Step(NamedTuple):
    """One cell of a net's layout."""

    scope: str
    end_point: str | None
    cell: Cell
    stride: int
    filter_scaling: float  # the cell's filters: int(num_conv_filters * filter_scaling)
    prev: int  # its previous state: outputs[prev], outputs = [None, conv0, step 0's output, step 1's, ...]


def reduction_indices(config: Config) -> list[int]:
    """The cell numbers before which the net reduces (TF-Slim's calc_reduction_layers): 12 cells -> [4, 8]."""
    layers = config.num_reduction_layers
    return [int(float(k) / (layers + 1) * config.num_cells) for k in range(1, layers + 1)]


def aux_cell(config: Config) -> int | None:
    """The cell the auxiliary head reads: the one before the second reduction (None without one)."""
    reductions = reduction_indices(config)
    return reductions[1] - 1 if config.use_aux_head and len(reductions) >= 2 else None


def stem_steps(config: Config, cell: Cell) -> list[Step]:
    """The two stride-2 stem cells, at 1/rate^2 and 1/rate of the filters; the second is end point 'Stem'."""
    rate = config.filter_scaling_rate
    return [
        Step("cell_stem_0", None, cell, 2, 1.0 / rate**2, prev=0),
        Step("cell_stem_1", "Stem", cell, 2, 1.0 / rate, prev=1),
    ]


def _static_size(net: tf.Tensor) -> tuple[int, int, int]:
    height, width, depth = net.get_shape().as_list()[1:4]
    if height is None or width is None:
        raise ValueError(f"NASNet and PNASNet need images of a static height and width, got {net.get_shape()}")
    return height, width, depth


def factorized_reduction(net: tf.Tensor, filters: int, stride: int) -> tf.Tensor:
    """Match `net` to `filters` channels and 1/stride of its size without losing half the pixels.

    stride 1: 1x1 conv `path_conv` + BatchNorm `path_bn`. stride 2: two 1x1 convs on the pixels at even
    (`path1_conv`, filters // 2) and odd (`path2_conv`, the rest) offsets, concatenated, BatchNorm `final_path_bn`.
    """
    if stride == 1:
        return slim.batch_norm(slim.conv2d(net, filters, 1, scope="path_conv"), scope="path_bn")
    strides = [1, stride, stride, 1]
    path1 = tf.nn.avg_pool(net, [1, 1, 1, 1], strides, "VALID")
    path1 = slim.conv2d(path1, filters // 2, 1, scope="path1_conv")
    shifted = tf.pad(net, [[0, 0], [0, 1], [0, 1], [0, 0]])[:, 1:, 1:, :]  # one pixel down and right
    path2 = tf.nn.avg_pool(shifted, [1, 1, 1, 1], strides, "VALID")
    path2 = slim.conv2d(path2, filters - filters // 2, 1, scope="path2_conv")
    return slim.batch_norm(tf.concat([path1, path2], axis=3), scope="final_path_bn")


def _relu_conv_bn(net: tf.Tensor, filters: int, stride: int, conv_scope: str, bn_scope: str) -> tf.Tensor:
    net = slim.conv2d(tf.nn.relu(net), filters, 1, stride=stride, scope=conv_scope)
    return slim.batch_norm(net, scope=bn_scope)


def _match_previous(prev: tf.Tensor | None, net: tf.Tensor, filters: int) -> tf.Tensor:
    """State 1: the previous cell's output at this cell's size and depth (the input itself if there is none)."""
    if prev is None:
        return net
    if _static_size(prev)[1] != _static_size(net)[1]:
        return factorized_reduction(tf.nn.relu(prev), filters, stride=2)
    if _static_size(prev)[2] != filters:
        return _relu_conv_bn(prev, filters, 1, "prev_1x1", "prev_bn")
    return prev


def _apply_op(net: tf.Tensor, op: Op, stride: int, filters: int, drop_path: Callable) -> tf.Tensor:
    depth = _static_size(net)[2]
    if isinstance(op, Identity):
        if stride > 1 or depth != filters:
            net = _relu_conv_bn(net, filters, stride, "1x1", "bn_1")
        return net  # identities are never dropped
    if isinstance(op, Separable):
        size = f"{op.kernel}x{op.kernel}"
        for layer in range(1, op.layers + 1):
            net = slim.separable_conv2d(
                tf.nn.relu(net),
                filters,
                op.kernel,
                depth_multiplier=1,
                stride=stride if layer == 1 else 1,
                scope=f"separable_{size}_{layer}",
            )
            net = slim.batch_norm(net, scope=f"bn_sep_{size}_{layer}")
    else:
        pool = slim.avg_pool2d if op.kind == "avg" else slim.max_pool2d
        net = pool(net, op.kernel, stride=stride, padding="SAME")
        if depth != filters:
            net = slim.batch_norm(slim.conv2d(net, filters, 1, scope="1x1"), scope="bn_1")
    return drop_path(net)


def _combine(states: Sequence[tf.Tensor], concat: Sequence[int]) -> tf.Tensor:
    """Concatenate the states in `concat`, each first matched to the last state's size and depth."""
    _, final_width, final_depth = _static_size(states[-1])
    outputs = []
    for index in concat:
        state = states[index]
        _, width, depth = _static_size(state)
        if width != final_width or depth != final_depth:
            with tf.variable_scope(f"reduction_{index}"):
                state = factorized_reduction(state, final_depth, 2 if width != final_width else 1)
        outputs.append(state)
    return tf.concat(outputs, axis=3)


def apply_cell(
    net: tf.Tensor, prev: tf.Tensor | None, step: Step, num_conv_filters: int, drop_path: Callable
) -> tf.Tensor:
    """One cell under `step.scope`; drop_path(tensor) regularises each non-identity operation's output."""
    filters = int(num_conv_filters * step.filter_scaling)
    with tf.variable_scope(step.scope):
        prev = _match_previous(prev, net, filters)
        states = [_relu_conv_bn(net, filters, 1, "1x1", "beginning_bn"), prev]
        for index, combination in enumerate(step.cell.combinations):
            with tf.variable_scope(f"comb_iter_{index}"):
                summands = []
                for side, (state, op) in zip(("left", "right"), combination):
                    with tf.variable_scope(side):
                        stride = step.stride if state < 2 else 1
                        summands.append(_apply_op(states[state], op, stride, filters, drop_path))
                with tf.variable_scope("combine"):
                    states.append(summands[0] + summands[1])
        with tf.variable_scope("cell_output"):
            return _combine(states, step.cell.concat)


def drop_path_keep_probs(
    config: Config,
    num_steps: int,
    current_step: tf.Tensor | None = None,
    total_training_steps: int | None = None,
) -> list[tf.Tensor | None]:
    """The keep probability of each step's drop path: None where there is none (keep 1).

    keep = 1 - progress * (index + 1) / num_steps * (1 - drop_path_keep_prob), progress =
    min(1, current_step / total_training_steps); current_step defaults to the global step (created if missing).
    """
    if config.drop_path_keep_prob >= 1.0:
        return [None] * num_steps
    if current_step is None:
        current_step = tf.train.get_or_create_global_step()
    total = total_training_steps or config.total_training_steps
    with tf.name_scope("drop_path_schedule"):
        progress = tf.minimum(1.0, tf.cast(current_step, tf.float32) / float(total))
        keep_probs = []
        for index in range(num_steps):
            at_end = 1.0 - (index + 1) / float(num_steps) * (1.0 - config.drop_path_keep_prob)
            keep_probs.append(1.0 - progress * (1.0 - at_end))
        return keep_probs


def _drop_path_fn(keep_prob: tf.Tensor | None) -> Callable:
    def drop_path(net: tf.Tensor) -> tf.Tensor:
        if keep_prob is None:
            return net
        # One Bernoulli draw per example; slim.dropout scales by 1/keep and follows the dropout mode.
        keep = tf.cast(keep_prob, net.dtype)
        return slim.dropout(net, keep_prob=keep, noise_shape=[None, 1, 1, 1], scope="drop_path")

    return drop_path


@contextlib.contextmanager
def _architecture_scope() -> Iterator[None]:
    """Settings that define the published layers, whatever the outer arg scope: convolutions without bias or
    activation (BatchNorm follows as its own layer), BatchNorm with beta and gamma."""
    with (
        slim.arg_scope(
            [slim.conv2d, slim.separable_conv2d], activation_fn=None, normalizer_fn=None, biases_initializer=None
        ),
        slim.arg_scope([slim.batch_norm], center=True, scale=True),
    ):
        yield


def cells_base(
    inputs: tf.Tensor,
    config: Config,
    layout: Sequence[Step],
    final_endpoint: str | None = None,
    keep_probs: Sequence[tf.Tensor | None] | None = None,
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """Stem convolution and the cells of `layout` up to `final_endpoint` ('Stem', 'Cell_N', 'Reduction_Cell_N';
    None: all). keep_probs: per step, the drop-path keep probability (None: no drop path).

    Returns the last cell's output (before its ReLU) and the end points built so far.
    """
    names = [step.end_point for step in layout if step.end_point]
    if final_endpoint is not None and final_endpoint not in names:
        raise ValueError(f"Unknown final_endpoint {final_endpoint!r}; valid: {', '.join(names)}")
    keep_probs = keep_probs or [None] * len(layout)
    _static_size(inputs)
    end_points: dict[str, tf.Tensor] = {}
    with _architecture_scope():
        net = slim.conv2d(inputs, int(32 * config.stem_multiplier), 3, stride=2, padding="VALID", scope="conv0")
        net = slim.batch_norm(net, scope="conv0_bn")
        outputs: list[tf.Tensor | None] = [None, net]
        for step, keep_prob in zip(layout, keep_probs):
            net = apply_cell(net, outputs[step.prev], step, config.num_conv_filters, _drop_path_fn(keep_prob))
            outputs.append(net)
            if step.end_point:
                end_points[step.end_point] = net
                if step.end_point == final_endpoint:
                    break
    return net, end_points


def aux_head(net: tf.Tensor, num_classes: int, max_kernel: int) -> tf.Tensor:
    """The auxiliary classifier under `aux_N/aux_logits`: [B, num_classes].

    ReLU, 5x5/3 average pool (kernel shrunk to smaller maps), 1x1 conv `proj` 128, BatchNorm, ReLU,
    conv `Conv` 768 spanning the map up to the published `max_kernel` (so images above the default size
    keep the published variables; the larger map it leaves is averaged), BatchNorm, ReLU, fully connected `FC`.
    """
    with tf.variable_scope("aux_logits"):
        height, width, _ = _static_size(net)
        aux = slim.avg_pool2d(tf.nn.relu(net), [min(height, 5), min(width, 5)], stride=3, padding="VALID")
        aux = tf.nn.relu(slim.batch_norm(slim.conv2d(aux, 128, 1, scope="proj"), scope="aux_bn0"))
        kernel = [min(size, max_kernel) for size in _static_size(aux)[:2]]
        aux = slim.conv2d(aux, 768, kernel, padding="VALID", scope="Conv")
        aux = tf.nn.relu(slim.batch_norm(aux, scope="aux_bn1"))
        if _static_size(aux)[:2] != (1, 1):
            aux = tf.reduce_mean(aux, [1, 2], keepdims=True)
        aux = slim.flatten(aux)
        return slim.fully_connected(aux, num_classes, activation_fn=None, normalizer_fn=None, scope="FC")


def build_classifier(
    images: tf.Tensor,
    config: Config,
    layout: Sequence[Step],
    num_classes: int | None,
    is_training: bool,
    current_step: tf.Tensor | None,
    total_training_steps: int | None,
    final_endpoint: str | None = None,
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """The whole net in TF-Slim's layout: cells, aux head (training), final_layer. See nasnet_mobile.
    final_endpoint ('Stem', 'Cell_N', 'Reduction_Cell_N') stops after that cell and returns its output."""
    keep_probs = None
    if is_training:
        keep_probs = drop_path_keep_probs(config, len(layout), current_step, total_training_steps)
    with slim.arg_scope([slim.batch_norm, slim.dropout], is_training=is_training), _architecture_scope():
        net, end_points = cells_base(images, config, layout, final_endpoint, keep_probs=keep_probs)
        if final_endpoint is not None:
            return net, end_points
        aux = aux_cell(config)
        if is_training and num_classes and aux is not None:
            with tf.variable_scope(f"aux_{aux}"):
                end_points["AuxLogits"] = aux_head(end_points[f"Cell_{aux}"], num_classes, config.aux_kernel)
        with tf.variable_scope("final_layer"):
            net = tf.reduce_mean(tf.nn.relu(net), [1, 2])
            end_points["global_pool"] = net
            if not num_classes:
                return net, end_points
            net = slim.dropout(net, config.dense_dropout_keep_prob, scope="dropout")
            logits = slim.fully_connected(net, num_classes, activation_fn=None, normalizer_fn=None, scope="FC")
            end_points["Logits"] = logits
            end_points["Predictions"] = tf.nn.softmax(logits, name="predictions")
    return logits, end_points


def cell_net(name: str, default_config: Config, layout: Callable[[Config], Sequence[Step]], image_size: int,
             doc: str) -> Callable[..., tuple[tf.Tensor, dict[str, tf.Tensor]]]:
    """A NASNet/PNASNet network function `name` over `layout(config)`, `default_config` unless given one."""

    def network_fn(
        images: tf.Tensor,
        num_classes: int | None = 1001,
        is_training: bool = True,
        config: Config | None = None,
        current_step: tf.Tensor | None = None,
        total_training_steps: int | None = None,
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        config = config or default_config
        return build_classifier(
            images, config, layout(config), num_classes, is_training, current_step, total_training_steps
        )

    network_fn.__name__ = network_fn.__qualname__ = name
    network_fn.__doc__ = doc
    network_fn.default_image_size = image_size
    return network_fn


def register_cell_net(name: str, network_fn: Callable, arg_scope_fn: Callable, config: Config) -> None:
    """Register a NASNet/PNASNet: no top scope; classifier `final_layer` and the aux head's `aux_N`."""
    image_size = network_fn.default_image_size
    register(
        NetSpec(
            name=name,
            network_fn=network_fn,
            arg_scope_fn=arg_scope_fn,
            image_size=image_size,
            num_classes=1001,
            preprocessing="inception",
            scope="",
            classifier_scopes=("final_layer", f"aux_{aux_cell(config)}"),
            logits_end_point="Logits",
            predictions_end_point="Predictions",
        )
    )
