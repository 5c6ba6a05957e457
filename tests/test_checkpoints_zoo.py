"""Restore plans on real nets: tf_slim.nets.inception_v1 and the zoo's mobilenet_v1_025, and `finetune inspect --net`."""

import numpy as np
import pytest
from helpers.weights import save_random_checkpoint
from tf_slim.nets import inception_v1

import checkpoints
from finetune import cli
from nets import nets_factory
from nets.compat import slim, tf

ZOO_NET = "mobilenet_v1_025"


def _restored(plan, variables) -> tuple[dict, dict]:
    names = [v.op.name for v in variables]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        before = dict(zip(names, sess.run(variables)))
        plan.apply(sess)
        return before, dict(zip(names, sess.run(variables)))


def _zoo_net(num_classes: int):
    network_fn = nets_factory.get_network_fn(ZOO_NET, num_classes)
    network_fn(tf.zeros([1, 64, 64, 3]))
    return slim.get_model_variables()


@pytest.fixture(scope="module")
def zoo_checkpoint(tmp_path_factory):
    if ZOO_NET not in nets_factory.specs():
        pytest.skip(f"{ZOO_NET} is not registered yet")
    path = str(tmp_path_factory.mktemp("zoo") / "model.ckpt")
    with tf.Graph().as_default():
        values = save_random_checkpoint(path, _zoo_net(1001))
    return path, values


@pytest.mark.slow
def test_tf_slim_inception_v1_fine_tunes_to_five_classes(graph, tmp_path):
    path = str(tmp_path / "inception_v1.ckpt")
    with tf.Graph().as_default():
        with slim.arg_scope(inception_v1.inception_v1_arg_scope()):
            inception_v1.inception_v1(tf.placeholder(tf.float32, [1, 224, 224, 3]), num_classes=1001)
        saved = save_random_checkpoint(path, slim.get_model_variables())
    with slim.arg_scope(inception_v1.inception_v1_arg_scope()):
        inception_v1.inception_v1(tf.placeholder(tf.float32, [1, 224, 224, 3]), num_classes=5)
    variables = slim.get_model_variables()
    spec = nets_factory.specs().get("inception_v1")
    if spec is None:  # until the zoo registers it, the manifest fields the plan uses
        spec = type("Spec", (), {"name": "inception_v1", "classifier_scopes": ("InceptionV1/Logits",)})()
    plan = checkpoints.plan_restore(variables, path, net=spec)
    before, after = _restored(plan, variables)
    fresh = {"InceptionV1/Logits/Conv2d_0c_1x1/weights", "InceptionV1/Logits/Conv2d_0c_1x1/biases"}
    assert {e.variable for e in plan.fresh} == fresh and len(plan.restored) == len(variables) - 2
    for name, value in after.items():
        np.testing.assert_array_equal(value, before[name] if name in fresh else saved[name])


def test_zoo_net_drops_the_background_class(graph, zoo_checkpoint):
    path, saved = zoo_checkpoint
    variables = _zoo_net(1000)
    plan = checkpoints.plan_restore(variables, path, net=nets_factory.get_spec(ZOO_NET), options=checkpoints.RestoreOptions(background_class="drop"))
    _, after = _restored(plan, variables)
    assert not plan.fresh and not plan.unused
    for name, value in after.items():
        expected = saved[name][..., 1:] if name.startswith("MobilenetV1/Logits/") else saved[name]
        np.testing.assert_array_equal(value, expected)


def test_inspect_command_compares_a_checkpoint_with_a_zoo_net(zoo_checkpoint, capsys):
    path, _ = zoo_checkpoint
    assert cli.main(["inspect", path, "--net", ZOO_NET, "--num-classes", "10"]) == 0
    out = capsys.readouterr().out
    assert "variables restored" in out and "freshly initialised" in out
    assert "MobilenetV1/Logits/Conv2d_1c_1x1/weights" in out and "new classifier: 10 classes, checkpoint has 1001" in out

    assert cli.main(["inspect", path, "--net", "mobilenet_v1_050"]) == 1  # twice as wide: every layer misfits
    out = capsys.readouterr().out
    assert "ERRORS" in out.splitlines()[0] and "mismatch" in out
