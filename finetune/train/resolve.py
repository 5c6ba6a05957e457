"""A run resolved once: `resolve(config, cluster, say)` turns a RunConfig into the one `ResolvedRun`
value that the training graph, the start, the hooks and the summary read.

    config -> net spec -> dataset scan (>= 2 classes) -> image size and input range (a hub net's from its
    model; a converted checkpoint's from its conversion record) -> steps per epoch and max steps -> devices
    (the batch divides over them) -> precision -> trainable and frozen scopes (BatchNorm frozen whole when
    the conversion record says it is folded) -> feature-cache decision -> restore options

A checkpoint `finetune convert-weights` wrote has its conversion record beside it (CKPT.conversion.json,
finetune.weights): its "image_size" is the run's when --image-size is not given, and "batch_norm_folded"
keeps every BatchNorm in inference mode with its statistics as restored, also in the --trainable scopes
(training-mode batch statistics would replace the identity the folded bias relies on).

Each decision is printed (through `say`) as it is made, in this order: the hub model's input line, the
converted checkpoint's lines, the run's header and resolved values, the feature cache's reason line. A user mistake stops here with the
one-line ValueError of the step that finds it, before a graph is built. Nothing is written.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from checkpoints.reader import find_checkpoint
from finetune.config import RunConfig
from finetune.data import scan
from finetune.train import cluster as clusters
from finetune.train import devices, feature_cache
from finetune.train.graph import RunScopes
from finetune.train.precision import Precision
from nets import hub, nets_factory

if TYPE_CHECKING:
    from checkpoints import RestoreOptions

CONVERSION_SUFFIX = ".conversion.json"  # finetune.weights.CONVERSION_SUFFIX (weights and train do not import each other)


@dataclasses.dataclass(frozen=True)
class ResolvedRun:
    """Everything a run decides before it builds a graph, decided once."""

    config: RunConfig
    spec: nets_factory.NetSpec
    info: scan.DatasetInfo
    scopes: RunScopes  # what trains (trainable scopes) and what is the net (the rest of it is frozen)
    image_size: int
    input_range: tuple[float, float] | None  # of a hub:PATH net; None for a zoo net (its own preprocessing)
    steps_per_epoch: int
    max_steps: int
    places: list[str]  # the devices, one tower each
    precision: Precision
    use_cache: bool  # the feature cache feeds the classifier (finetune.train.feature_cache)
    cache_reason: str  # the line saying why
    restore_options: RestoreOptions  # of the restore flags (a warm start's)
    cluster: clusters.Cluster | None = None  # None: one process

    @property
    def chief(self) -> bool:
        """This process initializes the variables and writes the train dir."""
        return self.cluster is None or self.cluster.is_chief

    @property
    def num_classes(self) -> int:
        return self.info.num_classes

    def record(self) -> dict:
        """run_config.json: what rebuilds the run's graph, and every resolved value."""
        return {
            "net": self.spec.name,
            "num_classes": self.info.num_classes,
            "image_size": self.image_size,
            "preprocessing": self.spec.preprocessing,
            "labels": self.info.class_names,
            "dataset": os.path.abspath(self.info.root),
            "moving_average_decay": self.config.moving_average_decay,
            "config": self.config.to_dict(),
            "input_range": self.input_range,
            # a checkpoint of this run has its BatchNorm folded too: warm starts from it keep it frozen
            **({"batch_norm_folded": True} if self.scopes.freeze_batch_norm else {}),
        }


def run_length(config: RunConfig, num_train: int) -> tuple[int, int]:
    """(steps_per_epoch, max_steps): --max-steps, else --epochs worth of steps."""
    steps_per_epoch = max(1, math.ceil(num_train / config.batch_size))
    if config.max_steps is not None:
        return steps_per_epoch, config.max_steps
    return steps_per_epoch, max(1, math.ceil(config.epochs * steps_per_epoch))


