"""The training loop: fine-tune chosen scopes of a zoo net on a dataset, read top to bottom in `train`.

    config -> dataset -> training graph (finetune.train.graph) -> resume from the train dir, or
    restore the pretrained checkpoint through a printed plan -> MonitoredSession with hooks (stop,
    NaN guard, progress, summaries, checkpoints, SIGTERM) -> validation accuracy, run_summary.json

The train dir's files, its lock and the resume decision are finetune.runs.run_dir's.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Sequence

import numpy as np

import checkpoints
from finetune.config import RunConfig
from finetune.data import dataset as data
from finetune.runs.run_dir import RunDir
from finetune.train import cluster as clusters
from finetune.train import devices, feature_cache, hub_run
from finetune.train.graph import build_train_graph, summaries, trainable_scopes
from finetune.train.hooks import (
    TRAIN_ACCURACY_WINDOW,
    CheckpointHook,
    NonFiniteLossHook,
    ProgressHook,
    StopOnSignalHook,
)
from nets import nets_factory
from nets.compat import tf


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
    (default: verbose) shows the tqdm bar. The chief holds the train dir's lock from start to end.
    """
    say = print if verbose else (lambda *a, **k: None)
    cluster = clusters.from_env()  # None: one process
    if cluster is not None and cluster.is_ps:
        clusters.serve(cluster)  # until killed
    chief = cluster is None or cluster.is_chief
    run_dir = RunDir(config.train_dir)
    with run_dir.lock(say) if chief else contextlib.nullcontext(), StopOnSignalHook() as terminate:
        return _train(config, run_dir, cluster, chief, terminate, hooks, say,
                      verbose if progress_bar is None else progress_bar)


