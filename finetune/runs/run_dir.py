"""The train dir's contract: what a training run leaves in its directory, written and read here only.

    TRAIN_DIR/
      model.ckpt-N.{index,data-*}, checkpoint   TensorFlow checkpoints (the net's own variable names)
      run_config.json      what rebuilds the run's graph: net, classes, image size, preprocessing, labels,
                           dataset, and every resolved RunConfig value
      labels.txt           class names, one per line, in label order (export writes the same format)
      restore_report.json  the restore plan of the pretrained checkpoint (written at warm start)
      run_summary.json     the end-of-run numbers (steps, loss, accuracy, checkpoint)
      eval_<split>/        metrics.json and confusion_matrix.png of `finetune eval` and training's final evaluation
                           (`write_eval_report`, `RunDir.eval_metrics`)
      graph.pbtxt          the training graph (TensorBoard shows it from the events file too)
      train.lock           while a run trains here: its pid, host and start time (flock'ed)

    A recipe's plan dir (finetune.recipe.runner) holds one such train dir per stage and:
      plan.json            the recipe, each stage's resolved values and state, in order (the last stage is the result)
      kept/<name>/         a stage's final checkpoint kept under a name, as a train dir

Training, evaluation, export, recipes and the benchmarks go through `RunDir` (and `write_eval_report`
for an evaluation's report); no other module names these files. Every file is written whole
(`finetune.runs.files.write_atomically`: a temporary file in the same directory, then renamed over
the old one); labels.txt is the one-name-a-line format of `finetune.runs.files`, not a TFRecord
dataset's `label:name` labels.txt.

Importing this module imports no TensorFlow (what needs it imports it inside), so that `finetune train` takes
the lock before anything else: a busy train dir is refused at once.

A run is never lost: one process trains in a dir at a time (`RunDir.lock`); a dir that holds any
model.ckpt-* resumes from its newest complete checkpoint (`resume_point`), never warm-starts over it;
a run that changed what the checkpoint means (net, classes, image size, preprocessing) is refused; a
failed save (`save_failed`) removes only its own partial files, so the previous checkpoint stays the latest.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from finetune.runs.files import (
    LABELS_FILE,
    json_text,
    megabytes,
    read_json,
    read_labels,
    write_atomically,
    write_json,
    write_labels,
)

PLAN_FILE = "plan.json"  # a recipe's plan dir (see the module docstring)
KEPT_DIR = "kept"
RUN_CONFIG_FILE = "run_config.json"
RUN_SUMMARY_FILE = "run_summary.json"
RESTORE_REPORT_FILE = "restore_report.json"
CHECKPOINT_BASENAME = "model.ckpt"
CHECKPOINT_STATE_FILE = "checkpoint"  # tf.train.Saver's list of checkpoints
LOCK_FILE = "train.lock"
GRAPH_FILE = "graph.pbtxt"
METRICS_FILE = "metrics.json"  # in eval_<split>/ (or eval's --output-dir)
CONFUSION_PNG = "confusion_matrix.png"
_REQUIRED_RUN_CONFIG = ("net", "num_classes")
# run_config.json values that change what a checkpoint's numbers mean: a resume must keep them.
_MEANING = ("net", "num_classes", "image_size", "preprocessing")
_CHECKPOINT_FILE = re.compile(re.escape(CHECKPOINT_BASENAME) + r"-(\d+)(\.index|\.meta|\.data-\d{5}-of-\d{5}.*|_temp.*)$")


class RunDirError(ValueError):
    """A train dir that cannot be used as asked (in use, of another run, unreadable); one line, nothing written."""


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (disk full, unwritable dir); the previous one is still the latest."""


