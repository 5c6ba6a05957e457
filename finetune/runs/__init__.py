"""Runs: the train dir's contract (`RunDir`, the one owner of its files), the formats it writes with
(`files`: atomic writes, the one-name-a-line labels.txt) and `TrainedModel`, a trained checkpoint with
what rebuilds its inference graph.

Imports `checkpoints` and `nets`; nothing of train, serve, recipe or bench.
"""
