"""Serve: what a trained model is used for: evaluation (`evaluate`), the serving graph and its freezing
(`graph`), the served-model loader of predict, verification and the benchmarks (`served`), the
verification harness (`verify`), export orchestration (`export`), prediction (`predict`), and the TF Hub
export (`hub_export`).

Imports `runs`, `data`, `checkpoints` and `nets`; never train, recipe or bench.
"""
