"""`finetune demo`: transfer learning has to show, and the source checkpoint is cached by its values."""

import dataclasses
import json

from finetune import cli, demo
from recipes import demo as recipes


def test_demo_fine_tuned_beats_from_scratch(tmp_path, capsys):
    # The whole command with recipes/demo.py's plan, source checkpoint not cached: ~65 s on 2 cores.
    assert cli.main(["demo", "--work-dir", str(tmp_path)]) == 0
    result = json.loads((tmp_path / demo.DEMO_SUMMARY_FILE).read_text())
    accuracy = result["validation_accuracy"]
    assert accuracy["pretrain"] > 0.9  # the source task was learned: there is something to transfer
    # Measured 93-95% vs 73-82% (chance is 17%); a net that did not transfer gives about the same as from scratch.
    assert result["fine_tuned"] == accuracy["all"] and result["from_scratch"] == accuracy["scratch"]
    assert result["fine_tuned"] > 0.85 and result["fine_tuned"] > result["from_scratch"]
    assert result["target_steps"] == sum(recipes.demo().stage(s).overrides["max_steps"] for s in ("logits", "all"))
    out = capsys.readouterr().out
    assert f"fine-tuned {100 * result['fine_tuned']:.1f}%  vs  from scratch {100 * result['from_scratch']:.1f}%" in out
    assert f"work dir {tmp_path}" in out


def test_source_checkpoint_dir_is_named_by_what_it_depends_on(tmp_path):
    recipe = recipes.demo()
    datasets = {"source": str(tmp_path / "source-1"), "target": str(tmp_path / "target-1")}
    first = demo._train_dirs(recipe, datasets, tmp_path)
    assert first == demo._train_dirs(recipe, datasets, tmp_path)  # the next run finds it
    fewer_target_images = dataclasses.replace(recipe, extra={**recipe.extra, "target_train_per_class": 5})
    other_target = {**datasets, "target": str(tmp_path / "target-2")}
    assert demo._train_dirs(fewer_target_images, other_target, tmp_path)["pretrain"] == first["pretrain"]
    shorter = dataclasses.replace(recipe, stages=(
        dataclasses.replace(recipe.stage("pretrain"), overrides={**recipe.stage("pretrain").overrides, "max_steps": 9}),
        *recipe.stages[1:]))
    assert demo._train_dirs(shorter, datasets, tmp_path)["pretrain"] != first["pretrain"]
    assert demo._train_dirs(recipe, {**datasets, "source": str(tmp_path / "source-2")}, tmp_path)["pretrain"] \
        != first["pretrain"]


def test_target_runs_start_fresh_and_the_cached_source_run_is_kept(tmp_path):
    recipe = recipes.demo()
    datasets = {"source": str(tmp_path / "source"), "target": str(tmp_path / "target")}
    dirs = demo._train_dirs(recipe, datasets, tmp_path)
    for path in dirs.values():
        (tmp_path / path / "old").mkdir(parents=True)
    demo._train_dirs(recipe, datasets, tmp_path)
    assert (tmp_path / dirs["pretrain"] / "old").exists()
    assert not any((tmp_path / dirs[name]).exists() for name in ("logits", "all", "scratch"))
