"""A run is never lost: faults injected into training runs (mobilenet_v1_025 at 32 px, batch 4, logits only).

Each test breaks something the way the world does (kill -9 at random moments, SIGTERM, a second process on
the same train dir, a full or read-only filesystem, truncated or deleted checkpoint files, a changed
--image-size) and checks that nothing before the last save is lost, that the frozen variables stay bit-equal to
the source checkpoint, and that every refusal is one line, a non-zero exit and no written file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.runs import QUICK_NET as NET
from helpers.runs import assert_frozen_bit_equal as _assert_frozen_bit_equal
from helpers.runs import checkpoint_steps as _steps
from helpers.runs import checkpoint_values as _values

from finetune import cli
from finetune.config import RunConfig
from finetune.runs.run_dir import RunDir, RunDirError
from finetune.train import loop as train
from nets.compat import tf

REPO = Path(__file__).resolve().parents[1]
FLAGS = ["--net", NET, "--batch-size", "4", "--image-size", "32", "--trainable", "logits", "--skip-eval"]
SUBPROCESS_TIMEOUT = 240


@pytest.fixture(scope="module")
def source(pretrained) -> str:
    """The 'pretrained' checkpoint: the net with 1001 classes and random, physically valid values (conftest)."""
    return pretrained


def _config(dataset: str, source: str, train_dir, **overrides) -> RunConfig:
    values = {"net": NET, "dataset": dataset, "train_dir": str(train_dir), "ckpt": source, "trainable": "logits",
              "batch_size": 4, "image_size": 32, "save_interval_steps": 1, "save_interval_secs": None,
              "keep_checkpoints": 10, "max_steps": 3, "skip_eval": True, **overrides}
    return RunConfig(**values)


@pytest.fixture(scope="module")
def base_run(dataset, source, tmp_path_factory) -> Path:
    """A run of 3 steps saved at every step: model.ckpt-1, -2, -3 (copied by each test that breaks it)."""
    train_dir = tmp_path_factory.mktemp("base") / "run"
    train.train(_config(dataset, source, train_dir), verbose=False)
    return train_dir


def _copy(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "run"))


def _snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    """Every file under `directory`: (size, mtime in ns), to prove nothing was written."""
    return {str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(directory.rglob("*")) if p.is_file()}


def _one_line_error(capsys, *words: str) -> str:
    """The command's one error line (stderr holds at most the progress bar besides), with `words` in it."""
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("finetune")]
    assert len(errors) == 1 and errors[0].startswith("finetune: error:"), err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == errors[0]
    for word in words:
        assert word in errors[0], (word, errors[0])
    return errors[0]


# -- a fresh run saves what is new, and keeps --keep-checkpoints across resumes --------------------------------


def test_no_step_zero_copy_of_the_source_checkpoint(base_run, source):
    assert _steps(base_run) == [1, 2, 3]  # no model.ckpt-0: it would only copy --ckpt
    assert not list(base_run.glob("*.meta"))
    assert not (base_run / "train.lock").exists()  # released at the end
    for step in (1, 3):
        _assert_frozen_bit_equal(str(base_run / f"model.ckpt-{step}"), source)
    first, last = _values(str(base_run / "model.ckpt-1")), _values(str(base_run / "model.ckpt-3"))
    assert not np.array_equal(first["MobilenetV1/Logits/Conv2d_1c_1x1/weights"],
                              last["MobilenetV1/Logits/Conv2d_1c_1x1/weights"])


def test_keep_checkpoints_holds_across_resumes(base_run, dataset, source, tmp_path):
    run = _copy(base_run, tmp_path)
    summary = train.train(_config(dataset, source, run, max_steps=6, keep_checkpoints=2), verbose=False)
    assert (summary["start_step"], summary["final_step"]) == (3, 6)
    assert _steps(run) == [5, 6]  # the first process's model.ckpt-1..3 are pruned too
    state = (run / "checkpoint").read_text()
    assert "model.ckpt-6" in state and "model.ckpt-3" not in state


# -- broken files in the train dir: resume from the newest complete checkpoint ---------------------------------


def _truncate(path: Path) -> None:
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)


def _flip_bytes(path: Path) -> None:
    """Corrupt without changing the size: TensorFlow's per-tensor checksum must catch it."""
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 64):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