def resolve(config: RunConfig, cluster: clusters.Cluster | None = None,
            say: Callable[[str], None] = print) -> ResolvedRun:
    """The run `config` asks for, resolved (see the module docstring); ValueError for a user mistake."""
    spec = nets_factory.get_spec(config.net)
    info = scan.scan_dataset(config.dataset, config.validation_fraction, config.seed)
    if info.num_classes < 2:
        raise ValueError(f"{info.root} has one class ({info.class_names[0]}): a classifier needs at least two; add "
                         "a folder of images per class.")
    converted_size, freeze_batch_norm = converted_checkpoint(config, spec.name, say)
    image_size, input_range = config.image_size or converted_size or spec.image_size, None
    if hub.is_hub(config.net):  # size and value range from the model when it states them, else the flags
        image_size, input_range, hub_line = hub.run_input(config.net, config.image_size, config.input_range)
        say(hub_line)
    steps_per_epoch, max_steps = run_length(config, info.num_examples["train"])
    say(f"finetune: {config.net} on {info.root}: {info.num_classes} classes, "
        f"{info.num_examples['train']} train / {info.num_examples.get('validation', 0)} validation images")
    say(config.resolved_values())

    places = devices.select_devices(config.num_devices)
    if config.batch_size % len(places):
        raise ValueError(f"--batch-size {config.batch_size} does not divide over {len(places)} devices.")
    run_scopes = RunScopes.of(spec, config.trainable, freeze_batch_norm)
    use_cache, why = feature_cache.decide(
        config.cache_features, classifier_only=run_scopes.classifier_only(spec), augment=config.augment,
        train_bn_stats=config.train_bn_stats, num_devices=len(places), cluster=cluster is not None)
    say(why)
    return ResolvedRun(config=config, spec=spec, info=info, scopes=run_scopes, image_size=image_size,
                       input_range=input_range, steps_per_epoch=steps_per_epoch, max_steps=max_steps, places=places,
                       precision=devices.get_precision(config.precision), use_cache=use_cache, cache_reason=why,
                       restore_options=config.restore_options, cluster=cluster)


def conversion_record(ckpt: str | None) -> tuple[str, dict] | None:
    """(path, content) of the record saying what the local checkpoint --ckpt names was converted from: the
    conversion record beside it, or the run_config.json of its train dir when that run trained from such a
    checkpoint (its "batch_norm_folded"; e.g. a recipe's later stage); None otherwise."""
    try:
        prefix = find_checkpoint(ckpt) if ckpt else None
    except (OSError, ValueError):  # not a checkpoint: the warm start refuses it, in its words
        return None
    if prefix is None:
        return None
    conversion, run_config = f"{prefix}{CONVERSION_SUFFIX}", os.path.join(os.path.dirname(prefix), "run_config.json")
    path = conversion if os.path.isfile(conversion) else run_config
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as file:
            record = json.load(file)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path} (the record of --ckpt {ckpt}) does not read ({error}): convert the weights "
                         "again (`finetune convert-weights --overwrite`) or give another --ckpt.") from None
    return (path, record) if path == conversion or record.get("batch_norm_folded") else None


def converted_checkpoint(config: RunConfig, net: str, say: Callable[[str], None]) -> tuple[int | None, bool]:
    """(the converted model's image size, BatchNorm folded) from --ckpt's conversion record ((None, False)
    without one, or for another net); says what it takes from it, refuses --train-bn-stats on folded BatchNorm."""
    found = conversion_record(config.ckpt)
    if found is None or found[1].get("net") != net:
        return None, False
    path, record = found
    size = record.get("image_size")
    folded = bool(record.get("batch_norm_folded", record.get("format") == "tflite"))  # records before the field
    if folded and config.train_bn_stats:
        raise ValueError(f"--train-bn-stats: {config.ckpt} holds BatchNorm folded into its convolutions ({path}), "
                         "whose statistics are identity placeholders that batch statistics would replace: drop "
                         "--train-bn-stats.")
    if folded:
        say(f"BatchNorm frozen: {config.ckpt} has BatchNorm folded into its convolutions ({path}); every BatchNorm "
            "layer runs in inference mode and keeps its statistics, also where --trainable trains.")
    if size and config.image_size is None:
        say(f"image size {size}: the converted model's ({path}).")
    elif size and config.image_size != size:
        say(f"--image-size {config.image_size} differs from the {size} px the converted model was verified at "
            f"({path}).")
    return size, folded
