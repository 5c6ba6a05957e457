"""finetune.train.optim: optimizers and schedules against hand-computed values, gradient processing, EMA."""

import logging
import math

import numpy as np
import pytest

from finetune.train import optim
from nets.compat import tf

GRAD_W = np.array([[0.5, -1.0], [2.0, 0.25]], np.float32)
GRAD_B = np.array([1.0, -3.0], np.float32)
W0 = np.array([[1.0, 2.0], [-1.0, 0.5]], np.float32)
B0 = np.array([0.5, -0.5], np.float32)
LR = 0.1
STEPS = 3


def _run_optimizer(name: str, **params) -> tuple[np.ndarray, np.ndarray]:
    """STEPS updates of w (rank 2) and b (rank 1) under a linear loss, whose gradients are GRAD_W, GRAD_B."""
    w = tf.Variable(W0, name="w")
    b = tf.Variable(B0, name="b")
    loss = tf.reduce_sum(w * GRAD_W) + tf.reduce_sum(b * GRAD_B)
    step = tf.train.get_or_create_global_step()
    train_op = optim.make_optimizer(name, LR, **params).minimize(loss, global_step=step)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for _ in range(STEPS):
            sess.run(train_op)
        return sess.run([w, b])


def _sgd(x, g):
    for _ in range(STEPS):
        x = x - LR * g
    return x


def _momentum(x, g, m=0.9):
    acc = np.zeros_like(x)
    for _ in range(STEPS):
        acc = m * acc + g
        x = x - LR * acc
    return x


def _rmsprop(x, g, decay=0.9, momentum=0.9, eps=1.0):
    ms, mom = np.ones_like(x), np.zeros_like(x)  # TF's RMSProp starts the mean square at 1
    for _ in range(STEPS):
        ms = decay * ms + (1 - decay) * g * g
        mom = momentum * mom + LR * g / np.sqrt(ms + eps)
        x = x - mom
    return x


def _adam(x, g, b1=0.9, b2=0.999, eps=1.0, weight_decay=0.0):
    m, v = np.zeros_like(x), np.zeros_like(x)
    for t in range(1, STEPS + 1):
        x = x - LR * weight_decay * x
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        x = x - LR * math.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
    return x


@pytest.mark.parametrize(
    "name, params, expect_w, expect_b",
    [
        ("sgd", {}, _sgd(W0, GRAD_W), _sgd(B0, GRAD_B)),
        ("momentum", {}, _momentum(W0, GRAD_W), _momentum(B0, GRAD_B)),
        ("momentum", {"momentum": 0.5}, _momentum(W0, GRAD_W, 0.5), _momentum(B0, GRAD_B, 0.5)),
        ("rmsprop", {}, _rmsprop(W0, GRAD_W), _rmsprop(B0, GRAD_B)),
        ("rmsprop", {"rmsprop_decay": 0.5, "rmsprop_momentum": 0.0, "opt_epsilon": 0.1},
         _rmsprop(W0, GRAD_W, 0.5, 0.0, 0.1), _rmsprop(B0, GRAD_B, 0.5, 0.0, 0.1)),
        ("adam", {}, _adam(W0, GRAD_W), _adam(B0, GRAD_B)),
        ("adam", {"opt_epsilon": 1e-8, "adam_beta1": 0.5}, _adam(W0, GRAD_W, 0.5, 0.999, 1e-8),
         _adam(B0, GRAD_B, 0.5, 0.999, 1e-8)),
        # decoupled decay on the kernel only, never on the rank-1 bias
        ("adamw", {"adamw_weight_decay": 0.5}, _adam(W0, GRAD_W, weight_decay=0.5), _adam(B0, GRAD_B)),
    ],
)
def test_optimizer_matches_hand_computed_updates(graph, name, params, expect_w, expect_b):
    w, b = _run_optimizer(name, **params)
    np.testing.assert_allclose(w, expect_w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b, expect_b, rtol=1e-5, atol=1e-6)


