"""Fixtures shared by the test modules (a test module never imports another; helpers live in tests/helpers/).

- `graph`: a fresh default graph for one test;
- `dataset`: the two-class shapes dataset (plus, x; 6 train and 2 validation images a class, 36 px, seed 1), a str
  path, made once a session; read only (a test that changes it copies it first);
- `pretrained`: the quick net with 1001 classes and random, physically valid values (seed 0), a str checkpoint
  prefix, made once a session: a 'pretrained' checkpoint whose classifier does not fit the dataset's classes.

`--check-slow` (limit 8 s, `--slow-limit SECONDS`; or `FINETUNE_CHECK_SLOW=SECONDS`) fails a test not marked slow
whose call takes longer (helpers/slow_check.py).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
from helpers.runs import random_net_checkpoint  # noqa: E402
from helpers.slow_check import pytest_addoption, pytest_configure, pytest_runtest_makereport  # noqa: E402, F401

from finetune.data import synthetic  # noqa: E402
from nets.compat import tf  # noqa: E402

tf.disable_eager_execution()


@pytest.fixture
def graph():
    """A fresh default graph for one test."""
    with tf.Graph().as_default() as g:
        yield g


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> str:
    """The two-class shapes dataset (see the module docstring)."""
    return str(synthetic.write_shapes_dataset(tmp_path_factory.mktemp("data") / "shapes", ["plus", "x"],
                                              train_per_class=6, validation_per_class=2, image_size=36, seed=1))


@pytest.fixture(scope="session")
def pretrained(tmp_path_factory) -> str:
    """A 1001-class checkpoint of the quick net with random (physically valid) values: its classifier does not fit."""
    return random_net_checkpoint(str(tmp_path_factory.mktemp("pretrained") / "model.ckpt"), 1001)
