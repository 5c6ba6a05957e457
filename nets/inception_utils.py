"""TF-Slim's `nets/inception_utils.py`: `inception_arg_scope`, the arg scope every Inception net shares.

Same signature and defaults as TF-Slim's (2020): L2 weight decay on convolutions and fully connected layers,
variance-scaling initializer, BatchNorm after every convolution (without gamma unless batch_norm_scale).
The published Inception checkpoints have no BatchNorm gammas: keep batch_norm_scale=False to restore them.
"""

from __future__ import annotations

from collections.abc import Callable

from nets.compat import slim, tf


def inception_arg_scope(
    weight_decay: float = 0.00004,
    use_batch_norm: bool = True,
    batch_norm_decay: float = 0.9997,
    batch_norm_epsilon: float = 0.001,
    activation_fn: Callable = tf.nn.relu,
    batch_norm_updates_collections: str | None = tf.GraphKeys.UPDATE_OPS,
    batch_norm_scale: bool = False,
) -> dict:
    """The arg scope of TF-Slim's Inception models (see the module docstring)."""
    batch_norm_params = {
        "decay": batch_norm_decay,
        "epsilon": batch_norm_epsilon,
        "updates_collections": batch_norm_updates_collections,
        "fused": None,  # the fused kernel whenever the input allows it
        "scale": batch_norm_scale,
    }
    normalizer_fn = slim.batch_norm if use_batch_norm else None
    with (
        slim.arg_scope([slim.conv2d, slim.fully_connected], weights_regularizer=slim.l2_regularizer(weight_decay)),
        slim.arg_scope(
            [slim.conv2d],
            weights_initializer=slim.variance_scaling_initializer(),
            activation_fn=activation_fn,
            normalizer_fn=normalizer_fn,
            normalizer_params=batch_norm_params if use_batch_norm else {},
        ) as scope,
    ):
        return scope
