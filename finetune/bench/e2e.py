"""`finetune bench cache`: classifier-only fine-tuning end to end, this toolkit against TF-Slim's loop.

Both sides run as their own process (`python -m ...`), timed from process start to the end of the
run, over the same temporary folder of drawn JPEGs (finetune.data.synthetic), from the same checkpoint,
with the same optimizer (momentum SGD 0.9 at a fixed 0.001, weight decay 4e-5, no clipping), batch,
epochs and evaluation preprocessing (no augmentation), and each reports the validation accuracy of
the classifier it trained on the same validation images:

- ``tf-slim``: `slim_loop` below, run as `python -m finetune.bench.e2e`: TF-Slim's network
  (`tf_slim.nets`) built as train_image_classifier builds it (training mode), restored from the
  checkpoint but for the classifier, `slim.learning.create_train_op(..., variables_to_train=<the
  classifier's>)`, and the epochs' steps of `slim.learning.train_step` (slim.learning.train's own step;
  its Supervisor threads fail on TensorFlow 2.21's resource variables) in a session loop, fed by a
  tf.data pipeline of the same files and evaluation preprocessing; then the net in inference mode
  over the validation images, restored from the checkpoint the loop saved.
- ``finetune``: `finetune --trainable logits --augment none --cache-features off|on ...`: `off` runs
  the trunk every step as TF-Slim's loop does; `on` computes the trunk's features once (the first
  run, into a fresh $FINETUNE_HOME) or reuses them (the next run).

The checkpoint is of random weights with BatchNorm statistics calibrated on the training images
(`calibrated_checkpoint`): a random trunk whose BatchNorm layers normalize their inputs gives features
that tell the drawn patterns apart a little (above chance), so the accuracies can be compared (with the
stored statistics of a fresh net, 0 and 1, the earlier in-process benchmark's classifiers stayed near
chance).
The runs take turns (`rounds` rounds of tf-slim, off, on-first, on-reused, on-first in bfloat16), so load from other
processes falls on all of them; compare the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

LEARNING_RATE = 0.001  # the random trunk's features have norms ~45: at 0.01 the classifier oscillates
MOMENTUM = 0.9
WEIGHT_DECAY = 4e-5
CLASSES = ("circle", "stripes_h", "checker", "plus")  # patterns a random trunk's features tell apart
RESULT_PREFIX = "slim-loop result: "


def calibrated_checkpoint(net: str, num_classes: int, image_size: int, folder: str, directory: str | Path,
                          images: int = 64) -> str:
    """Random weights of `net` whose BatchNorm moving statistics are the batch statistics of up to `images`
    training images of `folder` (in evaluation preprocessing), layer after layer; DIRECTORY/model.ckpt."""
    from finetune.data import pipeline, scan
    from finetune.train.graph import _layer_modes
    from nets import nets_factory
    from nets.compat import slim, tf

    spec = nets_factory.get_spec(net)
    info = scan.scan_dataset(folder, 0.0)
    with tf.Graph().as_default():
        tf.set_random_seed(0)
        dataset = pipeline.build_dataset(info, "train", batch_size=images, image_size=image_size,
                                     preprocessing=spec.preprocessing, is_training=False, num_epochs=1)
        iterator = pipeline.make_iterator(dataset)
        batch, _ = iterator.get_next()
        with _layer_modes(None, spec.scope, 0.0):  # decay 0: one update sets the statistics to the batch's
            nets_factory.get_network_fn(net, num_classes, is_training=True)(batch)
        updates = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
        with tf.Session() as session:
            session.run([tf.global_variables_initializer(), tf.tables_initializer(), iterator.initializer])
            session.run(updates)
            return tf.train.Saver(slim.get_model_variables()).save(session, str(Path(directory) / "model.ckpt"),
                                                               write_meta_graph=False)


def _slim_input(paths: Sequence[str], labels: Sequence[int], *, image_size: int, style: str, batch_size: int,
                epochs: int | None, shuffle_seed: int | None):
    """TF-Slim's reader replaced by tf.data (train_image_classifier reads TFRecords through a provider): file ->
    decode -> the net's evaluation preprocessing (the same pixels finetune's --augment none feeds) -> batch."""
    import tensorflow as tf2

    from finetune.data import preprocessing

    dataset = tf2.data.Dataset.from_tensor_slices((list(paths), np.asarray(labels, np.int64)))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(paths), seed=shuffle_seed, reshuffle_each_iteration=True)
    dataset = dataset.repeat(epochs)

    def load(path, label):
        image = tf2.io.decode_image(tf2.io.read_file(path), channels=3, expand_animations=False)
        return preprocessing.preprocess_image(image, image_size, image_size, False, style), label

    dataset = dataset.map(load, num_parallel_calls=tf2.data.AUTOTUNE)
    return dataset.batch(batch_size, drop_remainder=shuffle_seed is not None).prefetch(tf2.data.AUTOTUNE)


def slim_loop(folder: str, checkpoint: str, net: str, *, image_size: int, batch_size: int, epochs: int,
              logdir: str, seed: int = 0) -> dict:
    """TF-Slim's classifier-only fine-tuning loop over an image folder, then its validation accuracy."""
    from checkpoints.scopes import scope_matches
    from finetune.data import scan
    from nets import nets_factory
    from nets.compat import slim, tf

    spec = nets_factory.get_spec(net)
    info = scan.scan_dataset(folder, 0.0)
    num_classes = info.num_classes
    from finetune.bench.peers import slim_network

    network_fn, classifier = slim_network(net, num_classes, is_training=True, weight_decay=WEIGHT_DECAY)
    steps = epochs * len(info.sources["train"]) // batch_size
    start = time.perf_counter()
    with tf.Graph().as_default():
        tf.set_random_seed(seed)
        global_step = tf.train.get_or_create_global_step()
        dataset = _slim_input(info.sources["train"], info.labels["train"], image_size=image_size,
                              style=spec.preprocessing, batch_size=batch_size, epochs=None, shuffle_seed=seed)
        images, labels = tf.data.make_one_shot_iterator(dataset).get_next()
        logits, _ = network_fn(images)
        logits = tf.reshape(logits, [-1, num_classes])
        tf.losses.softmax_cross_entropy(tf.one_hot(labels, num_classes), logits)
        total_loss = tf.losses.get_total_loss()
        optimizer = tf.train.MomentumOptimizer(LEARNING_RATE, MOMENTUM)
        train_op = slim.learning.create_train_op(total_loss, optimizer, global_step=global_step,
                                                 variables_to_train=slim.get_trainable_variables(classifier))
        restored = [v for v in slim.get_model_variables() if not scope_matches(classifier, v.op.name)]
        init_fn = slim.assign_from_checkpoint_fn(checkpoint, restored)
        saver = tf.train.Saver(slim.get_model_variables() + [global_step])
        # slim.learning.train's Supervisor threads (step counter, checkpoints) read the global step outside the
        # graph and fail in TensorFlow 2.21: its per-step function in a plain session loop instead.
        with tf.Session() as session:
            session.run([tf.global_variables_initializer(), tf.local_variables_initializer()])
            init_fn(session)
            for _ in range(steps):
                final_loss, _ = slim.learning.train_step(session, train_op, global_step, {})
            saver.save(session, str(Path(logdir) / "model.ckpt"), global_step=global_step)
    trained = time.perf_counter()
    with tf.Graph().as_default():
        dataset = _slim_input(info.sources["validation"], info.labels["validation"], image_size=image_size,
                              style=spec.preprocessing, batch_size=batch_size, epochs=1, shuffle_seed=None)
        images, labels = tf.data.make_one_shot_iterator(dataset).get_next()
        evaluation_fn, _ = slim_network(net, num_classes, is_training=False, weight_decay=WEIGHT_DECAY)
        logits, _ = evaluation_fn(images)
        correct = tf.equal(tf.argmax(tf.reshape(logits, [-1, num_classes]), 1), labels)
        saver = tf.train.Saver(slim.get_model_variables())
        right = total = 0
        with tf.Session() as session:
            saver.restore(session, tf.train.latest_checkpoint(logdir))
            while True:
                try:
                    values = session.run(correct)
                except tf.errors.OutOfRangeError:
                    break
                right, total = right + int(values.sum()), total + len(values)
    return {"steps": steps, "final_loss": float(final_loss), "train_seconds": trained - start,
            "validation_seconds": time.perf_counter() - trained, "validation_accuracy": right / total}


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="TF-Slim's classifier-only loop (finetune bench cache's peer)")
    for flag in ("folder", "checkpoint", "net", "logdir"):
        parser.add_argument(f"--{flag}", required=True)
    for flag in ("image-size", "batch-size", "epochs"):
        parser.add_argument(f"--{flag}", type=int, required=True)
    args = parser.parse_args(argv)
    result = slim_loop(args.folder, args.checkpoint, args.net, image_size=args.image_size,
                       batch_size=args.batch_size, epochs=args.epochs, logdir=args.logdir)
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


