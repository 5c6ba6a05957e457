"""nets/compat.py: each fix is needed (checked in a clean interpreter) and works."""

import subprocess
import sys
import textwrap

import numpy as np

from nets.compat import slim, tf


def _run_without_compat(code: str) -> subprocess.CompletedProcess:
    script = "import os; os.environ['TF_CPP_MIN_LOG_LEVEL'] = '2'\n" + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)


def test_batch_norm_needs_the_legacy_layers_alias():
    result = _run_without_compat(
        """
        import tensorflow as tf
        import tf_slim as slim
        tf.compat.v1.disable_eager_execution()
        slim.batch_norm(tf.compat.v1.placeholder(tf.float32, [None, 4, 4, 3]))
        """
    )
    # If this starts passing, TF/tf-keras moved the module back and the alias can go.
    assert result.returncode != 0 and "legacy_tf_layers" in result.stderr


def test_batch_norm_works_with_compat(graph):
    images = tf.constant(np.random.RandomState(0).rand(2, 4, 4, 3).astype(np.float32))
    out = slim.batch_norm(images, is_training=False, scale=True)
    names = sorted(v.op.name for v in tf.global_variables())
    assert names == ["BatchNorm/beta", "BatchNorm/gamma", "BatchNorm/moving_mean", "BatchNorm/moving_variance"]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        # Inference mode with fresh statistics (mean 0, variance 1): x / sqrt(1 + eps).
        np.testing.assert_allclose(sess.run(out), sess.run(images) / np.sqrt(1 + 0.001), rtol=1e-5)


def test_gradient_clipping_needs_indexed_slices_on_ops():
    result = _run_without_compat(
        """
        from tensorflow.python.framework import ops
        assert not hasattr(ops, "IndexedSlices")
        """
    )
    # If this starts failing, ops.IndexedSlices is back and the fix can go.
    assert result.returncode == 0, result.stderr


def test_slim_clips_sparse_gradients_with_compat(graph):
    table = tf.Variable(np.ones((5, 3), np.float32))
    loss = tf.reduce_sum(tf.nn.embedding_lookup(table, [0, 2]) * 10.0)
    grads = tf.train.GradientDescentOptimizer(1.0).compute_gradients(loss, [table])
    assert isinstance(grads[0][0], tf.IndexedSlices)
    clipped = slim.learning.clip_gradient_norms(grads, max_norm=1.0)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        values = sess.run(clipped[0][0].values)
    assert np.linalg.norm(values) <= 1.0 + 1e-5


def test_slim_learning_train_runs_with_compat(graph, tmp_path):
    images = tf.random.uniform([4, 8, 8, 3], seed=1)
    labels = tf.one_hot([0, 1, 0, 1], 2)
    net = slim.conv2d(images, 4, [3, 3], normalizer_fn=slim.batch_norm, normalizer_params={"is_training": True})
    logits = slim.fully_connected(slim.flatten(net), 2, activation_fn=None)
    tf.losses.softmax_cross_entropy(labels, logits)
    train_op = slim.learning.create_train_op(
        tf.losses.get_total_loss(), tf.train.GradientDescentOptimizer(0.1), clip_gradient_norm=1.0
    )
    final_loss = slim.learning.train(train_op, str(tmp_path), number_of_steps=3, save_summaries_secs=3600)
    assert np.isfinite(final_loss)
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("model.ckpt-3")


def test_tensor_equality_is_on_by_default_and_off_with_compat():
    result = _run_without_compat(
        """
        import tensorflow as tf
        assert tf.Tensor._USE_EQUALITY
        """
    )
    # If this starts failing, TF2's default changed and the switch can go.
    assert result.returncode == 0, result.stderr
    import tensorflow as tf2

    # Off: building a slim net no longer pays an eager-context check per variable hash.
    assert not tf2.Tensor._USE_EQUALITY
