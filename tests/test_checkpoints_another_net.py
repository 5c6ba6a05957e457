"""A checkpoint of another net: the error says how many variables would restore and which net it looks like."""

from __future__ import annotations

import numpy as np
import pytest

import checkpoints
from nets import nets_factory, spec
from nets.compat import tf


def _save(path: str, variables: dict[str, tuple[int, ...]]) -> str:
    """A checkpoint holding zeros of these names and shapes."""
    with tf.Graph().as_default():
        saved = [tf.Variable(np.zeros(shape, np.float32), name=name) for name, shape in variables.items()]
        with tf.Session() as session:
            session.run(tf.variables_initializer(saved))
            return tf.train.Saver(saved).save(session, path, write_meta_graph=False)


@pytest.fixture(scope="module")
def mobilenet_v1_025(tmp_path_factory) -> str:
    return _save(str(tmp_path_factory.mktemp("ckpt") / "model.ckpt"), spec.read_published_variables("mobilenet_v1_025"))


def _error(graph_net: str, path: str) -> str:
    net = nets_factory.get_spec(graph_net)
    with pytest.raises(checkpoints.RestoreError) as error:
        checkpoints.plan_restore(net.published_variables(), path, net=net)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_likely_net_reads_names_and_shapes():
    assert spec.likely_net(spec.read_published_variables("mobilenet_v1_025")) == "mobilenet_v1_025"
    assert spec.likely_net(spec.read_published_variables("resnet_v1_101")) == "resnet_v1_101"  # not resnet_v1_50
    assert spec.likely_net(spec.read_published_variables("resnet_v1_50")) == "resnet_v1_50"
    assert spec.likely_net({"TinyNet/Conv1/weights": (3, 3, 3, 4)}) is None


def test_checkpoint_of_another_net_of_other_names_is_named_with_the_real_count(mobilenet_v1_025):
    # The issue's case: not "5 variables do not fit" (the 5 MobilenetV1 names the prefix rule maps onto V2's).
    message = _error("mobilenet_v2_035", mobilenet_v1_025)
    assert message.startswith(f"{mobilenet_v1_025} looks like a checkpoint of mobilenet_v1_025, not mobilenet_v2_035: "
                              "none of the 262 variables would restore (255 missing, 5 of another shape). "
                              "Give --net mobilenet_v1_025, or a checkpoint of mobilenet_v2_035; `finetune inspect")


def test_checkpoint_of_another_width_is_named_with_the_real_count(mobilenet_v1_025):
    message = _error("mobilenet_v1", mobilenet_v1_025)  # the classifier excluded: its class count is the same
    assert message.startswith(f"{mobilenet_v1_025} looks like a checkpoint of mobilenet_v1_025, not mobilenet_v1: "
                              "none of the 135 variables would restore (0 missing, 135 of another shape). "
                              "Give --net mobilenet_v1_025,")


def test_unknown_checkpoint_with_missing_and_misfit_variables_says_another_net(tmp_path):
    published = spec.read_published_variables("mobilenet_v1_025")
    names = list(published)[: len(published) // 3]  # a third of mobilenet_v1_025: no published net's
    path = _save(str(tmp_path / "model.ckpt"), {name: published[name] for name in names})
    message = _error("mobilenet_v1", path)
    assert message.startswith(f"{path} looks like a checkpoint of another net, not mobilenet_v1: none of the 137 "
                              "variables would restore (90 missing, 45 of another shape). Give the --net it was made "
                              "for, or a checkpoint of mobilenet_v1;")


def test_the_nets_own_checkpoint_with_one_misfit_keeps_its_message(mobilenet_v1_025):
    net = nets_factory.get_spec("mobilenet_v1_025")
    variables = dict(net.published_variables())
    variables["MobilenetV1/Conv2d_0/weights"] = (3, 3, 3, 16)
    with pytest.raises(checkpoints.RestoreError, match=r"^1 variables do not fit "):
        checkpoints.plan_restore(variables, mobilenet_v1_025, net=net)
