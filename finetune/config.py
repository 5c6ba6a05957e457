"""One `RunConfig` for a training run: every knob, its flag, its help and its check, in one place.

The CLI builds its flags from the fields (`add_arguments`), turns parsed flags back into a config
(`from_namespace`), and the config validates itself once when it is made: a bad value is a
one-line ValueError naming the flag. Recipes (recipes/*.py) describe multi-stage runs as `Stage`
values that override fields of a base config.

Defaults are fine-tuning defaults, not TF-Slim's from-scratch ones: momentum SGD with a cosine
schedule at 0.01 (0.001 when every layer of a pretrained net trains), weight decay 4e-5; the classifier
trains on a pretrained net, every layer without one (no --ckpt, no hub:PATH net).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from checkpoints import scopes  # checkpoints' TensorFlow-free parts (scopes, mapping): --help stays instant
from checkpoints.mapping import Rule, parse_rule
from finetune import choices as choice_names

TRAINABLE_LOGITS = "logits"
TRAINABLE_ALL = "all"
LOGITS_LEARNING_RATE = 0.01  # classifier only, or from scratch
ALL_LAYERS_LEARNING_RATE = 0.001  # every layer of a pretrained net
DEFAULT_EPOCHS = 5.0


def _flag_value(parse: Callable) -> Callable:
    """`parse` for argparse: its ValueError message becomes argparse's (one line, naming the flag)."""
    def parse_flag(text: str):
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    parse_flag.__name__ = getattr(parse, "__name__", "value")
    return parse_flag


def _multiplier(text: str | tuple[str, float]) -> tuple[str, float]:
    """'SCOPE=F' -> ('SCOPE', F), the scope a valid regex and F a finite number."""
    if isinstance(text, tuple):
        scope, value = text
    else:
        scope, sep, factor = text.rpartition("=")
        try:
            value = float(factor) if sep else math.nan
        except ValueError:
            value = math.nan
    if not str(scope).strip() or not math.isfinite(value):
        raise ValueError(f"--lr-multiplier expects SCOPE=FACTOR, e.g. Logits=10, got {text!r}")
    return scopes.check_scope(scope.strip().rstrip("/"), "--lr-multiplier"), value


def _rename(text: str | Rule) -> Rule:
    """'OLD:NEW' or 're:PATTERN=REPLACEMENT' -> a checkpoints.mapping.Rule (a Rule stays as it is)."""
    return text if isinstance(text, Rule) else parse_rule(text)


def _flag(help: str, parse: Callable | None = None, *, group: str = "training", repeat: bool = False,
          choices: tuple[str, ...] = (), required: bool = False) -> dict:
    """Field metadata that `add_arguments` turns into one command-line flag."""
    return {"help": help, "parse": parse, "group": group, "repeat": repeat, "choices": choices, "required": required}


