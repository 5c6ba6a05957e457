"""The built-in demo: transfer learning made visible, with nothing downloaded.

It draws two related image tasks (finetune.data.synthetic), pretrains a small zoo net on the source task
(cached for the next run), fine-tunes it on the target task (classifier first, then all layers at a
lower rate) and trains the same net from scratch on the target task for the same number of steps,
then prints both validation accuracies. Its values live in recipes/demo.py, loaded by name as any
recipe is (finetune.recipe.load): its RECIPE, and beside it the drawn sets (SOURCE_CLASSES, ...), the
stage kept between runs (CACHED_STAGE) and the two stages compared (COMPARE). The recipe reaches the
runner as a value (finetune.recipe.runner) and runs in WORK_DIR/runs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

from checkpoints.download import home
from finetune.data import synthetic
from finetune.recipe.load import LoadedRecipe, load_recipe
from finetune.recipe.resolve import ResolvedRecipe, resolve
from finetune.recipe.runner import changed_stages, run_recipe
from finetune.recipe.types import RecipeError
from finetune.runs.files import write_json
from finetune.runs.run_dir import RunDir

DEMO_SUMMARY_FILE = "demo_summary.json"
DEMO_RECIPE = "demo"
# What the demo reads beside RECIPE in its recipe file.
_NAMED = ("SOURCE_CLASSES", "TARGET_CLASSES", "SOURCE_TRAIN_PER_CLASS", "TARGET_TRAIN_PER_CLASS",
          "VALIDATION_PER_CLASS", "DRAWN_SIZE", "DATA_SEED", "CACHED_STAGE", "COMPARE")


def default_work_dir() -> Path:
    """$FINETUNE_HOME/demo (default ~/.cache/finetune/demo)."""
    return home() / "demo"


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:10]


def demo_values(loaded: LoadedRecipe) -> dict:
    """The values the demo reads beside the recipe's RECIPE (`_NAMED`); RecipeError naming the file when one is
    missing."""
    missing = [name for name in _NAMED if name not in loaded.named]
    if missing:
        raise RecipeError(f"{loaded.path}: the demo's recipe defines no {', '.join(missing)}.")
    return {name: loaded.named[name] for name in _NAMED}


def write_datasets(work_dir: Path, loaded: LoadedRecipe) -> dict[str, str]:
    """The source and target image folders of the demo's recipe, written once per their values (reused when there):
    {'source': folder, 'target': folder}, the names the recipe's Data values use."""
    values = demo_values(loaded)
    tasks = {"source": (values["SOURCE_CLASSES"], values["SOURCE_TRAIN_PER_CLASS"]),
             "target": (values["TARGET_CLASSES"], values["TARGET_TRAIN_PER_CLASS"])}
    roots = {}
    for task, (classes, train_per_class) in tasks.items():
        drawn = {"class_names": list(classes), "train_per_class": train_per_class,
                 "validation_per_class": values["VALIDATION_PER_CLASS"], "image_size": values["DRAWN_SIZE"],
                 "seed": values["DATA_SEED"] + (task == "target")}
        root = work_dir / "data" / f"{task}-{_digest(drawn)}"
        if not (root / synthetic.MANIFEST).exists():
            synthetic.write_shapes_dataset(root, **drawn)
        roots[task] = str(root)
    return roots


def restart_stage(resolved: ResolvedRecipe) -> str:
    """The stage the demo trains anew from: the one after the cached source stage, or the cached stage itself when
    its values (or its drawn dataset, whose folder is named by its values) changed."""
    cached = demo_values(resolved.loaded)["CACHED_STAGE"]
    names = [s.name for s in resolved.stages]
    return cached if cached in changed_stages(resolved) else names[names.index(cached) + 1]


def run_demo(work_dir: str | Path | None = None, recipe: LoadedRecipe | None = None, *,
             progress_bar: bool = True) -> dict:
    """Run the demo's recipe (recipes/demo.py, loaded by name, unless given) in WORK_DIR/runs; prints and returns
    the comparison."""
    loaded = recipe or load_recipe(DEMO_RECIPE)
    work_dir = Path(work_dir) if work_dir else default_work_dir()
    started = time.perf_counter()
    print(f"finetune demo: {loaded.recipe.description} (work dir {work_dir})")
    datasets = write_datasets(work_dir, loaded)
    runs = RunDir(work_dir / "runs")
    if runs.path.is_dir() and runs.plan() is None:
        shutil.rmtree(runs.path)  # an older demo's runs, laid out without plan.json
    resolved = resolve(loaded, str(runs), datasets=datasets)
    summaries = run_recipe(resolved, restart_from=restart_stage(resolved), verbose=False, progress_bar=progress_bar)
    fine_tuned, scratch = demo_values(loaded)["COMPARE"]
    task_of = {path: name for name, path in datasets.items()}
    result = {
        "validation_accuracy": {name: s["validation_accuracy"] for name, s in summaries.items()},
        "tasks": {s.name: task_of.get(s.config.dataset, s.config.dataset) for s in resolved.stages},
        "fine_tuned": summaries[fine_tuned]["validation_accuracy"],
        "from_scratch": summaries[scratch]["validation_accuracy"],
        "target_steps": summaries[scratch]["final_step"],
        "seconds": round(time.perf_counter() - started, 1),
        "checkpoint": summaries[fine_tuned]["checkpoint"],
        "train_dir": str(Path(summaries[fine_tuned]["checkpoint"]).parent),
        "work_dir": str(work_dir),
    }
    write_json(work_dir / DEMO_SUMMARY_FILE, result)
    print(format_result(result))
    return result


def format_result(result: dict) -> str:
    """The demo's last screen: every stage's validation accuracy on its task, then fine-tuned next to from scratch."""
    lines = ["", "validation accuracy:"]
    width = max(map(len, result["validation_accuracy"]))
    lines += [f"  {name:<{width}} {100 * acc:5.1f}%  ({result['tasks'][name]} task)"
              for name, acc in result["validation_accuracy"].items()]
    lines += [
        "",
        (f"fine-tuned {100 * result['fine_tuned']:.1f}%  vs  from scratch {100 * result['from_scratch']:.1f}% "
         f"(same net, same {result['target_steps']} steps on the target images)"),
        f"done in {result['seconds']:.0f} s; work dir {result['work_dir']} (images, cached source checkpoint, runs)",
        f"fine-tuned model: {result['train_dir']} (try `finetune eval --train-dir {result['train_dir']}`)",
    ]
    return "\n".join(lines)
