"""The training loop's hooks (tf.train.SessionRunHook): NaN guard and progress bar with the run's numbers."""

from __future__ import annotations

import time

import numpy as np

from finetune.train_graph import TrainGraph
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

    def __init__(self, model: TrainGraph, global_step: tf.Tensor, skipped: tf.Tensor, start_step: int, max_steps: int,
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
