"""`finetune bench peers`: this toolkit's training step against its peers', in one process, interleaved.

Contenders, each training the same net at the same image size and batch on the same in-memory batch
of random images (a `tf.data` repeat of one batch), with momentum SGD (0.9) at 0.01, gradients
clipped to one global norm, no weight decay:

- ``finetune``: the step `finetune.train.graph.build_train_graph` builds (what `finetune` trains).
- ``tf-slim``: TF-Slim's own loop: the `tf_slim.nets` network (zoo network functions, also slim
  code, for nets tf_slim.nets lacks) built as TF-Slim's train_image_classifier builds it (the
  whole net in training mode, so frozen BatchNorm layers use batch statistics), its loss, and
  `slim.learning.create_train_op(..., variables_to_train=..., clip_gradient_norm=...)`, run as
  `slim.learning.train_step` runs it (train op and global step).
- ``finetune-jpeg``: the same step fed by `finetune`'s own input pipeline (finetune.data.pipeline: read, decode,
  training augmentation, batch, prefetch) from a temporary folder of JPEGs: the input is hidden when it
  runs as fast as the in-memory ``finetune``.
- ``finetune-bf16`` (not by default): the ``finetune`` step with --precision mixed_bfloat16.
- ``keras``: Keras 3 `keras.applications` (random weights, no top, average pool) + a Dense
  classifier, `model.fit` with `SGD(momentum=0.9, global_clipnorm=...)`; classifier-only freezes
  the base (`trainable = False`, so its BatchNorm runs in inference mode). The step is timed from
  `on_train_batch_begin` to `on_train_batch_end`, which leaves fit's per-call set-up out.

Each contender trains in two modes, the full net (`all`) and the classifier only (`logits`). All
six are built first, warmed up, then take turns step by step (A, B, C, A, B, C, ...), so load from
other processes falls on all alike: compare the ratios; the absolute numbers are this machine's at
this moment.

`finetune bench eval` (`bench_eval`): a whole evaluation, `finetune.serve.evaluate.evaluate` against TF-Slim's
eval_image_classifier loop (queue-runner input, tf_slim.nets net, slim.metrics streaming accuracy and
recall at k, `slim.evaluation.evaluate_once`), on the same random-weight checkpoint and the same folder
of JPEGs, taking turns; both use the net's evaluation preprocessing, so their accuracies agree.
"""

from __future__ import annotations

import contextlib
import functools
import statistics
import time
from collections.abc import Callable, Iterator

import numpy as np

from nets import nets_factory
from nets.compat import slim, tf

# isort: split
import tensorflow as tf2

LEARNING_RATE = 0.01
MOMENTUM = 0.9
MODES = ("all", "logits")
FRAMEWORKS = ("finetune", "finetune-jpeg", "tf-slim", "keras")


def _slim_nets() -> dict[str, tuple[Callable, Callable, str]]:
    """zoo name -> (tf_slim.nets network fn, its arg scope, its classifier scope) for the nets tf_slim.nets has."""
    from tf_slim.nets import inception_v1, inception_v2, inception_v3, resnet_utils, resnet_v1, resnet_v2, vgg

    nets = {}
    for module, names in ((resnet_v1, ("resnet_v1_50", "resnet_v1_101", "resnet_v1_152")),
                          (resnet_v2, ("resnet_v2_50", "resnet_v2_101", "resnet_v2_152"))):
        for name in names:
            nets[name] = (getattr(module, name), resnet_utils.resnet_arg_scope, f"{name}/logits")
    for module, name, scope in ((inception_v1, "inception_v1", "InceptionV1/Logits"),
                                (inception_v2, "inception_v2", "InceptionV2/Logits"),
                                (inception_v3, "inception_v3", "InceptionV3/Logits")):
        nets[name] = (getattr(module, name), getattr(module, f"{name}_arg_scope"), scope)
    for name in ("vgg_16", "vgg_19"):
        nets[name] = (getattr(vgg, name), vgg.vgg_arg_scope, f"{name}/fc8")
    return nets



