"""Training on several machines with TensorFlow's own distributed runtime, described by `TF_CONFIG`.

    TF_CONFIG='{"cluster": {"ps": ["host0:2222"], "worker": ["host1:2222", "host2:2222"]},
                "task": {"type": "worker", "index": 0}}' finetune --net ... --dataset ...

Every task runs the same command with its own TF_CONFIG. A `ps` task serves variables until it is
killed; each worker builds the usual graph under `replica_device_setter` (variables on the ps tasks,
ops on the worker) and trains through its own `tf.distribute.Server`. The chief (the `chief` task,
else worker 0) initializes the variables, restores the pretrained checkpoint and writes the
checkpoints, summaries and run files; the other workers only train. Without TF_CONFIG, `from_env`
is None and training runs in one process, as before.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from nets.compat import tf

TF_CONFIG = "TF_CONFIG"
PS, WORKER, CHIEF = "ps", "worker", "chief"
_TASK_TYPES = (PS, WORKER, CHIEF)
DEFAULT_STOP_GRACE_SECS = 120  # MonitoredSession's
SYNC_STOP_GRACE_SECS = 2


@dataclass(frozen=True)
class Cluster:
    """The cluster (job name -> host:port list) and which task of it this process is."""

    jobs: dict[str, list[str]]
    task_type: str
    task_index: int

    @property
    def spec(self) -> tf.train.ClusterSpec:
        return tf.train.ClusterSpec(self.jobs)

    @property
    def is_ps(self) -> bool:
        return self.task_type == PS

    @property
    def is_chief(self) -> bool:
        """The `chief` task, or worker 0 when the cluster has no chief job."""
        return self.task_type == CHIEF or (self.task_type == WORKER and self.task_index == 0 and CHIEF not in self.jobs)

    @property
    def num_workers(self) -> int:
        """Tasks that train (workers and chief): the replicas whose gradients sync replicas aggregates."""
        return len(self.jobs.get(WORKER, [])) + len(self.jobs.get(CHIEF, []))

    @property
    def replica(self) -> int:
        """This worker's number among the training tasks: the chief 0, then the workers."""
        return self.task_index + (1 if CHIEF in self.jobs and self.task_type == WORKER else 0)

    @property
    def device(self) -> str:
        """This task's device prefix, e.g. '/job:worker/task:1'."""
        return f"/job:{self.task_type}/task:{self.task_index}"


def parse_tf_config(text: str) -> Cluster:
    """A Cluster from TF_CONFIG's JSON; ValueError in one line naming what is wrong."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{TF_CONFIG} is not valid JSON ({error}): set it to "
                         '{"cluster": {"ps": [...], "worker": [...]}, "task": {"type": ..., "index": ...}}.') from None
    jobs = value.get("cluster") if isinstance(value, dict) else None
    task = value.get("task") if isinstance(value, dict) else None
    if not isinstance(jobs, dict) or not isinstance(task, dict):
        raise ValueError(f'{TF_CONFIG} needs a "cluster" object and a "task" object, got {text!r}.')
    unknown = sorted(set(jobs) - set(_TASK_TYPES))
    if unknown or not all(isinstance(hosts, list) and hosts and all(isinstance(h, str) for h in hosts)
                          for hosts in jobs.values()):
        raise ValueError(f"{TF_CONFIG} cluster must map {', '.join(_TASK_TYPES)} to non-empty lists of host:port "
                         f"strings, got {json.dumps(jobs)}.")
    if PS not in jobs or not (WORKER in jobs or CHIEF in jobs):
        raise ValueError(f"{TF_CONFIG} cluster needs a 'ps' job and a 'worker' (or 'chief') job, got {sorted(jobs)}.")
    task_type, task_index = task.get("type"), task.get("index", 0)
    if task_type not in jobs or not isinstance(task_index, int) or not 0 <= task_index < len(jobs[task_type]):
        raise ValueError(f"{TF_CONFIG} task {json.dumps(task)} is not in the cluster "
                         f"({', '.join(f'{job}: {len(hosts)}' for job, hosts in jobs.items())}).")
    return Cluster({job: list(hosts) for job, hosts in jobs.items()}, task_type, task_index)


def from_env(environ: Mapping[str, str] = os.environ) -> Cluster | None:
    """The cluster TF_CONFIG describes; None when TF_CONFIG is unset or has no cluster (one process)."""
    text = environ.get(TF_CONFIG, "").strip()
    if not text:
        return None
    with contextlib.suppress(json.JSONDecodeError):
        value = json.loads(text)
        if isinstance(value, dict) and not value.get("cluster"):
            return None
    return parse_tf_config(text)


def start_server(cluster: Cluster) -> tf.train.Server:
    """This task's in-process server (tf.distribute.Server), started."""
    return tf.train.Server(cluster.spec, job_name=cluster.task_type, task_index=cluster.task_index, start=True)


