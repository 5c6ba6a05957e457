"""Train: the training loop and what it is built from: the training graph and loss, optimizers and
schedules, devices and precision, the cluster, the session's hooks, the feature cache, and how a session
starts.

Imports `runs`, `data`, `checkpoints`, `nets` and `finetune.config`; never serve, recipe or bench.
"""
