"""Recipes: a two-stage recipe on mobilenet_v1_025 at 32 px (what each stage trains, resume after kill -9, finished
stages kept, changes refused), overrides and --dry-run, bad recipes named by file and line, the shipped recipes."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers.runs import QUICK_NET as NET
from helpers.runs import checkpoint_values as _values

from finetune import cli
from finetune.recipe import demo
from finetune.recipe import runner as recipe_runner
from finetune.recipe.resolve import RUN_FIELDS
from finetune.recipe.types import Training
from finetune.runs.trained_model import TrainedModel
from nets import nets_factory
from nets.compat import tf
from recipes import demo as recipes

TWO_STAGES = '''"""Two stages on a tiny net."""
from finetune.recipe.types import Data, Model, Recipe, Restore, Training
from recipes import pool

RECIPE = Recipe(
    description="classifier then all layers, tiny",
    data=Data(seed=0),
    model=Model(net="{net}", image_size={size}),
    restore=Restore(ckpt="{ckpt}"),
    training=Training(batch_size=8, optimizer="momentum", save_interval_secs=3600, skip_eval=True),
    stages=pool.classifier_then_all(
        classifier=Training(max_steps=3, learning_rate={logits_lr}, save_interval_steps=1),
        all_layers=Training(max_steps={all_steps}, learning_rate=0.05, save_interval_steps={save_every}),
        keep_classifier="classifier"),
)
'''


def _recipe(path: Path, ckpt: str, *, logits_lr=0.1, all_steps=3, save_every=1000, size=32) -> str:
    path.write_text(TWO_STAGES.format(net=NET, ckpt=ckpt, logits_lr=logits_lr, all_steps=all_steps,
                                      save_every=save_every, size=size))
    return str(path)


def _model_names(values: dict) -> list[str]:
    return sorted(n for n in values if n.startswith("MobilenetV1/") and not n.endswith("/Momentum"))


def _files(directory: Path) -> dict[str, float]:
    return {p.name: p.stat().st_mtime_ns for p in directory.iterdir() if p.is_file()}


def _kill_in_stage_two(command: list[str], plan_dir: Path) -> None:
    """Run `finetune COMMAND` in a subprocess and kill -9 it once stage 2 saved a checkpoint past its start."""
    process = subprocess.Popen([sys.executable, "-m", "finetune.cli", *command], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    try:
        deadline = time.time() + 400
        while time.time() < deadline and process.poll() is None:
            latest = tf.train.latest_checkpoint(str(plan_dir / "all")) if (plan_dir / "all").is_dir() else None
            if latest and int(latest.rsplit("-", 1)[1]) > 0:
                break
            time.sleep(0.05)
        assert process.poll() is None, "stage 2 finished (or failed) before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()


def _check_what_each_stage_trained(pretrained: str, plan_dir: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """Stage 1 trained the classifier alone, stage 2 every variable from stage 1's end; (the net's variable names,
    stage 1's final values)."""
    source, logits_start = _values(pretrained), _values(str(plan_dir / "logits" / "model.ckpt-1"))
    logits_end = _values(str(plan_dir / "logits" / "model.ckpt-3"))
    all_end = _values(str(plan_dir / "all" / "model.ckpt-120"))
    names = _model_names(logits_end)
    classifier = [n for n in names if n.startswith("MobilenetV1/Logits/")]
    frozen = [n for n in names if n not in classifier]
    assert len(classifier) == 2 and any(n.endswith("moving_variance") for n in frozen)
    for name in frozen:  # stage 1: every variable but the classifier is the checkpoint's, bit for bit
        np.testing.assert_array_equal(logits_end[name], source[name], err_msg=name)
    for name in classifier:
        assert not np.array_equal(logits_end[name], logits_start[name]), name
    assert _model_names(all_end) == names
    for name in names:  # stage 2 started from stage 1's final values and changed every one
        assert not np.array_equal(all_end[name], logits_end[name]), name
    return names, logits_end


