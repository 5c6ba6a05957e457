"""Restore plans against real checkpoints written here: values, exclusions, mappings, EMA, background class, errors."""

import json
import os
import re

import numpy as np
import pytest
from helpers.weights import save_random_checkpoint

import checkpoints
from checkpoints import plan as plan_module
from nets.compat import slim, tf
from nets.nets_factory import NetSpec

CLASSIFIER = "TinyNet/Logits"


def tiny_net(images, num_classes=1001, is_training=False, scope="TinyNet", depth=8, extra=False):
    """conv-BN, conv-BN, pooled 1x1-conv classifier: the shape of a slim net, 10 variables."""
    with tf.variable_scope(scope):
        with slim.arg_scope([slim.conv2d], normalizer_fn=slim.batch_norm):
            net = slim.conv2d(images, 4, [3, 3], scope="Conv1")
            net = slim.conv2d(net, depth, [3, 3], stride=2, scope="Conv2")
            if extra:
                net = slim.conv2d(net, depth, [1, 1], scope="Extra")
        net = tf.reduce_mean(net, [1, 2], keepdims=True)
        logits = slim.conv2d(net, num_classes, [1, 1], activation_fn=None, normalizer_fn=None, scope="Logits")
    return tf.squeeze(logits, [1, 2]), {}


TINY = NetSpec(name="tiny", network_fn=tiny_net, arg_scope_fn=lambda weight_decay=0.0: {}, image_size=8,
               num_classes=1001, preprocessing="inception", scope="TinyNet", classifier_scopes=(CLASSIFIER,))


def build(num_classes=1001, outer_scope=None, **kwargs):
    """Build the tiny net in the default graph; return its model variables."""
    images = tf.zeros([1, 8, 8, 3])
    if outer_scope:
        with tf.variable_scope(outer_scope):
            tiny_net(images, num_classes, **kwargs)
    else:
        tiny_net(images, num_classes, **kwargs)
    return slim.get_model_variables()


def write_checkpoint(path, num_classes=1001, ema=False, v1=False, seed=0, optimizer=False, **kwargs) -> dict:
    """Save a tiny net with random values (and EMA shadows of other values, Momentum slots and a global step);
    return name -> saved value."""
    with tf.Graph().as_default():
        variables = build(num_classes, **kwargs)
        if ema:
            tf.train.ExponentialMovingAverage(0.9).apply(variables)
        if optimizer:
            loss = tf.add_n([tf.reduce_sum(v) for v in tf.trainable_variables()])
            tf.train.MomentumOptimizer(0.1, 0.9).minimize(loss, tf.train.get_or_create_global_step())
        everything = tf.global_variables()
        version = tf.train.SaverDef.V1 if v1 else tf.train.SaverDef.V2
        return save_random_checkpoint(path, everything, seed, write_version=version)


def restore(plan, variables):
    """Initialise, read the initial values, apply the plan; return (initial, restored) name -> value."""
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        before = dict(zip([v.op.name for v in variables], sess.run(variables)))
        plan.apply(sess)
        after = dict(zip([v.op.name for v in variables], sess.run(variables)))
    return before, after


@pytest.fixture
def ckpt(tmp_path):
    path = str(tmp_path / "model.ckpt")
    return path, write_checkpoint(path)


def test_restores_the_file_values_in_one_op_and_excluded_classifier_keeps_its_initialiser(graph, ckpt):
    path, saved = ckpt
    variables = build(num_classes=5)
    plan = checkpoints.plan_restore(variables, path, net=TINY)
    before, after = restore(plan, variables)

    assert [op.type for op in graph.get_operations()].count("RestoreV2") == 1
    classifier = {f"{CLASSIFIER}/weights", f"{CLASSIFIER}/biases"}
    assert {e.variable for e in plan.skipped} == classifier
    assert "new classifier: 5 classes, checkpoint has 1001" in plan.skipped[0].reason
    for name, value in after.items():
        if name in classifier:
            np.testing.assert_array_equal(value, before[name])
        else:
            np.testing.assert_array_equal(value, saved[name])
    assert len(plan.restored) == len(variables) - 2
    assert plan.unused == sorted(classifier)


def test_same_class_count_restores_everything(graph, ckpt):
    path, saved = ckpt
    variables = build()
    plan = checkpoints.plan_restore(variables, path, net=TINY)
    _, after = restore(plan, variables)
    assert not plan.fresh and not plan.unused
    for name, value in after.items():
        np.testing.assert_array_equal(value, saved[name])


