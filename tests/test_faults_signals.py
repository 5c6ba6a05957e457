"""A run is never lost, the process-level faults: kill -9 at random moments and SIGTERM, on real `finetune`
subprocesses (mobilenet_v1_025 at 32 px, batch 4, logits only). Nothing before the last save is lost, and the
frozen variables stay bit-equal to the source checkpoint. (The in-process faults are tests/test_faults.py's.)"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.runs import QUICK_NET as NET
from helpers.runs import assert_frozen_bit_equal as _assert_frozen_bit_equal
from helpers.runs import checkpoint_steps as _steps

from nets.compat import tf

REPO = Path(__file__).resolve().parents[1]
FLAGS = ["--net", NET, "--batch-size", "4", "--image-size", "32", "--trainable", "logits", "--skip-eval"]
SUBPROCESS_TIMEOUT = 240


@pytest.fixture(scope="module")
def source(pretrained) -> str:
    """The 'pretrained' checkpoint: the net with 1001 classes and random, physically valid values (conftest)."""
    return pretrained


def _command(dataset: str, source: str, run: Path, max_steps: int, keep: int = 3,
             save_every: tuple[str, str] = ("--save-interval-steps", "1")) -> list[str]:
    return [sys.executable, "-m", "finetune.cli", *FLAGS, "--dataset", dataset, "--ckpt", source,
            "--train-dir", str(run), "--max-steps", str(max_steps), *save_every, "--keep-checkpoints", str(keep)]


def _start(command: list[str], log: Path) -> subprocess.Popen:
    with open(log, "w") as f:  # the child keeps its own handle
        return subprocess.Popen(command, cwd=REPO, stdout=f, stderr=subprocess.STDOUT)


def _latest_saved(run: Path) -> int:
    """The step the `checkpoint` state file names (what a reader sees as saved), 0 if none."""
    latest = tf.train.latest_checkpoint(str(run)) if (run / "checkpoint").is_file() else None
    return int(latest.rsplit("-", 1)[1]) if latest else 0


def _wait_for_save_after(run: Path, step: int, process: subprocess.Popen, log: Path) -> int:
    deadline = time.monotonic() + SUBPROCESS_TIMEOUT
    while (saved := _latest_saved(run)) <= step:
        assert process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"no checkpoint after step {step}"
        time.sleep(0.05)
    return saved


@pytest.mark.slow
def test_kill_9_at_random_moments_loses_nothing_before_the_last_save(dataset, source, tmp_path):
    """Three kill -9 at random moments after a save; a second process meanwhile; then a rerun to the end."""
    rng = random.Random(int(os.environ.get("FAULT_SEED", "9")))  # FAULT_SEED=N for other moments
    run, max_steps, keep = tmp_path / "run", 100_000, 3
    last_seen, history = 0, []
    for kill in range(3):
        log = tmp_path / f"run{kill}.log"
        process = _start(_command(dataset, source, run, max_steps, keep), log)
        try:
            _wait_for_save_after(run, last_seen, process, log)
            if kill == 1:  # a second process on the same dir is refused, naming this one
                second = subprocess.run(_command(dataset, source, run, max_steps, keep), cwd=REPO,
                                        capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)
                assert second.returncode == 2 and "Traceback" not in second.stderr
                assert f"is in use by pid {process.pid} on " in second.stderr.strip().splitlines()[-1]
            time.sleep(rng.uniform(0.0, 1.5))
            last_seen = _latest_saved(run)
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        text = log.read_text()
        resumed = re.search(r"Resuming from .*model\.ckpt-(\d+)", text)
        history.append((kill, int(resumed.group(1)) if resumed else 0, last_seen))
        if kill:
            assert "Took over the lock of pid" in text  # the killed process's lock
            assert int(resumed.group(1)) >= history[-2][2], history  # resumed at or after the last save seen
        assert "Traceback" not in text
    # the rerun resumes at or after the last save seen and finishes
    final = subprocess.run(_command(dataset, source, run, last_seen + 2, keep), cwd=REPO, capture_output=True,
                           text=True, timeout=SUBPROCESS_TIMEOUT)
    assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
    resumed = int(re.search(r"Resuming from .*model\.ckpt-(\d+)", final.stdout).group(1))
    assert resumed >= last_seen, (resumed, last_seen, history)
    summary = json.loads((run / "run_summary.json").read_text())
    assert summary["start_step"] == resumed and summary["final_step"] == last_seen + 2
    assert len(_steps(run)) <= keep + 1  # at most one more: a checkpoint cut short by a kill and left in place
    assert not (run / "train.lock").exists()
    _assert_frozen_bit_equal(summary["checkpoint"], source)


@pytest.mark.slow
def test_sigterm_saves_and_writes_the_run_summary(dataset, source, tmp_path):
    run, log = tmp_path / "run", tmp_path / "run.log"
    # saves only every hour: without the signal's save, the run's steps would be lost
    process = _start(_command(dataset, source, run, 100_000, save_every=("--save-interval-secs", "3600")), log)
    try:
        deadline = time.monotonic() + SUBPROCESS_TIMEOUT
        while not (run / "graph.pbtxt").exists():  # the session is up: training steps are running
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.05)
        time.sleep(1.0)
        assert _steps(run) == []
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=SUBPROCESS_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = log.read_text()
    assert code == 143 and "Traceback" not in text, text[-3000:]
    summary = json.loads((run / "run_summary.json").read_text())
    assert summary["stopped"] == "terminated" and summary["final_step"] > 0
    assert summary["checkpoint"] == str(run / f"model.ckpt-{summary['final_step']}")
    assert _steps(run) == [summary["final_step"]]
    assert f"Stopped by SIGTERM at step {summary['final_step']}" in text
    _assert_frozen_bit_equal(summary["checkpoint"], source)