def _train(config: RunConfig, run_dir: RunDir, cluster: clusters.Cluster | None, chief: bool,
           terminate: StopOnSignalHook, hooks: Sequence[tf.train.SessionRunHook], say, progress_bar: bool) -> dict:
    spec = nets_factory.get_spec(config.net)
    info = data.scan_dataset(config.dataset, config.validation_fraction, config.seed)
    if info.num_classes < 2:
        raise ValueError(f"{info.root} has one class ({info.class_names[0]}): a classifier needs at least two; add "
                         "a folder of images per class.")
    image_size = config.image_size or spec.image_size
    input_range = None
    if hub_run.is_hub(config.net):  # size and value range from the model when it states them, else the flags
        image_size, input_range, hub_line = hub_run.resolve_input(config.net, config.image_size, config.input_range)
        say(hub_line)
    steps_per_epoch, max_steps = run_length(config, info.num_examples["train"])
    train_dir = str(run_dir)
    say(f"finetune: {config.net} on {info.root}: {info.num_classes} classes, "
        f"{info.num_examples['train']} train / {info.num_examples.get('validation', 0)} validation images")
    say(config.resolved_values())

    places = devices.select_devices(config.num_devices)
    if config.batch_size % len(places):
        raise ValueError(f"--batch-size {config.batch_size} does not divide over {len(places)} devices.")
    use_cache, why = feature_cache.decide(
        config.cache_features, classifier_only=set(trainable_scopes(spec, config.trainable)) == set(spec.classifier_scopes),
        augment=config.augment, train_bn_stats=config.train_bn_stats, num_devices=len(places), cluster=cluster is not None)
    say(why)
    server = clusters.start_server(cluster) if cluster else None
    with tf.Graph().as_default(), clusters.device_scope(cluster), devices.op_determinism(config.deterministic):
        tf.set_random_seed(config.seed)
        global_step = tf.train.get_or_create_global_step()
        with tf.device(clusters.input_device(cluster)):
            if use_cache:  # one in-order pass, evaluation preprocessing: what the cache is computed from
                dataset = data.build_dataset(info, "train", batch_size=config.batch_size, image_size=image_size,
                                             preprocessing=spec.preprocessing, is_training=False, num_epochs=1)
            else:
                dataset = data.build_dataset(info, "train", batch_size=config.batch_size, image_size=image_size,
                                             preprocessing=spec.preprocessing, is_training=True,
                                             seed=config.seed + (cluster.replica if cluster else 0),
                                             drop_remainder=True, crop_min_area=config.crop_min_area,
                                             augment=config.augment != "none")
            # One GPU: batches are copied to it ahead of the step (not for the cache's one pass, whose values are fed).
            to_gpu = None if use_cache or cluster else data.prefetch_device(places)
            images, labels = data.make_iterator(dataset, to_gpu).get_next()
            skipped_names = tf.train.FinalOpsHook(data.skipped_image_names("train"))  # fetched as the run ends
        model = build_train_graph(config, spec, images, labels, info.num_classes, steps_per_epoch=steps_per_epoch,
                                  max_steps=max_steps, places=places,
                                  sync_cluster=cluster if config.sync_replicas else None)
        summary_op = summaries(model)
        cache_hooks = [_feature_cache_hook(config, spec, info, image_size, model, summary_op, images, labels, say)
                       ] if use_cache else []
        saver = tf.train.Saver(max_to_keep=None, save_relative_paths=True)  # CheckpointHook prunes (keep N)

        # A dir holding checkpoints resumes from its newest complete one (never warm-starts over it); one of
        # another run is refused; a --ckpt that does not read back whole is refused: all before anything is written.
        record = {**_run_record(config, spec, info, image_size), "input_range": input_range}
        resume_from = run_dir.resume_point(tf.global_variables(), record, say) if chief else None
        init_fn, plan, hub_report = None, None, None
        if not chief:
            say(f"Worker {cluster.device}: the chief initializes the variables and writes {train_dir}.")
        elif resume_from:
            say(f"Resuming from {resume_from} (step {_step_of(resume_from)} of {max_steps}); "
                "--ckpt is not restored again.")
        elif config.ckpt:
            plan = checkpoints.plan_restore(model.model_variables, config.ckpt, net=spec,
                                            options=config.restore_options)
            say(plan.table())
            checkpoints.verify_checkpoint(plan.checkpoint)
            init_fn = plan.init_fn()
        elif hub_run.is_hub(config.net):
            hub_report, hub_table = hub_run.restore_report(config.net, model.model_variables)
            say(hub_table)
        else:
            say(f"No --ckpt: {config.net} trains from scratch.")
        if chief and (not resume_from or not run_dir.run_config(required=False)):
            run_dir.write_run_files(record, info.class_names, plan.to_dict() if plan else hub_report)

        progress = ProgressHook(model, global_step, _step_of(resume_from), max_steps, config.batch_size,
                                progress_bar)
        run_hooks = [
            *cache_hooks,
            NonFiniteLossHook(model.loss, train_dir),
            tf.train.StopAtStepHook(last_step=max_steps),
            progress,
            *([tf.train.SummarySaverHook(save_steps=config.summary_interval_steps, output_dir=train_dir,
                                         summary_op=summary_op),
               CheckpointHook(run_dir, saver, global_step, keep=config.keep_checkpoints,
                              every_steps=config.save_interval_steps,
                              every_secs=config.save_interval_secs)] if chief else []),
            *clusters.sync_hooks(model.optimizer, chief),
            terminate,
            skipped_names,
            *hooks,
        ]
        # A warm start initializes only what the restore does not set (the rest's random values would be overwritten).
        init_op = plan.remainder_initializer() if plan else None
        scaffold = tf.train.Scaffold(saver=saver, init_op=init_op, init_fn=init_fn, summary_op=summary_op)
        session_config = devices.session_config(config.xla, devices=places)
        if use_cache:
            feature_cache.fit_session_config(session_config)
        creator = clusters.session_creator(cluster, server, scaffold, session_config, resume_from)
        stopped = "max_steps"
        start = time.perf_counter()
        if progress.start_step >= max_steps:
            # StopAtStepHook checks after a step: without this a finished run would take one more.
            say(f"{resume_from} is already at step {progress.start_step} (>= {max_steps}): nothing to train; "
                "raise --max-steps or --epochs to go on.")
        else:
            try:  # a bad image's decoder messages would break the bar: it is named once in the summary instead
                with data.decoder_messages_dropped(), tf.train.MonitoredSession(session_creator=creator, hooks=run_hooks,
                                               stop_grace_period_secs=clusters.stop_grace_secs(model.optimizer)
                                               ) as session:
                    try:
                        while not session.should_stop():
                            session.run(model.train_op)
                    except KeyboardInterrupt:
                        stopped = "interrupted"  # leaving the block runs the hooks' end(): the saver saves a checkpoint
            finally:
                progress.close()
        if terminate.received and stopped == "max_steps" and progress.step < max_steps:
            stopped = "terminated"
        seconds = time.perf_counter() - start
        if cache_hooks and stopped == "max_steps" and progress.step < max_steps:
            # A step that still read the (one-pass, used-up) input pipeline ends the run early and silently.
            raise RuntimeError(f"Feature cache: the run stopped at step {progress.step} of {max_steps} because a step "
                               "read the input pipeline although its features were fed; use --cache-features off.")

    if stopped != "max_steps":
        how = "Interrupted" if stopped == "interrupted" else f"Stopped by {terminate.received}"
        say(f"{how} at step {progress.step}: saved {run_dir.latest_checkpoint()}.")
    names = skipped_names.final_ops_values
    skipped = data.describe_skipped(info, [] if names is None else names)
    checkpoint = run_dir.latest_checkpoint()
    validation = None
    if chief and not config.skip_eval and info.num_examples.get("validation", 0) and stopped == "max_steps":
        validation = validation_accuracy(run_dir, checkpoint, info, config.batch_size)
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
        "skipped_images": skipped,
        "checkpoint": checkpoint,
        "train_dir": str(run_dir.path.absolute()),
    }
    if chief:
        run_dir.write_summary(summary)
    say(format_summary(summary))
    return summary


