"""Helpers that test modules import (test modules never import each other); fixtures live in tests/conftest.py.

- `netcheck`: a graph's variables by name, the published-size build, the quick net of each family;
- `weights`: random, physically valid weights for every test checkpoint;
- `runs`: the quick net, checkpoints read back, a train dir as training writes it, the checkpoint's own logits;
- `slow_check`: the pytest plugin behind `--check-slow` (an unmarked test over the limit fails).
"""
