"""Bench: the benchmarks behind `finetune bench`. A leaf: only `finetune.commands.bench` imports it."""