@dataclass(frozen=True)
class RunConfig:
    """Everything one training run needs; validated (and its dependent defaults resolved) on creation."""

    # what to train on what
    net: str = field(default="", metadata=_flag("network name from the zoo (`finetune nets` lists them)", str,
                                                group="run", required=True))
    dataset: str = field(default="", metadata=_flag(
        "image folder (one sub-folder per class, optional train/ and validation/) or a folder of TF-Slim "
        "TFRecords with labels.txt", str, group="run", required=True))
    train_dir: str = field(default="", metadata=_flag(
        "where checkpoints, summaries and reports go; rerunning in the same dir resumes (default: runs/NET)", str,
        group="run"))
    validation_fraction: float = field(default=0.1, metadata=_flag(
        "share of each class held out for validation when the dataset has no validation/ split", float, group="run"))
    seed: int = field(default=0, metadata=_flag("random seed (graph, data order, validation split)", int, group="run"))
    deterministic: bool = field(default=False, metadata=_flag(
        "bit-identical runs: the same command with the same --seed gives the same checkpoint on the same machine "
        "(TensorFlow's op determinism; 10-15%% slower here, see README)", group="run"))

    # restore
    ckpt: str | None = field(default=None, metadata=_flag(
        "pretrained checkpoint: prefix, directory, checkpoint file or registry name (`finetune download`); "
        "without it the net trains from scratch, every layer by default", str, group="restore"))
    exclude_scopes: tuple[str, ...] | None = field(default=None, metadata=_flag(
        "comma-separated scopes not restored from --ckpt (default: the classifier when the class count differs); "
        "names or regexes, absolute or relative to the net's scope; a variable under any of them is not restored",
        functools.partial(scopes.parse_scopes, flag="--exclude-scopes"), group="restore"))
    ckpt_rename: tuple[Any, ...] = field(default=(), metadata=_flag(  # checkpoints.mapping.Rule values
        "map checkpoint names to the graph's: OLD:NEW renames a scope prefix, re:PATTERN=REPLACEMENT substitutes "
        "(repeatable; applied in order)", _rename, group="restore", repeat=True))
    ckpt_moving_average: bool = field(default=False, metadata=_flag(
        "restore the checkpoint's ExponentialMovingAverage shadow values instead of the raw weights", group="restore"))
    background_class: str | None = field(default=None, metadata=_flag(
        "TF-Slim's 1001 vs 1000 class offset (class 0 of 1001-class checkpoints is 'background'): 'drop' restores "
        "a 1001-class classifier into 1000 classes without the background row, 'add' a 1000-class one into 1001 "
        "(the background row starts fresh), 'auto' either as the shapes need; unset, such a classifier is excluded",
        str, group="restore", choices=choice_names.BACKGROUND_CLASS))

    # what trains
    trainable: tuple[str, ...] | None = field(default=None, metadata=_flag(
        "what trains: 'logits' (the net's classifier scopes), 'all', or comma-separated scopes (TF-Slim's "
        "trainable_scopes: names or regexes, absolute or relative to the net's scope, as in every scope flag); "
        "a variable under any of the scopes trains, everything else stays as restored (default: 'logits' with "
        "--ckpt or a hub:PATH net, 'all' from scratch)", functools.partial(scopes.parse_scopes, flag="--trainable")))
    allow_random_trunk: bool = field(default=False, metadata=_flag(
        "without --ckpt, train although --trainable leaves layers frozen at random values (they learn nothing)"))
    train_bn_stats: bool = field(default=False, metadata=_flag(
        "let BatchNorm moving statistics of frozen layers update (by default frozen layers run BatchNorm in "
        "inference mode and keep the restored statistics)"))
    batch_norm_decay: float | None = field(default=None, metadata=_flag(
        "moving-average decay of the BatchNorm statistics that train (default: the net's, e.g. 0.9997); "
        "lower it for short runs from scratch", float))

    # optimizer and schedule
    optimizer: str = field(default="momentum", metadata=_flag(
        "optimizer (its parameters below keep TF-Slim's names and defaults)", str, group="optimizer",
        choices=choice_names.OPTIMIZERS))
    learning_rate: float | None = field(default=None, metadata=_flag(
        f"base learning rate (default: {LOGITS_LEARNING_RATE} for the classifier or from scratch, "
        f"{ALL_LAYERS_LEARNING_RATE} when more of a pretrained net trains)", float, group="optimizer"))
    lr_schedule: str = field(default="cosine", metadata=_flag("learning-rate schedule", str, group="optimizer",
                                                              choices=choice_names.SCHEDULES))
    warmup_steps: int = field(default=0, metadata=_flag("linear learning-rate warm-up steps", int, group="optimizer"))
    decay_epochs: float = field(default=2.0, metadata=_flag(
        "epochs per decay for the exponential schedule", float, group="optimizer"))
    decay_factor: float = field(default=0.94, metadata=_flag(
        "decay factor of the exponential schedule", float, group="optimizer"))
    end_learning_rate: float = field(default=0.0, metadata=_flag(
        "final learning rate of the polynomial and cosine schedules", float, group="optimizer"))
    momentum: float | None = field(default=None, metadata=_flag("momentum (momentum optimizer)", float, group="optimizer"))
    rmsprop_decay: float | None = field(default=None, metadata=_flag("RMSProp's squared-gradient decay", float, group="optimizer"))
    rmsprop_momentum: float | None = field(default=None, metadata=_flag("momentum of RMSProp", float, group="optimizer"))
    opt_epsilon: float | None = field(default=None, metadata=_flag("epsilon of RMSProp and Adam", float, group="optimizer"))
    adam_beta1: float | None = field(default=None, metadata=_flag("Adam's beta1 (first-moment decay)", float, group="optimizer"))
    adam_beta2: float | None = field(default=None, metadata=_flag("Adam's beta2 (second-moment decay)", float, group="optimizer"))
    adamw_weight_decay: float | None = field(default=None, metadata=_flag(
        "decoupled weight decay of adamw", float, group="optimizer"))
    clip_grad_norm: float | None = field(default=None, metadata=_flag(
        "clip all trainable gradients together to this global norm before the update", float, group="optimizer"))
    lr_multiplier: tuple[tuple[str, float], ...] = field(default=(), metadata=_flag(
        "scale the gradients of a scope, SCOPE=FACTOR (repeatable); a variable under several of the scopes takes the "
        "factor of the longest (most specific), and each scope must be that of a variable that trains",
        _multiplier, group="optimizer", repeat=True))
    moving_average_decay: float | None = field(default=None, metadata=_flag(
        "keep exponential moving averages of the trained weights (in the checkpoint) with this decay", float,
        group="optimizer"))
    weight_decay: float = field(default=4e-5, metadata=_flag("L2 weight decay of the trained layers", float, group="optimizer"))
    label_smoothing: float = field(default=0.0, metadata=_flag("label smoothing of the cross-entropy", float, group="optimizer"))

    # augmentation
    crop_min_area: float = field(default=0.05, metadata=_flag(
        "smallest share of a training image's area its random crop keeps (inception preprocessing; TF-Slim's 0.05); "
        "raise it when a small crop would cut the object out, e.g. 0.5 for small images", float, group="augmentation"))

    augment: str = field(default="default", metadata=_flag(
        "training images' augmentation: 'default' (the preprocessing style's random crops, flips, colour), "
        "'none' (the evaluation preprocessing, the same pixels every epoch)", str, group="augmentation",
        choices=choice_names.AUGMENT))
    cache_features: str = field(default="auto", metadata=_flag(
        "compute the frozen trunk's features once per image and train the classifier on them: 'auto' (on exactly "
        "when only the classifier trains and --augment none), 'on', 'off'", str, group="training",
        choices=choice_names.CACHE_FEATURES))

    # how long, how big
    batch_size: int = field(default=32, metadata=_flag("images per step (over all devices)", int, group="loop"))
    image_size: int | None = field(default=None, metadata=_flag("input size in pixels (default: the net's)", int, group="loop"))
    input_range: str | None = field(default=None, metadata=_flag(
        "pixel value range a hub:PATH model takes, 0,1 or -1,1 (default: what the model states, else 0,1)", str,
        group="loop", choices=choice_names.INPUT_RANGES))
    max_steps: int | None = field(default=None, metadata=_flag("stop at this global step", int, group="loop"))
    epochs: float | None = field(default=None, metadata=_flag(
        f"stop after this many passes over the training split (default {DEFAULT_EPOCHS:g} without --max-steps)",
        float, group="loop"))
    save_interval_steps: int | None = field(default=None, metadata=_flag("save a checkpoint every N steps", int, group="loop"))
    save_interval_secs: int | None = field(default=600, metadata=_flag(
        "save a checkpoint every S seconds (ignored with --save-interval-steps)", int, group="loop"))
    keep_checkpoints: int = field(default=5, metadata=_flag("how many recent checkpoints to keep", int, group="loop"))
    summary_interval_steps: int = field(default=10, metadata=_flag("write TensorBoard summaries every N steps", int, group="loop"))
    skip_eval: bool = field(default=False, metadata=_flag("do not evaluate on the validation split at the end", group="loop"))

    # where it runs
    precision: str = field(default="float32", metadata=_flag("numeric precision policy", str, group="devices",
                                                             choices=choice_names.PRECISIONS))
    xla: bool = field(default=False, metadata=_flag("compile the graph with XLA (TensorFlow's JIT)", group="devices"))
    num_devices: int | None = field(default=None, metadata=_flag(
        "train on this many devices, one tower each, gradients averaged (default: every GPU, else the CPU)", int,
        group="devices"))
    sync_replicas: bool = field(default=False, metadata=_flag(
        "cluster training (TF_CONFIG set): one synchronous step from every worker's gradients (TensorFlow's "
        "SyncReplicasOptimizer) instead of asynchronous updates; no effect in one process", group="devices"))

    def __post_init__(self):
        from nets.hub import default_train_dir, is_hub  # after _validate has loaded the nets (and TensorFlow)
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen: resolve once)
        _parse_python_values(self, set_)
        pretrained = bool(self.ckpt) or is_hub(self.net)  # a hub backbone comes with its weights
        set_("trainable_defaulted", self.trainable is None)  # not a field: whether --trainable was left to default
        if self.trainable is None:  # a random trunk left frozen learns nothing: from scratch, every layer trains
            set_("trainable", (TRAINABLE_LOGITS,) if pretrained else (TRAINABLE_ALL,))
        _validate(self)
        if not self.train_dir:
            set_("train_dir", default_train_dir(self.net) if is_hub(self.net) else f"runs/{self.net}")
        if self.learning_rate is None:  # the lower rate when more than the classifier of a pretrained net trains
            set_("learning_rate", ALL_LAYERS_LEARNING_RATE if pretrained and self.trainable != (TRAINABLE_LOGITS,)
                 else LOGITS_LEARNING_RATE)
        if self.max_steps is None and self.epochs is None:
            set_("epochs", DEFAULT_EPOCHS)

    @property
    def optimizer_params(self) -> dict[str, float]:
        """The resolved parameters of the chosen optimizer (TF-Slim's defaults where not given)."""
        return choice_names.optimizer_params(self.optimizer, **{k: getattr(self, k) for k in choice_names.OPTIMIZER_DEFAULTS})

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with some fields changed, validated again; a defaulted --trainable resolves anew."""
        return dataclasses.replace(self, **{**({"trainable": None} if self.trainable_defaulted else {}), **changes})

    @property
    def restore_options(self):
        """The restore flags as one checkpoints.RestoreOptions value."""
        return restore_options(self)

    def to_dict(self) -> dict[str, Any]:
        """The values as JSON types (rename rules as their text; allow_random_trunk only when set)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values["ckpt_rename"] = [rule.text for rule in self.ckpt_rename]
        if not self.allow_random_trunk:  # it only lifts a refusal: records written before it (plan.json) still compare
            del values["allow_random_trunk"]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}

    def resolved_values(self) -> str:
        """The resolved values, one `name: value` per line, for the start of a run."""
        values = {key: value for key, value in self.to_dict().items() if key not in choice_names.OPTIMIZER_DEFAULTS}
        values["optimizer"] = f"{self.optimizer} {json.dumps(self.optimizer_params)}" if self.optimizer_params \
            else self.optimizer
        width = max(map(len, values))
        return "\n".join(f"  {key:<{width}}  {value}" for key, value in values.items() if value not in (None, [], ""))