@pytest.mark.slow
def test_a_two_stage_recipe_killed_in_stage_two_resumes_there_and_trains_what_each_stage_says(
        tmp_path, dataset, pretrained, capsys):
    # 64 px: at 32 px the last layers see 1x1 maps, where a BatchNorm beta feeding the next (training-mode)
    # BatchNorm through a linear stretch gets no gradient, so "stage 2 changes every variable" need not hold.
    recipe = _recipe(tmp_path / "two.py", pretrained, all_steps=120, save_every=5, size=64)
    plan_dir = tmp_path / "plan"
    command = ["--recipe", recipe, "--dataset", dataset, "--train-dir", str(plan_dir), "--batch-size", "4"]
    _kill_in_stage_two(command, plan_dir)
    saved = tf.train.latest_checkpoint(str(plan_dir / "all"))
    saved_step = int(saved.rsplit("-", 1)[1])
    assert 0 < saved_step < 120
    states = {s["name"]: s["state"] for s in json.loads((plan_dir / "plan.json").read_text())["stages"]}
    assert states == {"logits": "done", "all": "running"}
    logits_files = _files(plan_dir / "logits")

    # the same command: stage 1 is not trained again, stage 2 goes on from its saved step
    assert cli.main(command) == 0
    out = capsys.readouterr().out
    assert "flag --batch-size 4 overrides batch_size for every stage (was: recipe 8)" in out
    assert "finished before, not run again" in out.split("[all]")[0]
    assert f"Resuming from {saved} (step {saved_step} of 120)" in out
    summary = json.loads((plan_dir / "all" / "run_summary.json").read_text())
    assert summary["start_step"] == saved_step and summary["final_step"] == 120
    assert _files(plan_dir / "logits") == logits_files

    names, logits_end = _check_what_each_stage_trained(pretrained, plan_dir)
    plan = json.loads((plan_dir / "plan.json").read_text())
    assert [(s["name"], s["state"], s["final_step"]) for s in plan["stages"]] == [("logits", "done", 3),
                                                                                    ("all", "done", 120)]
    # the plan dir exports as its last stage
    assert TrainedModel.from_train_dir(str(plan_dir)).checkpoint == str(plan_dir / "all" / "model.ckpt-120")
    # stage 1's final checkpoint, kept under its name as a train dir of its own
    kept = TrainedModel.from_train_dir(str(plan_dir / "kept" / "classifier"))
    assert kept.checkpoint == str(plan_dir / "kept" / "classifier" / "model.ckpt-3") and kept.class_names == ("plus", "x")
    assert plan["stages"][0]["kept"] == kept.checkpoint
    kept_values = _values(kept.checkpoint)
    assert all(np.array_equal(kept_values[n], logits_end[n]) for n in names)

    # once more: nothing trains
    before = {stage: _files(plan_dir / stage) for stage in ("logits", "all")}
    assert cli.main(command) == 0
    assert capsys.readouterr().out.count("finished before, not run again") == 2
    assert {stage: _files(plan_dir / stage) for stage in ("logits", "all")} == before

    # a finished stage's values changed: refused, with what changed and the way out
    _recipe(tmp_path / "two.py", pretrained, logits_lr=0.2, all_steps=120, save_every=5, size=64)
    assert cli.main(command) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "stage 'logits'" in error and "learning_rate 0.1 -> 0.2" in error and "--restart-from logits" in error
    assert {stage: _files(plan_dir / stage) for stage in ("logits", "all")} == before


