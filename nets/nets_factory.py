"""The zoo's registry: one `NetSpec` (the net's manifest) per network, registered by its family file.

Every family module in this package calls `register(NetSpec(...))` at import time; this module
imports them all, so `networks_map` and `get_network_fn` know every net without a hand-kept list.
The manifest carries what the rest of the toolkit derives from (image size, preprocessing, the
published checkpoint's class count, classifier scopes, end-point names), so no other place keeps a
parallel table.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nets.compat import slim

PREPROCESSING_STYLES = ("inception", "vgg")
_PUBLISHED_DIR = Path(__file__).parent / "published"
_NOT_FAMILIES = {"compat", "nets_factory", "hub"}  # hub: nets made on demand by get_spec


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
        total = 0
        for shape in self.published_variables().values():
            size = 1
            for dim in shape:
                size *= dim
            total += size
        return total


_REGISTRY: dict[str, NetSpec] = {}


def register(spec: NetSpec) -> NetSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"net {spec.name!r} registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def read_published_variables(name: str) -> dict[str, tuple[int, ...]]:
    """Read nets/published/NAME.txt: one `variable_name<TAB>d0,d1,...` line per variable."""
    path = _PUBLISHED_DIR / f"{name}.txt"
    variables = {}
    for line in path.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        var_name, _, dims = line.partition("\t")
        variables[var_name] = tuple(int(d) for d in dims.split(",") if d)
    return variables


@functools.cache
def _load_families() -> None:
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if module.name not in _NOT_FAMILIES and not module.name.startswith("_"):
            importlib.import_module(f"nets.{module.name}")


def specs() -> dict[str, NetSpec]:
    """Every registered net, by name, in registration order."""
    _load_families()
    return dict(_REGISTRY)


def get_spec(name: str) -> NetSpec:
    if name.startswith("hub:"):  # a TF Hub feature-vector SavedModel as the backbone (nets/hub.py), made on demand
        from nets import hub

        return hub.spec(name)
    registered = specs()
    if name not in registered:
        close = difflib.get_close_matches(name, registered, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"Unknown net {name!r}.{hint} Run `finetune nets` to list the zoo, or give hub:PATH for a TF Hub model.")
    return registered[name]


def width_variant(network_fn: Callable, depth_multiplier: float) -> Callable:
    """`network_fn` at another width (depth_multiplier), keeping its name, docstring and default_image_size."""
    return functools.update_wrapper(functools.partial(network_fn, depth_multiplier=depth_multiplier), network_fn)


def __getattr__(attr: str):
    # `networks_map` (name -> network function) as in TF-Slim's factory, built on first use so that
    # importing this module does not import every family.
    if attr == "networks_map":
        return {name: spec.network_fn for name, spec in specs().items()}
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


def get_network_fn(
    name: str,
    num_classes: int,
    weight_decay: float = 0.0,
    is_training: bool = False,
    total_training_steps: int | None = None,
):
    """Return `fn(images, **kwargs) -> (logits, end_points)` with `fn.default_image_size`, as TF-Slim's.

    num_classes=0 returns the pre-logits features instead of logits. total_training_steps (the run's
    length) reaches the nets whose network function takes it (NASNet's and PNASNet's drop-path schedule);
    the others ignore it.
    """
    spec = get_spec(name)
    fixed = {"num_classes": num_classes, "is_training": is_training}
    if total_training_steps is not None and "total_training_steps" in inspect.signature(spec.network_fn).parameters:
        fixed["total_training_steps"] = total_training_steps

    @functools.wraps(spec.network_fn)
    def network_fn(images, **kwargs):
        with slim.arg_scope(spec.arg_scope_fn(weight_decay=weight_decay)):
            return spec.network_fn(images, **fixed, **kwargs)

    network_fn.default_image_size = spec.image_size
    network_fn.spec = spec
    return network_fn
