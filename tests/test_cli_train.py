"""`finetune [FLAGS]` (the default command): every flag documented, a run through the CLI, one-line errors."""

import dataclasses
import json

import pytest

from finetune import cli
from finetune.config import RunConfig
from finetune.data import synthetic


def test_help_documents_every_flag(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for f in dataclasses.fields(RunConfig):
        assert f"--{f.name.replace('_', '-')}" in text, f.name
    assert "other commands:" in text and "demo" in text


@pytest.mark.slow
def test_cli_trains_logits_of_a_checkpoint(tmp_path, capsys):
    data = synthetic.write_shapes_dataset(tmp_path / "data", ["circle", "square"], train_per_class=4,
                                          validation_per_class=2, image_size=36, seed=0)
    common = ["--net", "mobilenet_v1_025", "--dataset", str(data), "--batch-size", "4", "--image-size", "32",
              "--max-steps", "2"]
    assert cli.main([*common, "--train-dir", str(tmp_path / "scratch"), "--trainable", "all", "--skip-eval"]) == 0
    assert cli.main([*common, "--train-dir", str(tmp_path / "tuned"), "--ckpt", str(tmp_path / "scratch"),
                     "--trainable", "logits", "--lr-multiplier", "MobilenetV1/Logits=2"]) == 0
    out = capsys.readouterr().out
    assert "learning_rate" in out and "restore from" in out and "validation accuracy" in out
    summary = json.loads((tmp_path / "tuned" / "run_summary.json").read_text())
    assert summary["final_step"] == 2 and summary["checkpoint"].endswith("model.ckpt-2")


@pytest.mark.parametrize("flags, words", [
    (["--net", "mobilenet_v9", "--dataset", "x"], "mobilenet_v9"),
    (["--net", "mobilenet_v1_025", "--dataset", "/nonexistent/images"], "/nonexistent/images"),
    (["--net", "mobilenet_v1_025", "--dataset", "x", "--batch-size", "0"], "--batch-size"),
])
def test_bad_input_is_one_line_error(flags, words, capsys):
    assert cli.main(flags) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("finetune: error:") and words in err[0]
