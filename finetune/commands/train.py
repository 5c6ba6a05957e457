"""`finetune [FLAGS]` (the default command): fine-tune a zoo net on an image dataset, or run a recipe's plan."""

from __future__ import annotations

import argparse
import contextlib
import os

from finetune import config
from finetune.runs.run_dir import RunDir  # TensorFlow-free: the lock is taken before TensorFlow is imported

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
    given_dir = getattr(args, "train_dir", None)  # flags not given are no attributes (argparse.SUPPRESS)
    with contextlib.ExitStack() as held:
        # One recipe process per plan dir, before it reads or rewrites plan.json or clears a stage (--restart-from);
        # each stage's run then holds its own train dir's lock.
        if not args.dry_run:
            _lock_early(held, given_dir)
        resolved = recipe_runner.resolve(recipe_runner.load_recipe(args.recipe), flags.pop("train_dir", None), flags)
        if args.dry_run:
            print(recipe_runner.format_resolved(resolved))
            return 0
        if not given_dir:  # the default plan dir (runs/RECIPE) is the resolved recipe's
            held.enter_context(resolved.train_dir.lock())
        from finetune.train.hooks import SignalReceived

        try:
            summaries = recipe_runner.run_recipe(resolved, restart_from=args.restart_from)
        except SignalReceived as signal:
            return _stopped_before_training(signal.name)
    stopped = list(summaries.values())[-1]["stopped"]  # the last stage run: the plan's last, or where it stopped
    return 0 if stopped == "max_steps" else {"interrupted": 130, "terminated": 143}.get(stopped, 1)


def _lock_early(held: contextlib.ExitStack, train_dir: str | None) -> None:
    """Hold --train-dir's lock (when given) until `held` closes: taken before the flags are checked, which loads
    the nets and TensorFlow, so a dir another process trains in is refused at once, before anything is built."""
    if train_dir:
        held.enter_context(RunDir(train_dir).lock())


def _stopped_before_training(signal: str) -> int:
    """SIGTERM before a run's first step (finetune.train.hooks.SignalReceived): one line, 143."""
    print(f"Stopped by {signal} before the first step: nothing new to save; rerun the same command to go on.")
    return 143


def run(args: argparse.Namespace) -> int:
    if args.recipe:
        return _run_recipe(args)
    if args.dry_run or args.restart_from:
        raise ValueError(f"--{'dry-run' if args.dry_run else 'restart-from'} goes with --recipe NAME: give one.")
    # One process: the train dir's lock first (see _lock_early). In a cluster (TF_CONFIG, finetune.train.cluster)
    # only the chief takes it, in train().
    one_process = not os.environ.get("TF_CONFIG", "").strip()
    given_dir = getattr(args, "train_dir", None)  # flags not given are no attributes (argparse.SUPPRESS)
    with contextlib.ExitStack() as held:
        if one_process:
            _lock_early(held, given_dir)
        run_config = config.from_namespace(args)
        if one_process and not given_dir:  # the default train dir (runs/NET) is the config's
            held.enter_context(RunDir(run_config.train_dir).lock())
        from finetune.serve import evaluate
        from finetune.train import loop as train
        from finetune.train.hooks import SignalReceived

        try:
            summary = train.train(run_config, validate=evaluate.validation_accuracy, locked=one_process)
        except SignalReceived as signal:
            return _stopped_before_training(signal.name)
    # 128 + the signal, as a shell reports it: the run stopped early, saved, and resumes when rerun
    return {"interrupted": 130, "terminated": 143}.get(summary["stopped"], 0)
