"""Serve: what a trained model is used for: evaluation, the serving graph and its freezing, export
with verification, prediction, and the TF Hub export.

Imports `runs`, `data`, `checkpoints` and `nets`; never train, recipe or bench.
"""