def test_dry_run_prints_every_value_with_its_source_and_builds_nothing(tmp_path, dataset, pretrained, capsys):
    recipe = _recipe(tmp_path / "two.py", pretrained)
    plan_dir = tmp_path / "plan"
    assert cli.main(["--recipe", recipe, "--dataset", dataset, "--train-dir", str(plan_dir), "--dry-run",
                     "--learning-rate", "0.5", "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert not plan_dir.exists()
    assert "flag --learning-rate 0.5 overrides learning_rate for every stage (was: logits 0.1; all 0.05)" in out
    assert "flag --epochs 2 overrides epochs for every stage (was: not set by the recipe)" in out
    stages = out.split("\nstage ")[1:]
    assert [s.split()[1] for s in stages] == ["logits", "all"]
    pool = str(Path(recipe_runner.__file__).parents[2] / "recipes" / "pool.py")
    lines = Path(recipe).read_text().splitlines()
    shared = lines.index('    training=Training(batch_size=8, optimizer="momentum", save_interval_secs=3600, '
                         'skip_eval=True),') + 1
    for text in stages:
        rows = {line.split()[0]: line.split()[1:] for line in text.splitlines()[1:] if line.strip()}
        assert rows["learning_rate"] == ["0.5", "flag", "--learning-rate"]
        assert rows["epochs"] == ["2", "flag", "--epochs"] and rows["max_steps"][:2] == ["-", "default"]
        assert rows["batch_size"] == ["8", "recipe", f"{recipe}:{shared}"]
        assert rows["trainable"][1:2] == ["pool"] and rows["trainable"][2].startswith(
            os.path.relpath(pool) if not os.path.relpath(pool).startswith("..") else pool)
        assert rows["warmup_steps"] == ["0", "default"]
        assert len(rows) == len(RUN_FIELDS)  # every value
    assert f"final checkpoint kept as {plan_dir / 'kept' / 'classifier'}" in stages[0]
    assert "from the checkpoint " + pretrained in stages[0] and "from stage logits's final checkpoint" in stages[1]
    assert stages[1].split("\n  ckpt ")[1].split()[:2] == [str(plan_dir / "logits"), "plan"]


BAD = '''from finetune.recipe.types import Data, Model, Recipe, Restore, Stage, Training

RECIPE = Recipe(
    description="one mistake",
    model=Model(net="mobilenet_v1_025"),
    restore=Restore(ckpt="{ckpt}"),
    stages=(
        Stage("first", start="ckpt", training={first}),
        Stage("second", start="{second_start}", training=Training(max_steps=1)),
    ),
)
'''


@pytest.mark.parametrize("first, second_start, line, words", [
    ("Training(learnin_rate=0.1)", "first", 8, "unknown key 'learnin_rate' in Training(...): did you mean "
                                               "'learning_rate'?"),
    ("Training(max_steps='10')", "first", 8, "Training.max_steps must be int | None, got str '10'"),
    ("Training(epochs=0)", "first", 8, "stage 'first', epochs: --epochs must be > 0, got 0"),
    ("Training(trainable='Conv2d_99', max_steps=1)", "first", 8, "stage 'first', trainable: scope 'Conv2d_99' "
                                                                  "matches no variable of mobilenet_v1_025"),
    ("Training(max_steps=1)", "second", 9, "stage 'second' starts from 'second', a stage that runs later or is "
                                           "itself"),
    ("Training(max_steps=1)", "thrid", 9, "starts from 'thrid', which is neither 'scratch', 'ckpt' nor an earlier "
                                          "stage (first)"),
])
def test_a_bad_recipe_is_refused_before_anything_runs_naming_the_key_and_line(
        tmp_path, dataset, pretrained, capsys, first, second_start, line, words):
    path = tmp_path / "bad.py"
    path.write_text(BAD.format(ckpt=pretrained, first=first, second_start=second_start))
    assert cli.main(["--recipe", str(path), "--dataset", dataset, "--train-dir", str(tmp_path / "plan")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and error.startswith("finetune: error: ")
    assert f"{path}:{line}: " in error and words in error, error
    assert not (tmp_path / "plan").exists()


def test_the_demo_stages_train_what_they_trained(tmp_path):
    """Its stage from scratch names --trainable all itself: issue 18's default changes none of its stages."""
    resolved = _resolved(tmp_path)
    assert [(s.name, s.config.trainable, s.sources["trainable"].kind) for s in resolved.stages] == [
        ("pretrain", ("all",), "pool"), ("from_scratch", ("all",), "pool"), ("logits", ("logits",), "pool"),
        ("all", ("all",), "pool")]
    # plan.json's compared values as before the flag existed: a source stage recorded then is still reused
    assert not any("allow_random_trunk" in s.compared_values() for s in resolved.stages)


def test_an_empty_recipe_and_a_flag_of_the_wrong_kind_are_refused(tmp_path, dataset, pretrained, capsys):
    path = tmp_path / "empty.py"
    path.write_text(BAD.format(ckpt=pretrained, first="()", second_start="first").replace(
        '    stages=(\n        Stage("first", start="ckpt", training=()),\n'
        '        Stage("second", start="first", training=Training(max_steps=1)),\n    ),\n', "    stages=(),\n"))
    assert cli.main(["--recipe", str(path), "--dataset", dataset]) == 2
    assert f"{path}:3: Recipe.stages is empty" in capsys.readouterr().err
    recipe = _recipe(tmp_path / "two.py", pretrained)
    assert cli.main(["--recipe", recipe, "--dataset", dataset, "--max-steps", "0", "--dry-run"]) == 2
    assert "flag --max-steps (stage 'logits'): --max-steps must be > 0, got 0." in capsys.readouterr().err
    assert cli.main(["--recipe", recipe, "--dataset", str(tmp_path / "nowhere"), "--train-dir",
                     str(tmp_path / "plan")]) == 2
    assert f"flag --dataset: stage 'logits': dataset {tmp_path / 'nowhere'} does not exist" in capsys.readouterr().err
    assert not (tmp_path / "plan").exists()
    assert cli.main(["--recipe", "flowers_inception_v", "--dry-run"]) == 2
    assert "no recipe 'flowers_inception_v' (did you mean 'flowers_inception_v3'?)" in capsys.readouterr().err


_HUB_MODEL = """
import sys
import tensorflow as tf, tf_keras as keras
inputs = keras.Input([32, 32, 3])  # an image feature vector: [None, 32, 32, 3] -> [None, 4]
outputs = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, strides=2, name="conv")(inputs))
tf.saved_model.save(keras.Model(inputs, outputs), sys.argv[1])
"""

HUB_RECIPE = '''from finetune.recipe.types import Data, Model, Recipe, Stage, Training

RECIPE = Recipe(
    description="a hub backbone, classifier then all layers",
    model=Model(net="hub:{path}"),
    stages=(Stage("logits", start="scratch", training=Training(trainable="logits", max_steps=1)),
            Stage("all", start="logits", training=Training(trainable="all", max_steps=1))),
)
'''


@pytest.mark.slow  # a SavedModel written by a fresh TF2 process, then loaded to inspect it
def test_a_recipe_on_a_hub_net_resolves_without_published_variables(tmp_path, dataset, capsys):
    # The bug: the dry-run's scope check read nets/published/hub:PATH.txt and stopped with FileNotFoundError.
    model = tmp_path / "feature_vector"
    made = subprocess.run([sys.executable, "-c", _HUB_MODEL, str(model)], capture_output=True, text=True,
                          env=os.environ, timeout=300)
    assert made.returncode == 0, made.stderr[-2000:]
    recipe = tmp_path / "hub_recipe.py"
    recipe.write_text(HUB_RECIPE.format(path=model))
    assert cli.main(["--recipe", str(recipe), "--dataset", dataset, "--train-dir", str(tmp_path / "plan"),
                     "--dry-run"]) == 0
    stages = capsys.readouterr().out.split("\nstage ")[1:]
    assert [s.split()[1] for s in stages] == ["logits", "all"]
    for text, trainable in zip(stages, ("logits", "all")):
        rows = {line.split()[0]: line.split()[1:] for line in text.splitlines()[1:] if line.strip()}
        assert rows["net"][0] == f"hub:{model}" and rows["trainable"][0] == trainable
    assert not (tmp_path / "plan").exists()


def test_every_run_config_field_can_be_set_by_a_recipe():
    assert recipe_runner.uncovered_run_fields() == []


FLOWERS = {  # TF-Slim's research/slim/scripts/finetune_*_on_flowers.sh
    "flowers_inception_v3": ("inception_v3", "fixed", 1000, 0.01, 500, 0.0001),
    "flowers_inception_resnet_v2": ("inception_resnet_v2", "fixed", 1000, 0.01, 500, 0.0001),
    "flowers_mobilenet_v1": ("mobilenet_v1", "fixed", 1000, 0.01, 500, 0.0001),
    "flowers_resnet_v1_50": ("resnet_v1_50", "exponential", 3000, 0.01, 1000, 0.001),
}


@pytest.mark.parametrize("name", sorted(FLOWERS))
def test_flowers_recipes_carry_tf_slims_values(name, tmp_path):
    net, schedule, logits_steps, logits_lr, all_steps, all_lr = FLOWERS[name]
    resolved = recipe_runner.resolve(recipe_runner.load_recipe(name), str(tmp_path / "plan"), {"dataset": "flowers"})
    logits, every = (s.config for s in resolved.stages)
    spec = nets_factory.get_spec(net)
    for config in (logits, every):
        assert (config.net, config.optimizer, config.lr_schedule, config.batch_size, config.weight_decay) == \
            (net, "rmsprop", schedule, 32, 0.00004)
        assert config.optimizer_params == {"rmsprop_decay": 0.9, "rmsprop_momentum": 0.9, "opt_epsilon": 1.0}
        assert not config.skip_eval  # each stage is evaluated on the validation split
    assert (logits.trainable, logits.max_steps, logits.learning_rate, logits.ckpt) == (("logits",), logits_steps,
                                                                                       logits_lr, net)
    assert tuple(f"{spec.scope}/{s}" if "/" not in s else s for s in logits.exclude_scopes) == spec.classifier_scopes
    assert (every.trainable, every.max_steps, every.learning_rate) == (("all",), all_steps, all_lr)
    assert every.ckpt == str(tmp_path / "plan" / "logits") and every.exclude_scopes is None
    assert "Not run here" in resolved.loaded.docstring


def test_recipes_command_lists_every_recipe_with_its_line(capsys):
    assert cli.main(["recipes"]) == 0
    out = capsys.readouterr().out
    for name in ["demo", *FLOWERS]:
        line = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert recipe_runner.load_recipe(name).recipe.description in line
    assert "pool" not in [line.split()[0] for line in out.splitlines() if line.strip()]


def test_recipes_command_answers_without_tensorflow():
    # Listing loads every recipe file as data: recipes import finetune.recipe (the types) and recipes.pool only.
    check = ("import sys; from finetune import cli; assert cli.main(['recipes']) == 0; "
             "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_slim', 'nets')); "
             "assert not loaded, loaded[:5]")
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "flowers_inception_v3 " in result.stdout


@pytest.mark.slow
def test_a_flowers_recipe_runs_on_a_tiny_dataset_with_its_steps_overridden_and_restarts_from_a_stage(
        tmp_path, dataset, pretrained, capsys):
    plan_dir = tmp_path / "plan"
    command = ["--recipe", "flowers_mobilenet_v1", "--net", NET, "--image-size", "32", "--ckpt", pretrained,
               "--dataset", dataset, "--max-steps", "2", "--batch-size", "4", "--skip-eval", "--train-dir",
               str(plan_dir)]
    assert cli.main(command) == 0
    out = capsys.readouterr().out
    assert "flag --max-steps 2 overrides max_steps for every stage (was: logits 1000; all 500)" in out
    assert "flag --net mobilenet_v1_025 overrides net for every stage (was: recipe mobilenet_v1)" in out
    plan = json.loads((plan_dir / "plan.json").read_text())
    assert [(s["name"], s["state"], s["final_step"]) for s in plan["stages"]] == [("logits", "done", 2),
                                                                                    ("all", "done", 2)]
    assert json.loads((plan_dir / "all" / "run_config.json").read_text())["config"]["learning_rate"] == 0.0001

    logits_files, all_files = _files(plan_dir / "logits"), _files(plan_dir / "all")
    (plan_dir / "all" / "stale").write_text("removed by --restart-from all")
    assert cli.main([*command, "--restart-from", "all"]) == 0
    out = capsys.readouterr().out
    assert f"--restart-from all: removed {plan_dir / 'all'}" in out and "finished before" in out.split("[all]")[0]
    assert _files(plan_dir / "logits") == logits_files
    assert not (plan_dir / "all" / "stale").exists() and _files(plan_dir / "all") != all_files
    assert json.loads((plan_dir / "all" / "run_summary.json").read_text())["final_step"] == 2


def test_recipe_flags_without_a_recipe_and_a_plain_run_without_net_are_one_line_errors(capsys):
    assert cli.main(["--net", NET, "--dataset", "x", "--dry-run"]) == 2
    assert "--dry-run goes with --recipe NAME" in capsys.readouterr().err
    assert cli.main(["--dataset", "x"]) == 2  # without --recipe, --net is still required
    assert "--net is required" in capsys.readouterr().err


# -- the demo's recipe (finetune demo runs recipes/demo.py through run_recipe) --

def _resolved(tmp_path, recipe=None, source="source-1"):
    loaded = recipe_runner.load_recipe("demo")
    if recipe is not None:
        loaded = dataclasses.replace(loaded, recipe=recipe)
    return recipe_runner.resolve(loaded, str(tmp_path / "runs"),
                   datasets={"source": str(tmp_path / source), "target": str(tmp_path / "target-1")})


def _record_pretrain_done(resolved) -> None:
    records = {s.name: {"name": s.name, "start": s.stage.start, "state": "not run", "values": s.compared_values()}
               for s in resolved.stages}
    records["pretrain"]["state"] = "done"
    recipe_runner._write_plan_json(resolved, records)


def test_the_demo_keeps_its_source_stage_while_its_values_stay(tmp_path):
    resolved = _resolved(tmp_path)
    assert [s.name for s in resolved.stages] == ["pretrain", "from_scratch", "logits", "all"]
    assert resolved.final.name == "all"  # `finetune export --train-dir WORK_DIR/runs` exports the fine-tuned net
    assert demo.restart_stage(resolved) == "from_scratch"  # nothing recorded: pretrain runs as the first stage
    _record_pretrain_done(resolved)
    assert demo.restart_stage(_resolved(tmp_path)) == "from_scratch"  # kept: the target stages train anew
    assert demo.restart_stage(_resolved(tmp_path, source="source-2")) == "pretrain"  # other drawn images
    recipe = recipes.RECIPE
    pretrain = recipe.stage("pretrain")
    shorter = dataclasses.replace(recipe, stages=(
        dataclasses.replace(pretrain, training=(*pretrain.training, Training(max_steps=9))), *recipe.stages[1:]))
    assert demo.restart_stage(_resolved(tmp_path, shorter)) == "pretrain"
    assert recipe_runner.changed_stages(_resolved(tmp_path, shorter)) == {"pretrain": ["max_steps 800 -> 9"]}
