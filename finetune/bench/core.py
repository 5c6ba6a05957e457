"""Benchmarks that print numbers: export size and latency, checkpoint restore time, training throughput.

Without a checkpoint, each benchmark writes one of freshly initialized weights to a temporary
directory, with random BatchNorm statistics as a trained net has (the numbers depend on shapes, not
values, but for one thing: with fresh statistics a frozen graph's folded biases are all zero, and
TensorFlow drops such a BiasAdd, which changes the kernels the frozen graph runs). Timings take the median of repeated runs
after warm-up runs; they measure this machine at this moment, so compare them side by side only.

- `bench_export`: export the net (`finetune.serve.export.export`, verification included), then the .pb's
  size and the per-batch latency of the frozen graph versus the checkpoint graph it came from; and each
  `.tflite` variant (`finetune.serve.tflite_export`: float32, float16, dynamic, int8 calibrated on the
  verification's sample images; the agreement bar is off, the weights being random): its size and the
  latency of `tf.lite.Interpreter` with `TFLITE_THREADS` threads on the same images.
- `bench_restore`: planning (`checkpoints.plan_restore`) and running the restore op, next to a plain
  `tf.train.Saver` restore of the same variables.
- `bench_train`: images/s of the training step `finetune.train.graph.build_train_graph` builds, on random images
  (the input pipeline is left out); start to first step, initializing only what the restore does not set, as
  `finetune.train.loop` does.
- `bench_precision`: the training step in float32 against bfloat16 (--precision, Grappler's oneDNN rewrite).

`finetune.bench.peers` holds the comparisons with other frameworks: the training step (`bench_peers`) and a
whole evaluation against TF-Slim's evaluation loop (`bench_eval`); `finetune.bench.e2e` the end-to-end
classifier-only runs against TF-Slim's loop (`bench cache`).
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from finetune.runs.trained_model import TrainedModel
from finetune.serve import export, tflite, tflite_export, verify
from finetune.serve.graph import INPUT, serving_graph
from finetune.serve.served import ServedModel
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


def random_checkpoint(net: str, num_classes: int, image_size: int, directory: str | Path, seed: int = 0,
                      global_step: bool = False) -> str:
    """Save freshly initialized weights of `net` (inference graph) as DIRECTORY/model.ckpt; return the prefix.
    With `global_step`, a global step (0) is saved too, as in a fine-tuned checkpoint.

    The BatchNorm parameters and statistics are random too, as a trained net's are (fresh ones are 0 and 1:
    a frozen graph's folded biases would all be zero, which TensorFlow's optimizer drops, changing the graph
    that is measured)."""
    rng = np.random.default_rng(seed)
    draw = {"moving_mean": lambda shape: rng.normal(0.0, 0.1, shape),
            "moving_variance": lambda shape: rng.uniform(0.5, 1.5, shape),
            "beta": lambda shape: rng.normal(0.0, 0.1, shape),
            "gamma": lambda shape: rng.uniform(0.8, 1.2, shape)}
    with tf.Graph().as_default():
        images = tf.zeros([1, image_size, image_size, 3])
        nets_factory.get_network_fn(net, num_classes)(images)
        if global_step:
            tf.train.get_or_create_global_step()
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            for variable in tf.global_variables():
                kind = variable.op.name.rpartition("/")[2]
                if kind in draw:
                    variable.load(draw[kind](variable.shape.as_list()).astype(np.float32), session)
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
    tflite_variants: tuple[str, ...] = tflite.QUANTIZATIONS,
) -> dict:
    """Export the net to a temporary .pb and .tflite variants; their sizes, export times and latencies against
    the checkpoint graph."""
    with tempfile.TemporaryDirectory(prefix="finetune-bench-") as workdir:
        model = _model(net, checkpoint, num_classes, image_size, workdir)
        start = time.perf_counter()
        result = export.export(model, Path(workdir) / "model.pb")
        export_seconds = time.perf_counter() - start
        lite = _tflite_exports(model, Path(workdir), tflite_variants)
        inputs = verify.sample_inputs("float", model.image_size, batch_size)
        with contextlib.ExitStack() as stack:
            runs = {
                "frozen": stack.enter_context(_frozen_runner(result.graph, inputs)),
                "checkpoint": stack.enter_context(_checkpoint_runner(model, inputs)),
            }
            for name, row in lite.items():
                served = stack.enter_context(tflite.TFLiteModel(row.pop("path"), threads=TFLITE_THREADS))
                runs[f"tflite_{name}"] = lambda s=served: s.run(inputs, ("probabilities",))
            latency = timed(runs, repeats)
        for name, row in lite.items():
            row["latency"] = latency[f"tflite_{name}"]
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
        "tflite_threads": TFLITE_THREADS,
        "tflite": lite,
    }


TFLITE_THREADS = 2


def _tflite_exports(model: TrainedModel, workdir: Path, variants: tuple[str, ...]) -> dict[str, dict]:
    """Per variant: the .tflite's path, size, export seconds and agreement (int8 calibrated on sample images)."""
    from finetune.serve.served import encode

    images = tflite_export.ImageSet([encode(image, "PNG") for image in verify.sample_images(model.image_size)],
                                    "the verification's sample images")
    rows = {}
    for name in variants:
        start = time.perf_counter()
        result = tflite_export.export_tflite(model, workdir / name / "model.tflite", name, calibration=images,
                                             min_agreement=0.0)
        rows[name] = {"path": result.path, "bytes": result.size_bytes, "export_seconds": time.perf_counter() - start,
                      "top1_agreement": result.agreement, "max_probability_difference":
                      result.max_probability_difference}
    return rows