def _parse_python_values(c: RunConfig, set_: Callable[[str, Any], None]) -> None:
    """Values given in Python (recipes, tests) as written ('Logits,Mixed_7c', 'OLD:NEW') are parsed as flags are."""
    for f in dataclasses.fields(c):
        parse, value = f.metadata.get("parse"), getattr(c, f.name)
        if parse is None or parse in (str, int, float) or value is None:
            continue
        if f.metadata["repeat"]:
            set_(f.name, tuple(parse(item) for item in value))
        elif isinstance(value, str | list | tuple):
            set_(f.name, parse(value))


_RANGES = {"validation_fraction": ("[0, 1)", lambda v: 0 <= v < 1), "crop_min_area": ("(0, 1]", lambda v: 0 < v <= 1),
           "label_smoothing": ("[0, 1)", lambda v: 0 <= v < 1), "batch_norm_decay": ("(0, 1)", lambda v: 0 < v < 1),
           "moving_average_decay": ("(0, 1)", lambda v: 0 < v < 1)}


def _validate(c: RunConfig) -> None:
    from nets import hub, nets_factory

    if not c.net:
        raise ValueError("--net is required: a network name from the zoo (`finetune nets` lists them).")
    spec = nets_factory.get_spec(c.net)
    if hub.is_hub(c.net):
        hub.run_input(c.net, c.image_size, c.input_range)
        trained = trainable_scopes(spec, c.trainable)  # a backbone that cannot train: refused before any run
        hub.check_backbone_trains(c.net, default_text(c.trainable), trained, lambda n: scopes.matching_scope(n, trained, spec.scope))
    elif c.input_range is not None:
        raise ValueError(f"--input-range is for hub:PATH nets; {spec.name} takes its own preprocessing: drop the flag.")
    if not c.dataset:
        raise ValueError("--dataset is required: an image folder with one sub-folder per class, or a TFRecord folder.")
    if not c.trainable:
        raise ValueError("--trainable is empty: use 'logits', 'all' or comma-separated scopes.")
    if not (c.ckpt or hub.is_hub(c.net) or c.trainable_defaulted or c.allow_random_trunk):
        _check_trunk_trains(c, spec)
    for name in ("batch_size", "keep_checkpoints", "summary_interval_steps", "image_size", "max_steps", "epochs",
                 "save_interval_steps", "save_interval_secs", "learning_rate", "clip_grad_norm", "decay_epochs",
                 "num_devices"):
        value = getattr(c, name)
        if value is not None and not math.isfinite(value):
            raise ValueError(f"--{_flag_name(name)} must be a finite number, got {value}.")
        if value is not None and value <= 0:
            raise ValueError(f"--{_flag_name(name)} must be > 0, got {value}.")
    for name in ("warmup_steps", "weight_decay", "end_learning_rate"):
        if getattr(c, name) < 0:
            raise ValueError(f"--{_flag_name(name)} must be >= 0, got {getattr(c, name)}.")
    if c.max_steps is not None and c.epochs is not None:
        raise ValueError(f"--epochs {c.epochs:g} and --max-steps {c.max_steps} both say when to stop: give one.")
    for name, (text, inside) in _RANGES.items():
        if getattr(c, name) is not None and not inside(getattr(c, name)):
            raise ValueError(f"--{_flag_name(name)} must be in {text}, got {getattr(c, name)}.")
    for name in ("optimizer", "lr_schedule", "precision", "background_class", "augment", "cache_features"):
        choices = _choices(name)
        if getattr(c, name) not in (*choices, RunConfig.__dataclass_fields__[name].default):  # None: not set
            raise ValueError(f"--{_flag_name(name)} {getattr(c, name)!r} is not one of: {', '.join(choices)}.")
    if c.max_steps is not None and c.warmup_steps > c.max_steps:
        raise ValueError(f"--warmup-steps {c.warmup_steps} exceeds --max-steps {c.max_steps}.")


