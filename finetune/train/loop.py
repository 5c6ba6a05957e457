"""The training loop: fine-tune chosen scopes of a zoo net on a dataset, read top to bottom in `_train`'s
named phases:

    resolve   config -> one ResolvedRun (finetune.train.resolve): net, dataset, scopes, devices, cache, length
    build     dataset -> training graph (finetune.train.graph) -> summaries, the feature cache's hook, saver
    start     resume from the train dir, warm start through a printed restore plan, hub backbone or scratch
              (finetune.train.start); the run's files written before the first step
    hooks     stop, NaN guard, progress, summaries, checkpoints, SIGTERM, the caller's
    run       MonitoredSession until max steps, Ctrl-C or SIGTERM
    summarise validation accuracy (the caller's `validate`), run_summary.json, the end-of-run screen

A rerun with nothing to train (the newest checkpoint is at max steps) keeps the run_summary.json of the run
that got there, and says so; a summary a signal cut short (no validation) is completed, its numbers kept.
SIGTERM (finetune.train.hooks.StopOnSignalHook) stops the run at once before the first step
(SignalReceived: nothing new to save) and during the final validation (skipped, and the summary says why),
after the current step and a save while steps run: the signal's exit takes at most one step and a save.

The train dir's files, its lock and the resume decision are finetune.runs.run_dir's. The final validation
is the serving layer's (finetune.serve.evaluate.validation_accuracy), given by the caller: train and serve
are one layer, neither imports the other.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Sequence

import numpy as np

from finetune.config import RunConfig
from finetune.data import forensics, pipeline, scan
from finetune.runs.run_dir import RUN_SUMMARY_FILE, RunDir
from finetune.train import cluster as clusters
from finetune.train import devices, feature_cache
from finetune.train import start as starts
from finetune.train.graph import TrainGraph, build_train_graph, summaries
from finetune.train.hooks import (
    TRAIN_ACCURACY_WINDOW,
    CheckpointHook,
    NonFiniteLossHook,
    ProgressHook,
    SignalReceived,
    StopOnSignalHook,
)
from finetune.train.resolve import ResolvedRun, resolve, run_length  # noqa: F401 (run_length: the loop's API)
from nets.compat import tf

Say = Callable[[str], None]
Validate = Callable[[RunDir, str, scan.DatasetInfo, int], float]  # (run dir, checkpoint, dataset, batch) -> top-1


def train(config: RunConfig, *, hooks: Sequence[tf.train.SessionRunHook] = (), verbose: bool = True,
          progress_bar: bool | None = None, validate: Validate | None = None, locked: bool = False) -> dict:
    """Train as `config` says; returns the run summary (also written to train_dir/run_summary.json).

    verbose prints the resolved config, the restore plan and the final summary; progress_bar
    (default: verbose) shows the tqdm bar. The chief holds the train dir's lock from start to end.
    validate: the final validation of a finished run (unless --skip-eval), e.g.
    finetune.serve.evaluate.validation_accuracy as `finetune train` and recipes give it; None: none (the
    summary's validation_accuracy is None, its `validation` says why).
    locked: the caller holds the train dir's lock already (`finetune train` takes it before importing TensorFlow).
    SignalReceived: SIGTERM before the first step (nothing new was saved; the lock is released).
    """
    say = print if verbose else (lambda *a, **k: None)
    cluster = clusters.from_env()  # None: one process
    if cluster is not None and cluster.is_ps:
        clusters.serve(cluster)  # until killed
    chief = cluster is None or cluster.is_chief
    run_dir = RunDir(config.train_dir)
    with run_dir.lock(say) if chief and not locked else contextlib.nullcontext(), StopOnSignalHook() as terminate:
        return _train(config, run_dir, cluster, terminate, hooks, say,
                      verbose if progress_bar is None else progress_bar, validate)


def _train(config: RunConfig, run_dir: RunDir, cluster: clusters.Cluster | None, terminate: StopOnSignalHook,
           hooks: Sequence[tf.train.SessionRunHook], say: Say, progress_bar: bool, validate: Validate | None) -> dict:
    run = resolve(config, cluster, say)
    server = clusters.start_server(cluster) if cluster else None
    with tf.Graph().as_default(), clusters.device_scope(cluster), devices.op_determinism(config.deterministic):
        tf.set_random_seed(config.seed)
        built = _build(run, say)
        start = _start(run, run_dir, built, say)
        progress = ProgressHook(built.model, built.global_step, start.start_step, run.max_steps, config.batch_size,
                                progress_bar)
        run_hooks = _hooks(run, run_dir, built, progress, terminate, hooks)
        stopped, seconds = _run(run, built, start, run_hooks, progress, server, terminate)
    if progress.start_step >= run.max_steps:
        kept = _nothing_trained(run, run_dir, start.checkpoint, progress.start_step, validate, terminate, say)
        if kept is not None:
            return kept
    validation = _validation(run, run_dir, stopped, validate, terminate, say)
    if terminate.received and stopped == "max_steps":  # it came during the validation: the run was cut
        stopped = "terminated"
    return _summarise(run, run_dir, built, progress, stopped, seconds, validation, terminate, say)


@dataclasses.dataclass(frozen=True)
class _Built:
    """What the build phase made in the run's graph."""

    global_step: tf.Tensor
    model: TrainGraph
    summary_op: tf.Tensor
    saver: tf.train.Saver
    skipped_names: tf.train.FinalOpsHook  # the skipped images' names, fetched as the run ends
    cache_hooks: list


def _build(run: ResolvedRun, say: Say) -> _Built:
    """Input pipeline, training graph, summaries, the feature cache's hook, saver (in this order)."""
    config, cluster = run.config, run.cluster
    global_step = tf.train.get_or_create_global_step()
    with tf.device(clusters.input_device(cluster)):
        images, labels = _input(run)
        skipped_names = tf.train.FinalOpsHook(pipeline.skipped_image_names("train"))  # fetched as the run ends
    model = build_train_graph(config, run.spec, images, labels, run.num_classes, steps_per_epoch=run.steps_per_epoch,
                              max_steps=run.max_steps, places=run.places,
                              sync_cluster=cluster if config.sync_replicas else None, run_scopes=run.scopes,
                              input_range=run.input_range, precision=run.precision)
    summary_op = summaries(model)
    cache_hooks = [_feature_cache_hook(run, model, summary_op, images, labels, say)] if run.use_cache else []
    saver = tf.train.Saver(max_to_keep=None, save_relative_paths=True)  # CheckpointHook prunes (keep N)
    return _Built(global_step, model, summary_op, saver, skipped_names, cache_hooks)


def _input(run: ResolvedRun) -> tuple[tf.Tensor, tf.Tensor]:
    """(images, labels) of the training split: shuffled and augmented, or for the feature cache one in-order
    pass with evaluation preprocessing (what the cache is computed from)."""
    config, info = run.config, run.info
    common = {"batch_size": config.batch_size, "image_size": run.image_size, "preprocessing": run.spec.preprocessing}
    if run.use_cache:
        dataset = pipeline.build_dataset(info, "train", **common, is_training=False, num_epochs=1)
    else:
        dataset = pipeline.build_dataset(info, "train", **common, is_training=True,
                                     seed=config.seed + (run.cluster.replica if run.cluster else 0),
                                     drop_remainder=True, crop_min_area=config.crop_min_area,
                                     augment=config.augment != "none")
    # One GPU: batches are copied to it ahead of the step (not for the cache's one pass, whose values are fed).
    to_gpu = None if run.use_cache or run.cluster else pipeline.prefetch_device(run.places)
    return pipeline.make_iterator(dataset, to_gpu).get_next()


def _start(run: ResolvedRun, run_dir: RunDir, built: _Built, say: Say) -> starts.Start:
    """How the session begins (finetune.train.start), printed; the chief then writes the run's files.

    A dir holding checkpoints resumes from its newest complete one (never warm-starts over it); one of
    another run is refused; a --ckpt that does not read back whole is refused: all before anything is written."""
    record = run.record()
    resume_from = run_dir.resume_point(tf.global_variables(), record, say) if run.chief else None
    start = starts.begin(run, built.model.model_variables, resume_from, str(run_dir))
    say(start.text)
    start.check()
    if run.chief and (not resume_from or not run_dir.run_config(required=False)):
        run_dir.write_run_files(record, run.info.class_names, start.report)
    return start


def _hooks(run: ResolvedRun, run_dir: RunDir, built: _Built, progress: ProgressHook, terminate: StopOnSignalHook,
           hooks: Sequence[tf.train.SessionRunHook]) -> list[tf.train.SessionRunHook]:
    """The session's hooks, in the order they run."""
    config, model, train_dir = run.config, built.model, str(run_dir)
    chief_hooks = [
        tf.train.SummarySaverHook(save_steps=config.summary_interval_steps, output_dir=train_dir,
                                  summary_op=built.summary_op),
        CheckpointHook(run_dir, built.saver, built.global_step, keep=config.keep_checkpoints,
                       every_steps=config.save_interval_steps, every_secs=config.save_interval_secs),
    ] if run.chief else []
    return [
        *built.cache_hooks,
        NonFiniteLossHook(model.loss, train_dir),
        tf.train.StopAtStepHook(last_step=run.max_steps),
        progress,
        *chief_hooks,
        *clusters.sync_hooks(model.optimizer, run.chief),
        terminate,
        built.skipped_names,
        *hooks,
    ]


def _run(run: ResolvedRun, built: _Built, start: starts.Start, run_hooks: list, progress: ProgressHook,
         server, terminate: StopOnSignalHook) -> tuple[str, float]:
    """Run the steps; (how the run stopped: max_steps | interrupted | terminated, seconds)."""
    max_steps, optimizer = run.max_steps, built.model.optimizer
    scaffold = tf.train.Scaffold(saver=built.saver, init_op=start.init_op(), init_fn=start.init_fn(),
                                 summary_op=built.summary_op)
    session_config = devices.session_config(run.config.xla, devices=run.places)
    if run.use_cache:
        feature_cache.fit_session_config(session_config)
    creator = clusters.session_creator(run.cluster, server, scaffold, session_config, start.checkpoint)
    stopped = "max_steps"
    began = time.perf_counter()
    if progress.start_step < max_steps:  # StopAtStepHook checks after a step: a finished run would take one more
        try:  # a bad image's decoder messages would break the bar: it is named once in the summary instead
            with forensics.decoder_messages_dropped(), tf.train.MonitoredSession(
                    session_creator=creator, hooks=run_hooks,
                    stop_grace_period_secs=clusters.stop_grace_secs(optimizer)) as session:
                try:
                    while not session.should_stop():
                        session.run(built.model.train_op)
                except KeyboardInterrupt:
                    stopped = "interrupted"  # leaving the block runs the hooks' end(): the saver saves a checkpoint
        finally:
            progress.close()
    if terminate.received and stopped == "max_steps":  # the step in flight ended the run, maybe its last
        stopped = "terminated"
    seconds = time.perf_counter() - began
    if built.cache_hooks and stopped == "max_steps" and progress.step < max_steps:
        # A step that still read the (one-pass, used-up) input pipeline ends the run early and silently.
        raise RuntimeError(f"Feature cache: the run stopped at step {progress.step} of {max_steps} because a step "
                           "read the input pipeline although its features were fed; use --cache-features off.")
    return stopped, seconds


def _validation(run: ResolvedRun, run_dir: RunDir, stopped: str, validate: Validate | None,
                terminate: StopOnSignalHook, say: Say) -> tuple[float | None, str]:
    """Top-1 accuracy of the final checkpoint on the validation split (the chief's, of a finished run) and what
    the summary's `validation` says: "done" or "skipped: why". SIGTERM, before or during it, skips it at once."""
    config, info = run.config, run.info
    reasons = [(not run.chief, "not the chief"), (validate is None, "not asked"), (config.skip_eval, "--skip-eval"),
               (not info.num_examples.get("validation", 0), "no validation split"),
               (stopped == "interrupted", "interrupted (Ctrl-C)"),
               (stopped == "terminated", f"stopped by {terminate.received}")]
    if why := next((why for skip, why in reasons if skip), None):
        return None, f"skipped: {why}"
    try:
        with terminate.raising():
            return validate(run_dir, run_dir.latest_checkpoint(), info, config.batch_size), "done"
    except SignalReceived as signal:
        say(f"Stopped by {signal.name}: skipped the final validation (rerun the command to validate).")
        return None, f"skipped: stopped by {signal.name}"


def _nothing_trained(run: ResolvedRun, run_dir: RunDir, checkpoint: str, step: int, validate: Validate | None,
                     terminate: StopOnSignalHook, say: Say) -> dict | None:
    """A rerun whose checkpoint is at max steps already: the run summary of the run that got there, kept (its
    validation done now when a signal cut the run short; its other numbers kept), said in one line. None when
    there is no such summary (a kill before it was written): the caller writes one."""
    done = f"{checkpoint} is already at step {step} (>= {run.max_steps}): nothing to train"
    go_on = "raise --max-steps or --epochs to go on."
    kept = run_dir.summary() if run.chief else None
    if not kept or kept.get("final_step") != step:
        say(f"{done}; {go_on}")
        return None
    if kept.get("stopped") == "max_steps":
        say(f"{done}; {RUN_SUMMARY_FILE} kept as it was; {go_on}")
        return kept
    accuracy, validation = _validation(run, run_dir, "max_steps", validate, terminate, say)
    kept = {**kept, "stopped": "terminated" if terminate.received else "max_steps",
            "validation_accuracy": accuracy, "validation": validation}
    run_dir.write_summary(kept)
    say(f"{done}; {RUN_SUMMARY_FILE} completed (validation {validation}), its other numbers kept; {go_on}")
    return kept


def _summarise(run: ResolvedRun, run_dir: RunDir, built: _Built, progress: ProgressHook, stopped: str,
               seconds: float, validation: tuple[float | None, str], terminate: StopOnSignalHook, say: Say) -> dict:
    """run_summary.json (the chief's) and the end-of-run screen; returns the summary."""
    config, info = run.config, run.info
    if stopped != "max_steps":
        how = "Interrupted" if stopped == "interrupted" else f"Stopped by {terminate.received}"
        say(f"{how} at step {progress.step}: saved {run_dir.latest_checkpoint()}.")
    names = built.skipped_names.final_ops_values
    skipped = forensics.describe_skipped(info, [] if names is None else names)
    checkpoint = run_dir.latest_checkpoint()
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
        "validation_accuracy": validation[0],
        "validation": validation[1],
        "skipped_images": skipped,
        "checkpoint": checkpoint,
        "train_dir": str(run_dir.path.absolute()),
    }
    if run.chief:
        run_dir.write_summary(summary)
    say(format_summary(summary))
    return summary


