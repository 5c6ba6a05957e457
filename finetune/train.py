"""The training loop: fine-tune chosen scopes of a zoo net on a dataset, read top to bottom in `train`.

    config -> dataset -> net (frozen scopes in inference mode) -> loss -> gradients of the trainable
    scopes -> multipliers, clip by global norm -> optimizer + schedule -> train_op
    -> resume from train_dir, or restore the pretrained checkpoint through a printed plan
    -> MonitoredSession with hooks (stop, NaN guard, progress, summaries, checkpoints)
    -> validation accuracy, run_summary.json

Frozen means frozen: only variables under the trainable scopes get gradients, and outside them
BatchNorm and dropout run in inference mode, so the forward pass through frozen layers is the
pretrained net's and their BatchNorm moving statistics stay as restored (`train_bn_stats` lets them
update). Nets call `slim.batch_norm` from deep inside their own arg scopes, which set `is_training`
for the whole net; `_inference_mode_outside` therefore wraps tf_slim's batch_norm and dropout for
the time the net is built and passes `is_training=False` to the calls outside the trainable scopes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np

import checkpoints
from finetune import cluster as clusters
from finetune import data, devices, optim
from finetune.config import TRAINABLE_ALL, TRAINABLE_LOGITS, Recipe, RunConfig
from nets import nets_factory
from nets.compat import slim, tf

AUX_LOGITS = "AuxLogits"
AUX_LOSS_WEIGHT = 0.4  # TF-Slim's weight of the auxiliary classifier's loss
RUN_CONFIG_FILE = "run_config.json"
RUN_SUMMARY_FILE = "run_summary.json"
RESTORE_REPORT_FILE = "restore_report.json"
LABELS_FILE = "labels.txt"
CHECKPOINT_BASENAME = "model.ckpt"
TRAIN_ACCURACY_WINDOW = 20  # final train accuracy: mean over this many last batches
_SLIM_NAMESPACES = ("tf_slim", "tf_slim.layers", "tf_slim.layers.layers")
_MODE_LAYERS = ("batch_norm", "dropout")


class NonFiniteLossError(ValueError):
    """The loss became NaN or Inf; the run stopped without saving the diverged weights."""


# ---------------------------------------------------------------------------------------------
# Scopes: what trains


def in_scopes(name: str, scopes: Sequence[str]) -> bool:
    """True when `name` lies under one of `scopes` (a scope or regex, matched at a scope boundary)."""
    return any(re.match(f"(?:{scope})(?:/|$)", name) for scope in scopes)


def trainable_scopes(spec: nets_factory.NetSpec, trainable: str) -> tuple[str, ...]:
    """'logits' -> the net's classifier scopes, 'all' -> the net's scope, else the given scopes.

    A scope not under the net's own scope is taken relative to it ('Mixed_7c' -> 'InceptionV3/Mixed_7c').
    A net without a top scope (NASNet: spec.scope '') takes scopes as given; its 'all' is every top-level scope.
    """
    if trainable == TRAINABLE_LOGITS:
        return spec.classifier_scopes
    if trainable == TRAINABLE_ALL:
        return (spec.scope or "[^/]+",)
    scopes = [s.strip().rstrip("/") for s in trainable.split(",") if s.strip()]
    if not spec.scope:
        return tuple(scopes)
    return tuple(s if s == spec.scope or s.startswith(spec.scope + "/") else f"{spec.scope}/{s}" for s in scopes)


def select_trainable(variables: Sequence[tf.Variable], scopes: Sequence[str]) -> list[tf.Variable]:
    """The variables under `scopes`; ValueError naming any scope that matches none."""
    for scope in scopes:
        if not any(in_scopes(v.op.name, [scope]) for v in variables):
            top = sorted({"/".join(v.op.name.split("/")[:2]) for v in variables})
            shown = ", ".join(top[:4]) + (f" ... and {len(top) - 4} more" if len(top) > 4 else "")
            raise ValueError(f"--trainable scope {scope!r} matches no variable of the net (its scopes: {shown}; "
                             "`finetune inspect CKPT --net NET` lists the variables).")
    return [v for v in variables if in_scopes(v.op.name, scopes)]


@contextlib.contextmanager
def _layer_modes(scopes: Sequence[str] | None, batch_norm_decay: float | None) -> Iterator[list[str]]:
    """While building a net: slim.batch_norm and slim.dropout outside `scopes` get is_training=False
    (scopes None: every layer keeps the net's mode), and batch_norm gets `decay` when given.

    Yields the list (filled as the net builds) of the BatchNorm layers left in training mode.
    """
    modules = [sys.modules[name] for name in _SLIM_NAMESPACES]
    originals = {layer: getattr(modules[-1], layer) for layer in _MODE_LAYERS}
    training_bn: list[str] = []
    wrapped = {"batch_norm": _scoped_mode(originals["batch_norm"], "BatchNorm", scopes, training_bn,
                                          {} if batch_norm_decay is None else {"decay": batch_norm_decay}),
               "dropout": _scoped_mode(originals["dropout"], "Dropout", scopes, [], {})}
    try:
        for module in modules:
            for layer, function in wrapped.items():
                setattr(module, layer, function)
        yield training_bn
    finally:
        for module in modules:
            for layer, function in originals.items():
                setattr(module, layer, function)


def _scoped_mode(layer: Callable, default_scope: str, scopes: Sequence[str] | None, training: list[str],
                 fixed: dict) -> Callable:
    @functools.wraps(layer)
    def call(*args, **kwargs):
        name = f"{tf.get_variable_scope().name}/{kwargs.get('scope') or default_scope}".lstrip("/")
        if scopes is None or in_scopes(name, scopes):
            training.append(name)
        else:
            kwargs["is_training"] = False
        return layer(*args, **{**kwargs, **fixed})

    call._key_op = layer._key_op  # the same arg_scope key: arg scopes set for slim's layer apply to it
    return call


def _check_frozen_batch_norm(graph: tf.Graph, name_scope: str, training_bn: Sequence[str]) -> None:
    """No fused BatchNorm of the net just built (under name_scope) runs in training mode but those in
    trainable scopes (catches a net that bypasses slim's layers, which the switch cannot reach)."""
    prefix = f"{name_scope}/" if name_scope else ""
    in_training = [op.name for op in graph.get_operations()
                   if op.name.startswith(prefix) and op.type.startswith("FusedBatchNorm")
                   and not op.type.endswith("Grad") and op.get_attr("is_training")]
    if len(in_training) > len(training_bn):
        raise ValueError(f"BatchNorm outside the trainable scopes runs in training mode ({in_training[0]}...): this "
                         "net does not build BatchNorm through slim.batch_norm; use --train-bn-stats or --trainable all.")


# ---------------------------------------------------------------------------------------------
# Model and loss


@dataclasses.dataclass(frozen=True)
class Model:
    """What the loop fetches from the graph."""

    loss: tf.Tensor  # total: cross-entropy (+ aux) + regularisation of the trained variables
    accuracy: tf.Tensor  # of the batch
    learning_rate: tf.Tensor
    grad_norm: tf.Tensor  # global norm of the gradients before clipping
    train_op: tf.Operation
    trained: list[tf.Variable]
    model_variables: list[tf.Variable]
    optimizer: tf.train.Optimizer | None = None


def build_logits(spec: nets_factory.NetSpec, images: tf.Tensor, num_classes: int, scopes: Sequence[str], *,
                 weight_decay: float, train_bn_stats: bool, batch_norm_decay: float | None = None,
                 total_steps: int | None = None) -> tuple[tf.Tensor, dict]:
    """The net in training mode inside `scopes`, inference mode outside (unless train_bn_stats).

    batch_norm_decay overrides the net's BatchNorm moving-average decay (e.g. for short runs from scratch).
    total_steps: the run's length, for nets whose regularisation follows training progress (NASNet's drop path).
    """
    network_fn = nets_factory.get_network_fn(spec.name, num_classes, weight_decay=weight_decay, is_training=True,
                                             total_training_steps=total_steps)
    with _layer_modes(None if train_bn_stats else scopes, batch_norm_decay) as training_bn:
        logits, end_points = network_fn(images)
    if not train_bn_stats:
        _check_frozen_batch_norm(images.graph, images.graph.get_name_scope(), training_bn)
    return logits, end_points


def classification_loss(logits: tf.Tensor, end_points: dict, labels: tf.Tensor, num_classes: int,
                        label_smoothing: float) -> tf.Tensor:
    """Softmax cross-entropy of the logits, plus TF-Slim's 0.4-weighted loss of the auxiliary logits."""
    onehot = tf.one_hot(labels, num_classes)
    loss = tf.losses.softmax_cross_entropy(onehot, logits, label_smoothing=label_smoothing, scope="cross_entropy")
    if AUX_LOGITS in end_points:
        aux = tf.reshape(end_points[AUX_LOGITS], [-1, num_classes])
        loss += tf.losses.softmax_cross_entropy(onehot, aux, weights=AUX_LOSS_WEIGHT, label_smoothing=label_smoothing,
                                                scope="aux_cross_entropy")
    return loss


def regularization_loss(trained: Sequence[tf.Variable]) -> tf.Tensor:
    """The weight-decay terms of the trained variables only (frozen ones would add a constant)."""
    names = {v.op.name for v in trained}
    terms = [t for t in tf.losses.get_regularization_losses() if t.op.name.split("/Regularizer/")[0] in names]
    return tf.add_n(terms, name="regularization") if terms else tf.constant(0.0)


def build_model(config: RunConfig, spec: nets_factory.NetSpec, images: tf.Tensor, labels: tf.Tensor,
                num_classes: int, *, steps_per_epoch: int, max_steps: int, places: Sequence[str],
                sync_cluster: clusters.Cluster | None = None) -> Model:
    """Net, loss and train op: one tower per device; gradients of the trainable scopes, averaged over the
    towers, processed (multipliers, global-norm clip), applied; then BatchNorm updates and EMA.

    sync_cluster: apply the gradients of all its workers together (SyncReplicasOptimizer)."""
    global_step = tf.train.get_or_create_global_step()
    scopes = trainable_scopes(spec, config.trainable)
    precision = devices.get_precision(config.precision)

    def tower(batch):
        tower_images, tower_labels = batch
        with precision.scope():
            logits, end_points = build_logits(spec, precision.cast(tower_images), num_classes, scopes,
                                              weight_decay=config.weight_decay, train_bn_stats=config.train_bn_stats,
                                              batch_norm_decay=config.batch_norm_decay, total_steps=max_steps)
        end_points = {k: tf.cast(v, tf.float32) for k, v in end_points.items() if k == AUX_LOGITS}
        logits = tf.cast(logits, tf.float32)
        loss = classification_loss(logits, end_points, tower_labels, num_classes, config.label_smoothing)
        correct = tf.cast(tf.equal(tf.argmax(logits, 1), tower_labels), tf.float32)
        return loss, tf.reduce_mean(correct)

    towers = devices.build_towers(tower, devices.split_batch((images, labels), len(places)), places)
    net_scopes = trainable_scopes(spec, TRAINABLE_ALL)
    model_variables = [v for v in slim.get_model_variables() if in_scopes(v.op.name, net_scopes)]
    trained = select_trainable(tf.trainable_variables(), scopes)
    with tf.name_scope("loss"):
        regularization = regularization_loss(trained)
        losses = [tf.add(t.outputs[0], regularization, name=f"total_{t.index}") for t in towers]
        loss = tf.reduce_mean(losses, name="total")
        accuracy = tf.reduce_mean([t.outputs[1] for t in towers], name="accuracy")
    lr = optim.learning_rate(config.lr_schedule, config.learning_rate, global_step, steps_per_epoch=steps_per_epoch,
                             total_steps=max_steps, decay_epochs=config.decay_epochs,
                             decay_factor=config.decay_factor, end_lr=config.end_learning_rate,
                             warmup_steps=config.warmup_steps)
    optimizer = precision.wrap_optimizer(optim.make_optimizer(config.optimizer, lr, **config.optimizer_params))
    if sync_cluster is not None:
        optimizer = clusters.sync_replicas(optimizer, sync_cluster)
    grads_and_vars = devices.average_gradients(devices.tower_gradients(optimizer, losses, towers, trained))
    grads_and_vars, grad_norm = optim.process_gradients(grads_and_vars, clip_norm=config.clip_grad_norm,
                                                        multipliers=dict(config.lr_multiplier) or None)
    # BatchNorm statistics update with the step, from the first tower as TF-Slim's model_deploy does
    # (only training-mode BatchNorm adds UPDATE_OPS).
    with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS, towers[0].scope)):
        train_op = optimizer.apply_gradients(grads_and_vars, global_step=global_step)
    if config.moving_average_decay:
        with tf.control_dependencies([train_op]):
            train_op = optim.moving_average_op(config.moving_average_decay, trained, global_step)
    return Model(loss=loss, accuracy=accuracy, learning_rate=lr, grad_norm=grad_norm, train_op=train_op,
                 trained=trained, model_variables=model_variables, optimizer=optimizer)