def trainable_scopes(spec, trainable: Sequence[str]) -> tuple[str, ...]:
    """The scopes `--trainable` names: 'logits' the net's classifier scopes, 'all' the net's scope (NASNet's, ''
    every top-level scope); other scopes as written (checkpoints.scopes: absolute or relative to the net's scope)."""
    keywords = {TRAINABLE_LOGITS: spec.classifier_scopes, TRAINABLE_ALL: (spec.scope or "[^/]+",)}
    return tuple(dict.fromkeys(s for scope in trainable for s in keywords.get(scope, (scope,))))


def _check_trunk_trains(c: RunConfig, spec) -> None:
    """Without --ckpt, a --trainable leaving random layers frozen (they learn nothing) needs --allow-random-trunk."""
    trained = trainable_scopes(spec, c.trainable)
    frozen = [name for name in spec.published_variables() if not scopes.matching_scope(name, trained, spec.scope)]
    if frozen:
        raise ValueError(f"--trainable {default_text(c.trainable)} without --ckpt leaves {len(frozen)} variables of "
                         f"{c.net} (e.g. {frozen[0]}) frozen at their random values, so the run would learn next to "
                         "nothing: give --ckpt, train every layer (--trainable all, the default without --ckpt) or "
                         "insist with --allow-random-trunk.")


