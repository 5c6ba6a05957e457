"""The zoo without TensorFlow: every registered net's data (name, image size, class count, preprocessing,
scopes, end points) as `NetInfo`, read from nets/manifest.json, for what lists the zoo (`finetune nets`).

The one registration of a net is its family file's `register(NetSpec(...))`; manifest.json is derived from
those registrations (`python -m nets.manifest` rewrites it from `nets_factory.specs()`), never edited by
hand, and tests/test_nets_manifest.py checks that it equals them. Parameter counts come from the published
variable lists (nets/published/NAME.txt) through nets.spec, as NetSpec's do. A net that is not in the
manifest (`hub:PATH`, a typo) is nets_factory.get_spec's to make or refuse.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from nets import spec as _spec

PATH = Path(__file__).parent / "manifest.json"
_HEADER = "derived from the nets' registrations by `python -m nets.manifest`; do not edit"


@dataclass(frozen=True)
class NetInfo:
    """A registered net's NetSpec without its functions (same field names and meanings)."""

    name: str
    image_size: int
    num_classes: int
    preprocessing: str
    scope: str
    classifier_scopes: tuple[str, ...]
    logits_end_point: str = "Logits"
    predictions_end_point: str | None = "Predictions"

    def published_variables(self) -> dict[str, tuple[int, ...]]:
        return _spec.read_published_variables(self.name)

    @property
    def num_parameters(self) -> int:
        return _spec.published_parameters(self.name)

    @classmethod
    def of(cls, net_spec: _spec.NetSpec) -> NetInfo:
        return cls(**{f.name: getattr(net_spec, f.name) for f in fields(cls)})


@functools.cache
def load() -> dict[str, NetInfo]:
    """Every registered net's NetInfo, by name, in registration order (as nets_factory.specs())."""
    nets = json.loads(PATH.read_text())["nets"]
    return {net["name"]: NetInfo(**{**net, "classifier_scopes": tuple(net["classifier_scopes"])}) for net in nets}


def render(specs) -> str:
    """manifest.json's text for these NetSpecs (or NetInfos): one net a line."""
    lines = [json.dumps(asdict(NetInfo.of(s))) for s in specs]
    return '{"about": ' + json.dumps(_HEADER) + ',\n "nets": [\n  ' + ",\n  ".join(lines) + "\n]}\n"


def write() -> None:
    """Rewrite manifest.json from the registrations (imports every family, so TensorFlow)."""
    from nets import nets_factory

    PATH.write_text(render(nets_factory.specs().values()))


if __name__ == "__main__":
    write()
    print(f"wrote {PATH} ({len(json.loads(PATH.read_text())['nets'])} nets)")
