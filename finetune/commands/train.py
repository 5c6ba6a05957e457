"""`finetune [FLAGS]` (the default command): fine-tune a zoo net on an image dataset, or run a recipe's plan."""

from __future__ import annotations

import argparse

from finetune import config

HELP = ("Fine-tune a pretrained TF-Slim net on your images: `finetune --net NET --ckpt CKPT --trainable logits "
        "--dataset DIR`, or run a recipe's multi-stage plan: `finetune --recipe NAME [FLAGS]` (`finetune recipes` "
        "lists them). Rerunning in the same --train-dir resumes.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    plan = parser.add_argument_group("recipe (a multi-stage plan; the training flags below override its values "
                                     "for every stage)")
    plan.add_argument("--recipe", metavar="NAME|PATH.py",
                      help="run recipes/NAME.py's plan, or a recipe file's; its stages train in TRAIN_DIR/<stage> "
                           "(--train-dir, default runs/NAME) and a rerun continues where it stopped")
    plan.add_argument("--dry-run", action="store_true",
                      help="with --recipe: print every stage and every value with where it came from; train nothing")
    plan.add_argument("--restart-from", metavar="STAGE",
                      help="with --recipe: train this stage and the later ones again (their dirs are cleared), e.g. "
                           "after changing their values")
    config.add_arguments(parser, require=False)


def _run_recipe(args: argparse.Namespace) -> int:
    from finetune.recipe import runner as recipe_runner

    flags = {name: value for name, value in vars(args).items() if name in config.RunConfig.__dataclass_fields__}
    for name, value in flags.items():  # repeatable flags arrive as lists
        if isinstance(value, list):
            flags[name] = tuple(value)
    resolved = recipe_runner.resolve(recipe_runner.load_recipe(args.recipe), flags.pop("train_dir", None), flags)
    if args.dry_run:
        print(recipe_runner.format_resolved(resolved))
        return 0
    summaries = recipe_runner.run_recipe(resolved, restart_from=args.restart_from)
    stopped = list(summaries.values())[-1]["stopped"]  # the last stage run: the plan's last, or where it stopped
    return 0 if stopped == "max_steps" else {"interrupted": 130, "terminated": 143}.get(stopped, 1)


def run(args: argparse.Namespace) -> int:
    if args.recipe:
        return _run_recipe(args)
    if args.dry_run or args.restart_from:
        raise ValueError(f"--{'dry-run' if args.dry_run else 'restart-from'} goes with --recipe NAME: give one.")
    from finetune.serve import evaluate
    from finetune.train import loop as train

    summary = train.train(config.from_namespace(args), validate=evaluate.validation_accuracy)
    # 128 + the signal, as a shell reports it: the run stopped early, saved, and resumes when rerun
    return {"interrupted": 130, "terminated": 143}.get(summary["stopped"], 0)