def check_multiplier_scopes(trained: Iterable[str], multiplier_scopes: Sequence[str], root: str | None = None) -> None:
    """One-line ValueError unless each --lr-multiplier scope is the one whose factor applies (the most specific
    match) to one of the `trained` variable names at least. The run checks its variables with a gradient here
    (finetune.train.optim), `--dry-run` the net's published variables under --trainable (finetune.recipe)."""
    used = {scopes.most_specific_scope(name, multiplier_scopes, root) for name in trained}
    unused = [scope for scope in multiplier_scopes if scope not in used]
    if unused:
        raise ValueError(f"--lr-multiplier scope(s) {', '.join(unused)} match no trained variable: check the "
                         "scope names (`finetune inspect` lists them) and --trainable.")


def _flag_name(name: str) -> str:
    return name.replace("_", "-")


def _choices(name: str) -> tuple:
    return RunConfig.__dataclass_fields__[name].metadata["choices"]  # a tuple of finetune.choices


_GROUP_TITLES = {"run": "run", "restore": "restore from a checkpoint", "training": "what trains",
                 "optimizer": "optimizer and learning rate", "augmentation": "augmentation", "loop": "loop",
                 "devices": "devices and precision"}


def restore_options(values: Any):
    """checkpoints.RestoreOptions from the restore fields of a RunConfig or of parsed flags (`finetune inspect`
    adds only those: see add_arguments' `group`); a flag not given takes the field's default."""
    from checkpoints import RestoreOptions

    value = {f.name: getattr(values, f.name, f.default) for f in dataclasses.fields(RunConfig)}
    return RestoreOptions(exclude_scopes=value["exclude_scopes"], rename=tuple(value["ckpt_rename"]),
                          use_moving_average=value["ckpt_moving_average"], background_class=value["background_class"])