def _summaries(model: Model) -> tf.Tensor:
    tf.summary.scalar("loss", model.loss)
    tf.summary.scalar("learning_rate", model.learning_rate)
    tf.summary.scalar("accuracy", model.accuracy)
    tf.summary.scalar("global_gradient_norm", model.grad_norm)
    return tf.summary.merge_all()


# ---------------------------------------------------------------------------------------------
# Hooks


class _NonFiniteLossHook(tf.train.SessionRunHook):
    """Stop at the first NaN/Inf loss, before any later hook can save the diverged weights."""

    def __init__(self, loss: tf.Tensor, train_dir: str):
        self._loss, self._train_dir = loss, train_dir

    def before_run(self, run_context):
        return tf.train.SessionRunArgs(self._loss)

    def after_run(self, run_context, run_values):
        if not np.isfinite(run_values.results):
            last = tf.train.latest_checkpoint(self._train_dir)
            kept = f"the last good checkpoint is {last}" if last else "no checkpoint was saved"
            raise NonFiniteLossError(f"Loss became {run_values.results} (diverged); stopped without saving, {kept}. "
                                     "Lower --learning-rate or set --clip-grad-norm.")


class _ProgressHook(tf.train.SessionRunHook):
    """A tqdm bar (step, loss, images/s, ETA) that also keeps the run's numbers for the summary."""

    def __init__(self, model: Model, global_step: tf.Tensor, skipped: tf.Tensor, start_step: int, max_steps: int,
                 batch_size: int, show: bool):
        self._fetches = {"step": global_step, "loss": model.loss, "accuracy": model.accuracy, "skipped": skipped}
        self.start_step = self.step = start_step
        self._max_steps, self._batch_size, self._show = max_steps, batch_size, show
        self.accuracies: list[float] = []
        self.loss = float("nan")
        self.skipped = 0
        self.images_per_second = 0.0
        self._bar = None

    def begin(self):
        from tqdm import tqdm

        self._bar = tqdm(total=self._max_steps, initial=self.start_step, unit="step", disable=not self._show,
                         dynamic_ncols=True, leave=True)
        self._timed_from = None  # (time, step) after the first step: start-up is not throughput

    def before_run(self, run_context):
        return tf.train.SessionRunArgs(self._fetches)

    def after_run(self, run_context, run_values):
        results = run_values.results
        step = int(results["step"]) + 1
        self._bar.update(step - self.step)
        self.step, self.loss, self.skipped = step, float(results["loss"]), int(results["skipped"])
        self.accuracies = (self.accuracies + [float(results["accuracy"])])[-TRAIN_ACCURACY_WINDOW:]
        now = time.perf_counter()
        if self._timed_from is None:
            self._timed_from = (now, step)
        self.images_per_second = (step - self._timed_from[1]) * self._batch_size / max(now - self._timed_from[0], 1e-9)
        self._bar.set_postfix(loss=f"{self.loss:.3f}", img_s=f"{self.images_per_second:.0f}", refresh=False)

    def end(self, session):
        self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    @property
    def steps(self) -> int:
        return self.step - self.start_step



