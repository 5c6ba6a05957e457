"""finetune.train.devices: towers on logical CPU devices, precision policies, session config and XLA."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from finetune.train import devices, optim
from nets.compat import slim, tf

BATCH, SIZE, CLASSES = 4, 8, 3


def _run_python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def _model(images, labels):
    """A tiny conv net with a mean loss (no BatchNorm, so tower gradients must average to the batch's)."""
    init = tf.truncated_normal_initializer(stddev=0.3, seed=1)
    net = slim.conv2d(images, 4, [3, 3], weights_initializer=init, scope="conv")
    net = tf.reduce_mean(net, [1, 2])
    logits = slim.fully_connected(net, CLASSES, activation_fn=None, weights_initializer=init, scope="logits")
    return tf.losses.sparse_softmax_cross_entropy(labels, logits)


def _feed():
    rng = np.random.default_rng(0)
    return rng.normal(size=(BATCH, SIZE, SIZE, 3)).astype(np.float32), np.array([0, 2, 1, 2], np.int64)


def test_towers_place_ops_share_variables_and_average_to_batch_gradient(graph):
    images = tf.placeholder(tf.float32, [BATCH, SIZE, SIZE, 3])
    labels = tf.placeholder(tf.int64, [BATCH])
    tower_devices = ["/cpu:1", "/cpu:0"]  # tower 0 on cpu:1, so "variables on the CPU" is visible
    towers = devices.build_towers(lambda batch: _model(*batch), devices.split_batch((images, labels), 2), tower_devices)

    variables = tf.global_variables()
    assert sorted(v.op.name for v in variables) == ["conv/biases", "conv/weights", "logits/biases", "logits/weights"]
    for var in variables:
        assert tf.DeviceSpec.from_string(var.op.device) == tf.DeviceSpec.from_string("/device:CPU:0")
    assert [t.scope for t in towers] == ["tower_0/", "tower_1/"]
    conv_ops = {t.index: graph.get_operation_by_name(f"{t.scope}conv/Conv2D") for t in towers}
    assert tf.DeviceSpec.from_string(conv_ops[0].device).device_index == 1
    assert tf.DeviceSpec.from_string(conv_ops[1].device).device_index == 0
    assert tf.get_collection(tf.GraphKeys.LOSSES, towers[1].scope) == [towers[1].outputs]

    opt = tf.train.GradientDescentOptimizer(0.1)
    per_tower = devices.tower_gradients(opt, [t.outputs for t in towers], towers, variables)
    grad_op = per_tower[0][0][0].op  # tower 0's conv/weights gradient runs on tower 0's device
    assert tf.DeviceSpec.from_string(grad_op.device).device_index == 1
    averaged = devices.average_gradients(per_tower)
    with tf.variable_scope(tf.get_variable_scope(), reuse=True):
        full_loss = _model(images, labels)
    full = tf.gradients(full_loss, variables)

    x, y = _feed()
    run_metadata = tf.RunMetadata()
    with tf.Session(config=devices.session_config(devices=["/cpu:0", "/cpu:1"])) as sess:
        sess.run(tf.global_variables_initializer())
        got = sess.run([g for g, _ in averaged], {images: x, labels: y},
                       options=tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE), run_metadata=run_metadata)
        expect = sess.run(full, {images: x, labels: y})
    for g, e in zip(got, expect):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-7)
        assert np.abs(e).max() > 1e-4  # not trivially zero
    ran_on = {stats.device.rsplit(":", 1)[-1] for stats in run_metadata.step_stats.dev_stats}
    assert {"0", "1"} <= ran_on  # the session really used both logical CPUs


def test_split_batch_checks_divisibility_and_tower_count(graph):
    with pytest.raises(ValueError, match="Batch size 5 does not divide over 2 devices"):
        devices.split_batch(tf.zeros([5, 2]), 2)
    parts = devices.split_batch({"x": tf.zeros([6, 2]), "y": tf.zeros([6])}, 3)
    assert [p["x"].shape.as_list() for p in parts] == [[2, 2]] * 3
    with pytest.raises(ValueError, match="one batch per device"):
        devices.build_towers(lambda b: b, parts, ["/cpu:0"])