def default_text(value: Any) -> str:
    """A default as a user types it in a flag: `logits` for ('logits',), `A,B` for a list."""
    return ",".join(map(str, value)) if isinstance(value, tuple | list) else str(value)


def add_arguments(parser: argparse.ArgumentParser, group: str | None = None, *, require: bool = True) -> None:
    """One flag per RunConfig field (`--train-dir` for train_dir), with its help, grouped; with `group`, only that
    group's flags (e.g. 'restore'). require=False: --net and --dataset may be left out (a recipe gives them). A flag
    not given is left out of the namespace (argparse.SUPPRESS; its help says the default), so `from_namespace` falls
    back to the field's own default (a --trainable not given stays unset) and the namespace holds the flags given."""
    groups = {key: parser.add_argument_group(title) for key, title in _GROUP_TITLES.items()
              if group in (None, key)}
    for f in dataclasses.fields(RunConfig):
        meta = f.metadata
        if meta["group"] not in groups:
            continue
        kwargs = {"help": meta["help"], "default": argparse.SUPPRESS}
        if not (f.default is None or f.default is False or f.default in ("", ())):
            kwargs["help"] += f" (default: {default_text(f.default)})"
        if meta["parse"] is None:  # a switch
            kwargs["action"] = "store_true"
        else:
            kwargs.update(type=_flag_value(meta["parse"]), metavar=f.name.upper(), required=meta["required"] and require)
            if meta["repeat"]:
                kwargs["action"] = "append"
            if meta["choices"]:
                kwargs["choices"] = _choices(f.name)
                kwargs.pop("metavar")
        groups[meta["group"]].add_argument(f"--{_flag_name(f.name)}", **kwargs)


def from_namespace(args: argparse.Namespace, **overrides: Any) -> RunConfig:
    """A RunConfig from parsed flags (see `add_arguments`); attributes that are no field are ignored."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(RunConfig) if hasattr(args, f.name)}
    for f in dataclasses.fields(RunConfig):
        if f.metadata["repeat"] and f.name in values:
            values[f.name] = tuple(values[f.name])
    return RunConfig(**{**values, **overrides})
