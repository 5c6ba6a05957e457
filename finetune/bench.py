"""Benchmarks that print numbers: export size and latency, checkpoint restore time, training throughput.

Without a checkpoint, each benchmark writes one of freshly initialized weights to a temporary
directory (the numbers depend on shapes, not values). Timings take the median of repeated runs
after warm-up runs; they measure this machine at this moment, so compare them side by side only.

- `bench_export`: export the net (`finetune.export.export`, verification included), then the .pb's
  size and the per-batch latency of the frozen graph versus the checkpoint graph it came from.
- `bench_restore`: planning (`checkpoints.plan_restore`) and running the restore op, next to a plain
  `tf.train.Saver` restore of the same variables.
- `bench_train`: images/s of the training step `finetune.train_graph.build_train_graph` builds, on random images
  (the input pipeline is left out).
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from finetune import export
from finetune.trained_model import TrainedModel
from nets import nets_factory
from nets.compat import tf


def timed(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 2) -> dict[str, dict[str, float]]:
    """Per name: median, min and max wall time of fn() in milliseconds, after `warmup` untimed calls.

    The functions take turns within each round, so load from other processes falls on all alike.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) * 1000.0)
    return {name: {"median_ms": statistics.median(t), "min_ms": min(t), "max_ms": max(t), "runs": repeats}
            for name, t in times.items()}


def random_checkpoint(net: str, num_classes: int, image_size: int, directory: str | Path) -> str:
    """Save freshly initialized weights of `net` (inference graph) as DIRECTORY/model.ckpt; return the prefix."""
    with tf.Graph().as_default():
        images = tf.zeros([1, image_size, image_size, 3])
        nets_factory.get_network_fn(net, num_classes)(images)
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            return tf.train.Saver().save(session, str(Path(directory) / "model.ckpt"), write_meta_graph=False)


def _model(net: str, checkpoint: str | None, num_classes: int | None, image_size: int | None,
           workdir: str) -> TrainedModel:
    spec = nets_factory.get_spec(net)
    num_classes = num_classes or spec.num_classes
    image_size = image_size or spec.image_size
    checkpoint = checkpoint or random_checkpoint(net, num_classes, image_size, workdir)
    return TrainedModel.from_checkpoint(checkpoint, net, num_classes, image_size=image_size)


def bench_export(
    net: str,
    *,
    checkpoint: str | None = None,
    num_classes: int | None = None,
    image_size: int | None = None,
    batch_size: int = 1,
    repeats: int = 10,
) -> dict:
    """Export the net to a temporary .pb; its size, export time and latency against the checkpoint graph."""
    with tempfile.TemporaryDirectory(prefix="finetune-bench-") as workdir:
        model = _model(net, checkpoint, num_classes, image_size, workdir)
        start = time.perf_counter()
        result = export.export(model, Path(workdir) / "model.pb")
        export_seconds = time.perf_counter() - start
        inputs = export.sample_inputs("float", model.image_size, batch_size)
        with contextlib.ExitStack() as stack:
            runs = {
                "frozen": stack.enter_context(_frozen_runner(export.load_graph_def(result.graph), inputs)),
                "checkpoint": stack.enter_context(_checkpoint_runner(model, inputs)),
            }
            latency = timed(runs, repeats)
    return {
        "net": net,
        "image_size": model.image_size,
        "num_classes": model.num_classes,
        "batch_size": batch_size,
        "pb_bytes": result.size_bytes,
        "pb_nodes": result.nodes,
        "batch_norms_folded": result.batch_norms_folded,
        "export_seconds": export_seconds,
        "max_difference": result.max_difference,
        "latency_frozen": latency["frozen"],
        "latency_checkpoint": latency["checkpoint"],
    }


@contextlib.contextmanager
def _frozen_runner(graph_def: tf.GraphDef, inputs: np.ndarray) -> Iterator[Callable[[], object]]:
    """A call that runs the frozen graph's probabilities on `inputs`, in its own session."""
    with tf.Graph().as_default() as graph:
        tf.import_graph_def(graph_def, name="")
        with tf.Session(graph=graph) as session:
            feed = {f"{export.INPUT}:0": inputs}
            yield lambda: session.run("probabilities:0", feed)


@contextlib.contextmanager
def _checkpoint_runner(model: TrainedModel, inputs: np.ndarray) -> Iterator[Callable[[], object]]:
    """The same for the checkpoint graph (variables restored) the export froze."""
    with tf.Graph().as_default() as graph:
        tensors = export.serving_graph(model)
        restore = model.restore_op(tf.global_variables())
        with tf.Session(graph=graph) as session:
            session.run(tf.global_variables_initializer())
            session.run(restore)
            feed = {tensors[export.INPUT]: inputs}
            yield lambda: session.run(tensors["probabilities"], feed)


def bench_restore(net: str, *, checkpoint: str | None = None, num_classes: int | None = None,
                  repeats: int = 3) -> dict:
    """Seconds to plan and to run a restore of the whole net, and a plain Saver restore for comparison."""
    from checkpoints import RestoreOptions, plan_restore

    spec = nets_factory.get_spec(net)
    with tempfile.TemporaryDirectory(prefix="finetune-bench-") as workdir:
        model = _model(net, checkpoint, num_classes, None, workdir)
        with tf.Graph().as_default() as graph:
            nets_factory.get_network_fn(net, model.num_classes)(tf.zeros([1, spec.image_size, spec.image_size, 3]))
            variables = tf.global_variables()
            everything = RestoreOptions(exclude_scopes=())
            plan_times = timed({"plan": lambda: plan_restore(variables, model.checkpoint, options=everything)},
                               repeats, warmup=0)["plan"]
            plan = plan_restore(variables, model.checkpoint, options=everything)
            restore_op = plan.restore_op()
            saver = tf.train.Saver(variables)
            with tf.Session(graph=graph) as session:
                session.run(tf.global_variables_initializer())
                restores = timed({"plan": lambda: session.run(restore_op),
                                  "saver": lambda: saver.restore(session, model.checkpoint)}, repeats, warmup=1)
    return {
        "net": net,
        "variables": len(variables),
        "values": int(sum(np.prod(v.shape.as_list()) for v in variables)),
        "plan": plan_times,
        "restore": restores["plan"],
        "saver_restore": restores["saver"],
    }


def bench_train(net: str, *, image_size: int | None = None, batch_size: int = 8, steps: int = 10,
                num_classes: int = 10, trainable: str = "all") -> dict:
    """Images per second of the training step (forward, backward, update) on random images."""
    from finetune import devices
    from finetune.config import RunConfig
    from finetune.train_graph import build_train_graph

    spec = nets_factory.get_spec(net)
    size = image_size or spec.image_size
    config = RunConfig(net=net, dataset="(random images)", batch_size=batch_size, image_size=size,
                       trainable=trainable, max_steps=steps + 2)
    places = devices.select_devices(config.num_devices)
    with tf.Graph().as_default() as graph:
        images = tf.random.uniform([batch_size, size, size, 3], -1.0, 1.0)
        labels = tf.random.uniform([batch_size], 0, num_classes, dtype=tf.int64)
        model = build_train_graph(config, spec, images, labels, num_classes, steps_per_epoch=steps,
                                  max_steps=steps + 2, places=places)
        with tf.Session(graph=graph, config=devices.session_config(config.xla, devices=places)) as session:
            session.run(tf.global_variables_initializer())
            step = timed({"step": lambda: session.run(model.train_op)}, steps)["step"]
    return {"net": net, "image_size": size, "batch_size": batch_size, "trainable": trainable,
            "step": step, "images_per_second": batch_size / (step["median_ms"] / 1000.0)}