# ---------------------------------------------------------------------------------------------
# The run


def run_length(config: RunConfig, num_train: int) -> tuple[int, int]:
    """(steps_per_epoch, max_steps): --max-steps, else --epochs worth of steps."""
    steps_per_epoch = max(1, math.ceil(num_train / config.batch_size))
    if config.max_steps is not None:
        return steps_per_epoch, config.max_steps
    return steps_per_epoch, max(1, math.ceil(config.epochs * steps_per_epoch))


def train(config: RunConfig, *, hooks: Sequence[tf.train.SessionRunHook] = (), verbose: bool = True,
          progress_bar: bool | None = None) -> dict:
    """Train as `config` says; returns the run summary (also written to train_dir/run_summary.json).

    verbose prints the resolved config, the restore plan and the final summary; progress_bar
    (default: verbose) shows the tqdm bar.
    """
    say = print if verbose else (lambda *a, **k: None)
    cluster = clusters.from_env()  # None: one process
    if cluster is not None and cluster.is_ps:
        clusters.serve(cluster)  # until killed
    chief = cluster is None or cluster.is_chief
    spec = nets_factory.get_spec(config.net)
    info = data.describe_dataset(config.dataset, config.validation_fraction, config.seed)
    image_size = config.image_size or spec.image_size
    steps_per_epoch, max_steps = run_length(config, info.num_examples["train"])
    train_dir = config.train_dir
    say(f"finetune: {config.net} on {info.root}: {info.num_classes} classes, "
        f"{info.num_examples['train']} train / {info.num_examples.get('validation', 0)} validation images")
    say(config.describe())

    places = devices.select_devices(config.num_devices)
    if config.batch_size % len(places):
        raise ValueError(f"--batch-size {config.batch_size} does not divide over {len(places)} devices.")
    server = clusters.start_server(cluster) if cluster else None
    with tf.Graph().as_default(), clusters.device_scope(cluster):
        tf.set_random_seed(config.seed)
        global_step = tf.train.get_or_create_global_step()
        with tf.device(clusters.input_device(cluster)):
            dataset = data.build_dataset(info, "train", batch_size=config.batch_size, image_size=image_size,
                                         preprocessing=spec.preprocessing, is_training=True,
                                         seed=config.seed + (cluster.replica if cluster else 0),
                                         drop_remainder=True, crop_min_area=config.crop_min_area)
            images, labels = data.make_iterator(dataset).get_next()
            skipped = data.skipped_images("train")
        model = build_model(config, spec, images, labels, info.num_classes, steps_per_epoch=steps_per_epoch,
                            max_steps=max_steps, places=places,
                            sync_cluster=cluster if config.sync_replicas else None)
        summary_op = _summaries(model)
        saver = tf.train.Saver(max_to_keep=config.keep_checkpoints, save_relative_paths=True)

        # Resume beats warm start, and a train dir of another run is refused before anything is written.
        resume_from = checkpoints.check_resume(train_dir, tf.global_variables()) if chief else None
        _check_same_labels(train_dir, info.class_names, resume_from)
        init_fn, plan = None, None
        if not chief:
            say(f"Worker {cluster.device}: the chief initializes the variables and writes {train_dir}.")
        elif resume_from:
            say(f"Resuming from {resume_from} (step {_step_of(resume_from)} of {max_steps}); "
                "--ckpt is not restored again.")
        elif config.ckpt:
            plan = checkpoints.plan_restore(
                model.model_variables, checkpoints.resolve_checkpoint(config.ckpt), net=spec,
                exclude_scopes=config.exclude_scopes, rename=[f"{old}:{new}" for old, new in config.ckpt_rename],
                use_moving_average=config.ckpt_moving_average, background_class=config.background_class)
            say(plan.table())
            init_fn = plan.init_fn()
        else:
            say(f"No --ckpt: {config.net} trains from scratch.")
        if chief:
            os.makedirs(train_dir, exist_ok=True)
        if chief and not resume_from:
            _write_run_files(train_dir, config, spec, info, image_size, plan)

        progress = _ProgressHook(model, global_step, skipped, _step_of(resume_from), max_steps, config.batch_size,
                                 verbose if progress_bar is None else progress_bar)
        save_every = {"save_steps": config.save_interval_steps} if config.save_interval_steps else \
            {"save_secs": config.save_interval_secs}
        run_hooks = [
            _NonFiniteLossHook(model.loss, train_dir),
            tf.train.StopAtStepHook(last_step=max_steps),
            progress,
            *([tf.train.SummarySaverHook(save_steps=config.summary_interval_steps, output_dir=train_dir,
                                         summary_op=summary_op),
               tf.train.CheckpointSaverHook(train_dir, saver=saver, checkpoint_basename=CHECKPOINT_BASENAME,
                                            **save_every)] if chief else []),
            *clusters.sync_hooks(model.optimizer, chief),
            *hooks,
        ]
        scaffold = tf.train.Scaffold(saver=saver, init_fn=init_fn, summary_op=summary_op)
        creator = clusters.session_creator(cluster, server, scaffold, devices.session_config(config.xla, devices=places),
                                           resume_from)
        stopped = "max_steps"
        start = time.perf_counter()
        if progress.start_step >= max_steps:
            # StopAtStepHook checks after a step: without this a finished run would take one more.
            say(f"{resume_from} is already at step {progress.start_step} (>= {max_steps}): nothing to train; "
                "raise --max-steps or --epochs to go on.")
        else:
            try:
                with tf.train.MonitoredSession(session_creator=creator, hooks=run_hooks,
                                               stop_grace_period_secs=clusters.stop_grace_secs(model.optimizer)
                                               ) as session:
                    try:
                        while not session.should_stop():
                            session.run(model.train_op)
                    except KeyboardInterrupt:
                        stopped = "interrupted"  # leaving the block runs the hooks' end(): the saver saves a checkpoint
            finally:
                progress.close()
        seconds = time.perf_counter() - start

    if stopped == "interrupted":
        say(f"Interrupted at step {progress.step}: saved {tf.train.latest_checkpoint(train_dir)}.")
    if progress.skipped:
        say(f"{progress.skipped} training images skipped (corrupt or undecodable).")
    checkpoint = tf.train.latest_checkpoint(train_dir)
    validation = None
    if chief and not config.skip_eval and info.num_examples.get("validation", 0) and stopped != "interrupted":
        validation = validation_accuracy(train_dir, checkpoint, info, config.batch_size)
    summary = {
        "net": config.net,
        "stopped": stopped,
        "start_step": progress.start_step,
        "final_step": progress.step,
        "steps": progress.steps,
        "seconds": round(seconds, 2),
        "images_per_second": round(progress.images_per_second, 1),
        "final_loss": progress.loss,
        "train_accuracy": float(np.mean(progress.accuracies)) if progress.accuracies else None,
        "validation_accuracy": validation,
        "skipped_images": progress.skipped,
        "checkpoint": checkpoint,
        "train_dir": os.path.abspath(train_dir),
    }
    if chief:
        _write_json(os.path.join(train_dir, RUN_SUMMARY_FILE), summary)
    say(format_summary(summary))
    return summary