def test_single_device_keeps_variables_on_it(graph):
    towers = devices.build_towers(lambda batch: _model(*batch), [(tf.zeros([2, SIZE, SIZE, 3]), tf.zeros([2], tf.int64))],
                                  ["/gpu:0"])
    assert devices.average_gradients([[(1, "g")]]) == [(1, "g")]
    assert {tf.DeviceSpec.from_string(v.op.device).device_type for v in tf.global_variables()} == {"GPU"}
    assert len(towers) == 1


def _bn_net(images, precision: devices.Precision):
    init = tf.truncated_normal_initializer(stddev=0.3, seed=2)
    with precision.scope(), slim.arg_scope([slim.conv2d, slim.fully_connected], weights_initializer=init):
        net = slim.conv2d(precision.cast(images), 8, [3, 3], normalizer_fn=slim.batch_norm,
                          normalizer_params={"is_training": True}, scope="conv")
        net = tf.reduce_mean(net, [1, 2])
        logits = slim.fully_connected(net, CLASSES, activation_fn=None, scope="logits")
    return logits


@pytest.mark.parametrize("name, rtol", [("mixed_float16", 1e-2), ("mixed_bfloat16", 5e-2)])
def test_mixed_precision_keeps_float32_variables_and_computes_in_low_precision(graph, name, rtol):
    precision = devices.get_precision(name)
    images = tf.constant(_feed()[0])
    with tf.variable_scope("ref"):
        ref = _bn_net(images, devices.get_precision("float32"))
    with tf.variable_scope("mixed"):
        logits = _bn_net(images, precision)

    assert logits.dtype == tf.as_dtype(precision.compute_dtype)
    conv = graph.get_operation_by_name("mixed/conv/Conv2D")
    assert conv.get_attr("T") == tf.as_dtype(precision.compute_dtype)
    names = {scope: sorted(v.op.name.split("/", 1)[1] for v in tf.global_variables(scope)) for scope in ("ref", "mixed")}
    assert names["ref"] == names["mixed"]  # same checkpoint names as a float32 graph
    assert {v.dtype.base_dtype for v in tf.global_variables("mixed")} == {tf.float32}
    assert tf.trainable_variables("mixed")  # the float32 masters are what trains

    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        got, expect = sess.run([tf.cast(logits, tf.float32), ref])
    np.testing.assert_allclose(got, expect, rtol=rtol, atol=rtol)


def test_float16_loss_scale_skips_overflowing_steps(graph):
    precision = devices.get_precision("mixed_float16")
    with precision.scope():
        w = tf.get_variable("w", [2], tf.float16, initializer=tf.ones_initializer())
    master = tf.global_variables()[0]
    big = tf.placeholder(tf.float16, [])
    loss = tf.cast(tf.reduce_sum(w * big), tf.float32)
    opt = precision.wrap_optimizer(optim.make_optimizer("sgd", 0.5))
    step = opt.apply_gradients(opt.compute_gradients(loss, [master]))
    assert devices.get_precision("float32").wrap_optimizer(opt) is opt
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(step, {big: 60000.0})  # 60000 * loss scale overflows float16: step skipped
        np.testing.assert_array_equal(sess.run(master), [1.0, 1.0])
        sess.run(step, {big: 1.0})  # unscaled gradient 1.0 applied
        np.testing.assert_allclose(sess.run(master), [0.5, 0.5])


def test_unknown_precision_and_session_config():
    with pytest.raises(ValueError, match="choose one of: float32, mixed_float16, mixed_bfloat16"):
        devices.get_precision("float16")
    config = devices.session_config()
    assert config.allow_soft_placement and config.gpu_options.allow_growth
    assert config.graph_options.optimizer_options.global_jit_level == tf.OptimizerOptions.DEFAULT
    assert config.graph_options.rewrite_options.meta_optimizer_iterations == 1  # RewriterConfig.ONE: one Grappler pass
    assert devices.session_config(devices=["/cpu:0", "/cpu:2"]).device_count["CPU"] == 3
    assert "CPU" not in devices.session_config(devices=["/gpu:0", "/gpu:1"]).device_count


def test_select_devices_without_gpus():
    assert devices.select_devices() == devices.visible_devices()
    assert devices.select_devices(3) == ["/cpu:0", "/cpu:1", "/cpu:2"]
    with pytest.raises(ValueError, match="--num-devices must be >= 1"):
        devices.select_devices(0)


