"""What turns a loss into an update: optimizers, learning-rate schedules, gradient processing, EMA.

Everything here builds `tf.compat.v1` graph pieces; the training loop (finetune/train.py) wires them:

    lr = optim.learning_rate("exponential", 0.01, global_step, steps_per_epoch=..., total_steps=...)
    opt = optim.make_optimizer("rmsprop", lr, opt_epsilon=1.0)
    grads_and_vars = opt.compute_gradients(loss, var_list=trainable)
    grads_and_vars, grad_norm = optim.process_gradients(grads_and_vars, clip_norm=5.0,
                                                        multipliers={"InceptionV1/Logits": 10.0})
    apply_op = opt.apply_gradients(grads_and_vars, global_step=global_step)
    with tf.control_dependencies([apply_op]):
        ema_op = optim.moving_average_op(0.9999, trainable, global_step)

Optimizers and schedules are registries that list themselves (`OPTIMIZERS`, `SCHEDULES`) under the names
of finetune.choices; parameter names and defaults are TF-Slim's train_image_classifier flags, in
finetune.choices too (`OPTIMIZER_PARAMS`, `OPTIMIZER_DEFAULTS`, `optimizer_params`), so a config resolves
them without TensorFlow.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from checkpoints import scopes
from finetune.choices import OPTIMIZER_DEFAULTS, OPTIMIZER_PARAMS, optimizer_params
from finetune.config import check_multiplier_scopes


class _LazyTF:
    """`tf` of nets.compat, imported on first use: the CLI lists OPTIMIZERS and SCHEDULES (in `--help`)
    without importing TensorFlow."""

    def __getattr__(self, name: str):
        from nets.compat import tf as v1

        return getattr(v1, name)


tf = _LazyTF()
log = logging.getLogger(__name__)

GradsAndVars = list[tuple["tf.Tensor", "tf.Variable"]]

# ---------------------------------------------------------------------------------------------
# Optimizers


@dataclass(frozen=True)
class OptimizerOption:
    """One registered optimizer: how to build it and which TF-Slim parameters it reads."""

    name: str
    build: Callable[..., tf.train.Optimizer]  # build(learning_rate, **params) -> optimizer
    params: tuple[str, ...]
    help: str


OPTIMIZERS: dict[str, OptimizerOption] = {}


def _register_optimizer(name: str, help: str):
    def decorator(build):
        OPTIMIZERS[name] = OptimizerOption(name, build, OPTIMIZER_PARAMS[name], help)
        return build

    return decorator


@_register_optimizer("sgd", "plain gradient descent")
def _sgd(lr):
    return tf.train.GradientDescentOptimizer(lr)


@_register_optimizer("momentum", "SGD with momentum")
def _momentum(lr, momentum):
    return tf.train.MomentumOptimizer(lr, momentum=momentum, name="Momentum")


@_register_optimizer("rmsprop", "RMSProp (TF-Slim's default)")
def _rmsprop(lr, rmsprop_decay, rmsprop_momentum, opt_epsilon):
    return tf.train.RMSPropOptimizer(lr, decay=rmsprop_decay, momentum=rmsprop_momentum, epsilon=opt_epsilon)


@_register_optimizer("adam", "Adam")
def _adam(lr, adam_beta1, adam_beta2, opt_epsilon):
    return tf.train.AdamOptimizer(lr, beta1=adam_beta1, beta2=adam_beta2, epsilon=opt_epsilon)


@_register_optimizer("adamw", "Adam with decoupled weight decay")
def _adamw(lr, adam_beta1, adam_beta2, opt_epsilon, adamw_weight_decay):
    from finetune.train.adamw import AdamWOptimizer

    return AdamWOptimizer(lr, weight_decay=adamw_weight_decay, beta1=adam_beta1, beta2=adam_beta2,
                          epsilon=opt_epsilon)


def _option(name: str) -> OptimizerOption:
    if name not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}.")
    return OPTIMIZERS[name]


def make_optimizer(name: str, learning_rate: float | tf.Tensor, **params: float | None) -> tf.train.Optimizer:
    """A tf.compat.v1 optimizer by name (`OPTIMIZERS`), with TF-Slim's parameter names and defaults.

    e.g. make_optimizer("rmsprop", lr, rmsprop_decay=0.9, opt_epsilon=1.0). See `optimizer_params`.
    """
    return _option(name).build(learning_rate, **optimizer_params(name, **params))


# ---------------------------------------------------------------------------------------------
# Learning-rate schedules


@dataclass(frozen=True)
class ScheduleArgs:
    """What a schedule may read; `step` counts from the end of the warm-up (float32 tensor)."""

    base_lr: float
    step: tf.Tensor
    steps_per_epoch: int
    decay_steps: int  # total_steps - warmup_steps
    decay_epochs: float
    decay_factor: float
    end_lr: float
    power: float


@dataclass(frozen=True)
class ScheduleOption:
    name: str
    build: Callable[[ScheduleArgs], tf.Tensor]
    help: str


SCHEDULES: dict[str, ScheduleOption] = {}


def _register_schedule(name: str, help: str):
    def decorator(build):
        SCHEDULES[name] = ScheduleOption(name, build, help)
        return build

    return decorator


@_register_schedule("fixed", "base_lr throughout")
def _fixed(a: ScheduleArgs) -> tf.Tensor:
    return tf.constant(a.base_lr, tf.float32)


@_register_schedule("exponential", "base_lr * decay_factor ** floor(epoch / decay_epochs) (TF-Slim's, staircase)")
def _exponential(a: ScheduleArgs) -> tf.Tensor:
    if a.steps_per_epoch <= 0:
        raise ValueError(f"exponential learning-rate decay needs steps_per_epoch > 0, got {a.steps_per_epoch}.")
    decay_steps = max(1, int(a.steps_per_epoch * a.decay_epochs))
    return tf.train.exponential_decay(a.base_lr, a.step, decay_steps, a.decay_factor, staircase=True)


@_register_schedule("polynomial", "base_lr to end_lr over the run, with exponent `power`")
def _polynomial(a: ScheduleArgs) -> tf.Tensor:
    return tf.train.polynomial_decay(a.base_lr, a.step, max(1, a.decay_steps), a.end_lr, power=a.power)


@_register_schedule("cosine", "half a cosine from base_lr to end_lr over the run")
def _cosine(a: ScheduleArgs) -> tf.Tensor:
    alpha = a.end_lr / a.base_lr if a.base_lr else 0.0
    return tf.train.cosine_decay(a.base_lr, a.step, max(1, a.decay_steps), alpha=alpha)


def learning_rate(schedule: str, base_lr: float, global_step: tf.Tensor, *, steps_per_epoch: int, total_steps: int,
                  decay_epochs: float = 2.0, decay_factor: float = 0.94, end_lr: float = 0.0001, power: float = 1.0,
                  warmup_steps: int = 0, warmup_start_lr: float = 0.0) -> tf.Tensor:
    """The learning rate at `global_step` (a scalar float32 tensor) for a schedule in `SCHEDULES`.

    With warmup_steps > 0 the rate rises linearly from warmup_start_lr to base_lr over the first
    warmup_steps steps; the schedule then starts, counting steps from the end of the warm-up.
    polynomial and cosine reach end_lr at total_steps (TF-Slim's polynomial decays over
    decay_epochs instead; over the whole run suits fine-tuning). exponential is TF-Slim's:
    multiplied by decay_factor every decay_epochs epochs (staircase).
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"Unknown learning-rate schedule {schedule!r}; choose one of: {', '.join(SCHEDULES)}.")
    if warmup_steps < 0 or warmup_steps > total_steps:
        raise ValueError(f"warmup_steps must be within [0, total_steps={total_steps}], got {warmup_steps}.")
    with tf.name_scope("learning_rate"):
        step = tf.cast(global_step, tf.float32)
        args = ScheduleArgs(base_lr=base_lr, step=tf.maximum(step - warmup_steps, 0.0),
                            steps_per_epoch=steps_per_epoch, decay_steps=total_steps - warmup_steps,
                            decay_epochs=decay_epochs, decay_factor=decay_factor, end_lr=end_lr, power=power)
        lr = tf.cast(SCHEDULES[schedule].build(args), tf.float32)
        if warmup_steps:
            warm = warmup_start_lr + (base_lr - warmup_start_lr) * step / warmup_steps
            lr = tf.where(step < warmup_steps, warm, lr)
        return tf.identity(lr, name="value")


