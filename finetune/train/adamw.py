"""AdamW for tf.compat.v1 graphs (registered as the `adamw` optimizer in finetune/optim.py).

A module of its own because the class derives from TensorFlow's Adam: finetune/optim.py, which lists the
optimizers for `finetune --help`, stays importable without TensorFlow.
"""

from __future__ import annotations

from nets.compat import tf


class AdamWOptimizer(tf.train.AdamOptimizer):
    """Adam with decoupled weight decay (Loshchilov & Hutter): `w -= lr * weight_decay * w`, then Adam.

    tf.compat.v1 has no AdamW on TF 2.21 (it lived in tf.contrib), so the decay is one extra
    `assign_sub` per variable that runs before the Adam step, the order PyTorch's AdamW uses.
    The decay is scaled by the (scheduled) learning rate and applies only to variables of rank >= 2
    (conv and dense kernels), not to biases and BatchNorm's beta/gamma, as timm filters them.
    """

    def __init__(self, learning_rate, weight_decay: float, beta1: float, beta2: float, epsilon: float,
                 name: str = "AdamW"):
        super().__init__(learning_rate, beta1=beta1, beta2=beta2, epsilon=epsilon, name=name)
        self._weight_decay = weight_decay

    def apply_gradients(self, grads_and_vars, global_step=None, name=None):
        grads_and_vars = list(grads_and_vars)
        decay_ops = []
        with tf.name_scope(f"{self.get_name()}_decay"):
            for grad, var in grads_and_vars:
                if grad is None or var.shape.ndims is None or var.shape.ndims < 2 or not self._weight_decay:
                    continue
                rate = tf.cast(_as_tensor(self._lr) * self._weight_decay, var.dtype.base_dtype)
                with tf.colocate_with(var):
                    decay_ops.append(var.assign_sub(rate * var, read_value=False))
        with tf.control_dependencies(decay_ops):
            return super().apply_gradients(grads_and_vars, global_step=global_step, name=name)


def _as_tensor(value):
    return value() if callable(value) else value
