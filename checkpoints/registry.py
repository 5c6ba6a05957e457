"""The public TF-Slim pretrained ImageNet checkpoints, one per net of the zoo that has one.

The one place for what was published with a net: archive, the checkpoint inside it, class count
(1001 = with a background class), evaluation image size, the published single-crop ImageNet top-1 /
top-5 accuracy and the table it comes from (`source`): tensorflow/models research/slim/README.md
(Inception, ResNet, VGG), research/slim/nets/mobilenet_v1.md and research/slim/nets/mobilenet/README.md
(MobileNet v2, v3, EdgeTPU; v3 and EdgeTPU tables give top-1 only). A zoo net without an entry has no
published checkpoint (alexnet_v2, overfeat, vgg_a, resnet_v1_200, resnet_v2_200). The registry name is
the zoo net's name. No published digests exist; a download records its archive's size and sha256 next
to the checkpoint.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass

URL_ENV = "FINETUNE_CHECKPOINT_URL"  # replaces every archive's base URL (a mirror, or a test server)
_TF_MODELS = "http://download.tensorflow.org/models"
_MOBILENET_V1 = f"{_TF_MODELS}/mobilenet_v1_2018_02_22"
_MOBILENET_V2 = "https://storage.googleapis.com/mobilenet_v2/checkpoints"
_MOBILENET_V3 = "https://storage.googleapis.com/mobilenet_v3/checkpoints"
# The README links storage.cloud.google.com/mobilenet_edgetpu/...: the same bucket, served without sign-in here.
_MOBILENET_EDGETPU = "https://storage.googleapis.com/mobilenet_edgetpu/checkpoints"
_SLIM_README = "research/slim/README.md"
_MOBILENET_V1_MD = "research/slim/nets/mobilenet_v1.md"
_MOBILENET_README = "research/slim/nets/mobilenet/README.md"


@dataclass(frozen=True)
class Pretrained:
    """One published checkpoint."""

    name: str  # the zoo net it initialises
    base_url: str
    archive: str  # file name of the archive at base_url
    checkpoint: str | None  # the checkpoint's prefix (V2) or file (V1) inside the archive (a path where the
    # archive holds several); None: the archive's only checkpoint, found when extracted
    num_classes: int
    image_size: int
    top1: float
    top5: float | None  # None where the source table gives top-1 only
    source: str  # the table of tensorflow/models the accuracy comes from
    sha256: str | None = None

    @property
    def net(self) -> str:
        return self.name

    def url(self, base_url: str | None = None) -> str:
        base = base_url or os.environ.get(URL_ENV) or self.base_url
        return f"{base.rstrip('/')}/{self.archive}"


def _slim_2016(name: str, date: str, classes: int, size: int, top1: float, top5: float, ckpt: str = "") -> Pretrained:
    archive = f"{name}_{date}.tar.gz"
    return Pretrained(name, _TF_MODELS, archive, ckpt or f"{name}.ckpt", classes, size, top1, top5, _SLIM_README)


def _mobilenet(name: str, base: str, stem: str, top1: float, top5: float) -> Pretrained:
    source = _MOBILENET_V1_MD if base == _MOBILENET_V1 else _MOBILENET_README
    return Pretrained(name, base, f"{stem}.tgz", f"{stem}.ckpt", 1001, 224, top1, top5, source)


def _mobilenet_v3(name: str, stem: str, step: int, top1: float) -> Pretrained:
    """The float checkpoints: the moving-average weights under ema/ in each archive."""
    return Pretrained(name, _MOBILENET_V3, f"{stem}.tgz", f"{stem}/ema/model-{step}", 1001, 224, top1, None,
                      _MOBILENET_README)


def _mobilenet_edgetpu(name: str, stem: str, top1: float) -> Pretrained:
    """top-1 of the 8-bit TFLite conversion (the README lists no float accuracy)."""
    return Pretrained(name, _MOBILENET_EDGETPU, f"{stem}.tgz", None, 1001, 224, top1, None, _MOBILENET_README)


_ENTRIES = (
    _slim_2016("inception_v1", "2016_08_28", 1001, 224, 69.8, 89.6),
    _slim_2016("inception_v2", "2016_08_28", 1001, 224, 73.9, 91.8),
    _slim_2016("inception_v3", "2016_08_28", 1001, 299, 78.0, 93.9),
    _slim_2016("inception_v4", "2016_09_09", 1001, 299, 80.2, 95.2),
    _slim_2016("inception_resnet_v2", "2016_08_30", 1001, 299, 80.4, 95.3, "inception_resnet_v2_2016_08_30.ckpt"),
    _slim_2016("resnet_v1_50", "2016_08_28", 1000, 224, 75.2, 92.2),
    _slim_2016("resnet_v1_101", "2016_08_28", 1000, 224, 76.4, 92.9),
    _slim_2016("resnet_v1_152", "2016_08_28", 1000, 224, 76.8, 93.2),
    _slim_2016("resnet_v2_50", "2017_04_14", 1001, 299, 75.6, 92.8),
    _slim_2016("resnet_v2_101", "2017_04_14", 1001, 299, 77.0, 93.7),
    _slim_2016("resnet_v2_152", "2017_04_14", 1001, 299, 77.8, 94.1),
    _slim_2016("vgg_16", "2016_08_28", 1000, 224, 71.5, 89.8),
    _slim_2016("vgg_19", "2016_08_28", 1000, 224, 71.1, 89.8),
    _mobilenet("mobilenet_v1", _MOBILENET_V1, "mobilenet_v1_1.0_224", 70.9, 89.9),
    _mobilenet("mobilenet_v1_075", _MOBILENET_V1, "mobilenet_v1_0.75_224", 68.4, 88.2),
    _mobilenet("mobilenet_v1_050", _MOBILENET_V1, "mobilenet_v1_0.5_224", 63.3, 84.9),
    _mobilenet("mobilenet_v1_025", _MOBILENET_V1, "mobilenet_v1_0.25_224", 49.8, 74.2),
    _mobilenet("mobilenet_v2", _MOBILENET_V2, "mobilenet_v2_1.0_224", 71.8, 91.0),
    _mobilenet("mobilenet_v2_140", _MOBILENET_V2, "mobilenet_v2_1.4_224", 75.0, 92.5),
    _mobilenet("mobilenet_v2_035", _MOBILENET_V2, "mobilenet_v2_0.35_224", 60.3, 82.9),
    # Checkpoint steps as tensornets' MobileNetV3 weight-translation script restores them.
    _mobilenet_v3("mobilenet_v3_large", "v3-large_224_1.0_float", 540000, 75.2),
    _mobilenet_v3("mobilenet_v3_small", "v3-small_224_1.0_float", 388500, 67.5),
    _mobilenet_v3("mobilenet_v3_large_minimalistic", "v3-large-minimalistic_224_1.0_float", 342500, 72.3),
    _mobilenet_v3("mobilenet_v3_small_minimalistic", "v3-small-minimalistic_224_1.0_float", 498000, 61.9),
    _mobilenet_edgetpu("mobilenet_edgetpu", "mobilenet_edgetpu_224_1.0", 75.6),
    _mobilenet_edgetpu("mobilenet_edgetpu_075", "mobilenet_edgetpu_224_0.75", 73.5),
)
REGISTRY: dict[str, Pretrained] = {entry.name: entry for entry in _ENTRIES}


def get(name: str) -> Pretrained:
    """The registry entry; unknown names get a ValueError with close matches."""
    if name not in REGISTRY:
        close = difflib.get_close_matches(name, REGISTRY, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"no known checkpoint {name!r}.{hint} Run `finetune download --list` to see them.")
    return REGISTRY[name]


def table() -> str:
    """The registry as a printable table, with what is cached."""
    from tabulate import tabulate

    from checkpoints.download import cached

    rows = [
        (e.name, e.num_classes, e.image_size, e.top1, "-" if e.top5 is None else e.top5, e.archive, cached(e.name) or "")
        for e in REGISTRY.values()
    ]
    return tabulate(rows, headers=["name", "classes", "image size", "top-1", "top-5", "archive", "cached at"],
                    floatfmt=".1f")
