"""RunConfig: one flag per field, dependent defaults resolved once, bad values as one-line errors."""

import argparse
import dataclasses

import pytest

from finetune import cli, config
from finetune.config import RunConfig

BASE = {"net": "mobilenet_v1_025", "dataset": "data"}


def _parse(*flags: str) -> RunConfig:
    parser = argparse.ArgumentParser()
    config.add_arguments(parser)
    return config.from_namespace(parser.parse_args(["--net", "mobilenet_v1_025", "--dataset", "data", *flags]))


def test_defaults_are_fine_tuning_defaults_resolved_once():
    logits = RunConfig(**BASE, ckpt="ckpt")
    assert (logits.trainable, logits.optimizer, logits.lr_schedule) == (("logits",), "momentum", "cosine")
    assert logits.learning_rate == 0.01 and logits.epochs == 5.0 and logits.train_dir == "runs/mobilenet_v1_025"
    assert logits.optimizer_params == {"momentum": 0.9}
    assert RunConfig(**BASE, ckpt="ckpt", trainable="all").learning_rate == 0.001
    assert RunConfig(**BASE, trainable="all").learning_rate == 0.01  # from scratch
    assert RunConfig(**BASE, max_steps=10).epochs is None
    assert RunConfig(**BASE, optimizer="rmsprop").optimizer_params == {
        "rmsprop_decay": 0.9, "rmsprop_momentum": 0.9, "opt_epsilon": 1.0}


def test_without_a_checkpoint_every_layer_trains_by_default():
    """Issue 18: no --ckpt and --trainable left out trained the classifier on a frozen random trunk (chance)."""
    scratch = RunConfig(**BASE)
    assert scratch.trainable == ("all",) and scratch.trainable_defaulted and scratch.learning_rate == 0.01
    assert _parse().trainable == ("all",) and _parse("--ckpt", "ckpt").trainable == ("logits",)
    assert scratch.replace(ckpt="ckpt").trainable == ("logits",)  # a defaulted --trainable resolves anew
    assert not RunConfig(**BASE, trainable="all").trainable_defaulted
    assert RunConfig(**BASE, trainable="MobilenetV1").trainable == ("MobilenetV1",)  # the whole net: fine


@pytest.mark.parametrize("flags", [("--trainable", "logits"), ("--trainable", "Conv2d_13_pointwise,Logits")])
def test_a_random_trunk_left_frozen_is_refused_unless_insisted(flags):
    with pytest.raises(ValueError) as error:
        _parse(*flags)
    message = str(error.value)
    assert message.startswith(f"--trainable {flags[1]} without --ckpt leaves ") and "\n" not in message
    assert "frozen at their random values" in message and "--allow-random-trunk" in message
    assert _parse(*flags, "--allow-random-trunk").trainable == tuple(flags[1].split(","))
    assert _parse(*flags, "--ckpt", "ckpt").trainable == tuple(flags[1].split(","))
    assert _parse(*flags, "--allow-random-trunk").to_dict()["allow_random_trunk"] is True
    assert "allow_random_trunk" not in _parse().to_dict()  # records written before the flag still compare equal


def test_flags_round_trip_to_fields():
    c = _parse("--ckpt", "ckpt", "--trainable", "Conv2d_13_pointwise, Logits", "--lr-multiplier", "MobilenetV1/Logits=10",
               "--lr-multiplier", "MobilenetV1/Conv2d_13_pointwise=2", "--exclude-scopes", "A,B/",
               "--ckpt-rename", "Old:New", "--clip-grad-norm", "5", "--xla", "--learning-rate", "0.05",
               "--max-steps", "7", "--train-bn-stats", "--background-class", "drop")
    assert c.lr_multiplier == (("MobilenetV1/Logits", 10.0), ("MobilenetV1/Conv2d_13_pointwise", 2.0))
    assert c.trainable == ("Conv2d_13_pointwise", "Logits")
    assert c.exclude_scopes == ("A", "B") and [rule.text for rule in c.ckpt_rename] == ["Old:New"]
    assert c.ckpt_rename[0].apply("Old/conv/weights") == "New/conv/weights"
    assert (c.clip_grad_norm, c.xla, c.learning_rate, c.max_steps, c.train_bn_stats) == (5.0, True, 0.05, 7, True)
    assert c.background_class == "drop" and _parse().background_class is None
    assert _parse() == RunConfig(**BASE)  # unset flags fall back to the fields' defaults


def test_every_field_has_a_documented_flag():
    parser = argparse.ArgumentParser()
    config.add_arguments(parser)
    flags = {a.dest: a for a in parser._actions}
    for f in dataclasses.fields(RunConfig):
        assert f.name in flags, f.name
        # the flag's help is the field's own, with the default when there is one (argparse keeps a flag not given
        # out of the namespace, so a recipe run can tell the flags given)
        meaningful = not (f.default is None or f.default is False or f.default in ("", ()))
        assert flags[f.name].help == f.metadata["help"] + (f" (default: {config.default_text(f.default)})" if meaningful else ""), f.name
        assert flags[f.name].default is argparse.SUPPRESS, f.name


