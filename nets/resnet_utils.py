"""TF-Slim's `nets/resnet_utils.py`: `Block`, `conv2d_same`, `subsample`, `stack_blocks_dense`, `resnet_arg_scope`.

The building blocks are tf_slim.nets.resnet_utils' (the same published API). `resnet_arg_scope` takes the
arguments TF-Slim's research version added after tf_slim 1.1.0 (activation_fn, use_batch_norm,
batch_norm_updates_collections), with the same defaults.
"""

from __future__ import annotations

from collections.abc import Callable

from tf_slim.nets.resnet_utils import Block, conv2d_same, stack_blocks_dense, subsample

from nets.compat import slim, tf

__all__ = ["Block", "conv2d_same", "resnet_arg_scope", "stack_blocks_dense", "subsample"]


def resnet_arg_scope(
    weight_decay: float = 0.0001,
    batch_norm_decay: float = 0.997,
    batch_norm_epsilon: float = 1e-5,
    batch_norm_scale: bool = True,
    activation_fn: Callable = tf.nn.relu,
    use_batch_norm: bool = True,
    batch_norm_updates_collections: str | None = tf.GraphKeys.UPDATE_OPS,
) -> dict:
    """TF-Slim's ResNet arg scope: L2 decay and variance-scaling init on the convolutions, BatchNorm after them,
    SAME max pooling. The published ResNet checkpoints have BatchNorm gammas (batch_norm_scale=True)."""
    batch_norm_params = {
        "decay": batch_norm_decay,
        "epsilon": batch_norm_epsilon,
        "scale": batch_norm_scale,
        "updates_collections": batch_norm_updates_collections,
        "fused": None,  # the fused kernel whenever the input allows it
    }
    with (
        slim.arg_scope(
            [slim.conv2d],
            weights_regularizer=slim.l2_regularizer(weight_decay),
            weights_initializer=slim.variance_scaling_initializer(),
            activation_fn=activation_fn,
            normalizer_fn=slim.batch_norm if use_batch_norm else None,
            normalizer_params=batch_norm_params,
        ),
        slim.arg_scope([slim.batch_norm], **batch_norm_params),
        slim.arg_scope([slim.max_pool2d], padding="SAME") as scope,  # 'SAME' pooling, as the published models
    ):
        return scope
