"""A small program written the TF-Slim way runs unchanged on this package: it imports `nets.*` the way
research/slim users do, builds under the net's arg scope, restores a checkpoint with
slim.assign_from_checkpoint_fn (all but the logits) and runs a training step with slim.learning.create_train_op."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nets import mobilenet_v1
from nets.compat import slim, tf

REPO = Path(__file__).resolve().parents[1]

# Written as a TF-Slim user writes it (tensorflow.compat.v1 and tf_slim imported first, then the nets).
PROGRAM = '''
import json, sys
import numpy as np
import tensorflow.compat.v1 as tf
import tf_slim as slim
from nets import mobilenet_v1
from nets.mobilenet import mobilenet_v2  # noqa: F401 (the package layout TF-Slim users import from)
from nets.nasnet import nasnet  # noqa: F401

tf.disable_eager_execution()
checkpoint, out = sys.argv[1], sys.argv[2]
images = tf.constant(np.random.RandomState(0).rand(4, 32, 32, 3).astype(np.float32))
labels = tf.constant([0, 1, 2, 1])
with slim.arg_scope(mobilenet_v1.mobilenet_v1_arg_scope()):
    logits, end_points = mobilenet_v1.mobilenet_v1(images, num_classes=3, depth_multiplier=0.25)
variables_to_restore = slim.get_variables_to_restore(exclude=["MobilenetV1/Logits"])
init_fn = slim.assign_from_checkpoint_fn(checkpoint, variables_to_restore)
tf.losses.softmax_cross_entropy(tf.one_hot(labels, 3), logits)
total_loss = tf.losses.get_total_loss()
optimizer = tf.train.GradientDescentOptimizer(0.1)
train_op = slim.learning.create_train_op(total_loss, optimizer)
conv0 = slim.get_variables("MobilenetV1/Conv2d_0/weights")[0]
with tf.Session() as session:
    session.run(tf.global_variables_initializer())
    init_fn(session)
    restored = session.run(conv0)
    loss = session.run(train_op)
    trained = session.run(conv0)
json.dump({"restored": restored.tolist(), "trained": trained.tolist(), "loss": float(loss),
           "logits": logits.shape.as_list(), "end_points": sorted(end_points)}, open(out, "w"))
'''


def _pretrained(path: Path) -> np.ndarray:
    """A 1001-class mobilenet_v1_025 checkpoint with random weights; returns its Conv2d_0 weights."""
    with tf.Graph().as_default():
        with slim.arg_scope(mobilenet_v1.mobilenet_v1_arg_scope()):
            mobilenet_v1.mobilenet_v1(tf.placeholder(tf.float32, [1, 32, 32, 3]), depth_multiplier=0.25)
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            weights = session.run(slim.get_variables("MobilenetV1/Conv2d_0/weights")[0])
            tf.train.Saver().save(session, str(path / "model.ckpt"))
    return weights


@pytest.mark.slow
def test_tf_slim_program_restores_and_trains_unchanged(tmp_path):
    weights = _pretrained(tmp_path)
    script, out = tmp_path / "train_slim.py", tmp_path / "out.json"
    script.write_text(PROGRAM)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "model.ckpt"), str(out)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    np.testing.assert_array_equal(np.array(result["restored"], dtype=np.float32), weights)  # restored, not random
    assert np.abs(np.array(result["trained"]) - weights).max() > 0  # the step trained the restored body
    assert np.isfinite(result["loss"]) and result["loss"] > 0
    assert result["logits"] == [4, 3]
    assert {"Conv2d_13_pointwise", "AvgPool_1a", "Logits", "Predictions"} <= set(result["end_points"])