def slim_network(net: str, num_classes: int, *, is_training: bool, weight_decay: float = 0.0) -> tuple[Callable, str]:
    """(images -> (logits, end_points), classifier scope) as TF-Slim's own scripts build `net`: tf_slim.nets'
    network under its arg scope where tf_slim.nets has it, else the zoo's (slim code too)."""
    slim_nets = _slim_nets()
    if net not in slim_nets:
        network_fn = nets_factory.get_network_fn(net, num_classes, weight_decay=weight_decay, is_training=is_training)
        return network_fn, nets_factory.get_spec(net).classifier_scopes[0]
    slim_fn, arg_scope, classifier = slim_nets[net]

    def network_fn(images):
        with slim.arg_scope(arg_scope(weight_decay=weight_decay)):
            return slim_fn(images, num_classes=num_classes, is_training=is_training)

    return network_fn, classifier

_KERAS_APPLICATIONS = {
    "resnet_v1_50": "ResNet50", "resnet_v1_101": "ResNet101", "resnet_v1_152": "ResNet152",
    "resnet_v2_50": "ResNet50V2", "resnet_v2_101": "ResNet101V2", "resnet_v2_152": "ResNet152V2",
    "inception_v3": "InceptionV3", "inception_resnet_v2": "InceptionResNetV2", "mobilenet_v1": "MobileNet",
    "mobilenet_v2": "MobileNetV2", "vgg_16": "VGG16", "vgg_19": "VGG19",
}


def _batch(image_size: int, batch_size: int, num_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1.0, 1.0, [batch_size, image_size, image_size, 3]).astype(np.float32)
    return images, rng.integers(0, num_classes, batch_size).astype(np.int64)


def _graph_input(images: np.ndarray, labels: np.ndarray) -> tuple[tf.Tensor, tf.Tensor]:
    dataset = tf2.data.Dataset.from_tensors((images, labels)).repeat()
    return tf.data.make_one_shot_iterator(dataset).get_next()


@contextlib.contextmanager
def _finetune_step(net: str, mode: str, batch: tuple, num_classes: int, clip: float,
                   jpeg_folder: str | None = None, precision: str = "float32") -> Iterator[Callable]:
    from finetune.config import RunConfig
    from finetune.data import pipeline, scan
    from finetune.train import devices
    from finetune.train.graph import build_train_graph

    spec = nets_factory.get_spec(net)
    size = batch[0].shape[1]
    config = RunConfig(net=net, dataset="(random images)", batch_size=len(batch[1]), image_size=size, trainable=mode,
                       allow_random_trunk=True,  # random weights: a benchmark, not a run
                       learning_rate=LEARNING_RATE, lr_schedule="fixed", weight_decay=0.0, clip_grad_norm=clip,
                       max_steps=10**6, precision=precision)
    places = devices.select_devices(1)
    with tf.Graph().as_default() as graph:
        if jpeg_folder is None:
            images, labels = _graph_input(*batch)
        else:  # what `finetune` trains on: read, decode, augment (training preprocessing), batch, prefetch
            info = scan.scan_dataset(jpeg_folder, 0.0)
            dataset = pipeline.build_dataset(info, "train", batch_size=len(batch[1]), image_size=size,
                                         preprocessing=spec.preprocessing, is_training=True, drop_remainder=True)
            images, labels = pipeline.make_iterator(dataset).get_next()
        model = build_train_graph(config, spec, images, labels, num_classes, steps_per_epoch=100,
                                  max_steps=10**6, places=places)
        init = [tf.global_variables_initializer(), tf.local_variables_initializer(), tf.tables_initializer()]
    # Neither graph nor session is left the default while the others (Keras: eager) build and run.
    with contextlib.closing(tf.Session(graph=graph, config=devices.session_config(False, devices=places))) as session:
        session.run(init)
        yield _timed_run(session, model.train_op)