@pytest.mark.parametrize(
    "outer_scope, rename, expected_rule",
    [
        ("tower_0", (), ":tower_0 (auto-detected)"),
        ("model", ("TinyNet:model/TinyNet",), "TinyNet:model/TinyNet"),
        ("net", ("re:^TinyNet/(.*)$=net/TinyNet/\\1",), "re:^TinyNet/(.*)$=net/TinyNet/\\1"),
    ],
)
def test_name_mappings_restore_under_another_scope(graph, ckpt, outer_scope, rename, expected_rule):
    path, saved = ckpt
    variables = build(outer_scope=outer_scope)
    plan = checkpoints.plan_restore(variables, path, net=None, options=checkpoints.RestoreOptions(rename=rename, detect_prefix=not rename))
    _, after = restore(plan, variables)
    assert plan.rules == [expected_rule]
    assert len(plan.renamed) == len(variables) and not plan.unused
    for name, value in after.items():
        np.testing.assert_array_equal(value, saved[name[len(outer_scope) + 1:]])


def test_without_a_rule_another_scope_is_missing_and_named(graph, ckpt):
    path, _ = ckpt
    build(outer_scope="tower_0")
    with pytest.raises(checkpoints.RestoreError, match=r"^10 variables are missing from .*: "
                                                      r"tower_0/TinyNet/Conv1/weights[ ,].* and [7-9] more\. ") as error:
        checkpoints.plan_restore(slim.get_model_variables(), path, options=checkpoints.RestoreOptions(detect_prefix=False))
    message = str(error.value)
    assert "--ckpt-rename OLD:NEW (it has e.g. TinyNet/Conv1/" in message and "--exclude-scopes" in message
    assert "\n" not in message and len(message.replace(path, "CKPT")) < 250  # short but for the path


def test_moving_average_shadows_restore_when_asked(graph, tmp_path):
    path = str(tmp_path / "ema.ckpt")
    saved = write_checkpoint(path, ema=True)
    variables = build()
    raw_plan = checkpoints.plan_restore(variables, path)
    ema_plan = checkpoints.plan_restore(variables, path, options=checkpoints.RestoreOptions(use_moving_average=True))
    _, raw = restore(raw_plan, variables)
    _, shadowed = restore(ema_plan, variables)
    for name in raw:
        np.testing.assert_array_equal(raw[name], saved[name])
        np.testing.assert_array_equal(shadowed[name], saved[name + "/ExponentialMovingAverage"])
    assert len(raw_plan.unused) == len(variables)  # the shadows
    assert "10 from EMA shadows" in ema_plan.summary()


def test_moving_average_asked_of_a_checkpoint_without_shadows(graph, ckpt):
    with pytest.raises(ValueError, match="no ExponentialMovingAverage shadows"):
        checkpoints.plan_restore(build(), ckpt[0], options=checkpoints.RestoreOptions(use_moving_average=True))


def test_background_row_dropped_1001_to_1000(graph, ckpt):
    path, saved = ckpt
    variables = build(num_classes=1000)
    plan = checkpoints.plan_restore(variables, path, net=TINY, options=checkpoints.RestoreOptions(background_class="drop"))
    _, after = restore(plan, variables)
    weights, biases = f"{CLASSIFIER}/weights", f"{CLASSIFIER}/biases"
    np.testing.assert_array_equal(after[weights], saved[weights][..., 1:])
    np.testing.assert_array_equal(after[biases], saved[biases][1:])
    assert not plan.fresh
    assert {e.transform for e in plan.restored if e.variable.startswith(CLASSIFIER)} == {"drop background row"}


def test_background_row_added_1000_to_1001(graph, tmp_path):
    path = str(tmp_path / "k1000.ckpt")
    saved = write_checkpoint(path, num_classes=1000)
    variables = build(num_classes=1001)
    plan = checkpoints.plan_restore(variables, path, net=TINY, options=checkpoints.RestoreOptions(background_class="auto"))
    before, after = restore(plan, variables)
    for name in (f"{CLASSIFIER}/weights", f"{CLASSIFIER}/biases"):
        np.testing.assert_array_equal(after[name][..., 1:], saved[name])
        np.testing.assert_array_equal(after[name][..., 0], before[name][..., 0])