FAULTS = {
    "state file deleted": (lambda run: (run / "checkpoint").unlink(), 3, "no `checkpoint` file"),
    "latest .index deleted": (lambda run: (run / "model.ckpt-3.index").unlink(), 2, "model.ckpt-3.index is missing"),
    "latest .data truncated": (lambda run: _truncate(next(run.glob("model.ckpt-3.data-*"))), 2, "truncated"),
    "latest .data deleted": (lambda run: next(run.glob("model.ckpt-3.data-*")).unlink(), 2, "does not read"),
    "latest .data corrupt": (lambda run: _flip_bytes(next(run.glob("model.ckpt-3.data-*"))), 2, "does not read"),
    "state file and latest .data broken": (
        lambda run: ((run / "checkpoint").unlink(), _truncate(next(run.glob("model.ckpt-3.data-*")))), 2, "truncated"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.slow
def test_broken_train_dir_resumes_from_the_newest_complete_checkpoint(fault, base_run, dataset, source, tmp_path,
                                                                      capsys):
    run = _copy(base_run, tmp_path)
    breaks, resume_step, why = FAULTS[fault]
    kept = {name: (run / name).read_bytes() for name in ("run_config.json", "restore_report.json", "labels.txt")}
    saved = _values(str(run / f"model.ckpt-{resume_step}"))
    breaks(run)
    summary = train.train(_config(dataset, source, run, max_steps=5), verbose=True)
    out = capsys.readouterr().out
    assert summary["start_step"] == resume_step and summary["final_step"] == 5
    assert f"Resuming from {run / f'model.ckpt-{resume_step}'}" in out and "--ckpt is not restored again" in out
    assert why in out
    if resume_step == 2:
        assert "Skipped model.ckpt-3" in out
    # not warm-started over: the run's files are as they were, the older checkpoints kept (keep 10)
    assert {name: (run / name).read_bytes() for name in kept} == kept
    assert _steps(run)[:2] == [1, 2] and _steps(run)[-1] == 5
    resumed = _values(str(run / f"model.ckpt-{resume_step}"))
    assert all(np.array_equal(resumed[n], saved[n]) for n in saved)  # the checkpoint resumed from is untouched
    _assert_frozen_bit_equal(summary["checkpoint"], source)


def test_train_dir_with_no_readable_checkpoint_is_refused_and_untouched(base_run, dataset, source, tmp_path, capsys):
    run = _copy(base_run, tmp_path)
    for data in run.glob("model.ckpt-*.data-*"):
        _truncate(data)
    before = _snapshot(run)
    assert cli.main([*FLAGS, "--dataset", dataset, "--ckpt", source, "--train-dir", str(run)]) == 2
    _one_line_error(capsys, str(run), "model.ckpt-1, model.ckpt-2, model.ckpt-3", "none reads back")
    assert _snapshot(run) == before


def test_resume_with_another_image_size_is_refused_and_untouched(base_run, dataset, source, tmp_path, capsys):
    run = _copy(base_run, tmp_path)
    before = _snapshot(run)
    flags = [arg if arg != "32" else "40" for arg in FLAGS]
    assert cli.main([*flags, "--dataset", dataset, "--ckpt", source, "--train-dir", str(run)]) == 2
    _one_line_error(capsys, "image_size 32", "asks for 40", "--image-size")
    assert _snapshot(run) == before


def test_truncated_ckpt_is_refused_and_nothing_is_written(source, dataset, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in Path(source).parent.glob("model.ckpt.*"):
        shutil.copy(path, broken / path.name)
    _truncate(next(broken.glob("model.ckpt.data-*")))
    run = tmp_path / "run"
    assert cli.main([*FLAGS, "--dataset", dataset, "--ckpt", str(broken / "model.ckpt"), "--train-dir", str(run)]) == 2
    _one_line_error(capsys, str(broken / "model.ckpt"), "truncated")
    assert not run.exists()


# -- one process per train dir ------------------------------------------------------------------------------------


def test_a_held_lock_refuses_a_second_run_naming_the_holder(base_run, dataset, source, tmp_path, capsys):
    run = _copy(base_run, tmp_path)
    holder = subprocess.Popen(  # holds the lock as a training run does, without TensorFlow
        [sys.executable, "-c", "import fcntl, json, os, socket, sys, time\n"
         f"fd = os.open({str(run / 'train.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX)\n"
         "os.write(fd, json.dumps({'pid': os.getpid(), 'host': socket.gethostname(), 'started': 'now'}).encode())\n"
         "print('locked', flush=True)\n"
         "time.sleep(120)\n"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = _snapshot(run)
        assert cli.main([*FLAGS, "--dataset", dataset, "--ckpt", source, "--train-dir", str(run)]) == 2
        _one_line_error(capsys, str(run), f"in use by pid {holder.pid} on ", "train.lock")
        assert _snapshot(run) == before
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_of_a_dead_process_is_taken_over_and_said(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "train.lock").write_text(json.dumps({"pid": dead.pid, "host": "box", "started": "then"}))
    said = []
    with RunDir(tmp_path).lock(said.append):
        record = json.loads((tmp_path / "train.lock").read_text())
        assert record["pid"] == os.getpid()
        with pytest.raises(RunDirError, match=f"in use by pid {os.getpid()}"):  # even from this process
            with RunDir(tmp_path).lock(said.append):
                pass
    assert said == [f"Took over the lock of pid {dead.pid} on box (since then): that process is gone (killed?) "
                    f"and left {tmp_path / 'train.lock'}."]
    assert not (tmp_path / "train.lock").exists()


# -- a full or read-only filesystem ---------------------------------------------------------------------------------


@pytest.fixture
def tmpfs(tmp_path):
    """mount(tmpfs, options) -> its mount point under tmp_path; unmounted at the end. Skips without mount rights."""
    mounted = []

    def mount(name: str, options: str) -> Path:
        point = tmp_path / name
        point.mkdir()
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True)
        if result.returncode:
            pytest.skip(f"cannot mount a tmpfs here ({result.stderr.decode().strip()}): needs root")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


class _FillDiskAfterFirstSave(tf.train.SessionRunHook):
    """After the first step's checkpoint, fill the filesystem but for `spare` bytes."""

    def __init__(self, directory: Path, spare: int):
        self._directory, self._spare, self._done = directory, spare, False

    def after_run(self, run_context, run_values):
        if not self._done and list(self._directory.glob("model.ckpt-1.index")):
            free = shutil.disk_usage(self._directory).free
            with open(self._directory.parent / "filler", "wb") as f:
                f.write(b"\0" * max(0, free - self._spare))
            self._done = True


@pytest.mark.slow
def test_disk_full_while_saving_keeps_the_previous_checkpoint(tmpfs, dataset, source, capsys):
    disk = tmpfs("disk", "size=24m")
    run = disk / "run"
    config = _config(dataset, source, run, max_steps=4)
    with pytest.raises(OSError) as error:
        train.train(config, hooks=[_FillDiskAfterFirstSave(run, spare=64 * 1024)], verbose=False)
    message = str(error.value)
    assert "\n" not in message and str(run) in message and "cannot save step 2" in message
    assert "No space left on device" in message and "MB free" in message
    needed = float(re.search(r"it needs about ([\d.]+) MB", message).group(1))
    assert needed == pytest.approx(next(run.glob("model.ckpt-1.data-*")).stat().st_size / 2**20, abs=0.1)
    assert "model.ckpt-1 is still the latest checkpoint" in message
    assert tf.train.latest_checkpoint(str(run)) == str(run / "model.ckpt-1")
    assert not list(run.glob("model.ckpt-2*"))  # the partial save is gone
    from checkpoints import checkpoint_problem

    assert checkpoint_problem(str(run / "model.ckpt-1")) is None
    _assert_frozen_bit_equal(str(run / "model.ckpt-1"), source)
    # space again: the rerun resumes from step 1
    (disk / "filler").unlink()
    summary = train.train(config, verbose=False)
    assert (summary["start_step"], summary["final_step"]) == (1, 4)
    _assert_frozen_bit_equal(summary["checkpoint"], source)


def test_disk_full_before_the_first_save_is_one_line(tmpfs, dataset, source, capsys):
    disk = tmpfs("tiny", "size=256k")  # room for the run's small files, not for a 2 MB checkpoint
    run = disk / "run"
    assert cli.main([*FLAGS, "--dataset", dataset, "--ckpt", source, "--train-dir", str(run), "--max-steps", "2"]) == 2
    _one_line_error(capsys, str(run), "needs about")
    assert not list(run.glob("model.ckpt-*"))


def test_read_only_train_dir_is_one_line(tmpfs, dataset, source, capsys):
    disk = tmpfs("readonly", "ro,size=1m")
    run = disk / "run"
    assert cli.main([*FLAGS, "--dataset", dataset, "--ckpt", source, "--train-dir", str(run)]) == 2
    _one_line_error(capsys, str(run), "Read-only")


# -- processes killed, terminated, or two at once --------------------------------------------------------------------
