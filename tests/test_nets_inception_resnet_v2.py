"""nets/inception_resnet_v2.py: the published checkpoint's variables, end points, modes, base options
(the fine-tuning size and golden logits: test_nets_inception_golden.py).

Only one build at 299 px (a placeholder, never run); everything that runs uses 75-107 px images.
"""

import pytest
from helpers.netcheck import build_published, variable_shapes

from nets import _inception_common, nets_factory
from nets.compat import slim, tf
from nets.inception_resnet_v2 import inception_resnet_v2_arg_scope, inception_resnet_v2_base

pytestmark = pytest.mark.slow  # the full-size 299 px build of a 56M-parameter net

NAME = "inception_resnet_v2"
SCOPE = "InceptionResnetV2"


@pytest.fixture(scope="module")
def published_build():
    """299 px, 1001 classes, eval mode: the published checkpoint's build."""
    return build_published(NAME)


def test_end_points_at_299(published_build):
    _, logits, end_points = published_build
    shapes = {name: tensor.shape.as_list() for name, tensor in end_points.items()}
    assert shapes == {
        "Conv2d_1a_3x3": [1, 149, 149, 32],
        "Conv2d_2a_3x3": [1, 147, 147, 32],
        "Conv2d_2b_3x3": [1, 147, 147, 64],
        "MaxPool_3a_3x3": [1, 73, 73, 64],
        "Conv2d_3b_1x1": [1, 73, 73, 80],
        "Conv2d_4a_3x3": [1, 71, 71, 192],
        "MaxPool_5a_3x3": [1, 35, 35, 192],
        "Mixed_5b": [1, 35, 35, 320],
        "Mixed_6a": [1, 17, 17, 1088],
        "PreAuxLogits": [1, 17, 17, 1088],
        "Mixed_7a": [1, 8, 8, 2080],
        "Conv2d_7b_1x1": [1, 8, 8, 1536],
        "AuxLogits": [1, 1001],
        "global_pool": [1, 1, 1, 1536],
        "PreLogitsFlatten": [1, 1536],
        "Logits": [1, 1001],
        "Predictions": [1, 1001],
    }
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


def test_base_stops_at_the_final_endpoint_and_supports_output_stride_8(graph):
    with slim.arg_scope(inception_resnet_v2_arg_scope()):
        net, end_points = inception_resnet_v2_base(
            tf.placeholder(tf.float32, [1, 64, 64, 3]),
            final_endpoint="PreAuxLogits",
            output_stride=8,
            align_feature_maps=True,
        )
    assert list(end_points)[-1] == "PreAuxLogits" and net is end_points["PreAuxLogits"]
    assert net.shape.as_list() == [1, 8, 8, 1088]  # SAME padding, stride 8
    published = nets_factory.get_spec(NAME).published_variables()
    built = variable_shapes(graph)
    assert built and all(published[name] == shape for name, shape in built.items())
    assert not any(name.startswith(f"{SCOPE}/Mixed_7a") for name in built)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"final_endpoint": "Mixed_9z"}, "Unknown final_endpoint 'Mixed_9z'"),
        ({"output_stride": 4}, "output_stride must be 8 or 16"),
        ({"output_stride": 8}, "only defined up to final_endpoint='PreAuxLogits'"),
    ],
)
def test_base_rejects_bad_arguments(graph, kwargs, message):
    with pytest.raises(ValueError, match=message):
        inception_resnet_v2_base(tf.placeholder(tf.float32, [1, 75, 75, 3]), **kwargs)
    assert variable_shapes(graph) == {}


def test_aux_head_needs_a_static_size(graph):
    with pytest.raises(ValueError, match="create_aux_logits=False"):
        _inception_common.aux_logits(
            tf.placeholder(tf.float32, [1, None, None, 1088]), 5, _inception_common.AuxScopes("P", "C", "L")
        )