def serve(cluster: Cluster) -> None:
    """Run a ps task: serve variables to the workers until the process is killed."""
    server = start_server(cluster)
    print(f"finetune: parameter server {cluster.device} serving on {server.target}; stop it when training ends.",
          flush=True)
    server.join()


@contextlib.contextmanager
def device_scope(cluster: Cluster | None) -> Iterator[None]:
    """Variables on the ps tasks and ops on this worker (replica_device_setter); nothing without a cluster."""
    if cluster is None:
        yield
        return
    with tf.device(tf.train.replica_device_setter(cluster=cluster.spec, worker_device=cluster.device)):
        yield


def input_device(cluster: Cluster | None) -> str:
    """Where the input pipeline and its local counters run: this task's CPU (never the ps)."""
    return f"{cluster.device}/cpu:0" if cluster else "/cpu:0"


def session_config(cluster: Cluster, config: tf.ConfigProto) -> tf.ConfigProto:
    """`config` limited to the ps tasks and this worker, so a worker never waits for the other workers."""
    config.device_filters.extend([f"/job:{PS}", cluster.device])
    return config


def sync_replicas(optimizer: tf.train.Optimizer, cluster: Cluster) -> tf.train.SyncReplicasOptimizer:
    """`optimizer` applying, once per step, the gradients of every worker averaged (synchronous training)."""
    return tf.train.SyncReplicasOptimizer(optimizer, replicas_to_aggregate=cluster.num_workers,
                                          total_num_replicas=cluster.num_workers)


def sync_hooks(optimizer: tf.train.Optimizer | None, is_chief: bool) -> list[tf.train.SessionRunHook]:
    """The hook a SyncReplicasOptimizer needs (the chief's aggregation queue runner, the tokens); else none."""
    if isinstance(optimizer, tf.train.SyncReplicasOptimizer):
        return [optimizer.make_session_run_hook(is_chief)]
    return []


def stop_grace_secs(optimizer: tf.train.Optimizer | None) -> int:
    """How long a closing session waits for its threads: TensorFlow's 120 s, a few with sync replicas, whose
    chief queue runner waits for gradients that never come after the last step (closing the session ends it)."""
    return SYNC_STOP_GRACE_SECS if isinstance(optimizer, tf.train.SyncReplicasOptimizer) else DEFAULT_STOP_GRACE_SECS


def session_creator(cluster: Cluster | None, server: tf.train.Server | None, scaffold: tf.train.Scaffold,
                    config: tf.ConfigProto, checkpoint: str | None) -> tf.train.SessionCreator:
    """The chief initializes (restoring `checkpoint`, else running scaffold.init_fn); the other workers wait
    for it. Without a cluster: an in-process chief session, as in one-machine training."""
    if cluster is None:
        return tf.train.ChiefSessionCreator(scaffold=scaffold, config=config, checkpoint_filename_with_path=checkpoint)
    config = session_config(cluster, config)
    if cluster.is_chief:
        return tf.train.ChiefSessionCreator(scaffold=scaffold, master=server.target, config=config,
                                            checkpoint_filename_with_path=checkpoint)
    return tf.train.WorkerSessionCreator(scaffold=scaffold, master=server.target, config=config)


__all__ = ["Cluster", "device_scope", "from_env", "input_device", "parse_tf_config", "serve", "session_config",
           "session_creator", "start_server", "stop_grace_secs", "sync_hooks", "sync_replicas"]
