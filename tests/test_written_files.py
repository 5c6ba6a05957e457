"""Files the toolkit writes for others to read: modes that follow the umask, strict JSON, and convert-weights'
rule for an --output that already holds a checkpoint (export's rule: never one it did not write, an earlier
conversion only with --overwrite, and a failed conversion leaves the old one as it was)."""

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from finetune import cli, weights
from finetune.runs.files import write_json, write_labels
from nets.compat import tf

TFLITE = Path(__file__).parent / "data" / "real" / "mobilenet_v1_0.25_128_quant.tflite"


@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_whole_file_writes_follow_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    write_json(tmp_path / "model.json", {"a": 1})
    write_labels(tmp_path / "labels.txt", ["cat", "dog"])
    assert stat.S_IMODE((tmp_path / "model.json").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "labels.txt").stat().st_mode) == mode


def test_json_files_never_hold_nan_or_infinity(tmp_path):
    write_json(tmp_path / "s.json", {"loss": float("nan"), "history": [1.0, float("inf")], "nested": {"x": -float("inf")}})
    text = (tmp_path / "s.json").read_text()

    def refuse(token):
        raise ValueError(f"non-JSON token {token}")

    assert json.loads(text, parse_constant=refuse) == {"loss": None, "history": [1.0, None], "nested": {"x": None}}


def _files(prefix: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(prefix.parent.iterdir())}


def _convert(output: Path, *extra: str) -> int:
    return cli.main(["convert-weights", "--from", "tflite", str(TFLITE), "--net", "mobilenet_v1_025",
                     "--output", str(output), *extra])


def test_convert_weights_never_replaces_a_checkpoint_it_did_not_write(tmp_path, capsys):
    output = tmp_path / "model.ckpt"
    with tf.Graph().as_default():
        variable = tf.Variable(np.arange(3, dtype=np.float32), name="w")
        with tf.Session() as session:
            session.run(variable.initializer)
            tf.train.Saver().save(session, str(output), write_meta_graph=False)
    before = _files(output)
    for extra in ((), ("--overwrite",)):
        assert _convert(output, *extra) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and "convert-weights did not write" in lines[0] and str(output) in lines[0], lines
    assert _files(output) == before


@pytest.mark.slow
def test_convert_weights_replaces_an_earlier_conversion_only_with_overwrite(tmp_path, capsys, monkeypatch):
    output = tmp_path / "out" / "model.ckpt"
    assert _convert(output) == 0
    first = _files(output)
    assert sorted(first) == ["model.ckpt.conversion.json", "model.ckpt.data-00000-of-00001", "model.ckpt.index"]
    assert json.loads(first["model.ckpt.conversion.json"])["checkpoint"] == str(output)
    capsys.readouterr()

    assert _convert(output) == 2  # again, without --overwrite: refused before any work, nothing touched
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--overwrite" in lines[0] and "earlier conversion" in lines[0]
    assert _files(output) == first

    real_compare = weights.compare  # a conversion that fails its verification leaves the earlier one whole
    monkeypatch.setattr(weights, "compare", lambda ours, reference: (1e9, 1e9, 1e9, None))
    assert _convert(output, "--overwrite") == 2
    assert "does not reproduce" in capsys.readouterr().err
    assert _files(output) == first

    monkeypatch.setattr(weights, "compare", real_compare)
    assert _convert(output, "--overwrite", "--image-size", "128") == 0
    assert sorted(_files(output)) == sorted(first)  # no staging files, no `checkpoint` state file left
    assert len(tf.train.load_checkpoint(str(output)).get_variable_to_shape_map()) == 137
