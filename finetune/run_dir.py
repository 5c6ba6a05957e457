"""The train dir's contract: what a training run leaves in its directory, written and read here only.

    TRAIN_DIR/
      model.ckpt-N.{index,data-*}, checkpoint   TensorFlow checkpoints (the net's own variable names)
      run_config.json      what rebuilds the run's graph: net, classes, image size, preprocessing, labels,
                           dataset, and every resolved RunConfig value
      labels.txt           class names, one per line, in label order (export writes the same format)
      restore_report.json  the restore plan of the pretrained checkpoint (written at warm start)
      run_summary.json     the end-of-run numbers (steps, loss, accuracy, checkpoint)
      eval_<split>/        metrics.json and confusion_matrix.png of `finetune eval` and training's final evaluation

    A recipe's plan dir (finetune.recipe_runner) holds one such train dir per stage and:
      plan.json            the recipe, each stage's resolved values and state, in order (the last stage is the result)
      kept/<name>/         a stage's final checkpoint kept under a name, as a train dir

Training, evaluation, export and predict go through `RunDir` (and `read_labels` / `write_labels` for
the labels format); no other module names these files. JSON and text files are written whole: a
temporary file in the same directory, then renamed over the old one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from nets.compat import tf

PLAN_FILE = "plan.json"  # a recipe's plan dir (see the module docstring)
KEPT_DIR = "kept"
RUN_CONFIG_FILE = "run_config.json"
LABELS_FILE = "labels.txt"
RUN_SUMMARY_FILE = "run_summary.json"
RESTORE_REPORT_FILE = "restore_report.json"
CHECKPOINT_BASENAME = "model.ckpt"
_REQUIRED_RUN_CONFIG = ("net", "num_classes")


def write_atomically(path: str | Path, text: str) -> None:
    """Write `text` to `path` whole: a temporary file beside it, flushed, then renamed over it."""
    path = Path(path)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, value: dict) -> None:
    write_atomically(path, json.dumps(value, indent=1) + "\n")


def write_labels(path: str | Path, class_names: Sequence[str]) -> None:
    """labels.txt: one class name per line, in label order."""
    write_atomically(path, "".join(f"{name}\n" for name in class_names))


def read_labels(path: str | Path) -> list[str]:
    """Class names from a labels.txt of one name per line, in label order."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"labels file {path} not found: give a text file with one class name per line.")
    return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]


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
        self.path.mkdir(parents=True, exist_ok=True)

    # -- checkpoints ----------------------------------------------------------------------------

    def latest_checkpoint(self) -> str | None:
        """The newest checkpoint the `checkpoint` state file names, or None."""
        return tf.train.latest_checkpoint(str(self.path)) if self.path.is_dir() else None

    def check_resume(self, variables, class_names: Sequence[str]) -> str | None:
        """The checkpoint to resume from (None: nothing to resume); ValueError when the dir holds a run of
        another net, class count or class list, before anything is written."""
        from checkpoints import check_resume

        latest = check_resume(str(self.path), variables) if self.path.is_dir() else None
        if latest:
            labels = self.run_config(required=False).get("labels")
            if labels is not None and list(labels) != list(class_names):
                raise ValueError(f"{self.path} was trained on other classes ({', '.join(labels[:5])}...) than this "
                                 "dataset's: use a new --train-dir.")
        return latest

    def finished(self, max_steps: int | None) -> dict | None:
        """The run summary if the run here reached `max_steps` and its checkpoint still exists, else None."""
        summary = self.summary()
        if max_steps is None or summary is None:
            return None
        done = summary.get("stopped") == "max_steps" and summary.get("final_step", 0) >= max_steps
        checkpoint = summary.get("checkpoint")
        return summary if done and checkpoint and tf.train.checkpoint_exists(checkpoint) else None

    # -- files ----------------------------------------------------------------------------------

    def write_run_files(self, run_config: dict, class_names: Sequence[str], restore_report: dict | None) -> None:
        """run_config.json and labels.txt (what eval and export read), and the restore report when there is one."""
        self.create()
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
        path = self.file(RUN_SUMMARY_FILE)
        return json.loads(path.read_text()) if path.is_file() else None

    # -- a recipe's plan dir ------------------------------------------------------------------

    def plan(self) -> dict | None:
        """plan.json of a recipe's plan dir, or None."""
        path = self.file(PLAN_FILE)
        return json.loads(path.read_text()) if path.is_file() else None

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
        import shutil

        destination.create()
        for path in tf.io.gfile.glob(checkpoint + ".*"):
            shutil.copyfile(path, destination.path / Path(path).name)
        for name in (RUN_CONFIG_FILE, LABELS_FILE):
            if self.file(name).is_file():
                shutil.copyfile(self.file(name), destination.file(name))
        tf.train.update_checkpoint_state(str(destination.path), Path(checkpoint).name)
        return str(destination.path / Path(checkpoint).name)

    def report_dir(self, split: str) -> str:
        """Where a split's metrics.json and confusion_matrix.png go: TRAIN_DIR/eval_<split>."""
        return report_dir(self.path, split)


def report_dir(directory: str | Path, split: str) -> str:
    """DIRECTORY/eval_<split>: training's final evaluation and `finetune eval` both write there."""
    return str(Path(directory) / f"eval_{split}")