def test_shape_mismatch_is_a_short_line_naming_the_count_the_first_variables_and_the_flags(graph, ckpt):
    variables = build(num_classes=1000, depth=16)
    with pytest.raises(checkpoints.RestoreError) as error:
        checkpoints.plan_restore(variables, ckpt[0])  # no net: nothing explains either difference
    message = str(error.value)
    assert message.startswith(f"6 variables do not fit {ckpt[0]} (graph vs checkpoint): "
                              "TinyNet/Conv2/weights [3,3,4,16] vs [3,3,4,8]")
    assert re.search(r" \.\.\. and [3-5] more\. ", message) and "Conv1" not in message
    assert all(flag in message for flag in ("--net", "--exclude-scopes", "--background-class", "finetune inspect CKPT"))
    assert "checkpoint_exclude_scopes" not in message
    assert "\n" not in message and len(message.replace(ckpt[0], "CKPT")) < 250  # short but for the path
    # the whole list: the plan's table and report
    plan = checkpoints.build_plan(variables, ckpt[0])
    expected = {f"TinyNet/{name}" for name in ("Conv2/weights", "Conv2/BatchNorm/beta", "Conv2/BatchNorm/moving_mean",
                                               "Conv2/BatchNorm/moving_variance", "Logits/weights", "Logits/biases")}
    assert {e["variable"] for e in plan.to_dict()["errors"]} == expected
    assert all(name in plan.table(limit=None) for name in expected)


def test_missing_variable_is_an_error_unless_allowed(graph, ckpt):
    variables = build(extra=True)
    with pytest.raises(ValueError, match="4 variables are missing from .*: TinyNet/Extra/weights, TinyNet/Extra/BatchNorm/beta"):
        checkpoints.plan_restore(variables, ckpt[0], net=TINY)
    plan = checkpoints.plan_restore(variables, ckpt[0], net=TINY, options=checkpoints.RestoreOptions(allow_missing=["TinyNet/Extra"]))
    assert {e.variable for e in plan.fresh} == {f"TinyNet/Extra/{n}" for n in
                                               ("weights", "BatchNorm/beta", "BatchNorm/moving_mean",
                                                "BatchNorm/moving_variance")}


def test_a_plan_restoring_nothing_or_far_less_is_an_error(graph, ckpt):
    variables = build()
    with pytest.raises(ValueError, match="would restore only 0 of 10 variables .*Check --net, --ckpt-rename and "
                                         "--exclude-scopes; `finetune inspect CKPT --net NET` lists all"):
        checkpoints.plan_restore(variables, ckpt[0], options=checkpoints.RestoreOptions(allow_missing=["TinyNet"], rename=["TinyNet:Other"], detect_prefix=False))
    with pytest.raises(ValueError, match="would restore only 2 of 10"):
        checkpoints.plan_restore(variables, ckpt[0], options=checkpoints.RestoreOptions(rename=["re:^TinyNet/Conv=Elsewhere/Conv"], allow_missing=["TinyNet/Conv1", "TinyNet/Conv2"], detect_prefix=False))
    with pytest.raises(ValueError, match="would restore only 0 of 0"):
        checkpoints.plan_restore(variables, ckpt[0], options=checkpoints.RestoreOptions(exclude_scopes=["TinyNet"]))


def test_training_state_absent_from_a_pretrained_checkpoint_starts_fresh(graph, ckpt):
    build()
    tf.train.get_or_create_global_step()
    plan = checkpoints.plan_restore(tf.global_variables(), ckpt[0])
    assert [(e.variable, e.reason) for e in plan.fresh] == [("global_step", plan_module.TRAINING_STATE)]


def test_v1_checkpoint_file_and_every_way_to_name_a_checkpoint(graph, tmp_path):
    v1 = str(tmp_path / "v1" / "model.ckpt")
    os.makedirs(os.path.dirname(v1))
    saved = write_checkpoint(v1, v1=True)
    assert os.path.isfile(v1) and checkpoints.resolve_checkpoint(v1) == v1
    variables = build()
    _, after = restore(checkpoints.plan_restore(variables, v1), variables)
    for name, value in after.items():
        np.testing.assert_array_equal(value, saved[name])

    v2 = str(tmp_path / "v2" / "model.ckpt-7")
    write_checkpoint(v2)
    for form in (v2, v2 + ".index", v2 + ".data-00000-of-00001", os.path.dirname(v2)):
        assert checkpoints.resolve_checkpoint(form) == v2
    with pytest.raises(FileNotFoundError, match="no checkpoint at .*nothing.*finetune download --list"):
        checkpoints.resolve_checkpoint(str(tmp_path / "nothing"))
    with pytest.raises(FileNotFoundError, match="no checkpoint in directory"):
        checkpoints.resolve_checkpoint(str(tmp_path))


