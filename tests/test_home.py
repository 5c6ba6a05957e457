"""One $FINETUNE_HOME: the checkpoint cache, the demo and the feature cache all live under checkpoints.download.home()."""

from __future__ import annotations

from pathlib import Path

import pytest

from checkpoints import download
from finetune.train import feature_cache


@pytest.mark.parametrize("value, expected", [
    ("~/x", Path.home() / "x"),
    ("", Path.home() / ".cache" / "finetune"),
    (None, Path.home() / ".cache" / "finetune"),
])
def test_finetune_home_expands_and_empty_means_the_default(value, expected, monkeypatch):
    if value is None:
        monkeypatch.delenv(download.HOME_ENV, raising=False)
    else:
        monkeypatch.setenv(download.HOME_ENV, value)
    assert download.home() == expected
    assert feature_cache.cache_root() == expected / "features"