def test_optimizer_params_fill_tf_slim_defaults_and_drop_unread():
    assert optim.optimizer_params("rmsprop", momentum=0.1, opt_epsilon=None) == {
        "rmsprop_decay": 0.9, "rmsprop_momentum": 0.9, "opt_epsilon": 1.0}
    assert optim.optimizer_params("sgd", adam_beta1=0.3) == {}


def test_unknown_optimizer_or_parameter_is_one_line_error_listing_choices():
    with pytest.raises(ValueError, match=r"Unknown optimizer 'adamax'; choose one of: sgd, momentum, rmsprop, adam"):
        optim.make_optimizer("adamax", 0.1)
    with pytest.raises(ValueError, match="rmsprop_decy"):
        optim.make_optimizer("rmsprop", 0.1, rmsprop_decy=0.9)


def _lr_at(steps, schedule, base_lr=0.01, **kwargs):
    step = tf.placeholder(tf.int64, [])
    lr = optim.learning_rate(schedule, base_lr, step, **kwargs)
    with tf.Session() as sess:
        return [float(sess.run(lr, {step: s})) for s in steps]


def test_exponential_decay_is_staircase_by_epochs(graph):
    got = _lr_at([0, 19, 20, 39, 45], "exponential", steps_per_epoch=10, total_steps=100)
    np.testing.assert_allclose(got, [0.01, 0.01, 0.01 * 0.94, 0.01 * 0.94, 0.01 * 0.94**2], rtol=1e-6)


def test_warmup_then_exponential_counts_from_end_of_warmup(graph):
    got = _lr_at([0, 5, 10, 29, 30], "exponential", steps_per_epoch=10, total_steps=100, decay_epochs=2,
                 decay_factor=0.5, warmup_steps=10, warmup_start_lr=0.002)
    np.testing.assert_allclose(got, [0.002, 0.006, 0.01, 0.01, 0.005], rtol=1e-6)


def test_polynomial_and_cosine_reach_end_lr_at_total_steps(graph):
    base, end = 0.01, 0.001
    poly = _lr_at([10, 60, 110, 200], "polynomial", base, steps_per_epoch=10, total_steps=110, end_lr=end,
                  power=2.0, warmup_steps=10)
    np.testing.assert_allclose(poly, [base, end + (base - end) * 0.25, end, end], rtol=1e-6)
    cos = _lr_at([0, 25, 50, 100, 150], "cosine", base, steps_per_epoch=10, total_steps=100, end_lr=end)
    expect = [end + (base - end) * 0.5 * (1 + math.cos(math.pi * min(s, 100) / 100)) for s in [0, 25, 50, 100, 150]]
    np.testing.assert_allclose(cos, expect, rtol=1e-5)


def test_fixed_schedule_and_bad_schedule_arguments(graph):
    assert _lr_at([0, 1000], "fixed", 0.03, steps_per_epoch=1, total_steps=10) == pytest.approx([0.03, 0.03])
    step = tf.train.get_or_create_global_step()
    with pytest.raises(ValueError, match="choose one of: fixed, exponential, polynomial, cosine"):
        optim.learning_rate("step", 0.1, step, steps_per_epoch=1, total_steps=10)
    with pytest.raises(ValueError, match="warmup_steps"):
        optim.learning_rate("fixed", 0.1, step, steps_per_epoch=1, total_steps=10, warmup_steps=11)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        optim.learning_rate("exponential", 0.1, step, steps_per_epoch=0, total_steps=10)


def _two_scope_model():
    with tf.variable_scope("Net"):
        with tf.variable_scope("Conv"):
            conv = tf.Variable(np.full([3, 3], 2.0, np.float32), name="weights")
        with tf.variable_scope("Logits"):
            logits = tf.Variable(np.full([4], -1.0, np.float32), name="weights")
        with tf.variable_scope("Logits2"):
            other = tf.Variable(np.full([2], 1.0, np.float32), name="weights")
    return conv, logits, other


