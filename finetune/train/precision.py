"""`--precision` policies: float32 master variables, computation in a lower precision.

TensorFlow is imported on first use, so the CLI can list the policies (in `--help`) without it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Precision:
    """A `--precision` policy: float32 master variables, computation in compute_dtype.

    Mixed precision is a variable-scope custom getter: a layer asking for a compute_dtype variable
    gets a float32 variable (same name, so checkpoints restore unchanged) read through a cast,
    while float32 requests (BatchNorm's parameters and statistics) get float32. Cast the inputs
    with `cast`, build the net inside `scope()`, cast the logits back to float32 for the loss.
    float16 needs loss scaling against underflowing gradients: `wrap_optimizer` adds TF's
    dynamic loss scale (steps with non-finite gradients are skipped and the scale halves).
    """

    name: str
    compute_dtype: str  # a TensorFlow dtype name
    loss_scale: str | None = None

    @property
    def is_mixed(self) -> bool:
        return self.compute_dtype != "float32"

    def cast(self, tensor):
        """tensor in the compute dtype (floating tensors only; others unchanged)."""
        from nets.compat import tf

        if self.is_mixed and tensor.dtype.is_floating:
            return tf.cast(tensor, self.compute_dtype)
        return tensor

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """Within it, compute_dtype variables are float32 variables cast on read."""
        from nets.compat import tf

        if not self.is_mixed:
            yield
            return
        with tf.variable_scope(tf.get_variable_scope(), custom_getter=self._getter, auxiliary_name_scope=False):
            yield

    def _getter(self, getter, *args, dtype=None, **kwargs):
        from nets.compat import tf

        if dtype is None or tf.as_dtype(dtype).base_dtype != tf.as_dtype(self.compute_dtype):
            return getter(*args, dtype=dtype, **kwargs)
        variable = getter(*args, dtype=tf.float32, **kwargs)
        return tf.cast(variable, self.compute_dtype)

    def wrap_optimizer(self, optimizer):
        """The optimizer with loss scaling when this precision needs it (float16), else itself."""
        from nets.compat import tf

        if self.loss_scale is None:
            return optimizer
        return tf.mixed_precision.MixedPrecisionLossScaleOptimizer(optimizer, loss_scale=self.loss_scale)


PRECISIONS: dict[str, Precision] = {
    p.name: p
    for p in (
        Precision("float32", "float32"),
        Precision("mixed_float16", "float16", loss_scale="dynamic"),
        Precision("mixed_bfloat16", "bfloat16"),
    )
}


def get_precision(name: str) -> Precision:
    """The policy for a `--precision` value (`PRECISIONS`)."""
    if name not in PRECISIONS:
        raise ValueError(f"Unknown precision {name!r}; choose one of: {', '.join(PRECISIONS)}.")
    return PRECISIONS[name]