def _feature_cache_hook(config: RunConfig, spec: nets_factory.NetSpec, info: data.DatasetInfo, image_size: int,
                        model, summary_op, images, labels, say) -> feature_cache.FeatureCacheHook:
    """The hook that feeds the classifier cached trunk features (finetune.train.feature_cache)."""
    from checkpoints import scopes

    scope_list = trainable_scopes(spec, config.trainable)

    def in_trainable_scope(op) -> bool:  # op names carry the tower's name scope
        return bool(scopes.matching_scope(op.name.split("/", 1)[-1], scope_list, spec.scope))

    cut = feature_cache.cut_tensors([model.train_op, model.loss, model.accuracy, summary_op], [images, labels],
                                    model.trained, live=in_trainable_scope)
    trained = {v.op.name for v in model.trained}
    frozen = [v for v in model.model_variables if v.op.name not in trained]
    description = {"net": spec.name, "image_size": image_size, "preprocessing": spec.preprocessing,
                   "dataset": feature_cache.dataset_fingerprint(info.sources["train"], info.labels.get("train", []))}
    return feature_cache.FeatureCacheHook(cut, frozen, tf.train.get_global_step(), batch_size=config.batch_size,
                                          seed=config.seed, description=description, say=say)


def _step_of(checkpoint: str | None) -> int:
    return int(checkpoint.rsplit("-", 1)[-1]) if checkpoint else 0


def _run_record(config: RunConfig, spec: nets_factory.NetSpec, info: data.DatasetInfo, image_size: int) -> dict:
    """run_config.json: what rebuilds the run's graph, and every resolved value."""
    return {
        "net": spec.name,
        "num_classes": info.num_classes,
        "image_size": image_size,
        "preprocessing": spec.preprocessing,
        "labels": info.class_names,
        "dataset": os.path.abspath(info.root),
        "moving_average_decay": config.moving_average_decay,
        "config": config.to_dict(),
    }


def validation_accuracy(run_dir: RunDir, checkpoint: str, info: data.DatasetInfo, batch_size: int) -> float:
    """Top-1 accuracy of `checkpoint` on the validation split (report in TRAIN_DIR/eval_validation, where
    `finetune eval --train-dir` writes too)."""
    from finetune.runs.trained_model import TrainedModel
    from finetune.serve import evaluate

    model = TrainedModel.from_train_dir(str(run_dir), checkpoint)
    metrics = evaluate.evaluate(model, info, split="validation", batch_size=batch_size,
                                output_dir=run_dir.report_dir("validation"), progress=False)
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
        ("checkpoint", summary["checkpoint"]),
        ("train dir", summary["train_dir"]),
    ]
    skipped = data.format_skipped(summary["skipped_images"])  # each bad image once, however many epochs saw it
    return tabulate(rows, tablefmt="plain") + (f"\n{skipped}" if skipped else "")
