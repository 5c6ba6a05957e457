"""Cached features: train the classifier on the frozen trunk's outputs, computed once per image.

When only the classifier trains and training images are not randomly augmented (`--augment none`:
evaluation preprocessing), every epoch pushes the same pixels through the same frozen layers (their
BatchNorm and dropout in inference mode) to get the same numbers. `--cache-features` computes them
once and trains on them:

- The training graph is the usual one (the whole net, so the saver, the checkpoints, resume, eval and
  export are unchanged), built on an in-order, one-pass pipeline of the training images.
- `cut_tensors` finds where the part of the graph that depends on the input but on no trained variable
  meets the part that does: per-example tensors (batch dimension first; the trunk's output, the
  labels). Feeding them cuts everything upstream out of a step.
- `FeatureCacheHook`, once the session holds the restored (or resumed) variables, loads the cut
  tensors' values for every training image from the cache, or computes them in one pass over the
  images and stores them; then it feeds each step a batch of them, in a seeded order (a new
  permutation each epoch, a function of the global step, so a resumed run goes on where it stopped).

The cache lives in `$FINETUNE_HOME/features/KEY/` (default ~/.cache/finetune), one .npy file per
tensor. KEY is a hash of what the values depend on: the net, image size and preprocessing, the cut
tensors' names and shapes, the frozen variables' values (whatever checkpoint they came from) and the
training images (paths, sizes, modification times, labels; TFRecord shards' paths, sizes and times).
When any of these changes the key does, and the features are computed anew; a finished entry is
written whole (temporary folder, then rename).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from checkpoints.download import home
from nets.compat import tf

CACHE_VERSION = 1


def cache_root() -> Path:
    return home() / "features"


def decide(mode: str, *, classifier_only: bool, augment: str, train_bn_stats: bool, num_devices: int,
           cluster: bool) -> tuple[bool, str]:
    """(use the cache?, why) for --cache-features MODE; ValueError when 'on' cannot be honoured."""
    blockers = [reason for blocked, reason in (
        (not classifier_only, "more than the classifier trains (--trainable)"),
        (augment != "none", "training images are randomly augmented (--augment default; use --augment none)"),
        (train_bn_stats, "--train-bn-stats updates frozen BatchNorm statistics"),
        (num_devices != 1, f"the step runs on {num_devices} devices"),
        (cluster, "the run is a cluster job"),
    ) if blocked]
    if mode == "off":
        return False, "--cache-features off"
    if mode == "on" and blockers:
        raise ValueError(f"--cache-features on needs a frozen trunk on fixed inputs, but {blockers[0]}: "
                         "use --cache-features auto or off.")
    if blockers:
        return False, f"--cache-features auto: off, because {blockers[0]}"
    return True, (f"--cache-features {mode}: on (only the classifier trains and training images are not augmented: "
                  "the frozen trunk's features are computed once per image)")


def cut_tensors(roots: Sequence[tf.Tensor | tf.Operation], inputs: Sequence[tf.Tensor],
                trained: Sequence[tf.Variable], live=lambda op: False) -> list[tf.Tensor]:
    """The per-example tensors between the input-only part of the graph and the part that trains.

    The part that trains is every op downstream of a trained variable, of an op `live(op)` names (the
    trainable scopes' ops: their dropout) or of a random op. Walks back from `roots`; a tensor that
    depends on `inputs` but not on that part, and has a dynamic batch dimension, is cut (fed); one
    without (a shape) is walked through. ValueError when an input-dependent value reaches the roots
    another way (a control dependency).
    """
    graph = roots[0].graph
    on_input = _forward({t.op for t in inputs}, graph)
    on_trained = _forward({v.op for v in trained} | {op for op in graph.get_operations()
                                                     if live(op) or op.type.startswith(("Random", "Stateless"))},
                          graph)
    cut: dict[str, tf.Tensor] = {}
    seen: set[str] = set()
    stack = [r if isinstance(r, tf.Operation) else r.op for r in roots]
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        for control in op.control_inputs:
            if control.name in on_input and control.name not in on_trained:
                raise ValueError(f"{op.name} waits on the input pipeline ({control.name}): its features cannot be cached.")
            stack.append(control)
        for tensor in op.inputs:
            if tensor.op.name not in on_input:
                continue
            if tensor.op.name in on_trained:
                stack.append(tensor.op)
            elif tensor.shape.rank and tensor.shape[0] is None:
                cut[tensor.name] = tensor
            else:
                stack.append(tensor.op)
    return sorted(cut.values(), key=lambda t: t.name)


def _forward(start: set, graph: tf.Graph) -> set[str]:
    """Names of the ops reachable from `start` through data and control edges."""
    consumers: dict[str, list] = {}
    for op in graph.get_operations():
        for tensor in op.inputs:
            consumers.setdefault(tensor.op.name, []).append(op)
        for control in op.control_inputs:
            consumers.setdefault(control.name, []).append(op)
    reached, stack = set(), list(start)
    while stack:
        op = stack.pop()
        if op.name in reached:
            continue
        reached.add(op.name)
        stack.extend(consumers.get(op.name, ()))
    return reached


def fit_session_config(config: tf.ConfigProto) -> None:
    """Turn off Grappler's dependency optimizer, which (TensorFlow 2.21) rewrites the gradient ops of the
    classifier so that a step reads the input pipeline although the cut tensors are fed; constant folding
    off fixes it too, but is worth more elsewhere."""
    from tensorflow.core.protobuf import rewriter_config_pb2

    config.graph_options.rewrite_options.dependency_optimization = rewriter_config_pb2.RewriterConfig.OFF


def dataset_fingerprint(sources: Sequence[str], labels: Sequence[int]) -> str:
    """A hash of what the training split's contents are taken to be: each file's path, size, modification
    time (and label)."""
    digest = hashlib.sha256()
    for index, path in enumerate(sources):
        stat = os.stat(path)
        row = [os.path.abspath(path), stat.st_size, stat.st_mtime_ns, labels[index] if labels else None]
        digest.update(json.dumps(row).encode())
    return digest.hexdigest()


def _storable(value: np.ndarray) -> np.ndarray:
    """The array as .npy files hold it: bfloat16 (a numpy extension type np.load cannot cast back) as its bits."""
    return value.view(np.uint16) if value.dtype == tf.bfloat16.as_numpy_dtype else value


def _stored(value: np.ndarray, tensor: tf.Tensor) -> np.ndarray:
    """A loaded array in the dtype of the tensor it feeds (the bits of bfloat16 back as bfloat16)."""
    return value.view(tensor.dtype.as_numpy_dtype) if tensor.dtype == tf.bfloat16 else value


class FeatureCacheHook(tf.train.SessionRunHook):
    """Loads or computes the cut tensors' values for every training image, then feeds each step a batch."""

    def __init__(self, cut: Sequence[tf.Tensor], frozen: Sequence[tf.Variable], global_step: tf.Tensor, *,
                 batch_size: int, seed: int, description: dict, say=print):
        self._cut, self._frozen, self._global_step = list(cut), list(frozen), global_step
        self._batch_size, self._seed, self._description, self._say = batch_size, seed, description, say
        self.values: list[np.ndarray] = []
        self.path: Path | None = None
        self.computed = False

    def key(self, session) -> str:
        digest = hashlib.sha256()
        static = {"version": CACHE_VERSION, **self._description,
                  "cut": [[t.name, str(t.shape), t.dtype.name] for t in self._cut]}
        digest.update(json.dumps(static, sort_keys=True).encode())
        for variable, value in zip(self._frozen, session.run(self._frozen)):
            digest.update(variable.op.name.encode())
            digest.update(np.ascontiguousarray(value).tobytes())
        return digest.hexdigest()[:32]

    def after_create_session(self, session, coord):
        self.path = cache_root() / self.key(session)
        if (self.path / "meta.json").is_file():
            meta = json.loads((self.path / "meta.json").read_text())
            self.values = [_stored(np.load(self.path / name, mmap_mode="r"), t) for name, t in zip(meta["files"], self._cut)]
            self._say(f"Feature cache: reusing {self.path} ({len(self.values[0])} images).")
        else:
            self._say(f"Feature cache: computing the frozen trunk's features of every training image into {self.path}.")
            self.values = self._compute(session)
            self.computed = True
        self._count = len(self.values[0])
        if self._count < self._batch_size:
            raise ValueError(f"--batch-size {self._batch_size} exceeds the {self._count} training images: lower it.")
        self._step = int(session.run(self._global_step))
        self._order_epoch, self._order = -1, None

    def _compute(self, session) -> list[np.ndarray]:
        parts: list[list[np.ndarray]] = [[] for _ in self._cut]
        while True:
            try:
                values = session.run(self._cut)
            except tf.errors.OutOfRangeError:
                break
            for part, value in zip(parts, values):
                part.append(value)
        values = [np.concatenate(part) for part in parts]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=f".{self.path.name}-", dir=self.path.parent))
        try:
            files = [f"{i}.npy" for i in range(len(values))]
            for name, value in zip(files, values):
                np.save(partial / name, _storable(value))
            meta = {"files": files, "tensors": [t.name for t in self._cut], "images": len(values[0]),
                    **self._description}
            (partial / "meta.json").write_text(json.dumps(meta, indent=1))
            partial.rename(self.path)
        except OSError:
            if not (self.path / "meta.json").is_file():  # not another run's finished entry
                raise
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        return values

    def _indices(self, step: int) -> np.ndarray:
        """Example indices of the batch of `step`: a stream of seeded per-epoch permutations."""
        start = step * self._batch_size
        indices = []
        for position in range(start, start + self._batch_size):
            epoch = position // self._count
            if epoch != self._order_epoch:
                self._order_epoch = epoch
                self._order = np.random.default_rng([self._seed, epoch]).permutation(self._count)
            indices.append(self._order[position % self._count])
        return np.sort(np.asarray(indices))  # sorted: memory-mapped reads in file order

    def before_run(self, run_context):
        indices = self._indices(self._step)
        return tf.train.SessionRunArgs(fetches=None,
                                       feed_dict={t: v[indices] for t, v in zip(self._cut, self.values)})

    def after_run(self, run_context, run_values):
        self._step += 1
