"""The training loop's hooks (tf.train.SessionRunHook): NaN guard, progress bar with the run's numbers,
checkpoints, and a stop on SIGTERM (`StopOnSignalHook`: after the current step while steps run, at once before
and after them)."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator

import numpy as np

from finetune.runs.run_dir import RunDir
from finetune.train.graph import TrainGraph
from nets.compat import tf

TRAIN_ACCURACY_WINDOW = 20  # final train accuracy: mean over this many last batches


class NonFiniteLossError(ValueError):
    """The loss became NaN or Inf; the run stopped without saving the diverged weights."""


class NonFiniteLossHook(tf.train.SessionRunHook):
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


class ProgressHook(tf.train.SessionRunHook):
    """A tqdm bar (step, loss, images/s, ETA) that also keeps the run's numbers for the summary."""

    def __init__(self, model: TrainGraph, global_step: tf.Tensor, start_step: int, max_steps: int, batch_size: int,
                 show: bool):
        self._fetches = {"step": global_step, "loss": model.loss, "accuracy": model.accuracy}
        self.start_step = self.step = start_step
        self._max_steps, self._batch_size, self._show = max_steps, batch_size, show
        self.accuracies: list[float] = []
        self.loss = float("nan")
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
        self.step, self.loss = step, float(results["loss"])
        self.accuracies = (self.accuracies + [float(results["accuracy"])])[-TRAIN_ACCURACY_WINDOW:]
        now = time.perf_counter()
        if self._timed_from is None:
            self._timed_from = (now, step)
        self.images_per_second = (step - self._timed_from[1]) * self._batch_size / max(now - self._timed_from[0], 1e-9)
        self._bar.set_postfix(loss=f"{self.loss:.3f}", img_s=f"{self.images_per_second:.0f}", refresh=False)

    def end(self, session):
        # A Ctrl-C inside a step's session.run lets that step finish (the global step moves) but no after_run see
        # it; the checkpoint hook saves the session's step, so that is the run's final step too.
        step = int(session.run(self._fetches["step"]))
        if self._bar is not None:
            self._bar.update(step - self.step)
        self.step = step
        self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    @property
    def steps(self) -> int:
        return self.step - self.start_step


class CheckpointHook(tf.train.SessionRunHook):
    """Save every `every_steps` steps (else `every_secs` seconds) and at the end, whenever the step moved since
    the last save: no step-0 copy of what was just restored. After each save the run dir keeps the newest
    `keep` checkpoints, the earlier processes' included.

    A save that fails (disk full, unwritable dir) raises the run dir's one-line CheckpointWriteError, with the
    partial files removed and the previous checkpoint still the latest."""

    def __init__(self, run_dir: RunDir, saver: tf.train.Saver, global_step: tf.Tensor, *, keep: int,
                 every_steps: int | None, every_secs: int | None):
        self._run_dir, self._saver, self._global_step, self._keep = run_dir, saver, global_step, keep
        self._every = {"every_steps": every_steps} if every_steps else {"every_secs": every_secs}
        self._bytes = sum(v.shape.num_elements() * v.dtype.base_dtype.size for v in tf.global_variables())

    def begin(self):
        self._timer = tf.train.SecondOrStepTimer(**self._every)

    def after_create_session(self, session, coord):
        self._saved = int(session.run(self._global_step))
        self._timer.update_last_triggered_step(self._saved)
        graph = tf.get_default_graph()
        self._run_dir.write_graph(graph.as_graph_def(add_shapes=True))
        tf.summary.FileWriterCache.get(str(self._run_dir)).add_graph(graph)  # TensorBoard's graph tab

    def before_run(self, run_context):
        return tf.train.SessionRunArgs(self._global_step)

    def after_run(self, run_context, run_values):
        step = int(run_values.results) + 1
        if self._timer.should_trigger_for_step(step):
            step = int(run_context.session.run(self._global_step))
            if self._timer.should_trigger_for_step(step):
                self._timer.update_last_triggered_step(step)
                self.save(run_context.session, step)

    def end(self, session):
        step = int(session.run(self._global_step))
        if step != self._saved:
            self.save(session, step)

    def save(self, session, step: int) -> None:
        try:
            self._saver.save(session, self._run_dir.checkpoint_prefix, global_step=step, write_meta_graph=False)
        except (tf.errors.OpError, OSError) as error:
            raise self._run_dir.save_failed(step, error, self._bytes) from None
        self._saved = step
        self._run_dir.prune(self._keep, step)


class SignalReceived(BaseException):
    """SIGTERM while no step runs (start-up, the final validation): the run stops at once. A BaseException, as
    KeyboardInterrupt is, so that no `except Exception` on the way holds it up."""

    def __init__(self, name: str):
        super().__init__(f"stopped by {name}")
        self.name = name


class StopOnSignalHook(tf.train.SessionRunHook):
    """While installed (`with hook:`), SIGTERM (kill, docker stop, schedulers, pre-emption) stops the run.

    While steps run (from the session's creation to its end) it ends the run after the current step, as Ctrl-C
    does: the checkpoint hook then saves, and the run summary is written. Before (resolving, building the graph,
    creating the session: nothing new to save yet) and after (the final validation, `raising()`) it raises
    SignalReceived at once, so the time from the signal to the exit is at most one step and a save."""

    def __init__(self, signals=(signal.SIGTERM,)):
        self._signals, self._previous, self.received = tuple(signals), {}, None
        self._raise = True  # until the session is up

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # Python delivers signals there only
            for number in self._signals:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc):
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous = {}

    @contextlib.contextmanager
    def raising(self) -> Iterator[None]:
        """Within: a signal (or one received before) raises SignalReceived."""
        self._raise = True
        try:
            if self.received:
                raise SignalReceived(self.received)
            yield
        finally:
            self._raise = False

    def _handle(self, number, frame):
        self.received = signal.Signals(number).name
        if self._raise:
            raise SignalReceived(self.received)

    def after_create_session(self, session, coord):
        self._raise = False  # steps run now: stop after the current one
        if self.received:
            raise SignalReceived(self.received)

    def after_run(self, run_context, run_values):
        if self.received:
            run_context.request_stop()
