"""A checkpoint folder copied elsewhere restores its own files, though its `checkpoint` state file holds
the absolute paths of the original (as TF-Slim's train_image_classifier writes them)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import checkpoints
from nets.compat import tf


def _train_dir_with_absolute_paths(directory) -> None:
    """Two checkpoints, model.ckpt-1 (v = 1) and model.ckpt-2 (v = 2), recorded by absolute path."""
    with tf.Graph().as_default():
        v = tf.get_variable("v", initializer=np.zeros([3], np.float32))
        saver = tf.train.Saver([v], save_relative_paths=False)
        with tf.Session() as sess:
            for step in (1, 2):
                sess.run(v.assign(np.full([3], step, np.float32)))
                saver.save(sess, str(directory / "model.ckpt"), global_step=step, write_meta_graph=False)
    assert str(directory) in (directory / "checkpoint").read_text()


def _overwrite_step_2(directory, value: float) -> None:
    with tf.Graph().as_default():
        v = tf.get_variable("v", initializer=np.full([3], value, np.float32))
        with tf.Session() as sess:
            sess.run(v.initializer)
            tf.train.Saver([v]).save(sess, str(directory / "model.ckpt"), global_step=2, write_meta_graph=False)


@pytest.mark.parametrize("original", ["deleted", "changed"])
def test_a_copied_folder_restores_its_own_latest_checkpoint(tmp_path, original):
    first, copy = tmp_path / "first", tmp_path / "elsewhere" / "copy"
    first.mkdir()
    _train_dir_with_absolute_paths(first)
    shutil.copytree(first, copy)
    if original == "deleted":
        shutil.rmtree(first)
    else:
        _overwrite_step_2(first, 99.0)

    prefix = checkpoints.resolve_checkpoint(str(copy))
    assert prefix == str(copy / "model.ckpt-2")
    np.testing.assert_array_equal(tf.train.load_checkpoint(prefix).get_tensor("v"), np.full([3], 2, np.float32))
    with tf.Graph().as_default():
        v = tf.get_variable("v", shape=[3])
        assert checkpoints.check_resume(str(copy), [v]) == str(copy / "model.ckpt-2")


def test_a_state_file_pointing_to_a_checkpoint_kept_elsewhere_is_followed(tmp_path):
    first, other = tmp_path / "first", tmp_path / "other"
    first.mkdir()
    other.mkdir()
    _train_dir_with_absolute_paths(first)
    shutil.move(first / "checkpoint", other / "checkpoint")  # the state file alone, its checkpoints stay put
    assert checkpoints.resolve_checkpoint(str(other)) == str(first / "model.ckpt-2")