@pytest.mark.slow
def test_xla_session_compiles_and_matches():
    out = _run_python("""
        from nets.compat import slim, tf
        from finetune.train import devices
        import numpy as np
        tf.disable_eager_execution()
        assert devices.visible_devices() == ["/cpu:0"]  # listing devices first must not defeat XLA
        images = tf.constant(np.linspace(-1, 1, 2 * 8 * 8 * 3, dtype=np.float32).reshape(2, 8, 8, 3))
        net = slim.conv2d(images, 4, [3, 3], weights_initializer=tf.ones_initializer())
        out = tf.reduce_sum(slim.fully_connected(tf.reduce_mean(net, [1, 2]), 3, weights_initializer=tf.ones_initializer()))
        config = devices.session_config(xla=True)
        assert config.graph_options.optimizer_options.global_jit_level == tf.OptimizerOptions.ON_1
        meta = tf.RunMetadata()
        with tf.Session(config=config) as sess:
            sess.run(tf.global_variables_initializer())
            got = sess.run(out, options=tf.RunOptions(output_partition_graphs=True), run_metadata=meta)
        with tf.Session(config=devices.session_config()) as sess:
            sess.run(tf.global_variables_initializer())
            plain = sess.run(out)
        print(sorted({n.op for g in meta.partition_graphs for n in g.node if n.op.startswith("_Xla")}))
        print(abs(got - plain) <= 1e-4 * abs(plain))
    """).splitlines()
    assert out == ["['_XlaCompile', '_XlaMerge', '_XlaRun']", "True"]


@pytest.mark.parametrize("name", ["mixed_bfloat16", "mixed_float16"])
@pytest.mark.slow  # 5-14 s; test_mixed_precision_keeps_float32_variables_and_computes_in_low_precision is the quick check
def test_zoo_net_in_mixed_precision_towers_trains_float32_checkpoint_variables(graph, name):
    from nets import nets_factory

    precision = devices.get_precision(name)
    network_fn = nets_factory.get_network_fn("mobilenet_v1_025", num_classes=CLASSES, is_training=True)

    def model_fn(batch):
        images, labels = batch
        with precision.scope():
            logits, _ = network_fn(precision.cast(images))
        return tf.losses.sparse_softmax_cross_entropy(labels, tf.cast(logits, tf.float32))

    images = tf.random.uniform([BATCH, 32, 32, 3], -1.0, 1.0, seed=3)
    labels = tf.constant([0, 1, 2, 0], tf.int64)
    towers = devices.build_towers(model_fn, devices.split_batch((images, labels), 2), ["/cpu:0", "/cpu:1"])
    variables = tf.global_variables()
    published = nets_factory.get_spec("mobilenet_v1_025").published_variables()
    names = {v.op.name for v in variables}
    assert len(names) == len(variables)  # one set, shared by both towers
    assert {n for n in names if "Logits" not in n} == {n for n in published if "Logits" not in n}
    assert {v.dtype.base_dtype for v in variables} == {tf.float32}
    conv = graph.get_operation_by_name("tower_1/MobilenetV1/MobilenetV1/Conv2d_0/Conv2D")
    assert conv.get_attr("T") == tf.as_dtype(precision.compute_dtype)

    trained = tf.trainable_variables()
    opt = precision.wrap_optimizer(optim.make_optimizer("momentum", 0.01))
    grads = devices.average_gradients(devices.tower_gradients(opt, [t.outputs for t in towers], towers, trained))
    update_ops = tf.get_collection(tf.GraphKeys.UPDATE_OPS, towers[0].scope)
    assert update_ops and len(update_ops) * 2 == len(tf.get_collection(tf.GraphKeys.UPDATE_OPS))
    with tf.control_dependencies(update_ops):
        train_op = opt.apply_gradients(grads)
    weights = next(v for v in variables if v.op.name == "MobilenetV1/Conv2d_0/weights")
    with tf.Session(config=devices.session_config(devices=["/cpu:0", "/cpu:1"])) as sess:
        sess.run(tf.global_variables_initializer())
        before = sess.run(weights)
        for _ in range(20):  # float16 skips the first steps while the dynamic loss scale (2**15) halves
            losses = sess.run([t.outputs for t in towers] + [train_op])[:2]
            assert np.all(np.isfinite(losses))
            if not np.allclose(before, sess.run(weights)):
                break
        else:
            pytest.fail("the float32 master weights never changed")
