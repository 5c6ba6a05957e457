"""Where the graph runs and in which precision: devices, towers, session config, mixed precision
(the policies themselves are finetune.train.precision's).

The training loop uses one code path for one CPU, one GPU and several GPUs:

    devs = devices.select_devices(args.num_devices)  # ['/gpu:0', '/gpu:1'] or ['/cpu:0']
    precision = devices.get_precision(args.precision)
    def model_fn(batch):
        images, labels = batch
        with precision.scope():
            logits, end_points = network_fn(precision.cast(images))
        return tower_loss(tf.cast(logits, tf.float32), labels)
    towers = devices.build_towers(model_fn, devices.split_batch((images, labels), len(devs)), devs)
    opt = precision.wrap_optimizer(optim.make_optimizer(...))
    grads = devices.average_gradients(devices.tower_gradients(opt, [t.outputs for t in towers], towers, var_list))
    sess = tf.train.MonitoredTrainingSession(config=devices.session_config(args.xla, devices=devs), ...)

Variables live once, on `variables_device(devs)` (the CPU when there are several devices, as
TF-Slim's model_deploy keeps them; the device itself when there is one); each tower reuses them.
Collections filled by the model (UPDATE_OPS, LOSSES) can be read per tower with `tower.scope`;
regularization losses exist once (variables are created by the first tower only).

On a CPU-only machine `select_devices(n)` names n logical CPUs, which `session_config(devices=...)`
creates for its session (at any time), so the multi-device path runs and is tested without GPUs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from nets.compat import tf

# isort: split
import tensorflow as tf2  # after nets.compat, which sets TensorFlow's log level
from tensorflow.core.protobuf import rewriter_config_pb2

GradsAndVars = list[tuple[tf.Tensor, tf.Variable]]

_XLA_CPU_FLAG = "--tf_xla_cpu_global_jit"


# ---------------------------------------------------------------------------------------------
# Devices


def visible_devices() -> list[str]:
    """The devices to place towers on: every GPU TensorFlow sees, else the (logical) CPUs.

    Without GPUs this is ['/cpu:0'], or one name per logical CPU configured for the process. Uses
    physical/configured device lists, so it does not initialize the runtime.
    """
    gpus = tf2.config.list_physical_devices("GPU")
    if gpus:
        return [f"/gpu:{i}" for i in range(len(gpus))]
    return [f"/cpu:{i}" for i in range(_logical_cpu_count())]


def _logical_cpu_count() -> int:
    cpu = tf2.config.list_physical_devices("CPU")[0]
    return len(tf2.config.get_logical_device_configuration(cpu) or [None])


def select_devices(num_devices: int | None = None) -> list[str]:
    """The first num_devices of visible_devices() (default: all of them), e.g. for `--num-devices`.

    On a machine without GPUs, num_devices > 1 means that many logical CPUs '/cpu:0'.. (give the
    same list to session_config, which creates them). Asking for more GPUs than TensorFlow sees is
    a ValueError.
    """
    available = visible_devices()
    if num_devices is None:
        return available
    if num_devices < 1:
        raise ValueError(f"--num-devices must be >= 1, got {num_devices}.")
    if not available[0].startswith("/gpu"):
        return [f"/cpu:{i}" for i in range(num_devices)]
    if num_devices > len(available):
        raise ValueError(f"--num-devices {num_devices}: TensorFlow sees only {len(available)} GPU(s) "
                         f"({', '.join(available)}).")
    return available[:num_devices]


def variables_device(devices: Sequence[str]) -> str:
    """Where the shared variables live: the only device, or the CPU when there are several."""
    return devices[0] if len(devices) == 1 else "/cpu:0"


# ---------------------------------------------------------------------------------------------
# Towers


@dataclass(frozen=True)
class Tower:
    """One model replica: its device, its name scope (for tf.get_collection(key, scope)), what model_fn returned."""

    index: int
    device: str
    scope: str
    outputs: Any


def split_batch(batch: Any, num_splits: int) -> list[Any]:
    """Split every tensor of a (nested) batch along axis 0 into num_splits equal parts, one per tower.

    The batch size must divide by num_splits (build the dataset with drop_remainder=True); a static
    batch size that does not is a ValueError here, a dynamic one fails at run time.
    """
    if num_splits == 1:
        return [batch]
    for tensor in tf.nest.flatten(batch):
        size = tensor.shape[0] if tensor.shape.ndims else None
        if size is not None and size % num_splits:
            raise ValueError(f"Batch size {size} does not divide over {num_splits} devices; "
                             f"use a --batch-size that is a multiple of {num_splits}.")
    pieces = [tf.split(tensor, num_splits, axis=0) for tensor in tf.nest.flatten(batch)]
    return [tf.nest.pack_sequence_as(batch, [split[i] for split in pieces]) for i in range(num_splits)]


def _place_variables_on(device: str) -> Callable:
    def place(getter, *args, **kwargs):  # TF passes the next getter as `getter=`
        with tf.device(device):
            return getter(*args, **kwargs)

    return place


def build_towers(model_fn: Callable[[Any], Any], batches: Sequence[Any], devices: Sequence[str], *,
                 variables_on: str | None = None) -> list[Tower]:
    """Call model_fn(batch) once per device, on that device, all towers sharing one set of variables.

    batches[i] goes to devices[i] (see split_batch). Tower i runs under name scope `tower_i`; the
    first creates the variables (on `variables_on`, default variables_device(devices)), the others
    reuse them, so variable names are the net's own, without tower prefixes.
    """
    if len(batches) != len(devices) or not devices:
        raise ValueError(f"build_towers needs one batch per device, got {len(batches)} batches for {len(devices)}.")
    place = _place_variables_on(variables_on or variables_device(devices))
    towers = []
    with tf.variable_scope(tf.get_variable_scope(), custom_getter=place, auxiliary_name_scope=False):
        for index, (device, batch) in enumerate(zip(devices, batches)):
            with tf.device(device), tf.name_scope(f"tower_{index}") as scope:
                towers.append(Tower(index, device, scope, model_fn(batch)))
            tf.get_variable_scope().reuse_variables()
    return towers


def tower_gradients(optimizer: tf.train.Optimizer, losses: Sequence[tf.Tensor], towers: Sequence[Tower],
                    var_list: Sequence[tf.Variable] | None = None) -> list[GradsAndVars]:
    """Each tower's gradients of its loss, computed on its device (colocated with the forward ops)."""
    result = []
    for loss, tower in zip(losses, towers, strict=True):
        with tf.device(tower.device), tf.name_scope(tower.scope):
            result.append(optimizer.compute_gradients(loss, var_list=var_list, colocate_gradients_with_ops=True))
    return result