def test_report_table_and_json(graph, ckpt, tmp_path):
    variables = build(num_classes=5)
    plan = checkpoints.plan_restore(variables, ckpt[0], net=TINY)
    table = plan.table()
    assert table.splitlines()[0].startswith(f"restore from {ckpt[0]}: 8 of 10 variables restored")
    assert f"{CLASSIFIER}/weights" in table and "excluded" in table and "TinyNet/Logits/*" in table
    plan.save_json(str(tmp_path / "restore_report.json"))
    report = json.loads((tmp_path / "restore_report.json").read_text())
    assert len(report["restored"]) == 8 and report["unused"] == [f"{CLASSIFIER}/biases", f"{CLASSIFIER}/weights"]
    assert [e["variable"] for e in report["skipped"]] == [f"{CLASSIFIER}/weights", f"{CLASSIFIER}/biases"]
    assert report["options"]["exclude_scopes"] == [CLASSIFIER]


def test_table_collapses_training_state_of_the_checkpoint_into_one_row(graph, tmp_path):
    path = str(tmp_path / "trained.ckpt")
    write_checkpoint(path, ema=True, optimizer=True)
    plan = checkpoints.plan_restore(build(num_classes=5), path, net=TINY)
    table = plan.table(limit=None)
    assert "/Momentum" not in table and "ExponentialMovingAverage" not in table
    rows = [line.split() for line in table.splitlines()[3:]]
    assert [row[:4] for row in rows] == [
        [f"{CLASSIFIER}/weights", "[1,1,8,5]", "excluded", "excluded"],
        [f"{CLASSIFIER}/biases", "[5]", "excluded", "excluded"],
        [f"{CLASSIFIER}/*", "2", "tensors", "unused"],  # model variables stay listed
        ["training", "state", "17", "tensors"],
    ]
    assert table.splitlines()[-1].endswith("unused    6 optimizer slots (Momentum); 10 moving-average shadows "
                                           "(--ckpt-moving-average restores them); bookkeeping: global_step")
    unused = plan.to_dict()["unused"]  # the report keeps every name
    assert len(unused) == 19 and "global_step" in unused and f"{CLASSIFIER}/weights/Momentum" in unused


def test_check_resume_accepts_its_own_run_and_refuses_another(graph, tmp_path):
    train_dir = tmp_path / "train"
    assert checkpoints.check_resume(str(train_dir), build()) is None
    tf.train.get_or_create_global_step()
    variables = tf.global_variables()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        saved = tf.train.Saver().save(sess, str(train_dir / "model.ckpt"), global_step=3)
    assert checkpoints.check_resume(str(train_dir), variables) == saved

    other_classes = r"class count: 2 variables differ in shape: TinyNet/Logits/weights is \[1,1,8,1001\] there, \[1,1,8,5\] here"
    with tf.Graph().as_default(), pytest.raises(ValueError, match=other_classes):
        checkpoints.check_resume(str(train_dir), build(num_classes=5))
    with tf.Graph().as_default(), pytest.raises(ValueError, match="10 of 10 variables are not in it"):
        checkpoints.check_resume(str(train_dir), build(outer_scope="other"))


def _initialized_by(initializer) -> set[str]:
    """Names of the variables whose initializer ops `initializer` (a grouped op) runs."""
    return {op.name.rpartition("/")[0] for op in initializer.control_inputs}


@pytest.mark.parametrize("num_classes, background", [(5, None), (1001, None), (1001, "add")])
def test_remainder_initializer_initializes_exactly_what_the_restore_does_not_set_whole(graph, tmp_path, num_classes,
                                                                                       background):
    path = str(tmp_path / "model.ckpt")
    saved = write_checkpoint(path, num_classes=1000 if background else 1001)
    variables = build(num_classes=num_classes)
    with tf.variable_scope("training_state"):
        step = tf.Variable(7, name="step")
    plan = checkpoints.plan_restore(variables, path, net=TINY,
                                    options=checkpoints.RestoreOptions(background_class=background or "auto"))
    initializer = plan.remainder_initializer()
    names = {v.op.name for v in tf.global_variables()}
    restored_whole = {e.variable for e in plan.restored if e.transform is None}
    assert _initialized_by(initializer) == names - restored_whole
    classifier = {f"{CLASSIFIER}/weights", f"{CLASSIFIER}/biases"}
    if num_classes == 5 or background:  # the new (or row-extended) classifier keeps its initializer
        assert classifier <= _initialized_by(initializer)
    else:
        assert _initialized_by(initializer) == {"training_state/step"}
    with tf.Session() as session:
        session.run(initializer)
        plan.apply(session)
        assert not session.run(tf.report_uninitialized_variables()).size
        assert session.run(step) == 7
        for variable in variables:
            name = variable.op.name
            value = session.run(variable)
            if name not in classifier or num_classes == 1001 and not background:
                np.testing.assert_array_equal(value, saved[name])
            elif background:
                np.testing.assert_array_equal(value[..., 1:], saved[name])
