"""The built-in demo: transfer learning made visible, with nothing downloaded.

It draws two related image tasks (finetune.synthetic), pretrains a small zoo net on the source task
(cached for the next run), fine-tunes it on the target task (classifier first, then all layers at a
lower rate) and trains the same net from scratch on the target task for the same number of steps,
then prints both validation accuracies. The plan's values live in recipes/demo.py.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

from checkpoints.download import home
from finetune import synthetic
from finetune.recipe import Recipe
from finetune.recipe_runner import run_recipe

DEMO_SUMMARY_FILE = "demo_summary.json"


def default_work_dir() -> Path:
    """$FINETUNE_HOME/demo (default ~/.cache/finetune/demo)."""
    return home() / "demo"


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:10]


def write_datasets(recipe: Recipe, work_dir: Path) -> dict[str, str]:
    """The source and target image folders, written once per recipe values (reused when already there)."""
    extra = recipe.extra
    tasks = {"source": (extra["source_classes"], extra["source_train_per_class"]),
             "target": (extra["target_classes"], extra["target_train_per_class"])}
    roots = {}
    for task, (classes, train_per_class) in tasks.items():
        values = {"class_names": list(classes), "train_per_class": train_per_class,
                  "validation_per_class": extra["validation_per_class"], "image_size": extra["drawn_size"],
                  "seed": recipe.base["seed"] + (task == "target")}
        root = work_dir / "data" / f"{task}-{_digest(values)}"
        if not (root / synthetic.MANIFEST).exists():
            synthetic.write_shapes_dataset(root, **values)
        roots[task] = str(root)
    return roots


def _train_dirs(recipe: Recipe, datasets: dict[str, str], work_dir: Path) -> dict[str, str]:
    """Cached stages get a dir named by the values they depend on (their config and their dataset,
    whose dir is named by its own values); the others start fresh each run."""
    dirs = {}
    for stage in recipe.stages:
        if stage.name in recipe.extra["cached_stages"]:
            key = _digest([recipe.base, stage.overrides, stage.init, datasets[stage.dataset]])
            dirs[stage.name] = str(work_dir / "runs" / f"{stage.name}-{key}")
        else:
            dirs[stage.name] = str(work_dir / "runs" / stage.name)
            shutil.rmtree(dirs[stage.name], ignore_errors=True)  # the demo's own output of a previous run
    return dirs


def run_demo(work_dir: str | Path | None = None, recipe: Recipe | None = None, *, progress_bar: bool = True) -> dict:
    """Run the demo recipe (recipes/demo.py's `demo()` unless given); prints and returns the comparison."""
    from recipes.demo import demo

    recipe = recipe or demo()
    work_dir = Path(work_dir) if work_dir else default_work_dir()
    started = time.perf_counter()
    print(f"finetune demo: {recipe.description} (work dir {work_dir})")
    datasets = write_datasets(recipe, work_dir)
    summaries = run_recipe(recipe, datasets, _train_dirs(recipe, datasets, work_dir), progress_bar=progress_bar)
    fine_tuned, scratch = recipe.extra["compare"]
    result = {
        "validation_accuracy": {name: s["validation_accuracy"] for name, s in summaries.items()},
        "tasks": {stage.name: stage.dataset for stage in recipe.stages},
        "fine_tuned": summaries[fine_tuned]["validation_accuracy"],
        "from_scratch": summaries[scratch]["validation_accuracy"],
        "target_steps": summaries[scratch]["final_step"],
        "seconds": round(time.perf_counter() - started, 1),
        "checkpoint": summaries[fine_tuned]["checkpoint"],
        "train_dir": str(Path(summaries[fine_tuned]["checkpoint"]).parent),
        "work_dir": str(work_dir),
    }
    (work_dir / DEMO_SUMMARY_FILE).write_text(json.dumps(result, indent=1) + "\n")
    print(format_result(result))
    return result


def format_result(result: dict) -> str:
    """The demo's last screen: every stage's validation accuracy on its task, then fine-tuned next to from scratch."""
    lines = ["", "validation accuracy:"]
    lines += [f"  {name:<10} {100 * acc:5.1f}%  ({result['tasks'][name]} task)"
              for name, acc in result["validation_accuracy"].items()]
    lines += [
        "",
        (f"fine-tuned {100 * result['fine_tuned']:.1f}%  vs  from scratch {100 * result['from_scratch']:.1f}% "
         f"(same net, same {result['target_steps']} steps on the target images)"),
        f"done in {result['seconds']:.0f} s; work dir {result['work_dir']} (images, cached source checkpoint, runs)",
        f"fine-tuned model: {result['train_dir']} (try `finetune eval --train-dir {result['train_dir']}`)",
    ]
    return "\n".join(lines)