def test_clipping_bounds_the_applied_update_by_global_norm(graph):
    conv, logits, other = _two_scope_model()
    loss = 1e6 * (tf.reduce_sum(conv**2) + tf.reduce_sum(logits**3) + tf.reduce_sum(other))
    grads = tf.train.GradientDescentOptimizer(1.0).compute_gradients(loss, [conv, logits, other])
    processed, norm = optim.process_gradients(grads, clip_norm=0.5)
    before = [v.read_value() for v in (conv, logits, other)]
    with tf.control_dependencies(before):
        apply = tf.train.GradientDescentOptimizer(1.0).apply_gradients(processed)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        old, got_norm, raw = sess.run([before, norm, [g for g, _ in grads]])
        sess.run(apply)
        new = sess.run([conv, logits, other])
    raw_norm = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in raw))
    assert got_norm == pytest.approx(raw_norm, rel=1e-5)  # the logged norm is the pre-clip one
    assert raw_norm > 1e6
    update = [o - n for o, n in zip(old, new)]
    applied = math.sqrt(sum(float(np.sum(u.astype(np.float64) ** 2)) for u in update))
    assert applied == pytest.approx(0.5, rel=1e-4)
    # all tensors scaled together: the direction is the raw gradient's
    ratios = np.concatenate([(u / g).ravel() for u, g in zip(update, raw)])
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-3)


def test_multipliers_scale_exactly_longest_key_wins(graph):
    conv, logits, other = _two_scope_model()
    loss = tf.reduce_sum(conv * 3.0) + tf.reduce_sum(logits * 5.0) + tf.reduce_sum(other * 7.0)
    grads = tf.train.GradientDescentOptimizer(1.0).compute_gradients(loss, [conv, logits, other])
    processed, norm = optim.process_gradients(grads, multipliers={"Net": 0.1, "Net/Logits": 10.0, ".*/Conv": 2.0})
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        g_conv, g_logits, g_other = sess.run([g for g, _ in processed])
        got_norm = sess.run(norm)
    np.testing.assert_array_equal(g_conv, np.full([3, 3], 6.0, np.float32))  # ".*/Conv" is longer than "Net"
    np.testing.assert_array_equal(g_logits, np.full([4], 50.0, np.float32))
    np.testing.assert_allclose(g_other, np.full([2], 0.7, np.float32), rtol=1e-6)  # Logits2 is not under Logits
    assert got_norm == pytest.approx(math.sqrt(9 * 36 + 4 * 2500 + 2 * 0.49), rel=1e-6)


def test_unmatched_multiplier_and_missing_gradients(graph, caplog):
    conv, logits, _ = _two_scope_model()
    loss = tf.reduce_sum(conv)
    grads = tf.train.GradientDescentOptimizer(1.0).compute_gradients(loss, [conv, logits])
    with caplog.at_level(logging.WARNING, logger="finetune.train.optim"):
        processed, _ = optim.process_gradients(grads)
    assert [v for _, v in processed] == [conv]
    assert "no gradient for Net/Logits/weights" in caplog.text
    with pytest.raises(ValueError, match="Net/Logitz match no trained variable"):
        optim.process_gradients(grads, multipliers={"Net/Logitz": 2.0})
    with pytest.raises(ValueError, match="No trainable variable receives a gradient"):
        optim.process_gradients([(None, logits)])


def test_moving_average_shadows_are_checkpointed_with_tf_names(graph, tmp_path):
    w = tf.Variable([1.0, 2.0], name="w")
    step = tf.train.get_or_create_global_step()
    apply = tf.train.GradientDescentOptimizer(1.0).minimize(tf.reduce_sum(w), global_step=step)
    with tf.control_dependencies([apply]):
        ema = optim.moving_average_op(0.99, [w], step)
    saver = tf.train.Saver()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(ema)
        path = saver.save(sess, str(tmp_path / "model.ckpt"))
    reader = tf.train.load_checkpoint(path)
    shadow = reader.get_tensor("w/ExponentialMovingAverage")
    decay = min(0.99, (1 + 1) / (10 + 1))  # num_updates = the step after the update
    np.testing.assert_allclose(shadow, decay * np.array([1.0, 2.0]) + (1 - decay) * np.array([0.0, 1.0]), rtol=1e-6)
    with pytest.raises(ValueError, match="decay"):
        optim.moving_average_op(1.5, [w], step)