def run_recipe(recipe: Recipe, datasets: Mapping[str, str], train_dirs: Mapping[str, str], *, ckpt: str | None = None,
               verbose: bool = False, progress_bar: bool = True) -> dict[str, dict]:
    """Run a recipe's stages in order, each in its train dir; returns {stage: run summary}.

    A stage starts from scratch (init None), from `ckpt` ('ckpt') or from an earlier stage's final
    checkpoint. A stage whose train dir already holds a finished run is not run again.
    """
    summaries: dict[str, dict] = {}
    for stage in recipe.stages:
        init = ckpt if stage.init == "ckpt" else summaries[stage.init]["checkpoint"] if stage.init else None
        config = RunConfig(**{**recipe.base, **stage.overrides, "dataset": datasets[stage.dataset],
                              "train_dir": train_dirs[stage.name], "ckpt": init})
        done = finished_run(config)
        start = f"from {stage.init}" if stage.init else "from scratch"
        print(f"[{stage.name}] {config.net}, trainable {config.trainable}, {start}, {config.max_steps} steps at "
              f"learning rate {config.learning_rate:g} on the {stage.dataset} task"
              + (f": done before, reusing {done['checkpoint']}" if done else ""))
        summaries[stage.name] = done or train(config, verbose=verbose, progress_bar=progress_bar)
    return summaries


