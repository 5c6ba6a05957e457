"""Runs that must not damage what they leave (issue 18), each fault injected: a rerun of a finished command, Ctrl-C
(SIGINT) and SIGTERM sent to a real training process, and a second process on a train dir another one holds."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.runs import QUICK_NET as NET

from finetune import cli

REPO = Path(__file__).resolve().parents[1]
FLAGS = ["--net", NET, "--batch-size", "4", "--image-size", "32", "--trainable", "logits"]
TIMEOUT = 240


def _command(dataset: str, source: str, run: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "finetune.cli", *FLAGS, "--dataset", dataset, "--ckpt", source,
            "--train-dir", str(run), *flags]


def _start(command: list[str], log: Path) -> subprocess.Popen:
    with open(log, "w") as f:  # the child keeps its own handle
        return subprocess.Popen(command, cwd=REPO, stdout=f, stderr=subprocess.STDOUT)


def _wait_for_training(run: Path, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not (run / "graph.pbtxt").exists():  # written once the session is up: steps are running
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.05)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


def _steps(run: Path) -> list[int]:
    return sorted(int(p.name[len("model.ckpt-"):-len(".index")]) for p in run.glob("model.ckpt-*.index"))


# -- a rerun of a finished command keeps its numbers --------------------------------------------------------------


def test_rerunning_a_finished_run_keeps_its_summary_and_says_so(dataset, pretrained, tmp_path, capsys):
    run = tmp_path / "run"
    command = [*FLAGS, "--dataset", dataset, "--ckpt", pretrained, "--train-dir", str(run), "--max-steps", "2"]
    assert cli.main(command) == 0
    written = (run / "run_summary.json").read_text()
    summary = json.loads(written)
    assert summary["steps"] == 2 and summary["final_loss"] is not None and summary["validation_accuracy"] is not None
    capsys.readouterr()
    assert cli.main(command) == 0
    out = capsys.readouterr().out
    assert (run / "run_summary.json").read_text() == written  # the real final loss and accuracy are kept
    said = [line for line in out.splitlines() if "nothing to train" in line]
    assert len(said) == 1 and "model.ckpt-2 is already at step 2" in said[0], out
    assert "run_summary.json" in said[0] and "kept" in said[0], said
    assert "0 (step 2 -> 2" not in out  # no 0-step summary screen
    assert _steps(run) == [2]


# -- Ctrl-C: one step number everywhere ------------------------------------------------------------------------------


@pytest.mark.slow
def test_ctrl_c_names_the_step_it_saved_in_message_summary_checkpoint_and_resume(dataset, pretrained, tmp_path):
    run, log = tmp_path / "run", tmp_path / "run.log"
    # Steps long enough (all layers, 96 px, batch 16) that the signal lands inside a step's session.run, where the
    # step completes but no hook sees it; saves only every hour, so the one checkpoint is the signal's.
    slow_steps = ["--image-size", "96", "--batch-size", "16", "--trainable", "all", "--skip-eval"]
    command = [*_command(dataset, pretrained, run, "--max-steps", "100000", "--save-interval-secs", "3600"),
               *slow_steps]
    process = _start(command, log)
    try:
        _wait_for_training(run, process, log)
        time.sleep(2.0)
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=TIMEOUT)
    finally:
        _stop(process)
    text = log.read_text()
    assert code == 130 and "Traceback" not in text, text[-3000:]
    summary = json.loads((run / "run_summary.json").read_text())
    step = summary["final_step"]
    assert summary["stopped"] == "interrupted" and step > 0
    assert _steps(run) == [step]
    assert summary["checkpoint"] == str(run / f"model.ckpt-{step}")
    assert summary["steps"] == step
    said = re.search(r"Interrupted at step (\d+): saved (\S+)\.", text)
    assert said and (int(said.group(1)), said.group(2)) == (step, str(run / f"model.ckpt-{step}")), text[-2000:]
    resumed = subprocess.run([*command[:command.index("--max-steps")], "--max-steps", str(step + 1),
                              *command[command.index("--max-steps") + 2:]], cwd=REPO, capture_output=True,
                             text=True, timeout=TIMEOUT)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert re.search(rf"Resuming from \S*model\.ckpt-{step}\b", resumed.stdout), resumed.stdout[-2000:]
    after = json.loads((run / "run_summary.json").read_text())
    assert (after["start_step"], after["final_step"], after["steps"]) == (step, step + 1, 1)


# -- a busy train dir is refused before anything is built ----------------------------------------------------------


def _hold_lock(directory: Path) -> subprocess.Popen:
    """A process holding DIRECTORY/train.lock as a training run does (without TensorFlow)."""
    directory.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, json, os, socket, sys, time\n"
         f"fd = os.open({str(directory / 'train.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX)\n"
         "os.write(fd, json.dumps({'pid': os.getpid(), 'host': socket.gethostname(), 'started': 'now'}).encode())\n"
         "print('locked', flush=True)\n"
         "time.sleep(120)\n"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def _refused_without_tensorflow(argv: list[str]) -> str:
    """Run `finetune ARGV` in a fresh process; its one error line, after checking TensorFlow was never imported."""
    check = ("import sys; from finetune import cli; code = cli.main(sys.argv[1:]); "
             "print('TF', 'tensorflow' in sys.modules); sys.exit(code)")
    result = subprocess.run([sys.executable, "-c", check, *argv], cwd=REPO, capture_output=True, text=True,
                            timeout=TIMEOUT)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "TF False", result.stdout[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("finetune: error:"), result.stderr
    return lines[0]


def test_a_second_run_on_a_busy_train_dir_is_refused_before_tensorflow(dataset, pretrained, tmp_path):
    run = tmp_path / "run"
    holder = _hold_lock(run)
    try:
        line = _refused_without_tensorflow([*FLAGS, "--dataset", dataset, "--ckpt", pretrained, "--train-dir",
                                            str(run), "--max-steps", "2"])
        assert f"{run} is in use by pid {holder.pid} on " in line and "train.lock" in line
        assert sorted(p.name for p in run.iterdir()) == ["train.lock"]
    finally:
        holder.kill()
        holder.wait()


def test_a_second_recipe_run_on_a_busy_plan_dir_is_refused_before_touching_it(dataset, pretrained, tmp_path):
    plan = tmp_path / "plan"
    holder = _hold_lock(plan)
    (plan / "all").mkdir()
    (plan / "all" / "work").write_text("a stage's files, which --restart-from all would remove")
    try:
        line = _refused_without_tensorflow(["--recipe", "flowers_mobilenet_v1", "--net", NET, "--image-size", "32",
                                            "--ckpt", pretrained, "--dataset", dataset, "--max-steps", "2",
                                            "--train-dir", str(plan), "--restart-from", "all"])
        assert f"{plan} is in use by pid {holder.pid} on " in line
        assert (plan / "all" / "work").is_file() and not (plan / "plan.json").exists()
    finally:
        holder.kill()
        holder.wait()


# -- SIGTERM: saved, summarised and gone within a scheduler's grace period ----------------------------------------


@pytest.mark.slow
def test_sigterm_before_the_first_step_exits_at_once_saving_nothing(dataset, pretrained, tmp_path):
    run, log = tmp_path / "run", tmp_path / "run.log"
    process = _start(_command(dataset, pretrained, run, "--max-steps", "100000", "--save-interval-secs", "3600",
                              "--skip-eval"), log)
    try:
        deadline = time.monotonic() + TIMEOUT
        while "finetune: " + NET + " on " not in log.read_text():  # resolved: the graph is being built now
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=TIMEOUT)
    finally:
        _stop(process)
    text = log.read_text()
    assert code == 143 and "Traceback" not in text, text[-3000:]
    assert "Stopped by SIGTERM before the first step: nothing new to save" in text
    assert not list(run.glob("model.ckpt-*")) and not (run / "run_summary.json").exists()
    assert not (run / "train.lock").exists()


class _SigtermDuringValidation:
    """A final validation that gets SIGTERM (a real signal to this process) and would then take a minute."""

    def __init__(self):
        self.calls = 0

    def __call__(self, run_dir, checkpoint, info, batch_size) -> float:
        self.calls += 1
        if self.calls == 1:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(60)
        return 0.75


def test_sigterm_during_the_final_validation_skips_it_and_a_rerun_completes_the_summary(dataset, pretrained,
                                                                                          tmp_path, capsys):
    from finetune.config import RunConfig
    from finetune.train import loop as train

    config = RunConfig(net=NET, dataset=dataset, ckpt=pretrained, train_dir=str(tmp_path / "run"), trainable="logits",
                       batch_size=4, image_size=32, max_steps=2)
    validate = _SigtermDuringValidation()
    began = time.monotonic()
    summary = train.train(config, validate=validate)
    assert time.monotonic() - began < 50  # not the minute the validation would have taken
    assert (summary["stopped"], summary["validation_accuracy"]) == ("terminated", None)
    assert summary["validation"] == "skipped: stopped by SIGTERM" and summary["final_step"] == 2
    assert json.loads((tmp_path / "run" / "run_summary.json").read_text())["validation"] == summary["validation"]
    assert "skipped the final validation" in capsys.readouterr().out
    rerun = train.train(config, validate=validate)  # nothing to train: the summary is completed, numbers kept
    assert (rerun["stopped"], rerun["validation_accuracy"], rerun["validation"]) == ("max_steps", 0.75, "done")
    assert {k: v for k, v in rerun.items() if not k.startswith(("validation", "stopped"))} == \
        {k: v for k, v in summary.items() if not k.startswith(("validation", "stopped"))}
    assert json.loads((tmp_path / "run" / "run_summary.json").read_text()) == rerun
    assert "run_summary.json completed (validation done)" in capsys.readouterr().out


@pytest.mark.slow
def test_sigterm_while_training_saves_and_summarises_promptly(dataset, pretrained, tmp_path):
    run, log = tmp_path / "run", tmp_path / "run.log"
    process = _start(_command(dataset, pretrained, run, "--max-steps", "100000", "--save-interval-secs", "3600"), log)
    try:
        _wait_for_training(run, process, log)
        time.sleep(1.0)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=TIMEOUT)
        seconds = time.monotonic() - signalled
    finally:
        _stop(process)
    text = log.read_text()
    assert code == 143 and "Traceback" not in text, text[-3000:]
    summary = json.loads((run / "run_summary.json").read_text())
    assert summary["stopped"] == "terminated" and _steps(run) == [summary["final_step"]]
    assert (summary["validation_accuracy"], summary["validation"]) == (None, "skipped: stopped by SIGTERM")
    assert seconds < 20, seconds