@contextlib.contextmanager
def _slim_step(net: str, mode: str, batch: tuple, num_classes: int, clip: float) -> Iterator[Callable]:
    with tf.Graph().as_default() as graph:
        global_step = tf.train.get_or_create_global_step()
        images, labels = _graph_input(*batch)
        network_fn, classifier = slim_network(net, num_classes, is_training=True)
        logits, _ = network_fn(images)
        logits = tf.reshape(logits, [-1, num_classes])
        tf.losses.softmax_cross_entropy(tf.one_hot(labels, num_classes), logits)
        total_loss = tf.losses.get_total_loss()
        variables = None if mode == "all" else slim.get_trainable_variables(classifier)
        optimizer = tf.train.MomentumOptimizer(LEARNING_RATE, MOMENTUM)
        train_op = slim.learning.create_train_op(total_loss, optimizer, global_step=global_step,
                                                 variables_to_train=variables, clip_gradient_norm=clip)
        init = tf.global_variables_initializer()
    with contextlib.closing(tf.Session(graph=graph)) as session:  # not `with Session`: that makes it the default
        session.run(init)
        yield _timed_run(session, [train_op, global_step])


def _timed_run(session: tf.Session, fetches) -> Callable[[], float]:
    def step() -> float:
        start = time.perf_counter()
        session.run(fetches)
        return time.perf_counter() - start

    return step


@contextlib.contextmanager
def _keras_step(net: str, mode: str, batch: tuple, num_classes: int, clip: float) -> Iterator[Callable]:
    import keras

    if net not in _KERAS_APPLICATIONS:
        raise ValueError(f"keras.applications has no {net}: choose one of {', '.join(_KERAS_APPLICATIONS)}.")
    images, labels = batch
    application = getattr(keras.applications, _KERAS_APPLICATIONS[net])
    base = application(weights=None, include_top=False, pooling="avg", input_shape=images.shape[1:])
    base.trainable = mode == "all"
    model = keras.Model(base.input, keras.layers.Dense(num_classes)(base.output))
    model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE, momentum=MOMENTUM, global_clipnorm=clip),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    dataset = tf2.data.Dataset.from_tensors((images, labels)).repeat()

    class Timer(keras.callbacks.Callback):
        seconds = 0.0

        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            Timer.seconds = time.perf_counter() - self.start

    def step() -> float:
        model.fit(dataset, steps_per_epoch=1, epochs=1, verbose=0, shuffle=False, callbacks=[Timer()])
        return Timer.seconds

    yield step
    keras.backend.clear_session()