# ---------------------------------------------------------------------------------------------
# Gradient processing: a list of small steps, each grads_and_vars -> grads_and_vars.

GradientStep = Callable[[GradsAndVars], GradsAndVars]


def drop_missing(grads_and_vars: Iterable[tuple]) -> GradsAndVars:
    """Drop the variables that get no gradient (not on the loss's path), logging each; ValueError if none has one."""
    grads_and_vars = list(grads_and_vars)
    kept = [(g, v) for g, v in grads_and_vars if g is not None]
    for grad, var in grads_and_vars:
        if grad is None:
            log.warning("no gradient for %s: it does not affect the loss, so it is not updated", var.op.name)
    if grads_and_vars and not kept:
        raise ValueError("No trainable variable receives a gradient from the loss; check --trainable.")
    return kept


def _scale(grad, factor: float):
    if isinstance(grad, tf.IndexedSlices):
        return tf.IndexedSlices(grad.values * factor, grad.indices, grad.dense_shape)
    return grad * factor


def scale_by_scope(multipliers: dict[str, float], root: str | None = None) -> GradientStep:
    """A step multiplying the gradient of every variable under a scope by its factor.

    Scopes follow checkpoints.scopes (regexes at a scope boundary, absolute or relative to `root`, the
    net's scope): "Logits" and "InceptionV1/Logits" both match "InceptionV1/Logits/Conv2d_0c_1x1/weights",
    not "InceptionV1/Logits2/...". When several match, the longest (most specific) wins. A scope that
    matches no variable with a gradient is a ValueError (a typo would otherwise go unseen).
    """

    def step(grads_and_vars: GradsAndVars) -> GradsAndVars:
        check_multiplier_scopes([var.op.name for _, var in grads_and_vars], list(multipliers), root)
        out = []
        for grad, var in grads_and_vars:
            key = scopes.most_specific_scope(var.op.name, multipliers, root)
            out.append((grad if key is None else _scale(grad, multipliers[key]), var))
        return out

    return step