def finished_run(config: RunConfig) -> dict | None:
    """The run summary in config.train_dir if that run reached config.max_steps, else None."""
    path = os.path.join(config.train_dir, RUN_SUMMARY_FILE)
    if config.max_steps is None or not os.path.exists(path):
        return None
    with open(path) as f:
        summary = json.load(f)
    done = summary.get("stopped") == "max_steps" and summary.get("final_step", 0) >= config.max_steps
    return summary if done and summary.get("checkpoint") and tf.train.checkpoint_exists(summary["checkpoint"]) else None


def _step_of(checkpoint: str | None) -> int:
    return int(checkpoint.rsplit("-", 1)[-1]) if checkpoint else 0


def _check_same_labels(train_dir: str, class_names: list[str], resume_from: str | None) -> None:
    path = os.path.join(train_dir, RUN_CONFIG_FILE)
    if resume_from and os.path.exists(path):
        with open(path) as f:
            labels = json.load(f).get("labels")
        if labels is not None and labels != class_names:
            raise ValueError(f"{train_dir} was trained on other classes ({', '.join(labels[:5])}...) than this "
                             "dataset's: use a new --train-dir.")


def _write_json(path: str, value: dict) -> None:
    with open(path, "w") as f:
        json.dump(value, f, indent=1)
        f.write("\n")


