"""The public TF-Slim pretrained ImageNet checkpoints, one per net of the zoo that has one.

Facts from tensorflow/models research/slim/README.md (Inception, ResNet, VGG),
research/slim/nets/mobilenet_v1.md and research/slim/nets/mobilenet/README.md: archive, the
checkpoint inside it, class count (1001 = with a background class), evaluation image size and
published single-crop top-1 / top-5 accuracy. The registry name is the zoo net's name.

tensorflow/models publishes no digests. The sha256 values below are the archives' as recorded by
two public build recipes that verify them: openvinotoolkit/open_model_zoo
models/public/{googlenet-v1-tf,mobilenet-v2-1.0-224}/model.yml and renesas-rz/meta-renesas-ai
meta-benchmark/recipes-benchmark/benchmark/benchmark.bb (both give the same mobilenet_v2_1.0_224
digest). Entries without one (None) are checked for readability only. Every download records its
archive's size and sha256 next to the checkpoint.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass

URL_ENV = "FINETUNE_CHECKPOINT_URL"  # replaces every archive's base URL (a mirror, or a test server)
_TF_MODELS = "https://download.tensorflow.org/models"
_MOBILENET_V1 = f"{_TF_MODELS}/mobilenet_v1_2018_02_22"
_MOBILENET_V2 = "https://storage.googleapis.com/mobilenet_v2/checkpoints"


@dataclass(frozen=True)
class Pretrained:
    """One published checkpoint."""

    name: str  # the zoo net it initialises
    base_url: str
    archive: str  # file name of the archive at base_url
    checkpoint: str | None  # the checkpoint's prefix (V2) or file (V1) inside the archive, by its trailing path
    # where the archive holds several of that name; None: the archive's only checkpoint, found on extraction
    num_classes: int
    image_size: int
    top1: float
    top5: float | None  # None where the source table gives top-1 only
    sha256: str | None = None

    @property
    def net(self) -> str:
        return self.name

    @property
    def source(self) -> str:
        """The table of tensorflow/models that gives the accuracy: the slim README's, or the mobilenets' own."""
        if self.base_url == _MOBILENET_V1:
            return "research/slim/nets/mobilenet_v1.md"
        if self.base_url in (_MOBILENET_V2, _MOBILENET_V3, _MOBILENET_EDGETPU):
            return "research/slim/nets/mobilenet/README.md"
        return "research/slim/README.md"

    def url(self, base_url: str | None = None) -> str:
        base = base_url or os.environ.get(URL_ENV) or self.base_url
        return f"{base.rstrip('/')}/{self.archive}"


def _slim_2016(name: str, date: str, classes: int, size: int, top1: float, top5: float, ckpt: str = "",
               sha256: str | None = None) -> Pretrained:
    return Pretrained(name, _TF_MODELS, f"{name}_{date}.tar.gz", ckpt or f"{name}.ckpt", classes, size, top1, top5,
                      sha256)


def _mobilenet(name: str, base: str, stem: str, top1: float, top5: float, sha256: str) -> Pretrained:
    return Pretrained(name, base, f"{stem}.tgz", f"{stem}.ckpt", 1001, 224, top1, top5, sha256)


_ENTRIES = (
    _slim_2016("inception_v1", "2016_08_28", 1001, 224, 69.8, 89.6,
               sha256="7a620c430fcaba8f8f716241f5148c4c47c035cce4e49ef02cfbe6cd1adf96a6"),
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
    _mobilenet("mobilenet_v1", _MOBILENET_V1, "mobilenet_v1_1.0_224", 70.9, 89.9,
               "1ccb74dbd9c5f7aea879120614e91617db9534bdfaa53dfea54b7c14162e126b"),
    _mobilenet("mobilenet_v1_075", _MOBILENET_V1, "mobilenet_v1_0.75_224", 68.4, 88.2,
               "bf61b3ce7ca2d045bb35fa6ab9a68732e3531291266db4a8c7715227d7425657"),
    _mobilenet("mobilenet_v1_050", _MOBILENET_V1, "mobilenet_v1_0.5_224", 63.3, 84.9,
               "0eb9be8d18dcf9466a2a2d2157e71c83cd70dc168255d76d72bfe965318db725"),
    _mobilenet("mobilenet_v1_025", _MOBILENET_V1, "mobilenet_v1_0.25_224", 49.8, 74.2,
               "eee166d4d1de004e2ee5de19a4f5045574d764ef59569dc284545f805a295074"),
    _mobilenet("mobilenet_v2", _MOBILENET_V2, "mobilenet_v2_1.0_224", 71.8, 91.0,
               "318084bc1b63d6d7b854553e09cdf77078b1c0168be27c59a0d44253b5ed49dc"),
    _mobilenet("mobilenet_v2_140", _MOBILENET_V2, "mobilenet_v2_1.4_224", 75.0, 92.5,
               "a20d0c8d698502dc6a620528871c97a588885df7737556243a3412b39fce85e0"),
    _mobilenet("mobilenet_v2_035", _MOBILENET_V2, "mobilenet_v2_0.35_224", 60.3, 82.9,
               "efcc34277c52f7dd4b0b26c2f52686793f4ea5fdddc899ac5aac9eb8d5861550"),
)
REGISTRY: dict[str, Pretrained] = {entry.name: entry for entry in _ENTRIES}

# MobileNet v3 and EdgeTPU, from research/slim/nets/mobilenet/README.md, which gives top-1 only (EdgeTPU's: of
# the 8-bit TFLite conversion). The v3 archives hold the moving-average weights under ema/, at the steps
# tensornets' MobileNetV3 weight-translation script restores; the EdgeTPU archives' checkpoint name is not
# published: the archive's only checkpoint. The README links the EdgeTPU bucket through storage.cloud.google.com,
# which needs a sign-in; storage.googleapis.com serves the same public bucket.
_MOBILENET_V3 = "https://storage.googleapis.com/mobilenet_v3/checkpoints"
_MOBILENET_EDGETPU = "https://storage.googleapis.com/mobilenet_edgetpu/checkpoints"


def _mobilenet_v3(name: str, stem: str, step: int, top1: float) -> Pretrained:
    return Pretrained(name=name, base_url=_MOBILENET_V3, archive=f"{stem}.tgz", checkpoint=f"{stem}/ema/model-{step}",
                      num_classes=1001, image_size=224, top1=top1, top5=None)


def _mobilenet_edgetpu(name: str, stem: str, top1: float) -> Pretrained:
    return Pretrained(name=name, base_url=_MOBILENET_EDGETPU, archive=f"{stem}.tgz", checkpoint=None,
                      num_classes=1001, image_size=224, top1=top1, top5=None)


REGISTRY.update(
    (entry.name, entry)
    for entry in (
        _mobilenet_v3("mobilenet_v3_large", "v3-large_224_1.0_float", 540000, 75.2),
        _mobilenet_v3("mobilenet_v3_small", "v3-small_224_1.0_float", 388500, 67.5),
        _mobilenet_v3("mobilenet_v3_large_minimalistic", "v3-large-minimalistic_224_1.0_float", 342500, 72.3),
        _mobilenet_v3("mobilenet_v3_small_minimalistic", "v3-small-minimalistic_224_1.0_float", 498000, 61.9),
        _mobilenet_edgetpu("mobilenet_edgetpu", "mobilenet_edgetpu_224_1.0", 75.6),
        _mobilenet_edgetpu("mobilenet_edgetpu_075", "mobilenet_edgetpu_224_0.75", 73.5),
    )
)


# NASNet-A and PNASNet-5, from research/slim/README.md's table; each archive holds model.ckpt.
_NASNET = "https://storage.googleapis.com/download.tensorflow.org/models"
REGISTRY.update(
    (entry.name, entry)
    for entry in (
        Pretrained("nasnet_mobile", _NASNET, "nasnet-a_mobile_04_10_2017.tar.gz", "model.ckpt", 1001, 224, 74.0, 91.6),
        Pretrained("nasnet_large", _NASNET, "nasnet-a_large_04_10_2017.tar.gz", "model.ckpt", 1001, 331, 82.7, 96.2),
        Pretrained("pnasnet_mobile", _NASNET, "pnasnet-5_mobile_2017_12_13.tar.gz", "model.ckpt", 1001, 224, 74.2,
                   91.9),
        Pretrained("pnasnet_large", _NASNET, "pnasnet-5_large_2017_12_13.tar.gz", "model.ckpt", 1001, 331, 82.9, 96.2),
    )
)


def get(name: str) -> Pretrained:
    """The registry entry; unknown names get a ValueError with close matches."""
    if name not in REGISTRY:
        close = difflib.get_close_matches(name, REGISTRY, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"no known checkpoint {name!r}.{hint} Run `finetune download --list` to see them.")
    return REGISTRY[name]
