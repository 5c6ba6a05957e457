"""Cluster training through TF_CONFIG: a ps and two workers on 127.0.0.1 run the usual `finetune` command."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers.runs import QUICK_NET as NET
from helpers.runs import checkpoint_values as _values

from finetune.config import RunConfig
from finetune.train import cluster
from finetune.train import loop as train
from nets.compat import tf

pytestmark = pytest.mark.slow  # a ps and two workers in their own processes

SMALL = ["--net", NET, "--image-size", "32", "--batch-size", "4", "--save-interval-secs", "3600", "--skip-eval"]
MAX_STEPS = 3
ASYNC_MAX_STEPS = 100_000  # never reached: the async test stops its tasks
SAVE_EVERY = 50  # steps, async test
STALL = 240  # seconds without any task moving (a log growing, a checkpoint appearing) before a wait fails
HARD_TIMEOUT = 900  # seconds for a whole cluster test
REPO = Path(__file__).resolve().parent.parent


def test_parse_tf_config_reads_jobs_task_and_chief():
    jobs = {"ps": ["h0:1"], "worker": ["h1:1", "h2:1"]}
    first = cluster.parse_tf_config(json.dumps({"cluster": jobs, "task": {"type": "worker", "index": 0}}))
    second = cluster.parse_tf_config(json.dumps({"cluster": jobs, "task": {"type": "worker", "index": 1}}))
    assert first.is_chief and not second.is_chief and second.device == "/job:worker/task:1"
    assert first.num_workers == 2 and second.replica == 1
    with_chief = cluster.parse_tf_config(json.dumps({"cluster": {**jobs, "chief": ["h3:1"]},
                                                     "task": {"type": "worker", "index": 0}}))
    assert not with_chief.is_chief and with_chief.num_workers == 3 and with_chief.replica == 1
    ps = cluster.parse_tf_config(json.dumps({"cluster": jobs, "task": {"type": "ps", "index": 0}}))
    assert ps.is_ps and not ps.is_chief
    assert cluster.from_env({}) is None and cluster.from_env({"TF_CONFIG": '{"task": {}}'}) is None


@pytest.mark.parametrize("text, words", [
    ('{"cluster": {"ps": ["h:1"], "worker": ["h:2"]}, "task": ', "not valid JSON"),
    ('{"cluster": {"ps": ["h:1"], "worker": ["h:2"]}, "task": {"type": "worker", "index": 1}}', "not in the cluster"),
    ('{"cluster": {"ps": ["h:1"], "gpu": ["h:2"]}, "task": {"type": "ps", "index": 0}}', "non-empty lists"),
    ('{"cluster": {"worker": ["h:2"]}, "task": {"type": "worker", "index": 0}}', "needs a 'ps' job"),
    ('{"cluster": {"ps": ["h:1"], "worker": ["h:2"]}}', '"task" object'),
])
def test_malformed_tf_config_is_a_one_line_error(text, words):
    with pytest.raises(ValueError, match=words) as error:
        cluster.from_env({"TF_CONFIG": text})
    assert "TF_CONFIG" in str(error.value) and "\n" not in str(error.value)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _checkpoint_step(train_dir: Path) -> int:
    """The step of the newest checkpoint the state file names (-1: none yet)."""
    latest = tf.train.latest_checkpoint(str(train_dir))
    return int(latest.rsplit("-", 1)[1]) if latest else -1


class _LocalCluster:
    """A ps and two workers of one `finetune` command on 127.0.0.1, each task a process with its own log.

    `wait` polls a condition and gives up only when nothing moves (no log grows, no checkpoint appears)
    for STALL seconds, or after HARD_TIMEOUT in all: a loaded machine slows a run down without stopping it.
    """

    def __init__(self, tmp_path: Path, command: list[str]):
        self.tmp_path, self.command = tmp_path, command
        self.jobs = {"ps": [], "worker": []}
        for job, port in zip(["ps", "worker", "worker"], _free_ports(3)):
            self.jobs[job].append(f"127.0.0.1:{port}")
        self.processes: dict[str, subprocess.Popen] = {}
        self.starts: dict[str, int] = {}
        self.deadline = time.monotonic() + HARD_TIMEOUT

    def log(self, name: str, start: int | None = None) -> Path:
        """The log of the task's latest start (or of start number `start`)."""
        return self.tmp_path / f"{name}.{self.starts[name] if start is None else start}.log"

    def start(self, job: str, index: int) -> subprocess.Popen:
        name = f"{job}{index}"
        self.starts[name] = self.starts.get(name, 0) + 1
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": self.jobs, "task": {"type": job, "index": index}})}
        with open(self.log(name), "w") as log:  # the child keeps its own handle
            self.processes[name] = subprocess.Popen(self.command, env=env, cwd=REPO, stdout=log,
                                                    stderr=subprocess.STDOUT)
        return self.processes[name]

    def kill(self, name: str) -> None:
        self.processes[name].send_signal(signal.SIGKILL)
        self.processes[name].wait(timeout=30)

    def text(self, name: str, start: int | None = None) -> str:
        return self.log(name, start).read_text(errors="replace")

    def steps(self, name: str) -> list[int]:
        """The global steps the task's progress bar showed after steps it ran, since its latest start (the bar's
        first display is where it starts, before any step)."""
        return [int(step) for step in re.findall(rf"(\d+)/{self.max_steps} \[", self.text(name))][1:]

    @property
    def max_steps(self) -> int:
        return int(self.command[self.command.index("--max-steps") + 1])

    def _activity(self, train_dir: Path) -> tuple:
        logs = sorted(self.tmp_path.glob("*.log"))
        return tuple(p.stat().st_size for p in logs) + tuple(sorted(p.name for p in train_dir.glob("*.index")))

    def wait(self, condition, what: str, train_dir: Path, alive: tuple[str, ...] = ()) -> None:
        """Until condition() holds; fails naming `what` if a task in `alive` exits or the run stalls."""
        last, moved = self._activity(train_dir), time.monotonic()
        while not condition():
            for name in alive:
                assert self.processes[name].poll() is None, f"{name} exited before {what}:\n{self.text(name)[-3000:]}"
            now = time.monotonic()
            assert now < self.deadline, f"{what}: not after {HARD_TIMEOUT} s"
            activity = self._activity(train_dir)
            if activity != last:
                last, moved = activity, now
            assert now - moved < STALL, f"{what}: nothing moved for {STALL} s"
            time.sleep(0.5)

    def finish(self, names: tuple[str, ...], train_dir: Path) -> list[int]:
        """The exit codes of `names`, waited for as long as the run keeps moving."""
        self.wait(lambda: all(self.processes[n].poll() is not None for n in names), "the workers' exit", train_dir)
        return [self.processes[n].returncode for n in names]

    def close(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)