@contextlib.contextmanager
def _finetune_jpeg_step(net: str, mode: str, batch: tuple, num_classes: int, clip: float) -> Iterator[Callable]:
    """`finetune`'s step fed by its input pipeline (finetune.data.pipeline) from a temporary folder of drawn JPEGs of twice the
    input size, with training augmentation: as fast as the in-memory step when the pipeline keeps ahead."""
    import tempfile
    from pathlib import Path

    from finetune.data import synthetic

    size, batch_size = batch[0].shape[1], len(batch[1])
    classes = list(synthetic.SHAPE_CLASSES[:min(num_classes, len(synthetic.SHAPE_CLASSES))])
    with tempfile.TemporaryDirectory(prefix="finetune-bench-peers-") as workdir:
        folder = synthetic.write_shapes_dataset(Path(workdir) / "jpeg", classes,
                                                train_per_class=max(2, 4 * batch_size // len(classes)),
                                                validation_per_class=0, image_size=2 * size, seed=0,
                                                image_format="jpeg")
        with _finetune_step(net, mode, batch, len(classes), clip, jpeg_folder=str(folder)) as step:
            yield step


_BUILDERS = {"finetune": _finetune_step, "finetune-jpeg": _finetune_jpeg_step,
             "finetune-bf16": functools.partial(_finetune_step, precision="mixed_bfloat16"), "tf-slim": _slim_step,
             "keras": _keras_step}


def bench_peers(net: str = "resnet_v1_50", *, image_size: int | None = None, batch_size: int = 16, steps: int = 5,
                num_classes: int = 10, clip_norm: float = 5.0, warmup: int = 2,
                frameworks: tuple[str, ...] = FRAMEWORKS, modes: tuple[str, ...] = MODES,
                say: Callable[[str], None] = lambda _: None) -> dict:
    """images/s of each framework's training step per mode, measured interleaved; with ratios to `finetune`."""
    size = image_size or nets_factory.get_spec(net).image_size
    unknown = [f for f in frameworks if f not in _BUILDERS] + [m for m in modes if m not in MODES]
    if unknown:
        raise ValueError(f"bench peers: unknown contender or mode {unknown[0]!r}: choose from "
                         f"{', '.join(_BUILDERS)} and {', '.join(MODES)}.")
    if "keras" in frameworks and net not in _KERAS_APPLICATIONS:
        raise ValueError(f"keras.applications has no {net}: choose one of {', '.join(_KERAS_APPLICATIONS)}.")
    batch = _batch(size, batch_size, num_classes)
    names = [(framework, mode) for mode in modes for framework in frameworks]
    seconds: dict[tuple[str, str], list[float]] = {name: [] for name in names}
    build_seconds = {}
    with contextlib.ExitStack() as stack:
        steps_of = {}
        for name in names:
            say(f"building {name[0]} ({name[1]})...")
            start = time.perf_counter()
            steps_of[name] = stack.enter_context(_BUILDERS[name[0]](net, name[1], batch, num_classes, clip_norm))
            for _ in range(warmup):
                steps_of[name]()
            build_seconds[name] = time.perf_counter() - start
        for round_ in range(steps):
            say(f"round {round_ + 1}/{steps}")
            for name in names:
                seconds[name].append(steps_of[name]())
    rows = []
    for framework, mode in names:
        median = statistics.median(seconds[(framework, mode)])
        rows.append({"framework": framework, "mode": mode, "median_step_ms": median * 1000,
                     "min_step_ms": min(seconds[(framework, mode)]) * 1000,
                     "images_per_second": batch_size / median,
                     "build_and_warmup_seconds": build_seconds[(framework, mode)]})
    ours = {r["mode"]: r["images_per_second"] for r in rows if r["framework"] == "finetune"}
    for row in rows:
        row["finetune_over_this"] = ours[row["mode"]] / row["images_per_second"] if row["mode"] in ours else None
    return {"net": net, "image_size": size, "batch_size": batch_size, "steps": steps, "clip_norm": clip_norm,
            "num_classes": num_classes, "rows": rows}


def peers_table(result: dict) -> str:
    from tabulate import tabulate

    head = (f"{result['net']} at {result['image_size']} px, batch {result['batch_size']}, {result['num_classes']} "
            f"classes, momentum SGD, clip norm {result['clip_norm']:g}; median of {result['steps']} interleaved steps")
    rows = [(r["framework"], r["mode"], f"{r['median_step_ms']:.0f}", f"{r['images_per_second']:.1f}",
             "-" if r["finetune_over_this"] is None else f"{r['finetune_over_this']:.2f}x")
            for r in result["rows"]]
    return head + "\n" + tabulate(rows, headers=("framework", "trains", "step ms", "images/s", "finetune / this"),
                                  tablefmt="github")


# ---------------------------------------------------------------------------------------------
# Evaluation: `finetune eval` against TF-Slim's evaluation loop


def _slim_evaluate(net: str, checkpoint: str, paths: list[str], labels: list[int], num_classes: int, image_size: int,
                   preprocessing: str, batch_size: int, logdir: str, top_k: int) -> dict:
    """TF-Slim's eval_image_classifier over `paths`: a queue-runner input (slice_input_producer, one epoch, in
    order; read, decode, the net's evaluation preprocessing; tf.train.batch with 4 threads, capacity 5 batches),
    the tf_slim.nets net (the zoo's for nets tf_slim.nets lacks) in inference mode, slim.metrics streaming
    accuracy and recall at k, `slim.evaluation.evaluate_once` (session, restore, num_evals batches)."""
    import math

    from finetune.data.preprocessing import preprocess_image

    with tf.Graph().as_default():
        path, label = tf.train.slice_input_producer([tf.constant(paths), tf.constant(labels, tf.int64)],
                                                    num_epochs=1, shuffle=False)
        image = tf.image.decode_jpeg(tf.io.read_file(path), channels=3)
        image = preprocess_image(image, image_size, image_size, False, preprocessing)
        images, batch_labels = tf.train.batch([image, label], batch_size=batch_size, num_threads=4,
                                              capacity=5 * batch_size, allow_smaller_final_batch=True)
        logits, _ = slim_network(net, num_classes, is_training=False)[0](images)
        logits = tf.reshape(logits, [-1, num_classes])
        predictions = tf.argmax(logits, 1)
        values, updates = slim.metrics.aggregate_metric_map({
            "accuracy": slim.metrics.streaming_accuracy(predictions, batch_labels),
            f"recall_{top_k}": slim.metrics.streaming_recall_at_k(logits, batch_labels, top_k),
        })
        names = sorted(values)
        final = slim.evaluation.evaluate_once("", checkpoint, logdir, num_evals=math.ceil(len(paths) / batch_size),
                                              eval_op=list(updates.values()), final_op=[values[n] for n in names])
    return dict(zip(names, (float(v) for v in final)))


def bench_eval(net: str = "resnet_v1_50", *, image_size: int | None = None, batch_size: int = 32,
               images_per_class: int = 32, classes: int = 4, source_size: int = 320, rounds: int = 3,
               say: Callable[[str], None] = lambda _: None) -> dict:
    """images/s of a whole evaluation (graph build, restore, one pass over a folder of JPEGs, the metrics) of
    `finetune.serve.evaluate.evaluate` and of TF-Slim's evaluation loop (`_slim_evaluate`), on the same checkpoint of
    random weights and the same JPEGs, interleaved (`rounds` times each after one warm-up call each)."""
    import tempfile
    from pathlib import Path

    from finetune.bench import core as bench
    from finetune.data import scan, synthetic
    from finetune.runs.trained_model import TrainedModel
    from finetune.serve import evaluate

    spec = nets_factory.get_spec(net)
    size = image_size or spec.image_size
    with tempfile.TemporaryDirectory(prefix="finetune-bench-eval-") as workdir:
        say(f"writing {classes * images_per_class} JPEGs and a random-weight checkpoint...")
        folder = synthetic.write_shapes_dataset(Path(workdir) / "images", list(synthetic.SHAPE_CLASSES[:classes]),
                                                train_per_class=1, validation_per_class=images_per_class,
                                                image_size=source_size, seed=0, image_format="jpeg")
        info = scan.scan_dataset(str(folder))
        checkpoint = bench.random_checkpoint(net, classes, size, workdir, global_step=True)  # slim restores it
        model = TrainedModel.from_checkpoint(checkpoint, net, classes, image_size=size, class_names=info.class_names)
        top_k = min(evaluate.TOP_K, classes)
        paths, labels = list(info.sources["validation"]), [int(x) for x in info.labels["validation"]]
        results: dict[str, dict] = {}

        def ours():
            metrics = evaluate.evaluate(model, info, batch_size=batch_size, progress=False)
            results["finetune"] = {"accuracy": metrics["top1"], f"recall_{top_k}": metrics[f"top{top_k}"]}

        def theirs():
            results["tf-slim"] = _slim_evaluate(net, checkpoint, paths, labels, classes, size, spec.preprocessing,
                                                batch_size, str(Path(workdir) / "slim-eval"), top_k)

        say(f"evaluating {len(paths)} images, {rounds} interleaved rounds after a warm-up...")
        times = bench.timed({"finetune": ours, "tf-slim": theirs}, rounds, warmup=1)
    rows = []
    for name, timing in times.items():
        rows.append({"framework": name, **timing, "images_per_second": len(paths) / (timing["median_ms"] / 1000.0),
                     **results[name]})
    for row in rows:
        row["finetune_over_this"] = rows[0]["images_per_second"] / row["images_per_second"]
    return {"net": net, "image_size": size, "batch_size": batch_size, "images": len(paths),
            "source_size": source_size, "rounds": rounds, "top_k": top_k, "rows": rows}


def eval_table(result: dict) -> str:
    from tabulate import tabulate

    k = result["top_k"]
    head = (f"{result['net']} at {result['image_size']} px, batch {result['batch_size']}, {result['images']} JPEGs of "
            f"{result['source_size']} px; whole evaluation (build, restore, one pass, metrics), median of "
            f"{result['rounds']} interleaved runs")
    rows = [(r["framework"], f"{r['median_ms'] / 1000:.2f}", f"{r['images_per_second']:.1f}",
             f"{r['finetune_over_this']:.2f}x", f"{r['accuracy']:.4f}", f"{r[f'recall_{k}']:.4f}")
            for r in result["rows"]]
    return head + "\n" + tabulate(rows, headers=("evaluation", "seconds", "images/s", "finetune / this", "top-1",
                                                 f"top-{k}"), tablefmt="github")
