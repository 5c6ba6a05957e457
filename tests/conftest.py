import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from nets.compat import tf  # noqa: E402

tf.disable_eager_execution()


@pytest.fixture
def graph():
    """A fresh default graph for one test."""
    with tf.Graph().as_default() as g:
        yield g