def _feature_cache_hook(run: ResolvedRun, model: TrainGraph, summary_op: tf.Tensor, images: tf.Tensor,
                        labels: tf.Tensor, say: Say) -> feature_cache.FeatureCacheHook:
    """The hook that feeds the classifier cached trunk features (finetune.train.feature_cache)."""

    def in_trainable_scope(op) -> bool:  # op names carry the tower's name scope
        return run.scopes.trains(op.name.split("/", 1)[-1])

    cut = feature_cache.cut_tensors([model.train_op, model.loss, model.accuracy, summary_op], [images, labels],
                                    model.trained, live=in_trainable_scope)
    trained = {v.op.name for v in model.trained}
    frozen = [v for v in model.model_variables if v.op.name not in trained]
    description = {"net": run.spec.name, "image_size": run.image_size, "preprocessing": run.spec.preprocessing,
                   "dataset": feature_cache.dataset_fingerprint(run.info.sources["train"],
                                                                run.info.labels.get("train", []))}
    return feature_cache.FeatureCacheHook(cut, frozen, tf.train.get_global_step(), batch_size=run.config.batch_size,
                                          seed=run.config.seed, description=description, say=say)


def format_summary(summary: dict) -> str:
    """The end-of-run screen."""
    from tabulate import tabulate

    def percent(value):
        return "-" if value is None else f"{100 * value:.1f}%"

    rows = [
        ("steps", f"{summary['steps']} (step {summary['start_step']} -> {summary['final_step']}, {summary['stopped']})"),
        ("time", f"{summary['seconds']:.1f} s"),
        ("images/s", f"{summary['images_per_second']:.1f}"),
        ("final loss", "-" if summary["final_loss"] is None else f"{summary['final_loss']:.4f}"),
        (f"train accuracy (last {TRAIN_ACCURACY_WINDOW} batches)", percent(summary["train_accuracy"])),
        ("validation accuracy", percent(summary["validation_accuracy"])),
        ("checkpoint", summary["checkpoint"]),
        ("train dir", summary["train_dir"]),
    ]
    skipped = forensics.format_skipped(summary["skipped_images"])  # each bad image once, however many epochs saw it
    return tabulate(rows, tablefmt="plain") + (f"\n{skipped}" if skipped else "")