def _mean(grads: list, count: int):
    if isinstance(grads[0], tf.IndexedSlices):
        return tf.IndexedSlices(tf.concat([g.values for g in grads], 0) / count,
                                tf.concat([g.indices for g in grads], 0), grads[0].dense_shape)
    return tf.add_n(grads) / count


def average_gradients(tower_grads_and_vars: Sequence[Sequence[tuple]]) -> GradsAndVars:
    """Average each variable's gradient over the towers (on the variable's device).

    With equal tower batches and a loss that is a mean over examples, this is the gradient of
    the whole batch. A variable without gradient in every tower keeps None (process_gradients
    drops it); one with a gradient in some towers only is a ValueError.
    """
    if len(tower_grads_and_vars) == 1:
        return list(tower_grads_and_vars[0])
    averaged = []
    with tf.name_scope("average_gradients"):
        for pairs in zip(*tower_grads_and_vars, strict=True):
            var = pairs[0][1]
            if any(v is not var for _, v in pairs):
                raise ValueError("average_gradients: towers list different variables; build them with build_towers.")
            grads = [g for g, _ in pairs if g is not None]
            if not grads:
                averaged.append((None, var))
                continue
            if len(grads) != len(pairs):
                raise ValueError(f"{var.op.name} has a gradient in some towers only.")
            with tf.colocate_with(var):
                averaged.append((_mean(grads, len(pairs)), var))
    return averaged


# ---------------------------------------------------------------------------------------------
# Session configuration


def session_config(xla: bool = False, *, devices: Sequence[str] = (), allow_soft_placement: bool = True,
                   allow_growth: bool = True, log_device_placement: bool = False) -> tf.ConfigProto:
    """The tf.ConfigProto for training and evaluation sessions.

    Soft placement (ops without a kernel on the GPU fall back to the CPU), GPU memory grown on
    demand, one pass of Grappler's optimizers instead of two (the second pass cost ~2 s of
    inception_resnet_v2's first training step, and its steps ran no faster for it), and with
    xla=True XLA auto-clustering (global_jit_level ON_1), on the CPU too (see `_enable_xla_on_cpu`). `devices` are those the graph is placed on (select_devices): the
    session gets as many CPU devices as they name, at least the process's logical CPU count (a session
    given a config does not inherit the process's logical devices). This works at any time.
    """
    config = tf.ConfigProto(allow_soft_placement=allow_soft_placement, log_device_placement=log_device_placement)
    config.gpu_options.allow_growth = allow_growth
    config.graph_options.rewrite_options.meta_optimizer_iterations = rewriter_config_pb2.RewriterConfig.ONE
    named = [tf.DeviceSpec.from_string(d) for d in devices]
    cpu_devices = max([_logical_cpu_count()] + [d.device_index + 1 for d in named if d.device_type == "CPU"])
    if cpu_devices > 1:
        config.device_count["CPU"] = cpu_devices
    if xla:
        config.graph_options.optimizer_options.global_jit_level = tf.OptimizerOptions.ON_1
    return config


@contextlib.contextmanager
def op_determinism(enabled: bool) -> Iterator[None]:
    """TensorFlow's op determinism (tf.config.experimental.enable_op_determinism) for the block, when enabled.

    Ops without a deterministic kernel then raise instead of running, tf.data runs every `deterministic`
    argument as True (and a pipeline with stateful ops in order), and random ops without a seed raise: so
    enable it only around a graph seeded with tf.set_random_seed (training), not around evaluation's. The
    setting is process-wide; the previous one comes back after the block.
    """
    from tensorflow.python.framework import config as framework_config  # its query and switch-off are not exported

    switch = enabled and not framework_config.is_op_determinism_enabled()
    if switch:
        tf2.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        if switch:
            framework_config.disable_op_determinism()


def _enable_xla_on_cpu() -> None:
    """Let global_jit_level cluster CPU ops too (TF does so only with --tf_xla_cpu_global_jit).

    TensorFlow reads TF_XLA_FLAGS once, when it first lists devices, so this runs when this
    module is imported, before visible_devices() or session_config(). The flag changes nothing
    for sessions that do not ask for XLA.
    """
    flags = os.environ.get("TF_XLA_FLAGS", "")
    if _XLA_CPU_FLAG not in flags.split():
        os.environ["TF_XLA_FLAGS"] = f"{flags} {_XLA_CPU_FLAG}".strip()


_enable_xla_on_cpu()


# ---------------------------------------------------------------------------------------------
# Precision: the policies live in finetune.train.precision (TensorFlow-free to import)

from finetune.train.precision import PRECISIONS, Precision, get_precision  # noqa: E402

__all__ = [
    "PRECISIONS", "Precision", "Tower", "average_gradients", "build_towers", "get_precision", "select_devices",
    "session_config", "split_batch", "tower_gradients", "variables_device", "visible_devices",
]
