"""Cluster training through TF_CONFIG: a ps and two workers on 127.0.0.1 run the usual `finetune` command."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from finetune import cluster, synthetic, train
from finetune.config import RunConfig
from nets.compat import tf

pytestmark = pytest.mark.slow  # a ps and two workers in their own processes

NET = "mobilenet_v1_025"
SMALL = ["--net", NET, "--image-size", "32", "--batch-size", "4", "--save-interval-secs", "3600", "--skip-eval"]
MAX_STEPS = 3
TIMEOUT = 90  # seconds, per process
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


def _values(checkpoint: str) -> dict[str, np.ndarray]:
    reader = tf.train.load_checkpoint(checkpoint)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def _wait_for(path: Path, processes: list[subprocess.Popen], deadline: float) -> None:
    """Until `path` exists; fails if a process ended or the deadline passed first."""
    while not path.exists():
        assert all(p.poll() is None for p in processes), f"a task exited before {path.name} appeared"
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.2)


def test_ps_and_two_sync_workers_train_the_chiefs_checkpoint(tmp_path):
    data = synthetic.write_shapes_dataset(tmp_path / "data", ["plus", "x"], train_per_class=6, validation_per_class=2,
                                          image_size=36, seed=1)
    source = train.train(RunConfig(net=NET, dataset=str(data), train_dir=str(tmp_path / "source"), trainable="all",
                                   batch_size=4, image_size=32, max_steps=2, skip_eval=True,
                                   save_interval_secs=3600), verbose=False)["checkpoint"]
    train_dir = tmp_path / "run"
    jobs = {"ps": [], "worker": []}
    for job, port in zip(["ps", "worker", "worker"], _free_ports(3)):
        jobs[job].append(f"127.0.0.1:{port}")
    command = [sys.executable, "-m", "finetune.cli", *SMALL, "--dataset", str(data), "--train-dir", str(train_dir),
               "--max-steps", str(MAX_STEPS), "--trainable", "logits", "--learning-rate", "0.1", "--ckpt", source,
               "--sync-replicas"]

    def start(job: str, index: int) -> subprocess.Popen:
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": jobs, "task": {"type": job, "index": index}})}
        with open(tmp_path / f"{job}{index}.log", "w") as log:  # the child keeps its own handle
            return subprocess.Popen(command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)

    processes = []
    deadline = time.monotonic() + TIMEOUT
    try:
        processes.append(start("ps", 0))
        processes.append(start("worker", 0))
        # The chief initializes first: a worker started before it would poll again only after 30 s.
        _wait_for(train_dir / "graph.pbtxt", processes, deadline)  # written once the session is initialized
        processes.append(start("worker", 1))
        codes = [p.wait(timeout=max(1.0, deadline - time.monotonic())) for p in processes[1:]]
        assert processes[0].poll() is None, "the ps serves until it is stopped"
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
    logs = {name: (tmp_path / f"{name}.log").read_text()[-2000:] for name in ("worker0", "worker1")}
    assert codes == [0, 0], logs
    assert "parameter server /job:ps/task:0" in (tmp_path / "ps0.log").read_text()

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
