"""Applying a restore plan: one RestoreV2 op reading every planned tensor, plus the assignments (sliced for
the background-class offset), grouped; and the initializer of what that op leaves.

The functions take the plan's restored entries (anything with `variable`, `checkpoint_key` and
`transform`) and the graph's variables by name; `RestorePlan.restore_op()` and
`RestorePlan.remainder_initializer()` (checkpoints/plan.py) are their callers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from checkpoints.reader import read_variables
from nets.compat import tf

DROP_BACKGROUND, ADD_BACKGROUND = "drop background row", "add background row"


def set_whole(restored: Sequence) -> list[str]:
    """Names of the variables the restore op sets whole (every value read from the checkpoint); a variable
    given a background row (ADD_BACKGROUND) keeps that row's initial value, so it is not one of them."""
    return [e.variable for e in restored if e.transform != ADD_BACKGROUND]


def build_restore_op(checkpoint: str, restored: Sequence, variables: Mapping[str, tf.Variable]):
    """One op that reads the restored entries' tensors from `checkpoint` (one RestoreV2) and assigns them."""
    import tensorflow as tf2  # after nets.compat

    dtypes = read_variables(checkpoint)
    keys = sorted({e.checkpoint_key for e in restored})
    graph = next(iter(variables.values())).graph
    with graph.as_default(), tf.name_scope("restore_plan"):
        tensors = tf2.raw_ops.RestoreV2(
            prefix=checkpoint,
            tensor_names=keys,
            shape_and_slices=[""] * len(keys),
            dtypes=[tf.as_dtype(dtypes[k].dtype) for k in keys],
        )
        by_key = dict(zip(keys, tensors))
        assigns = [_assign(variables[e.variable], e.transform, by_key[e.checkpoint_key]) for e in restored]
        return tf.group(*assigns, name="restore")


def remainder_initializer(restored: Sequence, by_name: Mapping[str, tf.Variable], variables=None):
    """An initializer of the `variables` (default: the graph's global variables) that the restore op does not
    set whole."""
    whole = set(set_whole(restored))
    graph = next(iter(by_name.values())).graph
    with graph.as_default():
        variables = tf.global_variables() if variables is None else variables
        return tf.variables_initializer([v for v in variables if v.op.name not in whole], name="init_not_restored")


def _assign(variable, transform: str | None, value):
    if value.dtype != variable.dtype.base_dtype:
        value = tf.cast(value, variable.dtype.base_dtype)
    if transform == DROP_BACKGROUND:
        return tf.assign(variable, value[..., 1:])
    if transform == ADD_BACKGROUND:
        return variable[..., 1:].assign(value)
    return tf.assign(variable, value)
