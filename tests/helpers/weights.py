"""Random weights that a real net could hold, for every test that makes its own checkpoint.

BatchNorm's moving variance is positive (a negative one makes the inference-mode BatchNorm of a
frozen layer take the square root of a negative number: NaN), weights are He-scaled so activations
keep their scale through deep nets, and biases, betas and moving means are small.
"""

from __future__ import annotations

import zlib

import numpy as np

from nets.compat import tf


def physical_value(name: str, shape, rng: np.random.Generator) -> np.ndarray:
    """A random float32 value for the variable `name` of `shape`, physically valid for its role."""
    shape = list(shape)
    if name.endswith("/weights") or name.endswith("/depthwise_weights"):
        fan_in = int(np.prod(shape[:-1])) or 1
        value = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
    elif name.endswith("/moving_variance"):
        value = rng.uniform(0.5, 1.5, shape)
    else:  # biases, beta, gamma, moving_mean, anything else
        value = 0.1 * rng.standard_normal(shape)
    return value.astype(np.float32)


def named_values(variables) -> dict:
    """variable -> value, each drawn from a generator seeded by the variable's name only (so a value does
    not depend on which other variables exist or their order)."""
    return {v: physical_value(v.op.name, v.shape.as_list(), np.random.default_rng(zlib.crc32(v.op.name.encode())))
            for v in variables}


def random_values(variables, seed: int = 0) -> dict[str, np.ndarray]:
    """name -> value for `variables`, drawn in order from one seeded generator."""
    rng = np.random.default_rng(seed)
    return {v.op.name: physical_value(v.op.name, v.shape.as_list(), rng) for v in variables}


def load_values(session, values: dict) -> None:
    """Assign {variable: value} in one run, feeding each variable's initializer."""
    session.run([v.initializer for v in values], {v.initializer.inputs[1]: value for v, value in values.items()})


def save_random_checkpoint(path: str, variables=None, seed: int = 0, **saver_kwargs) -> dict[str, np.ndarray]:
    """Give `variables` (default: every global variable of the default graph) physically valid random values
    and save them at `path`; return name -> saved value."""
    variables = list(tf.global_variables() if variables is None else variables)
    values = random_values(variables, seed)
    with tf.Session() as session:
        session.run(tf.global_variables_initializer())
        load_values(session, {v: values[v.op.name] for v in variables})
        tf.train.Saver(variables, **saver_kwargs).save(session, path, write_meta_graph=False)
    return values