def test_ps_and_two_sync_workers_train_the_chiefs_checkpoint(dataset, tmp_path):
    data = Path(dataset)
    source = train.train(RunConfig(net=NET, dataset=str(data), train_dir=str(tmp_path / "source"), trainable="all",
                                   batch_size=4, image_size=32, max_steps=2, skip_eval=True,
                                   save_interval_secs=3600), verbose=False)["checkpoint"]
    train_dir = tmp_path / "run"
    command = [sys.executable, "-m", "finetune.cli", *SMALL, "--dataset", str(data), "--train-dir", str(train_dir),
               "--max-steps", str(MAX_STEPS), "--trainable", "logits", "--learning-rate", "0.1", "--ckpt", source,
               "--sync-replicas"]
    tasks = _LocalCluster(tmp_path, command)
    try:
        tasks.start("ps", 0)
        tasks.start("worker", 0)
        # The chief initializes first: a worker started before it would poll again only after 30 s.
        tasks.wait((train_dir / "graph.pbtxt").exists, "the chief's initialized session (graph.pbtxt)", train_dir,
                   alive=("ps0", "worker0"))
        tasks.start("worker", 1)
        codes = tasks.finish(("worker0", "worker1"), train_dir)
        assert tasks.processes["ps0"].poll() is None, "the ps serves until it is stopped"
    finally:
        tasks.close()
    logs = {name: tasks.text(name)[-2000:] for name in ("worker0", "worker1")}
    assert codes == [0, 0], logs
    assert "parameter server /job:ps/task:0" in tasks.text("ps0")

    final = tf.train.latest_checkpoint(str(train_dir))
    assert final == str(train_dir / f"model.ckpt-{MAX_STEPS}")
    assert json.loads((train_dir / "run_summary.json").read_text())["final_step"] == MAX_STEPS
    pretrained, trained = _values(source), _values(final)
    net_names = {n for n in pretrained if n.startswith("MobilenetV1/") and not n.endswith("/Momentum")}
    assert net_names <= set(trained)
    assert not any(n.startswith(("job:", "ps", "worker", "task")) or "/task:" in n for n in trained)
    frozen = [n for n in net_names if not n.startswith("MobilenetV1/Logits")]
    assert frozen and any(n.endswith("moving_mean") for n in frozen)
    for name in frozen:
        np.testing.assert_array_equal(trained[name], pretrained[name], err_msg=name)
    classifier = [n for n in net_names if n.startswith("MobilenetV1/Logits")]
    assert classifier and all(not np.array_equal(trained[n], pretrained[n]) for n in classifier)