def _run(command: Sequence[str], env: dict) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(list(command), env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"{' '.join(command[:4])}... failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds, done.stdout


def bench_cache(net: str = "resnet_v1_50", *, image_size: int | None = None, batch_size: int = 16,
                images_per_class: int = 64, epochs: int = 5, rounds: int = 1, source_size: int = 256,
                bfloat16: bool = False, with_off: bool = True, workdir: str | None = None, say: Callable[[str], None] = lambda _: None) -> dict:
    """Seconds from process start to run summary, and validation accuracy, of TF-Slim's classifier-only loop and
    of `finetune` with --cache-features off / on (computing) / on (reused) (and with bfloat16: on, computing, with
    --precision mixed_bfloat16; without `with_off` no cache-off run), taking turns for `rounds` rounds."""
    from finetune.data import synthetic
    from nets import nets_factory

    spec = nets_factory.get_spec(net)
    size = image_size or spec.image_size
    with tempfile.TemporaryDirectory(prefix="finetune-bench-cache-", dir=workdir) as work:
        work = Path(work)
        say(f"drawing {len(CLASSES) * images_per_class} training JPEGs...")
        folder = str(synthetic.write_shapes_dataset(
            work / "images", list(CLASSES), train_per_class=images_per_class,
            validation_per_class=max(2, images_per_class // 4), image_size=source_size, seed=0, image_format="jpeg"))
        say("calibrating a random checkpoint's BatchNorm statistics...")
        checkpoint = calibrated_checkpoint(net, spec.num_classes, size, folder, work)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        common = ["--net", net, "--image-size", str(size), "--batch-size", str(batch_size)]
        ours = [sys.executable, "-m", "finetune.cli", "--dataset", folder, "--ckpt", checkpoint, *common,
                "--trainable", "logits", "--augment", "none", "--epochs", str(epochs), "--optimizer", "momentum",
                "--momentum", str(MOMENTUM), "--learning-rate", str(LEARNING_RATE), "--lr-schedule", "fixed",
                "--weight-decay", str(WEIGHT_DECAY), "--save-interval-secs", "3600"]
        results: dict[str, list[dict]] = {}
        for round_ in range(rounds):
            home = work / f"home-{round_}"  # a fresh cache for each round's first cached run
            runs = [("tf-slim", [sys.executable, "-m", "finetune.bench.e2e", "--folder", folder, "--checkpoint",
                                 checkpoint, *common, "--epochs", str(epochs), "--logdir",
                                 str(work / f"slim-{round_}")]),
                    ("finetune, cache off", [*ours, "--cache-features", "off", "--train-dir", str(work / f"off-{round_}")]),
                    ("finetune, cache on (computed)", [*ours, "--cache-features", "on", "--train-dir",
                                                       str(work / f"first-{round_}")]),
                    ("finetune, cache on (reused)", [*ours, "--cache-features", "on", "--train-dir",
                                                     str(work / f"reused-{round_}")])]
            if not with_off:
                runs = [run for run in runs if not run[0].endswith("cache off")]
            if bfloat16:
                runs.append(("finetune, cache on (computed), mixed_bfloat16",
                             [*ours, "--cache-features", "on", "--precision", "mixed_bfloat16", "--train-dir",
                              str(work / f"bf16-{round_}")]))
            for name, command in runs:
                say(f"round {round_ + 1}/{rounds}: {name}...")
                seconds, out = _run(command, {**env, "FINETUNE_HOME": str(home)})
                row = {"seconds": seconds, **(_slim_result(out) if name == "tf-slim" else _finetune_result(command))}
                results.setdefault(name, []).append(row)
                say(f"  {seconds:.1f} s, validation accuracy {100 * row['validation_accuracy']:.1f}%")
    slim_seconds = statistics.median(r["seconds"] for r in results["tf-slim"])
    rows = []
    for name, runs in results.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        rows.append({"run": name, "seconds": seconds, "all_seconds": [r["seconds"] for r in runs],
                     "validation_accuracy": statistics.median(r["validation_accuracy"] for r in runs),
                     "steps": runs[0]["steps"], "speedup_over_slim": slim_seconds / seconds})
    return {"net": net, "image_size": size, "batch_size": batch_size, "epochs": epochs, "rounds": rounds,
            "train_images": len(CLASSES) * images_per_class,
            "validation_images": len(CLASSES) * max(2, images_per_class // 4), "rows": rows}


def _slim_result(stdout: str) -> dict:
    line = next(line for line in stdout.splitlines() if line.startswith(RESULT_PREFIX))
    return json.loads(line[len(RESULT_PREFIX):])


def _finetune_result(command: Sequence[str]) -> dict:
    from finetune.runs.run_dir import RunDir

    train_dir = RunDir(command[command.index("--train-dir") + 1])
    summary = train_dir.summary()
    if summary is None:
        raise RuntimeError(f"{train_dir} holds no run summary: the finetune run did not finish.")
    return {"steps": summary["steps"], "validation_accuracy": summary["validation_accuracy"],
            "train_seconds": summary["seconds"]}


def cache_table(result: dict) -> str:
    from tabulate import tabulate

    head = (f"{result['net']} at {result['image_size']} px, batch {result['batch_size']}, {result['epochs']} epochs "
            f"over {result['train_images']} JPEGs ({result['validation_images']} validation), classifier only, no "
            f"augmentation; process start to end (train + validation), median of {result['rounds']} round(s)")
    rows = [(r["run"], r["steps"], f"{r['seconds']:.1f}", f"{100 * r['validation_accuracy']:.1f}%",
             f"{r['speedup_over_slim']:.2f}x") for r in result["rows"]]
    return head + "\n" + tabulate(rows, headers=("run", "steps", "seconds", "val. accuracy", "tf-slim / this"),
                                  tablefmt="github")


if __name__ == "__main__":
    sys.exit(_main())
