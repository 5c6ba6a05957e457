"""nets/compat.py's `ops.Tensor` fix: still needed on this TensorFlow, and what it makes work."""

import subprocess
import sys

import pytest

from nets.compat import slim, tf


@pytest.mark.slow
def test_tensorflow_alone_has_no_ops_tensor():
    code = "from tensorflow.python.framework import ops; print(hasattr(ops, 'Tensor'))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.strip() == "False"  # remove the fix once this fails


def test_batch_norm_updating_in_place_builds(graph):
    net = slim.batch_norm(tf.placeholder(tf.float32, [2, 4]), updates_collections=None, is_training=True)
    assert net.shape.as_list() == [2, 4] and not tf.get_collection(tf.GraphKeys.UPDATE_OPS)