def _write_run_files(train_dir: str, config: RunConfig, spec: nets_factory.NetSpec, info: data.DatasetInfo,
                     image_size: int, plan) -> None:
    """run_config.json and labels.txt (what eval and export read), and the restore report."""
    _write_json(os.path.join(train_dir, RUN_CONFIG_FILE), {
        "net": spec.name,
        "num_classes": info.num_classes,
        "image_size": image_size,
        "preprocessing": spec.preprocessing,
        "labels": info.class_names,
        "dataset": os.path.abspath(info.root),
        "moving_average_decay": config.moving_average_decay,
        "config": config.to_dict(),
    })
    with open(os.path.join(train_dir, LABELS_FILE), "w") as f:
        f.write("".join(f"{name}\n" for name in info.class_names))
    if plan is not None:
        plan.save_json(os.path.join(train_dir, RESTORE_REPORT_FILE))


def validation_accuracy(train_dir: str, checkpoint: str, info: data.DatasetInfo, batch_size: int) -> float:
    """Top-1 accuracy of `checkpoint` on the validation split (finetune.evaluate; report in train_dir/eval_validation,
    where `finetune eval --train-dir` writes too)."""
    from finetune import evaluate

    model = evaluate.TrainedModel.from_train_dir(train_dir, checkpoint)
    metrics = evaluate.evaluate(model, info, split="validation", batch_size=batch_size,
                                output_dir=evaluate.report_dir(train_dir, "validation"), progress=False)
    return float(metrics["top1"])


def format_summary(summary: dict) -> str:
    """The end-of-run screen."""
    from tabulate import tabulate

    def percent(value):
        return "-" if value is None else f"{100 * value:.1f}%"

    rows = [
        ("steps", f"{summary['steps']} (step {summary['start_step']} -> {summary['final_step']}, {summary['stopped']})"),
        ("time", f"{summary['seconds']:.1f} s"),
        ("images/s", f"{summary['images_per_second']:.1f}"),
        ("final loss", f"{summary['final_loss']:.4f}"),
        (f"train accuracy (last {TRAIN_ACCURACY_WINDOW} batches)", percent(summary["train_accuracy"])),
        ("validation accuracy", percent(summary["validation_accuracy"])),
        ("skipped images", summary["skipped_images"]),
        ("checkpoint", summary["checkpoint"]),
        ("train dir", summary["train_dir"]),
    ]
    return tabulate(rows, tablefmt="plain")
