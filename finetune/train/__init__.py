"""Train: the training loop (`loop`) and what it is built from: the run resolved once (`resolve`), the
training graph and loss (`graph`), optimizers and schedules, devices and precision, the cluster, the
session's hooks, the feature cache, and how a session starts (`start`).

Imports `runs`, `data`, `checkpoints`, `nets` and `finetune.config`; never serve, recipe or bench.
"""
