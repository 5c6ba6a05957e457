"""How a training session begins, decided once by `begin`: each way is a small value (as tensorpack's
SessionInit objects are) that gives the session's init and the run's report of it.

    Resume       the train dir's newest complete checkpoint (the session creator restores it)
    WarmStart    a restore plan of --ckpt (checkpoints.plan_restore): its restore op as the scaffold's
                 init_fn, and an initializer of only what the plan does not set whole
    HubBackbone  a hub:PATH net: the backbone's weights come from the SavedModel itself
    Scratch      every variable initialized at random
    Worker       a cluster worker: the chief initializes the variables

A start's `text` is what the run prints; its `report` is restore_report.json's content (None: no file),
one schema for every start that restores weights (`restore_report`):

    {"checkpoint": where the weights come from, "source": "checkpoint" | "hub SavedModel",
     "summary": the one-line summary, "options": the restore options ({} for a hub backbone),
     "rules": the rename rules applied, "restored": [entry], "renamed": [{"variable", "checkpoint_key"}],
     "skipped": [entry], "fresh": [entry], "errors": [entry], "unused": [checkpoint keys not read]}

an entry being {"variable", "shape", "status", ...} as checkpoints.RestorePlan.to_dict writes it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import checkpoints
from checkpoints import scopes
from nets import hub
from nets.compat import tf

SOURCE_CHECKPOINT, SOURCE_HUB = "checkpoint", "hub SavedModel"
REPORT_KEYS = ("checkpoint", "source", "summary", "options", "rules", "restored", "renamed", "skipped", "fresh",
               "errors", "unused")  # restore_report.json's, in this order (RestorePlan.to_dict's and the source)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Start:
    """How the session begins: what is printed, restore_report.json's content, and the session's init."""

    text: str
    report: dict | None = None
    checkpoint: str | None = None  # Resume: the checkpoint the session restores

    @property
    def start_step(self) -> int:
        return 0

    def init_fn(self) -> Callable | None:
        """The Scaffold's init_fn (run after the initializer), or None."""
        return None

    def init_op(self) -> tf.Operation | None:
        """The Scaffold's init_op (None: initialize every variable)."""
        return None

    def check(self) -> None:
        """Refuse a start that cannot succeed, before anything is written (after `text` is printed)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Resume(Start):
    @property
    def start_step(self) -> int:
        return step_of(self.checkpoint)


@dataclasses.dataclass(frozen=True, kw_only=True)
class WarmStart(Start):
    plan: Any  # checkpoints.RestorePlan

    def init_fn(self) -> Callable:
        return self.plan.init_fn()

    def init_op(self) -> tf.Operation:
        # only what the restore does not set (the rest's random values would be overwritten)
        return self.plan.remainder_initializer()

    def check(self) -> None:
        checkpoints.verify_checkpoint(self.plan.checkpoint)


@dataclasses.dataclass(frozen=True, kw_only=True)
class HubBackbone(Start):
    """The backbone's variables initialize from the SavedModel (their initializers read it)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Scratch(Start):
    pass


@dataclasses.dataclass(frozen=True, kw_only=True)
class Worker(Start):
    pass


def step_of(checkpoint: str | None) -> int:
    """The step of `PREFIX-STEP` (0 without a checkpoint)."""
    return int(checkpoint.rsplit("-", 1)[-1]) if checkpoint else 0


def begin(run, model_variables: Sequence[tf.Variable], resume_from: str | None, train_dir: str) -> Start:
    """The start of `run` (a finetune.train.resolve.ResolvedRun) writing to `train_dir`: a cluster worker's,
    else resume from `resume_from` (the run dir's newest complete checkpoint), else warm start from --ckpt,
    else the hub backbone, else scratch."""
    config = run.config
    if not run.chief:
        return Worker(text=f"Worker {run.cluster.device}: the chief initializes the variables and writes {train_dir}.")
    if resume_from:
        return Resume(text=f"Resuming from {resume_from} (step {step_of(resume_from)} of {run.max_steps}); "
                           "--ckpt is not restored again.", checkpoint=resume_from)
    if config.ckpt:
        plan = checkpoints.plan_restore(model_variables, config.ckpt, net=run.spec, options=run.restore_options)
        return WarmStart(text=plan.table(), report=restore_report(plan), plan=plan)
    if hub.is_hub(config.net):
        return hub_backbone(config.net, model_variables)
    return Scratch(text=scratch_text(run))


def scratch_text(run) -> str:
    """The line of a start from scratch: what trains, and why (RunConfig: every layer unless --trainable says)."""
    config, frozen = run.config, set(run.scopes.net) - set(run.scopes.trainable)
    if config.trainable_defaulted:
        return f"No --ckpt: {config.net} trains from scratch, every layer (--trainable all, the default without --ckpt)."
    text = f"No --ckpt: {config.net} trains from scratch, --trainable {','.join(config.trainable)}"
    if config.allow_random_trunk and frozen:
        return text + " (--allow-random-trunk: the layers outside it stay at their random initial values)."
    return text + "."


def restore_report(plan) -> dict:
    """restore_report.json of a warm start: the restore plan's own dict (checkpoints.RestorePlan.to_dict)."""
    return {"checkpoint": plan.checkpoint, "source": SOURCE_CHECKPOINT, **plan.to_dict()}


def hub_backbone(net: str, model_variables: Sequence[tf.Variable]) -> HubBackbone:
    """The start of a hub:PATH net: the backbone from the SavedModel, the rest freshly initialized; its report
    in the warm start's schema. A SavedModel that does not list its variables (nets.hub) still brings them: they
    are the graph's variables under the backbone's scope that are no model variables, reported as restored (their
    initializers read the SavedModel) with a note that they stay frozen."""
    model = hub.inspect(hub.handle_of(net))
    restored = [v for v in model_variables if scopes.scope_matches(hub.BACKBONE_SCOPE, v.op.name)]
    new = [v for v in model_variables if v not in restored]
    unlisted = [v for v in tf.global_variables() if model.unlisted and v not in restored  # not optimizer slots:
                and scopes.scope_matches(hub.BACKBONE_SCOPE, v.op.name)       # `<listed variable>/Momentum`
                and not scopes.matching_scope(v.op.name, [r.op.name for r in restored])]

    def entry(variable: tf.Variable, status: str) -> dict:
        note = {"restored": {}, "new": {"reason": "not in the hub SavedModel"},
                "unlisted": {"reason": "the SavedModel does not list it: it runs as saved, frozen"}}[status]
        return {"variable": variable.op.name, "shape": variable.shape.as_list(),
                "status": "restored" if status == "unlisted" else status, **note,
                "size": variable.shape.num_elements() or 0}

    total = len(restored) + len(unlisted) + len(new)
    summary = f"{len(restored) + len(unlisted)} of {total} variables restored from the hub SavedModel {model.path}"
    if unlisted:
        summary += (f"; it does not list {len(unlisted)} of them ({sum(v.shape.num_elements() or 0 for v in unlisted)} "
                    "parameters; no `variables`/`trainable_variables` attributes): the backbone runs on them as "
                    "saved and cannot train")
    values = {"checkpoint": model.path, "source": SOURCE_HUB, "summary": summary, "options": {}, "rules": [],
              "restored": [entry(v, "restored") for v in restored] + [entry(v, "unlisted") for v in unlisted],
              "renamed": [], "skipped": [], "fresh": [entry(v, "new") for v in new], "errors": [], "unused": []}
    report = {key: values[key] for key in REPORT_KEYS}
    text = "\n".join([summary, *(f"  new       {v.op.name} {v.shape.as_list()}" for v in new)])
    return HubBackbone(text=text, report=report)
