"""The zoo's registry: one `NetSpec` (the net's manifest) per network, registered by its family file.

Every family module in this package calls `nets.spec.register(NetSpec(...))` at import time; this module
imports them all, so `networks_map` and `get_network_fn` know every net without a hand-kept list, and
makes `hub:PATH` specs through `nets.hub`. Imports run one way: nets_factory -> {families, hub} -> spec.
The manifest carries what the rest of the toolkit derives from (image size, preprocessing, the
published checkpoint's class count, classifier scopes, end-point names), so no other place keeps a
parallel table: nets/manifest.json, the zoo for what lists it without TensorFlow, is derived from
these registrations (nets.manifest) and checked against them.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
from pathlib import Path

from nets import hub
from nets import spec as _spec
from nets.compat import slim
from nets.spec import (  # noqa: F401 (re-exported: TF-Slim's factory and older callers import them from here)
    PREPROCESSING_STYLES,
    NetSpec,
    read_published_variables,
    register,
    width_variant,
)

_PUBLISHED_DIR = _spec.PUBLISHED_DIR
_REGISTRY = _spec._REGISTRY  # the same dict: registering anywhere registers here
_NOT_FAMILIES = {"compat", "nets_factory", "hub", "spec", "manifest"}  # hub: nets made on demand by get_spec


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
    if hub.is_hub(name):  # a TF Hub feature-vector SavedModel as the backbone (nets/hub.py), made on demand
        return hub.spec(name)
    registered = specs()
    if name not in registered:
        raise _spec.unknown_net(name, registered)
    return registered[name]


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