@pytest.mark.slow
def test_async_cluster_survives_a_killed_worker_and_a_killed_chief(dataset, tmp_path):
    """SIGKILL worker 1: the chief keeps training, and worker 1 restarted with the same command rejoins.
    SIGKILL the chief: worker 1 keeps training, and the chief restarted resumes from its last checkpoint.

    The run is far longer than the test (a restart takes as long as hundreds of steps of this tiny net);
    the test watches each phase happen, then stops the tasks."""
    data = Path(dataset)
    train_dir = tmp_path / "run"
    command = [sys.executable, "-m", "finetune.cli", *SMALL, "--dataset", str(data), "--train-dir", str(train_dir),
               "--max-steps", str(ASYNC_MAX_STEPS), "--trainable", "all", "--save-interval-steps", str(SAVE_EVERY)]
    tasks = _LocalCluster(tmp_path, command)
    all_tasks = ("ps0", "worker0", "worker1")
    try:
        tasks.start("ps", 0)
        tasks.start("worker", 0)
        tasks.wait((train_dir / "graph.pbtxt").exists, "the chief's initialized session (graph.pbtxt)", train_dir,
                   alive=("ps0", "worker0"))
        tasks.start("worker", 1)
        tasks.wait(lambda: len(tasks.steps("worker1")) >= 3, "worker 1's first steps", train_dir, alive=all_tasks)

        tasks.kill("worker1")
        killed_at = _checkpoint_step(train_dir)
        tasks.wait(lambda: _checkpoint_step(train_dir) >= killed_at + 2 * SAVE_EVERY,
                   "the chief's checkpoints without worker 1", train_dir, alive=("ps0", "worker0"))
        tasks.start("worker", 1)
        tasks.wait(lambda: len(tasks.steps("worker1")) >= 3, "the restarted worker 1's steps", train_dir,
                   alive=all_tasks)
        rejoined = tasks.steps("worker1")[0]
        assert rejoined > killed_at + 2 * SAVE_EVERY, "worker 1 rejoined the running job at its global step"

        tasks.wait(lambda: _checkpoint_step(train_dir) > rejoined, "a checkpoint after worker 1 rejoined",
                   train_dir, alive=all_tasks)
        tasks.kill("worker0")
        last_checkpoint = _checkpoint_step(train_dir)
        seen = len(tasks.steps("worker1"))
        tasks.wait(lambda: len(tasks.steps("worker1")) >= seen + 30, "worker 1's steps without the chief",
                   train_dir, alive=("ps0", "worker1"))
        alone = max(tasks.steps("worker1"))
        tasks.start("worker", 0)
        tasks.wait(lambda: len(tasks.steps("worker0")) >= 3 and _checkpoint_step(train_dir) > last_checkpoint,
                   "the restarted chief's steps and checkpoint", train_dir, alive=all_tasks)
        assert all(tasks.processes[name].poll() is None for name in all_tasks)
    finally:
        tasks.close()
    chief = tasks.text("worker0")
    assert f"Resuming from {train_dir / f'model.ckpt-{last_checkpoint}'} (step {last_checkpoint} of " \
           f"{ASYNC_MAX_STEPS})" in chief, chief[-3000:]
    # The chief restored the checkpoint's values on the ps: worker 1, which had gone on without the chief,
    # saw the global step go back to just after the checkpoint's.
    steps = tasks.steps("worker1")
    rewound = [after for before, after in zip(steps, steps[1:]) if after < before]
    assert len(rewound) == 1 and last_checkpoint < rewound[0] < alone, (last_checkpoint, alone, steps)
    assert _checkpoint_step(train_dir) > last_checkpoint
