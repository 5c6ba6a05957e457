"""nets/inception_v4.py: the published checkpoint's variables, end points, modes, base options
(the fine-tuning size and golden logits: test_nets_inception_golden.py).

Only one build at 299 px (a placeholder, never run); everything that runs uses 75-107 px images.
"""

import pytest
from helpers.netcheck import build_published, variable_shapes

from nets import nets_factory
from nets.compat import slim, tf
from nets.inception_v4 import END_POINTS, inception_v4_arg_scope, inception_v4_base

pytestmark = pytest.mark.slow  # the full-size 299 px build of a 43M-parameter net

NAME = "inception_v4"
SCOPE = "InceptionV4"


@pytest.fixture(scope="module")
def published_build():
    """299 px, 1001 classes, eval mode: the published checkpoint's build."""
    return build_published(NAME)


def test_end_points_at_299(published_build):
    _, logits, end_points = published_build
    shapes = {name: tensor.shape.as_list()[1:] for name, tensor in end_points.items()}
    stem = {
        "Conv2d_1a_3x3": [149, 149, 32],
        "Conv2d_2a_3x3": [147, 147, 32],
        "Conv2d_2b_3x3": [147, 147, 64],
        "Mixed_3a": [73, 73, 160],
        "Mixed_4a": [71, 71, 192],
        "Mixed_5a": [35, 35, 384],
    }
    blocks = {
        **{f"Mixed_5{c}": [35, 35, 384] for c in "bcde"},
        **{f"Mixed_6{c}": [17, 17, 1024] for c in "abcdefgh"},
        **{f"Mixed_7{c}": [8, 8, 1536] for c in "abcd"},
    }
    heads = {"AuxLogits": [1001], "global_pool": [1, 1, 1536], "PreLogitsFlatten": [1536]}
    heads.update(Logits=[1001], Predictions=[1001])
    assert shapes == {**stem, **blocks, **heads}
    assert list(end_points)[: len(END_POINTS)] == list(END_POINTS)
    assert logits is end_points["Logits"]
    assert end_points["Predictions"].op.name == f"{SCOPE}/Logits/Predictions"


def test_eval_mode_has_no_batch_norm_updates(published_build):
    graph, _, _ = published_build
    assert graph.get_collection(tf.GraphKeys.UPDATE_OPS) == []


def test_manifest():
    spec = nets_factory.get_spec(NAME)
    assert (spec.image_size, spec.num_classes, spec.preprocessing) == (299, 1001, "inception")
    assert spec.classifier_scopes == (f"{SCOPE}/Logits", f"{SCOPE}/AuxLogits")
    assert (spec.logits_end_point, spec.predictions_end_point) == ("Logits", "Predictions")
    assert nets_factory.get_network_fn(NAME, 10).default_image_size == 299


def test_base_stops_at_the_final_endpoint(graph):
    with slim.arg_scope(inception_v4_arg_scope()):
        net, end_points = inception_v4_base(tf.placeholder(tf.float32, [1, 75, 75, 3]), final_endpoint="Mixed_5a")
    assert list(end_points) == list(END_POINTS[: END_POINTS.index("Mixed_5a") + 1])
    assert net is end_points["Mixed_5a"] and net.shape.as_list() == [1, 7, 7, 384]
    published = nets_factory.get_spec(NAME).published_variables()
    built = variable_shapes(graph)
    assert built and all(published[name] == shape for name, shape in built.items())
    assert not any(name.startswith(f"{SCOPE}/Mixed_5b") for name in built)


def test_base_rejects_an_unknown_final_endpoint(graph):
    with pytest.raises(ValueError, match="Unknown final_endpoint 'Mixed_8a'"):
        inception_v4_base(tf.placeholder(tf.float32, [1, 75, 75, 3]), final_endpoint="Mixed_8a")
    assert variable_shapes(graph) == {}