def clip_by_global_norm(clip_norm: float) -> GradientStep:
    """A step scaling all gradients together so their global norm is at most clip_norm."""
    if clip_norm <= 0:
        raise ValueError(f"clip norm must be > 0, got {clip_norm}.")

    def step(grads_and_vars: GradsAndVars) -> GradsAndVars:
        grads, variables = zip(*grads_and_vars)
        clipped, _ = tf.clip_by_global_norm(list(grads), clip_norm, name="clip_by_global_norm")
        return list(zip(clipped, variables))

    return step


def global_norm(grads_and_vars: Sequence[tuple]) -> tf.Tensor:
    """The global (L2) norm of all gradients together, a float32 scalar."""
    return tf.linalg.global_norm([grad for grad, _ in grads_and_vars], name="global_norm")


def process_gradients(grads_and_vars: Iterable[tuple], clip_norm: float | None = None,
                      multipliers: dict[str, float] | None = None, root: str | None = None
                      ) -> tuple[GradsAndVars, tf.Tensor]:
    """Drop missing gradients, scale by scope multipliers, then clip by the global norm of all gradients.

    Returns (grads_and_vars, norm) where norm is the global norm before clipping (after the
    multipliers, i.e. the value compared with clip_norm), for logging. Multipliers come first (as
    in TF-Slim's create_train_op) so the applied update's global norm never exceeds clip_norm;
    a global clip keeps the ratios between scopes either way. Multiplier scopes may be relative to `root`.
    """
    grads_and_vars = drop_missing(grads_and_vars)
    if multipliers:
        grads_and_vars = scale_by_scope(multipliers, root)(grads_and_vars)
    norm = global_norm(grads_and_vars)
    if clip_norm is not None:
        grads_and_vars = clip_by_global_norm(clip_norm)(grads_and_vars)
    return grads_and_vars, norm


# ---------------------------------------------------------------------------------------------
# Moving averages


def moving_average_op(decay: float, variables: Sequence[tf.Variable], global_step: tf.Tensor | None) -> tf.Operation:
    """Update exponential moving averages of `variables`; their shadows land in the checkpoint.

    Uses tf.train.ExponentialMovingAverage, so each shadow is named `<var>/ExponentialMovingAverage`
    as TF-Slim's train script and `ExponentialMovingAverage.variables_to_restore()` expect.
    With global_step, the effective decay is min(decay, (1 + step) / (10 + step)) (TF's num_updates),
    so early averages are not dominated by the initial values. Build it after the optimizer step:
    `with tf.control_dependencies([apply_op]): ema = moving_average_op(...)`.
    """
    if not 0.0 < decay < 1.0:
        raise ValueError(f"moving-average decay must be in (0, 1), got {decay}.")
    ema = tf.train.ExponentialMovingAverage(decay, num_updates=global_step)
    return ema.apply(list(variables))


__all__ = [
    "OPTIMIZERS", "OPTIMIZER_DEFAULTS", "SCHEDULES", "clip_by_global_norm", "drop_missing",
    "global_norm", "learning_rate", "make_optimizer", "moving_average_op", "optimizer_params", "process_gradients",
    "scale_by_scope",
]