def test_the_namespace_holds_exactly_the_flags_given():
    parser = argparse.ArgumentParser()
    config.add_arguments(parser)
    given = vars(parser.parse_args(["--net", "mobilenet_v1_025", "--dataset", "d", "--batch-size", "32",
                                    "--trainable", "all"]))
    assert given == {"net": "mobilenet_v1_025", "dataset": "d", "batch_size": 32, "trainable": ("all",)}


def test_python_values_are_parsed_like_flags():
    written = RunConfig(**BASE, ckpt="ckpt", trainable="Conv2d_13_pointwise, Logits", exclude_scopes="A,B/",
                        ckpt_rename=("Old:New",), lr_multiplier=("Logits=10",))
    flags = _parse("--ckpt", "ckpt", "--trainable", "Conv2d_13_pointwise,Logits", "--exclude-scopes", "A,B", "--ckpt-rename",
                   "Old:New", "--lr-multiplier", "Logits=10")
    assert written == flags
    assert written.restore_options.exclude_scopes == ("A", "B")
    assert written.restore_options.rename == flags.ckpt_rename
    assert written.to_dict()["ckpt_rename"] == ["Old:New"] and written.to_dict()["trainable"] == [
        "Conv2d_13_pointwise", "Logits"]


@pytest.mark.parametrize("changes, flag", [
    ({"batch_size": 0}, "--batch-size"),
    ({"learning_rate": -1.0}, "--learning-rate"),
    ({"label_smoothing": 1.5}, "--label-smoothing"),
    ({"crop_min_area": 0.0}, "--crop-min-area"),
    ({"moving_average_decay": 1.0}, "--moving-average-decay"),
    ({"optimizer": "adagrad"}, "--optimizer"),
    ({"lr_schedule": "step"}, "--lr-schedule"),
    ({"precision": "float8"}, "--precision"),
    ({"background_class": "remove"}, "--background-class"),
    ({"max_steps": 5, "warmup_steps": 10}, "--warmup-steps"),
    ({"net": "mobilenet_v9"}, "mobilenet_v9"),
    ({"dataset": ""}, "--dataset"),
    ({"learning_rate": float("nan")}, "--learning-rate"),
    ({"learning_rate": float("inf")}, "--learning-rate"),
    ({"epochs": 2.0, "max_steps": 10}, "--max-steps"),
    ({"trainable": "Mixed_(7"}, "--trainable"),
    ({"exclude_scopes": "Logits["}, "--exclude-scopes"),
    ({"lr_multiplier": ("Logits(=10",)}, "--lr-multiplier"),
    ({"lr_multiplier": ("Logits=nan",)}, "--lr-multiplier"),
    ({"ckpt_rename": ("re:(=x",)}, "re:(=x"),
])
def test_bad_values_are_one_line_errors_naming_the_flag(changes, flag):
    with pytest.raises(ValueError) as error:
        RunConfig(**{**BASE, **changes})
    assert flag in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("flags, says", [
    (("--lr-multiplier", "Logits"), "SCOPE=FACTOR"),
    (("--trainable", "Mixed_(7"), "--trainable 'Mixed_(7' is not a valid regular expression"),
    (("--exclude-scopes", "Logits["), "--exclude-scopes 'Logits[' is not a valid regular expression"),
    (("--ckpt-rename", "nocolon"), "OLD:NEW"),
])
def test_bad_flag_values_are_rejected_by_the_parser_in_one_line(capsys, flags, says):
    with pytest.raises(SystemExit):
        _parse(*flags)
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert says in error


FROZEN_TRUNK_RECIPE = '''from finetune.recipe.types import Model, Recipe, Stage, Training

RECIPE = Recipe(
    description="a stage from scratch",
    model=Model(net="mobilenet_v1_025"),
    stages=(Stage("first", start="scratch", training=Training(max_steps=1)),
            Stage("second", start="scratch", training=Training({second}max_steps=1))),
)
'''


def test_a_recipe_stage_from_scratch_leaving_a_random_trunk_frozen_is_refused_at_its_line(tmp_path, capsys):
    """Issue 18: RunConfig's rule for --trainable without --ckpt applies to a recipe's stage from scratch, before
    anything runs; left to default, such a stage trains every layer."""
    from finetune.recipe import runner

    path, data = tmp_path / "frozen.py", tmp_path / "data"
    for name in ("a", "b"):
        (data / name).mkdir(parents=True)
    path.write_text(FROZEN_TRUNK_RECIPE.format(second="trainable='logits', "))
    assert cli.main(["--recipe", str(path), "--dataset", str(data), "--train-dir", str(tmp_path / "plan")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and f"{path}:7: stage 'second', trainable: --trainable logits without " \
        "--ckpt leaves" in error and "--allow-random-trunk" in error, error
    assert not (tmp_path / "plan").exists()
    path.write_text(FROZEN_TRUNK_RECIPE.format(second="trainable='logits', allow_random_trunk=True, "))
    assert cli.main(["--recipe", str(path), "--dataset", str(data), "--dry-run"]) == 0
    path.write_text(FROZEN_TRUNK_RECIPE.format(second=""))
    stages = runner.resolve(runner.load_recipe(str(path)), str(tmp_path / "plan"), {"dataset": str(data)}).stages
    assert [s.config.trainable for s in stages] == [("all",), ("all",)]
