"""Every registered net against its manifest: published variables, fine-tuning builds, end points, errors.

Parametrized over `nets_factory.specs()`, so each net a family file registers is covered. Graphs are
only built (batch-1 placeholders), never run; outside helpers.netcheck.QUICK_NETS (one net per family) the
builds are marked slow.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers.netcheck import AUX_IN_TRAINING_ONLY, variable_shapes, zoo_params

from nets import nets_factory
from nets.compat import tf

SPECS = nets_factory.specs()
NEW_CLASSES = 7
# Nets whose auxiliary head, in the published checkpoint, exists only in a training-mode build (as in TF-Slim).


def _in_scopes(name: str, scopes: tuple[str, ...]) -> bool:
    return any(name.startswith(scope + "/") for scope in scopes)


def _build(spec: nets_factory.NetSpec, image_size: int, num_classes: int):
    images = tf.placeholder(tf.float32, [1, image_size, image_size, 3], name="images")
    return nets_factory.get_network_fn(spec.name, num_classes)(images)


def _diff(built: dict, published: dict) -> str:
    missing = sorted(set(published) - set(built))
    extra = sorted(set(built) - set(published))
    wrong = sorted(n for n in set(built) & set(published) if built[n] != published[n])
    return (
        f"missing {len(missing)} {missing[:5]}, extra {len(extra)} {extra[:5]}, "
        f"wrong shape {[(n, built[n], published[n]) for n in wrong[:5]]}"
    )


def _logits_weights(spec: nets_factory.NetSpec) -> tuple[int, ...]:
    """Shape of the main classifier's weights (the first classifier scope's, ending in num_classes)."""
    shapes = [
        shape
        for name, shape in spec.published_variables().items()
        if name.startswith(spec.classifier_scopes[0] + "/")
        and name.endswith("weights")
        and shape[-1] == spec.num_classes
    ]
    assert len(shapes) == 1, f"{spec.name}: expected one logits kernel under {spec.classifier_scopes[0]}, got {shapes}"
    return shapes[0]


def _check_end_points(spec: nets_factory.NetSpec, logits: tf.Tensor, end_points: dict, num_classes: int) -> None:
    assert logits.shape.as_list() == [1, num_classes]
    assert end_points[spec.logits_end_point] is logits
    if spec.predictions_end_point is not None:
        assert end_points[spec.predictions_end_point].shape.as_list() == [1, num_classes]


@pytest.mark.parametrize("name", SPECS)
def test_published_file_exists_and_says_where_it_comes_from(name):
    spec = SPECS[name]
    first_line = (nets_factory._PUBLISHED_DIR / f"{name}.txt").read_text().splitlines()[0]
    assert first_line.startswith("# ") and len(first_line) > 20
    assert spec.published_variables() and all(d > 0 for shape in spec.published_variables().values() for d in shape)
    if spec.scope:  # NASNet and PNASNet have no top scope (spec.scope '')
        assert all(_in_scopes(n, (spec.scope,)) or n == "global_step" for n in spec.published_variables()), (
            f"{name}: published variables outside its scope {spec.scope!r}"
        )


@pytest.mark.parametrize("name", zoo_params([name for name in SPECS if name not in AUX_IN_TRAINING_ONLY]))
def test_variables_equal_the_published_checkpoint(graph, name):
    spec = SPECS[name]
    logits, end_points = _build(spec, spec.image_size, spec.num_classes)
    built, published = variable_shapes(), spec.published_variables()
    assert built == published, f"{name}: {_diff(built, published)}"
    assert len(tf.global_variables()) == len(published)
    assert {v.dtype.base_dtype for v in tf.global_variables()} == {tf.float32}  # as every published checkpoint
    _check_end_points(spec, logits, end_points, spec.num_classes)


@pytest.mark.parametrize("name", zoo_params(sorted(AUX_IN_TRAINING_ONLY)))
def test_training_build_has_the_published_variables_the_evaluation_build_all_but_the_aux_head(graph, name):
    spec = SPECS[name]
    logits, end_points = _build(spec, spec.image_size, spec.num_classes)
    _check_end_points(spec, logits, end_points, spec.num_classes)
    built, published = variable_shapes(), spec.published_variables()
    aux_only = {n: s for n, s in published.items() if n not in built}
    assert aux_only and all(_in_scopes(n, spec.classifier_scopes[1:]) for n in aux_only)
    assert {n: s for n, s in published.items() if n in built} == built, f"{name}: {_diff(built, published)}"
    with tf.Graph().as_default():
        images = tf.placeholder(tf.float32, [1, spec.image_size, spec.image_size, 3])
        _, training_end_points = nets_factory.get_network_fn(name, spec.num_classes, is_training=True)(images)
        trained = {n: s for n, s in variable_shapes().items() if n != "global_step"}  # drop path's step
        assert {v.dtype.base_dtype for v in tf.global_variables() if v.op.name != "global_step"} == {tf.float32}
    assert trained == published, f"{name} in training mode: {_diff(trained, published)}"
    assert training_end_points["AuxLogits"].shape.as_list() == [1, spec.num_classes]


@pytest.mark.parametrize("name", zoo_params(also_slow={"mobilenet_v2_035", "resnet_v2_50"}))  # 9-14 s each
def test_fine_tuning_build_changes_only_the_classifier(graph, name):
    spec = SPECS[name]
    small = spec.image_size // 2
    logits, end_points = _build(spec, small, NEW_CLASSES)
    built, published = variable_shapes(), spec.published_variables()

    body = {n: s for n, s in built.items() if not _in_scopes(n, spec.classifier_scopes)}
    published_body = {n: s for n, s in published.items() if not _in_scopes(n, spec.classifier_scopes)}
    assert body == published_body, f"{name} at {small}px: {_diff(body, published_body)}"
    classifier = {n: s for n, s in built.items() if _in_scopes(n, spec.classifier_scopes)}
    assert classifier, f"{name}: no variables under {spec.classifier_scopes}"
    assert any(s[-1] == NEW_CLASSES for s in classifier.values())
    assert not any(s[-1] == spec.num_classes for s in classifier.values())
    _check_end_points(spec, logits, end_points, NEW_CLASSES)

    # num_classes=0 on the same body: pre-logits features, no new variable (reuse would raise).
    with tf.variable_scope(tf.get_variable_scope(), reuse=True):
        images = tf.placeholder(tf.float32, [1, small, small, 3])
        features, _ = nets_factory.get_network_fn(name, 0)(images)
    depth = _logits_weights(spec)[-2]
    assert features.shape.as_list()[-1] == depth and np.prod(features.shape.as_list()[1:]) == depth
    assert len(variable_shapes()) == len(built)


def test_zoo_covers_the_published_families():
    # The nets tf_slim.nets defines with the published names; other families check in their own tests.
    for name in ("inception_v1", "inception_v2", "inception_v3", "vgg_a", "vgg_16", "vgg_19", "alexnet_v2", "overfeat"):
        assert name in SPECS
    for name in ("mobilenet_v3_large", "mobilenet_v3_small", "mobilenet_v3_large_minimalistic",
                 "mobilenet_v3_small_minimalistic", "mobilenet_edgetpu", "mobilenet_edgetpu_075"):
        assert name in SPECS
    for depth in (50, 101, 152, 200):
        assert f"resnet_v1_{depth}" in SPECS and f"resnet_v2_{depth}" in SPECS


@pytest.mark.parametrize(
    "name, checkpoint_classes, preprocessing",
    [
        ("inception_v1", 1001, "inception"),
        ("inception_v3", 1001, "inception"),
        ("resnet_v1_50", 1000, "vgg"),
        ("resnet_v2_50", 1001, "inception"),  # not vgg, although TF-Slim's own factory says so
        ("vgg_16", 1000, "vgg"),
        ("alexnet_v2", 1000, "vgg"),
        ("overfeat", 1000, "vgg"),
        ("mobilenet_v3_large", 1001, "inception"),
        ("mobilenet_edgetpu_075", 1001, "inception"),
    ],
)
def test_manifest_facts(name, checkpoint_classes, preprocessing):
    spec = nets_factory.get_spec(name)
    assert (spec.num_classes, spec.preprocessing) == (checkpoint_classes, preprocessing)


@pytest.mark.parametrize("get", [nets_factory.get_spec, lambda n: nets_factory.get_network_fn(n, 10)])
def test_unknown_net_names_close_matches_and_finetune_nets(get):
    with pytest.raises(ValueError) as error:
        get("resnet_v1_5O")
    message = str(error.value)
    assert "\n" not in message
    assert "'resnet_v1_5O'" in message and "resnet_v1_50" in message and "`finetune nets`" in message
