"""One scope rule for every flag: --trainable, --lr-multiplier and --exclude-scopes (and inspect's)."""

import numpy as np
import pytest
from helpers.runs import QUICK_NET as NET
from helpers.weights import save_random_checkpoint

import checkpoints
from checkpoints import scopes
from finetune.train import graph as train_graph
from finetune.train import optim
from nets import nets_factory
from nets.compat import tf

CLASSIFIER = ["MobilenetV1/Logits/Conv2d_1c_1x1/biases", "MobilenetV1/Logits/Conv2d_1c_1x1/weights"]
# the same scope written three ways: relative to the net's scope, absolute, and as a regex
WAYS = ("Logits", "MobilenetV1/Logits", "Logi[t]s")


@pytest.mark.parametrize("scope, name, root, expected", [
    ("Logits", "Net/Logits/weights", "Net", True),  # relative
    ("Net/Logits", "Net/Logits/weights", "Net", True),  # absolute
    ("Net/Logits", "Net/Logits", None, True),  # the scope itself
    ("Conv2d_1", "Net/Conv2d_13/weights", "Net", False),  # only at a scope boundary
    ("Conv2d_1.*", "Net/Conv2d_13/weights", "Net", True),  # a regex may cross it
    ("Logits", "Other/Logits/weights", "Net", False),  # relative only to the net's own scope
    ("Logits", "Net/Logits/weights", None, False),  # no root: absolute only
    ("Mixed_7[bc]", "Net/Mixed_7c/Branch_0/weights", "Net", True),
])
def test_scope_matches_at_a_boundary_absolute_or_relative(scope, name, root, expected):
    assert scopes.scope_matches(scope, name, root) is expected


def test_parse_scopes_splits_strips_and_rejects_bad_regexes_in_one_line():
    assert scopes.parse_scopes(" A, B/C/ ,,") == ("A", "B/C")
    assert scopes.parse_scopes(["A/", "B"]) == ("A", "B")
    with pytest.raises(ValueError, match=r"^--trainable 'Mixed_\(7' is not a valid regular expression") as error:
        scopes.parse_scopes("Logits,Mixed_(7", "--trainable")
    assert "\n" not in str(error.value)


def test_most_specific_scope_wins():
    assert scopes.most_specific_scope("Net/Logits/w", ["Net", "Logits", "Net/Logits"], "Net") == "Net/Logits"
    assert scopes.most_specific_scope("Net/Conv/w", ["Logits"], "Net") is None


@pytest.fixture(scope="module")
def net_and_checkpoint(tmp_path_factory):
    """The net's graph (trainable variables, fake gradients) and a checkpoint of the same net."""
    path = str(tmp_path_factory.mktemp("scopes") / "model.ckpt")
    graph = tf.Graph()
    with graph.as_default():
        spec = nets_factory.get_spec(NET)
        train_graph.build_logits(spec, tf.zeros([1, 32, 32, 3]), 5, spec.classifier_scopes, weight_decay=0.0,
                                 train_bn_stats=False)
        save_random_checkpoint(path)
    return spec, graph, path


@pytest.mark.parametrize("way", WAYS)
def test_one_scope_written_three_ways_means_the_same_in_all_three_flags(net_and_checkpoint, way):
    spec, graph, path = net_and_checkpoint
    with graph.as_default():
        variables = tf.trainable_variables()
        # --trainable
        trained = train_graph.select_trainable(variables, train_graph.trainable_scopes(spec, (way,)), spec.scope)
        assert sorted(v.op.name for v in trained) == CLASSIFIER
        # --lr-multiplier: only the classifier's gradients are scaled
        grads = [(tf.ones_like(v), v) for v in variables]
        scaled, _ = optim.process_gradients(grads, multipliers={way: 10.0}, root=spec.scope)
        with tf.Session() as session:
            values = session.run({v.op.name: g for g, v in scaled})
        assert sorted(n for n, g in values.items() if np.all(g == 10.0)) == CLASSIFIER
        assert all(np.all(g == 1.0) for n, g in values.items() if n not in CLASSIFIER)
        # --exclude-scopes: the classifier keeps its initialiser, all else is restored
        plan = checkpoints.plan_restore(tf.global_variables(), path, net=spec,
                                        options=checkpoints.RestoreOptions(exclude_scopes=(way,)))
        assert sorted(e.variable for e in plan.skipped) == CLASSIFIER
        assert len(plan.restored) == len(tf.global_variables()) - len(CLASSIFIER)


def test_an_exclude_scope_that_matches_nothing_is_an_error_not_a_mismatch(net_and_checkpoint):
    spec, graph, path = net_and_checkpoint
    with graph.as_default():
        plan = checkpoints.build_plan(tf.global_variables(), path, net=spec,
                                      options=checkpoints.RestoreOptions(exclude_scopes=("Logitz",)))
        assert plan.unmatched_excludes == ["Logitz"] and not plan.errors
        with pytest.raises(checkpoints.RestoreError, match=r"^--exclude-scopes Logitz matches no variable") as error:
            plan.check()
        assert "\n" not in str(error.value)
