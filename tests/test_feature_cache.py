"""Cached features (finetune.train.feature_cache) on mobilenet_v1_025 at 32 px: the same classifier as without the cache,
a checkpoint of the whole net, the cache reused and invalidated."""

import shutil

import numpy as np
import pytest
from helpers.runs import QUICK_NET as NET
from helpers.runs import checkpoint_values as _values

from finetune.config import RunConfig
from finetune.serve import evaluate
from finetune.train import feature_cache
from finetune.train import loop as train

CLASSIFIER = "MobilenetV1/Logits"


@pytest.fixture(scope="module")
def source_ckpt(pretrained):
    return pretrained


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("FINETUNE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _config(dataset, source_ckpt, train_dir, **changes):
    values = {"net": NET, "dataset": str(dataset), "ckpt": source_ckpt, "train_dir": str(train_dir),
              "trainable": "logits", "augment": "none", "learning_rate": 0.1, "optimizer": "sgd",
              "batch_size": 12, "image_size": 32, "max_steps": 3, "save_interval_secs": 3600, **changes}
    return RunConfig(**values)


def _entries(home):
    return sorted(p.name for p in (home / "features").iterdir()) if (home / "features").exists() else []


@pytest.mark.slow
def test_cached_run_trains_the_classifier_as_the_uncached_one(dataset, source_ckpt, tmp_path, cache_home, capsys):
    # One batch is the whole training split (12 images), so both runs see the same images each step.
    # No step-0 checkpoint is written (it would only copy --ckpt): compare what steps 2 and 3 moved.
    cached = train.train(_config(dataset, source_ckpt, tmp_path / "cached", cache_features="on",
                                 save_interval_steps=1), progress_bar=False, validate=evaluate.validation_accuracy)
    out = capsys.readouterr().out
    assert "--cache-features on: on" in out and "computing" in out
    plain = train.train(_config(dataset, source_ckpt, tmp_path / "plain", cache_features="off",
                                save_interval_steps=1), verbose=False, validate=evaluate.validation_accuracy)
    source, with_cache, without = _values(source_ckpt), _values(cached["checkpoint"]), _values(plain["checkpoint"])
    start = _values(str(tmp_path / "cached" / "model.ckpt-1"))
    start_plain = _values(str(tmp_path / "plain" / "model.ckpt-1"))
    net_variables = [n for n in without if n.startswith("MobilenetV1/") and not n.endswith("/Momentum")]
    assert sorted(n for n in with_cache if n.startswith("MobilenetV1/")) == sorted(
        n for n in without if n.startswith("MobilenetV1/"))
    for name in net_variables:
        if name.startswith(CLASSIFIER):
            moved = with_cache[name] - start[name]
            assert np.abs(moved).max() > 1e-4, name
            # Dropout (keep 0.999) in the classifier draws other masks in the two graphs: of 3 steps x 12 images x
            # 256 features about 9 are dropped, so the weights of all other features moved the same.
            moved_plain = without[name] - start_plain[name]
            if name.endswith("weights"):
                rows = np.abs(moved - moved_plain).reshape(-1, moved.shape[-1]).max(1)
                assert (rows > 1e-5).sum() <= 12, (name, np.sort(rows)[-15:])
            else:
                np.testing.assert_allclose(moved, moved_plain, rtol=0.05, atol=1e-5, err_msg=name)
        else:
            np.testing.assert_array_equal(with_cache[name], source[name], err_msg=name)
    assert cached["validation_accuracy"] is not None and cached["validation_accuracy"] == plain["validation_accuracy"]


@pytest.mark.slow
def test_cache_is_reused_then_invalidated_by_image_size_and_dataset(dataset, source_ckpt, tmp_path, cache_home,
                                                                  capsys):
    # Batches of 4 over 12 images: every step after the one-pass feature computation is fed from the cache
    # (a step that read the used-up pipeline would end the run early, an error).
    summary = train.train(_config(dataset, source_ckpt, tmp_path / "a", max_steps=5, batch_size=4, skip_eval=True),
                          progress_bar=False)
    assert "--cache-features auto: on" in capsys.readouterr().out and summary["final_step"] == 5
    assert len(_entries(cache_home)) == 1
    train.train(_config(dataset, source_ckpt, tmp_path / "b", max_steps=1, skip_eval=True), progress_bar=False)
    assert "Feature cache: reusing" in capsys.readouterr().out and len(_entries(cache_home)) == 1
    train.train(_config(dataset, source_ckpt, tmp_path / "c", max_steps=1, skip_eval=True, image_size=40),
                progress_bar=False)
    assert "computing" in capsys.readouterr().out and len(_entries(cache_home)) == 2
    changed = shutil.copytree(dataset, tmp_path / "changed")
    victim = next((changed / "train" / "plus").iterdir())
    victim.unlink()
    train.train(_config(changed, source_ckpt, tmp_path / "d", max_steps=1, skip_eval=True, batch_size=4),
                progress_bar=False)
    assert "computing" in capsys.readouterr().out and len(_entries(cache_home)) == 3


def test_auto_stays_off_with_augmentation_or_a_trained_trunk():
    common = {"train_bn_stats": False, "num_devices": 1, "cluster": False}
    assert feature_cache.decide("auto", classifier_only=True, augment="default", **common)[0] is False
    assert feature_cache.decide("auto", classifier_only=False, augment="none", **common)[0] is False
    assert feature_cache.decide("auto", classifier_only=True, augment="none", **common)[0] is True
    with pytest.raises(ValueError, match="--augment none"):
        feature_cache.decide("on", classifier_only=True, augment="default", **common)


@pytest.mark.slow
def test_resnet_classifier_trains_every_step_from_the_cache(dataset, tmp_path):
    # resnet_v1_50's classifier gradients were rewritten by Grappler's dependency optimizer to read the input
    # pipeline despite the fed features (feature_cache.fit_session_config): the run stopped after the one pass.
    summary = train.train(RunConfig(net="resnet_v1_50", dataset=str(dataset), train_dir=str(tmp_path / "run"),
                                    trainable="logits", allow_random_trunk=True, augment="none", batch_size=4,
                                    image_size=32, max_steps=5,
                                    skip_eval=True, save_interval_secs=3600), verbose=False)
    assert summary["final_step"] == 5 and summary["steps"] == 5


@pytest.mark.slow
def test_resumed_run_reuses_the_cache_and_goes_on(dataset, source_ckpt, tmp_path, cache_home, capsys):
    train.train(_config(dataset, source_ckpt, tmp_path / "run", max_steps=2, batch_size=4, skip_eval=True),
                progress_bar=False)
    capsys.readouterr()
    summary = train.train(_config(dataset, source_ckpt, tmp_path / "run", max_steps=4, batch_size=4, skip_eval=True),
                          progress_bar=False)
    out = capsys.readouterr().out
    assert "Resuming from" in out and "Feature cache: reusing" in out
    assert summary["start_step"] == 2 and summary["final_step"] == 4 and len(_entries(cache_home)) == 1


@pytest.mark.slow
def test_bfloat16_features_are_stored_and_reused_bit_for_bit(dataset, source_ckpt, tmp_path, cache_home, capsys):
    # --precision mixed_bfloat16: the cut tensor (the trunk's output) is bfloat16, which .npy files cannot hold as such.
    first = train.train(_config(dataset, source_ckpt, tmp_path / "a", precision="mixed_bfloat16", skip_eval=True,
                                batch_size=4), progress_bar=False)
    assert "computing" in capsys.readouterr().out
    again = train.train(_config(dataset, source_ckpt, tmp_path / "b", precision="mixed_bfloat16", skip_eval=True,
                                batch_size=4), progress_bar=False)
    assert "Feature cache: reusing" in capsys.readouterr().out
    entry = cache_home / "features" / _entries(cache_home)[0]
    stored = [np.load(path) for path in sorted(entry.glob("*.npy"))]
    assert any(value.dtype == np.uint16 and value.ndim == 4 for value in stored)  # the features' bfloat16 bits
    for name, value in _values(first["checkpoint"]).items():
        assert value.dtype == np.float32 or not name.startswith("MobilenetV1/"), name  # float32 master weights
        np.testing.assert_array_equal(_values(again["checkpoint"])[name], value, err_msg=name)
    assert first["final_loss"] == again["final_loss"]
