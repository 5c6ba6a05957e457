"""TF-Slim's `nets/resnet_utils.py`: `Block`, `conv2d_same`, `subsample`, `stack_blocks_dense`, `resnet_arg_scope`.

`Block`, `conv2d_same` and `subsample` are tf_slim.nets.resnet_utils'. `stack_blocks_dense` and `resnet_arg_scope`
take the arguments TF-Slim's research version added after tf_slim 1.1.0 (store_non_strided_activations;
activation_fn, use_batch_norm, batch_norm_updates_collections), with the same defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tf_slim.nets.resnet_utils import Block, conv2d_same, subsample

from nets.compat import slim, tf

__all__ = ["Block", "conv2d_same", "resnet_arg_scope", "stack_blocks_dense", "subsample"]


class _Density:
    """TF-Slim's output_stride rule: past output_stride, strides become atrous rates."""

    def __init__(self, output_stride: int | None):
        self.output_stride, self.current, self.rate = output_stride, 1, 1

    def reached(self) -> bool:
        return self.output_stride is not None and self.current == self.output_stride

    def advance(self, stride: int) -> None:
        self.current *= stride
        if self.output_stride is not None and self.current > self.output_stride:
            raise ValueError("The target output_stride cannot be reached.")


@slim.add_arg_scope
def stack_blocks_dense(
    net: tf.Tensor,
    blocks: Sequence[Block],
    output_stride: int | None = None,
    store_non_strided_activations: bool = False,
    outputs_collections: str | None = None,
) -> tf.Tensor:
    """Stack ResNet `blocks` (scopes `<block.scope>/unit_<i>`), as TF-Slim's: output_stride caps the stride
    (later units dilate instead); store_non_strided_activations runs each block's last unit at stride 1 and
    subsamples after the block's end point, so the end points keep the denser activations."""
    density = _Density(output_stride)
    for block in blocks:
        with tf.variable_scope(block.scope, "block", [net]) as sc:
            block_stride = 1
            for i, unit in enumerate(block.args):
                if store_non_strided_activations and i == len(block.args) - 1:
                    block_stride = unit.get("stride", 1)
                    unit = dict(unit, stride=1)
                with tf.variable_scope(f"unit_{i + 1}", values=[net]):
                    if density.reached():
                        net = block.unit_fn(net, rate=density.rate, **dict(unit, stride=1))
                        density.rate *= unit.get("stride", 1)
                    else:
                        net = block.unit_fn(net, rate=1, **unit)
                        density.advance(unit.get("stride", 1))
            net = slim.utils.collect_named_outputs(outputs_collections, sc.name, net)
            if density.reached():
                density.rate *= block_stride
            else:
                net = subsample(net, block_stride)
                density.advance(block_stride)
    if output_stride is not None and density.current != output_stride:
        raise ValueError("The target output_stride cannot be reached.")
    return net


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
