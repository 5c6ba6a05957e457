"""finetune.choices: the flags' choice names, free of TensorFlow, agree with the registries that give them meaning."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from finetune import choices, config

_ROOT = Path(__file__).resolve().parents[1]


def test_registries_hold_exactly_the_choice_names():
    from checkpoints.mapping import BACKGROUND_OPTIONS
    from finetune import weights
    from finetune.data import preprocessing
    from finetune.train import optim, precision
    from nets import hub

    assert tuple(optim.OPTIMIZERS) == choices.OPTIMIZERS
    assert tuple(optim.SCHEDULES) == choices.SCHEDULES
    assert tuple(precision.PRECISIONS) == choices.PRECISIONS
    assert tuple(preprocessing.STYLES) == choices.PREPROCESSING
    assert [weights.reader(name).__name__ for name in choices.WEIGHT_FORMATS] == [
        "finetune.weights.tflite_format", "finetune.weights.keras_format"]
    assert choices.BACKGROUND_CLASS == tuple(o for o in BACKGROUND_OPTIONS if o) == ("auto", "drop", "add")
    assert [hub.parse_range(text) for text in choices.INPUT_RANGES] == list(hub.INPUT_RANGES)


def test_every_cache_mode_is_one_feature_cache_decides():
    from finetune.train import feature_cache

    decided = {mode: feature_cache.decide(mode, classifier_only=True, augment="none", train_bn_stats=False,
                                          num_devices=1, cluster=False)[0] for mode in choices.CACHE_FEATURES}
    assert decided == {"auto": True, "on": True, "off": False}


@pytest.mark.parametrize("name, flag", [("optimizer", "--optimizer"), ("lr_schedule", "--lr-schedule"),
                                        ("precision", "--precision"), ("cache_features", "--cache-features"),
                                        ("augment", "--augment"), ("background_class", "--background-class"),
                                        ("input_range", "--input-range")])
def test_flags_offer_the_choice_names(name, flag):
    parser = argparse.ArgumentParser()
    config.add_arguments(parser)
    action = next(a for a in parser._actions if flag in a.option_strings)
    assert tuple(action.choices) == config.RunConfig.__dataclass_fields__[name].metadata["choices"]


_HELP_SCRIPT = """
import argparse, contextlib, io, json, sys
from finetune import config
parser = argparse.ArgumentParser(prog="finetune")
config.add_arguments(parser)
with contextlib.redirect_stdout(io.StringIO()) as out:
    parser.print_help()
heavy = sorted(m for m in sys.modules if m == "tensorflow" or m.startswith(("finetune.train", "finetune.data")))
print(json.dumps({"help": out.getvalue(), "heavy": heavy}))
"""


def test_help_lists_the_choices_without_importing_tensorflow_or_the_registries():
    result = subprocess.run([sys.executable, "-c", _HELP_SCRIPT], capture_output=True, text=True, timeout=120,
                            cwd=_ROOT)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["heavy"] == []
    help_text = " ".join(seen["help"].split())
    for names in (choices.OPTIMIZERS, choices.SCHEDULES, choices.PRECISIONS, choices.CACHE_FEATURES):
        assert "{" + ",".join(names) + "}" in help_text