@contextlib.contextmanager
def _frozen_runner(path: str, inputs: np.ndarray) -> Iterator[Callable[[], object]]:
    """A call that runs the exported graph's probabilities on `inputs`, loaded as a client loads it."""
    with ServedModel(path) as served:
        yield lambda: served.run(inputs, ("probabilities",))


@contextlib.contextmanager
def _checkpoint_runner(model: TrainedModel, inputs: np.ndarray) -> Iterator[Callable[[], object]]:
    """The same for the checkpoint graph (variables restored) the export froze."""
    with tf.Graph().as_default() as graph:
        tensors = serving_graph(model)
        restore = model.restore_op(tf.global_variables())
        with tf.Session(graph=graph) as session:
            session.run(tf.global_variables_initializer())
            session.run(restore)
            feed = {tensors[INPUT]: inputs}
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
                num_classes: int = 10, trainable: str = "all", input_pipeline: bool = True) -> dict:
    """Images per second of the training step (forward, backward, update) on random images; the time from
    the start (graph build, restore of a checkpoint of random weights) to the end of the first step; the
    input pipeline alone (`bench_input`, unless input_pipeline=False); the process's peak memory."""
    import resource

    from checkpoints import RestoreOptions, plan_restore
    from finetune.config import RunConfig
    from finetune.train import devices
    from finetune.train.graph import build_train_graph

    spec = nets_factory.get_spec(net)
    size = image_size or spec.image_size
    config = RunConfig(net=net, dataset="(random images)", batch_size=batch_size, image_size=size,
                       trainable=trainable, allow_random_trunk=True, max_steps=steps + 2)
    places = devices.select_devices(config.num_devices)
    with tempfile.TemporaryDirectory(prefix="finetune-bench-") as workdir:
        checkpoint = random_checkpoint(net, num_classes, size, workdir)
        start = time.perf_counter()
        with tf.Graph().as_default() as graph:
            images = tf.random.uniform([batch_size, size, size, 3], -1.0, 1.0)
            labels = tf.random.uniform([batch_size], 0, num_classes, dtype=tf.int64)
            model = build_train_graph(config, spec, images, labels, num_classes, steps_per_epoch=steps,
                                      max_steps=steps + 2, places=places)
            built = time.perf_counter()
            plan = plan_restore(model.model_variables, checkpoint, net=spec, options=RestoreOptions(exclude_scopes=()))
            restore = plan.restore_op()
            init = plan.remainder_initializer()  # as train does: what the restore sets is not initialized first
            init_all = tf.global_variables_initializer()  # for comparison: what was run before
            planned = time.perf_counter()
            session_config = devices.session_config(config.xla, devices=places)
            with tf.Session(graph=graph, config=session_config) as session:
                session.run(init)
                initialized = time.perf_counter()
                session.run(restore)
                restored = time.perf_counter()
                session.run(model.train_op)
                first_step = time.perf_counter()
                step = timed({"step": lambda: session.run(model.train_op)}, steps, warmup=1)["step"]

            def fresh_session_init(op):  # as at start: a new session's first run of the initializer
                with tf.Session(graph=graph, config=session_config) as fresh:
                    fresh.run(op)

            init_times = timed({"all": lambda: fresh_session_init(init_all),
                                "not_restored": lambda: fresh_session_init(init)}, 3, warmup=1)
    result = {"net": net, "image_size": size, "batch_size": batch_size, "trainable": trainable,
              "step": step, "images_per_second": batch_size / (step["median_ms"] / 1000.0),
              "start_to_first_step": {"build_graph_s": built - start, "plan_restore_s": planned - built,
                                      "init_and_restore_s": restored - planned,
                                      "init_s": initialized - planned, "restore_s": restored - initialized, "first_step_s": first_step - restored,
                                      "total_s": first_step - start},
              "init_in_fresh_session": init_times}
    if input_pipeline:
        result["input_pipeline"] = bench_input(spec.preprocessing, image_size=size, batch_size=batch_size)
    result["peak_memory_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB
    return result


def bench_input(preprocessing: str, *, image_size: int, batch_size: int, num_images: int = 96,
                source_size: int = 400, batches: int = 12, rounds: int = 3) -> dict:
    """images/s of the input pipeline alone (read, decode, training preprocessing, batch; no model) over a
    temporary folder of `num_images` JPEGs of source_size px, and over the same images as TFRecords
    (finetune.data.tfrecords). The two take turns (`rounds` times), each timing `batches` batches from a fresh
    iterator, so its parallel readers start empty and do not run ahead while the other is timed."""
    from finetune.data import pipeline, scan, synthetic, tfrecords

    with tempfile.TemporaryDirectory(prefix="finetune-bench-input-") as workdir:
        classes = list(synthetic.SHAPE_CLASSES[:4])
        folder = synthetic.write_shapes_dataset(Path(workdir) / "jpeg", classes, train_per_class=num_images // 4,
                                                validation_per_class=0, image_size=source_size, seed=0,
                                                image_format="jpeg")
        records = Path(workdir) / "tfrecords"
        tfrecords.convert_to_tfrecords(str(folder), str(records), shards=4)
        with tf.Graph().as_default() as graph:
            pipelines = {}
            for name, root in (("jpeg_folder", folder), ("tfrecords", records)):
                info = scan.scan_dataset(str(root), 0.0)
                dataset = pipeline.build_dataset(info, "train", batch_size=batch_size, image_size=image_size,
                                             preprocessing=preprocessing, is_training=True, drop_remainder=True)
                iterator = pipeline.make_iterator(dataset)
                pipelines[name] = (iterator.initializer, iterator.get_next())
            with tf.Session(graph=graph) as session:
                session.run(tf.local_variables_initializer())

                def run(initializer, next_batch):
                    # From a fresh iterator: nothing prefetched while the other pipeline was timed.
                    session.run(initializer)
                    for _ in range(batches):
                        session.run(next_batch)

                runs = timed({name: (lambda p=p: run(*p)) for name, p in pipelines.items()}, rounds, warmup=1)
    batch_times = {name: {**t, "batches": batches} for name, t in runs.items()}
    return {name: {**t, "images_per_second": batches * batch_size / (t["median_ms"] / 1000.0)}
            for name, t in batch_times.items()} | {"images": num_images, "source_size": source_size}


PRECISION_CONTENDERS = ("float32", "mixed_bfloat16", "float32+grappler_bf16")


def bench_precision(net: str, *, image_size: int | None = None, batch_size: int = 16, steps: int = 5,
                    num_classes: int = 10, trainable: str = "all",
                    contenders: tuple[str, ...] = PRECISION_CONTENDERS) -> dict:
    """Training step time of one net per precision, all built in one process and timed interleaved (`timed`):
    `float32`, `mixed_bfloat16` (--precision: float32 variables, bfloat16 compute through the custom getter), and
    `float32+grappler_bf16` (the float32 graph, rewritten by Grappler's auto_mixed_precision_onednn_bfloat16 pass,
    which puts the ops oneDNN has bfloat16 kernels for in bfloat16)."""
    from tensorflow.core.protobuf import rewriter_config_pb2

    from finetune.config import RunConfig
    from finetune.train import devices
    from finetune.train.graph import build_train_graph

    spec = nets_factory.get_spec(net)
    size = image_size or spec.image_size
    rng = np.random.default_rng(0)
    images = rng.uniform(-1.0, 1.0, [batch_size, size, size, 3]).astype(np.float32)
    labels = rng.integers(0, num_classes, batch_size).astype(np.int64)
    places = devices.select_devices(1)
    runs, sessions = {}, []
    try:
        for name in contenders:
            precision = "mixed_bfloat16" if name.startswith("mixed_bfloat16") else "float32"
            config = RunConfig(net=net, dataset="(random images)", batch_size=batch_size, image_size=size,
                               trainable=trainable, allow_random_trunk=True, precision=precision, max_steps=10**6)
            with tf.Graph().as_default() as graph:
                tf.set_random_seed(0)
                model = build_train_graph(config, spec, tf.constant(images), tf.constant(labels), num_classes,
                                          steps_per_epoch=100, max_steps=10**6, places=places)
                init = tf.global_variables_initializer()
            session_config = devices.session_config(devices=places)
            if name.endswith("+grappler_bf16"):
                session_config.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 = \
                    rewriter_config_pb2.RewriterConfig.ON
            session = tf.Session(graph=graph, config=session_config)
            sessions.append(session)
            session.run(init)
            runs[name] = (lambda s=session, m=model: s.run([m.train_op, m.loss])[1])
        times = timed(runs, steps, warmup=2)
    finally:
        for session in sessions:
            session.close()
    base = times[contenders[0]]["median_ms"]
    return {"net": net, "image_size": size, "batch_size": batch_size, "trainable": trainable, "steps": steps,
            "rows": [{"precision": name, **times[name], "images_per_second": batch_size / (times[name]["median_ms"] / 1e3),
                      "speedup": base / times[name]["median_ms"]} for name in contenders]}
