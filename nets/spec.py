"""What the toolkit knows about a net, without TensorFlow: `NetSpec` (the net's manifest), the registry the
family files fill, and the readers of the published checkpoints' variable lists (nets/published/NAME.txt).

Every family module calls `register(NetSpec(...))` at import time; `nets_factory` imports the families
and reads the registry, `hub` makes specs on demand. This module imports neither, nor TensorFlow, so it
sits below them all (the family files, `hub`, `nets_factory` and the TensorFlow-free `manifest` read it).
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PREPROCESSING_STYLES = ("inception", "vgg")
PUBLISHED_DIR = Path(__file__).parent / "published"


@dataclass(frozen=True)
class NetSpec:
    """What the toolkit knows about one registered network.

    network_fn(images, num_classes=..., is_training=..., **kwargs) -> (logits, end_points)
    arg_scope_fn(weight_decay=...) -> an arg_scope dict.
    """

    name: str
    network_fn: Callable
    arg_scope_fn: Callable
    image_size: int
    num_classes: int  # of the published checkpoint: 1001 (with background) or 1000
    preprocessing: str  # one of PREPROCESSING_STYLES
    scope: str  # the net's top variable scope, e.g. "InceptionResnetV2"; "" when its variables have none (NASNet)
    classifier_scopes: tuple[str, ...]  # what `--trainable logits` and the default excludes mean; main one first
    logits_end_point: str = "Logits"
    predictions_end_point: str | None = "Predictions"

    def __post_init__(self):
        if self.preprocessing not in PREPROCESSING_STYLES:
            raise ValueError(f"{self.name}: preprocessing {self.preprocessing!r} not in {PREPROCESSING_STYLES}")
        if self.num_classes not in (1000, 1001):
            raise ValueError(f"{self.name}: checkpoint class count must be 1000 or 1001, got {self.num_classes}")

    def published_variables(self) -> dict[str, tuple[int, ...]]:
        """Name -> shape of every variable in the published TF-Slim checkpoint (nets/published/)."""
        return read_published_variables(self.name)

    @property
    def num_parameters(self) -> int:
        return published_parameters(self.name)


_REGISTRY: dict[str, NetSpec] = {}


def register(spec: NetSpec) -> NetSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"net {spec.name!r} registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def width_variant(network_fn: Callable, depth_multiplier: float) -> Callable:
    """`network_fn` at another width (depth_multiplier), keeping its name, docstring and default_image_size."""
    return functools.update_wrapper(functools.partial(network_fn, depth_multiplier=depth_multiplier), network_fn)


def read_published_variables(name: str) -> dict[str, tuple[int, ...]]:
    """Read nets/published/NAME.txt: one `variable_name<TAB>d0,d1,...` line per variable."""
    path = PUBLISHED_DIR / f"{name}.txt"
    variables = {}
    for line in path.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        var_name, _, dims = line.partition("\t")
        variables[var_name] = tuple(int(d) for d in dims.split(",") if d)
    return variables


def published_nets() -> list[str]:
    """The names of the nets with a published variable list, sorted."""
    return sorted(path.stem for path in PUBLISHED_DIR.glob("*.txt"))


def published_parameters(name: str) -> int:
    """The number of values in the published checkpoint's variables of net `name`."""
    total = 0
    for shape in read_published_variables(name).values():
        size = 1
        for dim in shape:
            size *= dim
        total += size
    return total


def unknown_net(name: str, known: Iterable[str]) -> ValueError:
    """The one-line error for a net name that is not in the zoo, naming close matches."""
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return ValueError(f"Unknown net {name!r}.{hint} Run `finetune nets` to list the zoo, or give hub:PATH for a TF Hub "
                      "model.")


def likely_net(variables: Mapping[str, Sequence[int]]) -> str | None:
    """The net whose published checkpoint these variables (name -> shape, e.g. a checkpoint's) look like: the one
    with the largest share of its published variables among them, name and shape alike (the larger net on a
    tie: a resnet_v1_101 holds every variable of resnet_v1_50); None when no net has half of its there."""
    pairs = {(name, tuple(shape)) for name, shape in variables.items()}
    best, best_key = None, (0.5, 0)
    for name in published_nets():
        published = set(read_published_variables(name).items())
        key = (len(published & pairs) / len(published), len(published))
        if key >= best_key:
            best, best_key = name, key
    return best
