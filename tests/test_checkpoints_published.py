"""What the registry says was published with a net, against the zoo; archives whose checkpoint is named by its
path (mobilenet_v3's ema/) or not named at all (mobilenet_edgetpu), fetched from file:// URLs."""

import io
import tarfile

import numpy as np
import pytest

from checkpoints import download, registry
from nets import nets_factory
from nets.compat import tf

V3_AND_EDGETPU = {
    "mobilenet_v3_large": 75.2,
    "mobilenet_v3_small": 67.5,
    "mobilenet_v3_large_minimalistic": 72.3,
    "mobilenet_v3_small_minimalistic": 61.9,
    "mobilenet_edgetpu": 75.6,
    "mobilenet_edgetpu_075": 73.5,
}


def test_a_net_has_an_entry_exactly_when_tf_slim_published_its_weights():
    specs = nets_factory.specs()
    for name in specs:  # the manifest's variable list says where it comes from
        header = (nets_factory._PUBLISHED_DIR / f"{name}.txt").read_text().splitlines()[0]
        assert ("no published TF-Slim checkpoint" in header) == (name not in registry.REGISTRY), name
    assert {"alexnet_v2", "overfeat", "vgg_a", "resnet_v1_200", "resnet_v2_200"}.isdisjoint(registry.REGISTRY)
    for entry in registry.REGISTRY.values():
        assert entry.net in specs and entry.num_classes == specs[entry.net].num_classes, entry.name
        assert entry.source in ("research/slim/README.md", "research/slim/nets/mobilenet_v1.md",
                                "research/slim/nets/mobilenet/README.md"), entry.name
        assert 40 < entry.top1 < 85 and (entry.top5 is None or entry.top1 < entry.top5 < 100), entry.name


@pytest.mark.parametrize("name, top1", V3_AND_EDGETPU.items())
def test_mobilenet_v3_and_edgetpu_entries(name, top1):
    entry = registry.get(name)
    assert (entry.top1, entry.top5, entry.num_classes, entry.image_size) == (top1, None, 1001, 224)
    assert entry.source == "research/slim/nets/mobilenet/README.md"
    assert entry.url(None).startswith("https://storage.googleapis.com/mobilenet_")
    assert registry.get("inception_v3").source == "research/slim/README.md"
    assert registry.get("mobilenet_v1").source == "research/slim/nets/mobilenet_v1.md"


def _archive_of(tmp_path, checkpoints_at: dict[str, float]) -> bytes:
    """A tar.gz holding a one-variable checkpoint (filled with the given value) at each archive path prefix."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for i, (arcname, fill) in enumerate(checkpoints_at.items()):
            src = tmp_path / f"src{i}"
            src.mkdir(parents=True)
            with tf.Graph().as_default():
                variable = tf.get_variable("MobilenetV3/Conv/weights", initializer=np.full([3], fill, np.float32))
                with tf.Session() as sess:
                    sess.run(variable.initializer)
                    tf.train.Saver([variable]).save(sess, str(src / "model"), write_meta_graph=False)
            for path in sorted(src.iterdir()):
                if path.name != "checkpoint":
                    tar.add(path, arcname=arcname + path.name[len("model"):])
    return buffer.getvalue()


def _serve(tmp_path, entry: registry.Pretrained, data: bytes) -> str:
    """A file:// base URL holding the entry's archive."""
    served = tmp_path / "served"
    served.mkdir(exist_ok=True)
    (served / entry.archive).write_bytes(data)
    return served.as_uri()


def _read(prefix: str) -> np.ndarray:
    return tf.train.load_checkpoint(prefix).get_tensor("MobilenetV3/Conv/weights")


def test_a_checkpoint_named_by_its_path_in_the_archive(monkeypatch, tmp_path):
    # Another checkpoint of the same file name elsewhere in the archive must not mix in.
    monkeypatch.setenv(download.HOME_ENV, str(tmp_path / "home"))
    entry = registry.get("mobilenet_v3_small")
    assert entry.checkpoint == "v3-small_224_1.0_float/ema/model-388500"
    data = _archive_of(tmp_path, {"v3-small_224_1.0_float/pristine/model-388500": 2.0,
                                  "v3-small_224_1.0_float/ema/model-388500": 1.0})
    prefix = download.fetch(entry.name, base_url=_serve(tmp_path, entry, data), progress=False)
    assert prefix == str(tmp_path / "home" / "checkpoints" / entry.name / "model-388500")
    np.testing.assert_array_equal(_read(prefix), [1.0] * 3)
    assert download.cached(entry.name) == prefix


def test_an_archive_whose_checkpoint_is_not_named_gives_its_only_one(monkeypatch, tmp_path):
    monkeypatch.setenv(download.HOME_ENV, str(tmp_path / "home"))
    entry = registry.get("mobilenet_edgetpu")
    assert entry.checkpoint is None
    data = _archive_of(tmp_path / "one", {"mobilenet_edgetpu_224_1.0/model.ckpt": 3.0})
    prefix = download.fetch(entry.name, base_url=_serve(tmp_path, entry, data), progress=False)
    assert prefix == str(tmp_path / "home" / "checkpoints" / entry.name / "model.ckpt")
    np.testing.assert_array_equal(_read(prefix), [3.0] * 3)

    other = registry.get("mobilenet_edgetpu_075")
    data = _archive_of(tmp_path / "two", {"a/model.ckpt": 1.0, "b/model.ckpt": 2.0})
    with pytest.raises(ValueError, match=r"holds 2 checkpoints \(a/model.ckpt, b/model.ckpt\), not one.*run `finetune"):
        download.fetch(other.name, base_url=_serve(tmp_path, other, data), progress=False)
    assert download.cached(other.name) is None