class RunDir:
    """One training run's directory (see the module docstring for what it holds)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __str__(self) -> str:
        return str(self.path)

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def checkpoint_prefix(self) -> str:
        """What tf.train.Saver saves under: TRAIN_DIR/model.ckpt (-N is added per step)."""
        return str(self.path / CHECKPOINT_BASENAME)

    def create(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OSError(error.errno, f"cannot create train dir {self.path}: {error.strerror}") from None

    # -- one process per train dir -----------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, say: Callable[[str], None] = print) -> Iterator[None]:
        """Hold TRAIN_DIR/train.lock (an flock, with this process's pid, host and start time) while training.

        A second process is refused (RunDirError naming the holder); a lock file left by a process that is
        gone (killed) holds no flock any more and is taken over, which `say`s so. Removed on release."""
        created = not self.path.is_dir()
        self.create()
        path = self.file(LOCK_FILE)
        fd = self._acquire(path, say)
        try:
            yield
        finally:
            path.unlink(missing_ok=True)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            if created and not any(self.path.iterdir()):
                self.path.rmdir()  # a run refused before it wrote anything leaves no dir behind

    def _acquire(self, path: Path, say: Callable[[str], None]) -> int:
        for _ in range(10):  # the holder may remove the file between our open and flock: open it again
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as error:
                raise OSError(error.errno, f"cannot write {path}: {error.strerror}; --train-dir must be a "
                              "writable directory") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _lock_holder(os.pread(fd, 4096, 0))
                os.close(fd)
                raise RunDirError(f"{self.path} is in use by {holder} (lock {path}): wait for that run to end or "
                                  "stop it, or give another --train-dir.") from None
            if os.path.exists(path) and os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
            os.close(fd)
        else:
            raise RunDirError(f"cannot take the lock {path}: other processes keep replacing it.")
        stale = os.pread(fd, 4096, 0)
        if stale.strip():
            say(f"Took over the lock of {_lock_holder(stale)}: that process is gone (killed?) and left {path}.")
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        return fd

    # -- checkpoints ----------------------------------------------------------------------------

    def latest_checkpoint(self) -> str | None:
        """The newest checkpoint the `checkpoint` state file names, or None."""
        from checkpoints.reader import latest_checkpoint

        return latest_checkpoint(str(self.path)) if self.path.is_dir() else None

    def checkpoint_steps(self) -> list[int]:
        """Steps of every model.ckpt-N that has any file here (complete or not), ascending."""
        if not self.path.is_dir():
            return []
        return sorted({int(m.group(1)) for p in self.path.iterdir() if (m := _CHECKPOINT_FILE.fullmatch(p.name))})

    def checkpoint(self, step: int) -> str:
        return f"{self.checkpoint_prefix}-{step}"

    def newest_complete_checkpoint(self, say: Callable[[str], None] = print) -> str | None:
        """The newest model.ckpt-N whose every tensor reads back (None: the dir holds no checkpoint files).

        Newer ones that do not read (truncated, missing .index or data, cut short by a kill) are skipped,
        each `say`ing why, and left in place. RunDirError when checkpoint files exist but none reads."""
        from checkpoints import checkpoint_problem

        steps, skipped = self.checkpoint_steps(), []
        for step in reversed(steps):
            problem = checkpoint_problem(self.checkpoint(step))
            if problem is None:
                named = self.latest_checkpoint()
                if skipped or named != self.checkpoint(step):
                    said = f"the `checkpoint` file names {Path(named).name}" if named else "no `checkpoint` file"
                    say(f"{CHECKPOINT_BASENAME}-{step} is the newest complete checkpoint in {self.path} ({said}).")
                for note in skipped:
                    say(note)
                return self.checkpoint(step)
            skipped.append(f"Skipped {CHECKPOINT_BASENAME}-{step}: {problem} (left in place).")
        if steps:
            raise RunDirError(f"{self.path} holds checkpoints ({', '.join(f'{CHECKPOINT_BASENAME}-{s}' for s in steps)}) "
                              f"but none reads back ({skipped[0].split(': ', 1)[1]}); nothing was written: move them "
                              "away to start over, or give another --train-dir.")
        return None

    def resume_point(self, variables, record: dict, say: Callable[[str], None] = print) -> str | None:
        """The checkpoint to resume from; None when the dir holds no checkpoint (warm start or scratch).

        A dir holding any model.ckpt-* is never warm-started over: it resumes from its newest complete
        checkpoint, or the run is refused (RunDirError) when that checkpoint belongs to another net or class
        count, or `record` (this run's run_config.json) differs in what the checkpoint means (net, classes,
        class names, image size, preprocessing). Nothing is written here."""
        from checkpoints import check_resume

        latest = self.newest_complete_checkpoint(say)
        if latest is None:
            return None
        try:
            check_resume(str(self.path), variables, checkpoint=latest)
        except ValueError as error:
            raise RunDirError(str(error)) from None
        stored = self.run_config(required=False)
        for key in _MEANING:
            if key in stored and stored[key] != record[key]:
                flag = {"net": "--net", "image_size": "--image-size"}.get(key, key.replace("_", " "))
                raise RunDirError(f"{self.path} was trained with {key} {stored[key]}, this run asks for {record[key]} "
                                  f"({flag}): its checkpoints would mean something else. Give {stored[key]} to "
                                  "resume, or another --train-dir.")
        labels = stored.get("labels")
        if labels is not None and list(labels) != list(record["labels"]):
            raise RunDirError(f"{self.path} was trained on other classes ({', '.join(labels[:5])}...) than this "
                              "dataset's: use a new --train-dir.")
        return latest

    def prune(self, keep: int, saved_step: int) -> None:
        """--keep-checkpoints across resumes: of the complete checkpoints up to `saved_step` (this run's and
        the earlier processes'), keep the newest `keep` and delete every checkpoint file older than them.
        Newer files (skipped at resume as unreadable) are left in place."""
        complete = [s for s in self.checkpoint_steps()
                    if s <= saved_step and self.file(f"{CHECKPOINT_BASENAME}-{s}.index").is_file()]
        if len(complete) <= keep:
            return
        oldest_kept = complete[-keep]
        for p in self.path.iterdir():
            m = _CHECKPOINT_FILE.fullmatch(p.name)
            if m and int(m.group(1)) < oldest_kept:
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)

    def save_failed(self, step: int, error: Exception, needed_bytes: int) -> CheckpointWriteError:
        """The one-line error of a checkpoint save that failed at `step`; its partial files are removed (this
        process wrote them), so the previous checkpoint is still complete and the latest."""
        for p in self.path.glob(f"{CHECKPOINT_BASENAME}-{step}[._]*"):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        return self._write_error(f"cannot save step {step}", error, needed_bytes)

    def write_graph(self, graph_def) -> None:
        """graph.pbtxt: the training graph as text, for TensorBoard and tools."""
        write_atomically(self.file(GRAPH_FILE), str(graph_def))

    def _write_error(self, what: str, error: Exception, needed_bytes: int) -> CheckpointWriteError:
        free = shutil.disk_usage(self.path).free if self.path.is_dir() else 0
        lines = str(getattr(error, "message", "") or error).strip().splitlines()
        reason = next((line.rsplit("; ", 1)[-1] for line in lines if "; " in line), lines[-1] if lines else "")
        latest = self.latest_checkpoint()
        kept = f"{Path(latest).name} is still the latest checkpoint; free space (or make the dir writable) and " \
            "rerun to resume" if latest else "No checkpoint was saved; free space (or make the dir writable) and rerun"
        return CheckpointWriteError(f"{what} in {self.path}: {reason}; it needs about {megabytes(needed_bytes)}, "
                                    f"{megabytes(free)} free. {kept}.")

    # -- files ----------------------------------------------------------------------------------

    def write_run_files(self, run_config: dict, class_names: Sequence[str], restore_report: dict | None) -> None:
        """run_config.json and labels.txt (what eval and export read), and the restore report when there is one."""
        write_json(self.file(RUN_CONFIG_FILE), run_config)
        write_labels(self.file(LABELS_FILE), class_names)
        if restore_report is not None:
            write_json(self.file(RESTORE_REPORT_FILE), restore_report)

    def run_config(self, *, required: bool = True) -> dict:
        """run_config.json; FileNotFoundError (required) or {} when missing."""
        path = self.file(RUN_CONFIG_FILE)
        if not path.is_file():
            if not required:
                return {}
            if not self.path.is_dir():
                raise FileNotFoundError(f"train dir {self.path} does not exist: give the --train-dir of a training run.")
            raise FileNotFoundError(f"{path} not found: {self.path} is not a finetune train dir (use --ckpt and --net).")
        config = json.loads(path.read_text())
        missing = [key for key in _REQUIRED_RUN_CONFIG if key not in config]
        if missing:
            raise ValueError(f"{path} lacks {', '.join(missing)}: is it a finetune train dir?")
        return config

    def class_names(self, num_classes: int) -> tuple[str, ...]:
        """The run's class names (run_config.json, else labels.txt, else '0'..'N-1')."""
        names = self.run_config(required=False).get("labels")
        if not names and self.file(LABELS_FILE).is_file():
            names = read_labels(self.file(LABELS_FILE))
        if not names:
            return tuple(str(i) for i in range(num_classes))
        if len(names) != num_classes:
            raise ValueError(f"{self.path}: {len(names)} class names for {num_classes} classes in {RUN_CONFIG_FILE}.")
        return tuple(names)

    def write_summary(self, summary: dict) -> None:
        write_json(self.file(RUN_SUMMARY_FILE), summary)

    def summary(self) -> dict | None:
        """run_summary.json, or None before a run has ended here."""
        return read_json(self.file(RUN_SUMMARY_FILE))

    def eval_metrics(self, split: str) -> dict | None:
        """eval_<split>/metrics.json, or None when that split was not evaluated here."""
        return read_json(Path(self.report_dir(split)) / METRICS_FILE)

    # -- a recipe's plan dir ------------------------------------------------------------------

    def plan(self) -> dict | None:
        """plan.json of a recipe's plan dir, or None."""
        return read_json(self.file(PLAN_FILE))

    def write_plan(self, plan: dict) -> None:
        self.create()
        write_json(self.file(PLAN_FILE), plan)

    def stage(self, name: str) -> RunDir:
        """The train dir of a plan's stage: PLAN_DIR/<name>."""
        return RunDir(self.path / name)

    def kept(self, name: str) -> RunDir:
        return RunDir(self.path / KEPT_DIR / name)

    def final_run(self) -> RunDir:
        """The run whose model this dir delivers: itself, or for a plan dir, its last stage's train dir."""
        plan = self.plan() if self.path.is_dir() and not self.file(RUN_CONFIG_FILE).is_file() else None
        return self.stage(plan["stages"][-1]["name"]) if plan and plan.get("stages") else self

    def copy_checkpoint(self, checkpoint: str, destination: RunDir) -> str:
        """Copy `checkpoint` (one of this run's) with run_config.json and labels.txt into `destination`, a train
        dir that eval, export and --ckpt read; returns the copy's prefix."""
        from nets.compat import tf

        destination.create()
        for path in tf.io.gfile.glob(checkpoint + ".*"):
            shutil.copyfile(path, destination.path / Path(path).name)
        for name in (RUN_CONFIG_FILE, LABELS_FILE):
            if self.file(name).is_file():
                write_atomically(destination.file(name), self.file(name).read_text())
        tf.train.update_checkpoint_state(str(destination.path), Path(checkpoint).name)
        return str(destination.path / Path(checkpoint).name)

    def report_dir(self, split: str) -> str:
        """Where a split's metrics.json and confusion_matrix.png go: TRAIN_DIR/eval_<split>."""
        return report_dir(self.path, split)


def _lock_holder(content: bytes) -> str:
    try:
        holder = json.loads(content)
        return f"pid {holder['pid']} on {holder['host']} (since {holder['started']})"
    except (ValueError, KeyError, TypeError):
        return "another process"


def report_dir(directory: str | Path, split: str) -> str:
    """DIRECTORY/eval_<split>: training's final evaluation and `finetune eval` both write there."""
    return str(Path(directory) / f"eval_{split}")


def write_eval_report(directory: str | Path, metrics: dict, confusion_png: bytes) -> tuple[Path, Path]:
    """DIRECTORY/metrics.json and DIRECTORY/confusion_matrix.png, each written whole; their paths.

    DIRECTORY is a train dir's eval_<split> (`report_dir`) or eval's --output-dir."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    json_path, png_path = directory / METRICS_FILE, directory / CONFUSION_PNG
    write_atomically(json_path, json_text(metrics, indent=2))
    write_atomically(png_path, confusion_png)
    return json_path, png_path
