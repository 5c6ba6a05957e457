import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from nets.compat import tf  # noqa: E402

tf.disable_eager_execution()
# Graph mode compares tensors by identity anyway; without TF2's per-hash eager check, building a deep net is
# no longer quadratic in its variables (keras' legacy layers hash all globals per weight): resnet_v1_200 ~3x faster.
tf.disable_tensor_equality()


@pytest.fixture
def graph():
    """A fresh default graph for one test."""
    with tf.Graph().as_default() as g:
        yield g
