"""A run is resolved once (finetune.train.resolve) and starts one way (finetune.train.start): the scopes are
computed once per run and the graph builder takes them; the final validation is the caller's. (The restore reports' one schema: test_hub.py.)"""

import glob
import json
import shutil

import numpy as np
import pytest
from helpers.runs import checkpoint_values

from finetune import weights
from finetune.config import RunConfig
from finetune.data import synthetic
from finetune.train import graph as train_graph
from finetune.train import loop as train
from finetune.train import resolve, start
from nets import nets_factory

NET = "mobilenet_v1_025"
SMALL = {"net": NET, "batch_size": 4, "image_size": 32, "save_interval_secs": 3600}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return synthetic.write_shapes_dataset(tmp_path_factory.mktemp("data") / "shapes", ["plus", "x"],
                                          train_per_class=6, validation_per_class=2, image_size=36, seed=1)


def test_resolve_decides_the_run_once_and_prints_each_decision(dataset, tmp_path):
    lines = []
    run = resolve.resolve(RunConfig(dataset=str(dataset), train_dir=str(tmp_path), max_steps=5, **SMALL),
                          say=lines.append)
    spec = nets_factory.get_spec(NET)
    assert run.spec is spec and run.num_classes == 2 and run.image_size == 32 and run.input_range is None
    assert (run.steps_per_epoch, run.max_steps) == (3, 5)  # 12 training images, batch 4
    assert run.places == ["/cpu:0"] and run.chief and run.precision.name == "float32"
    # no --ckpt: every layer trains (issue 18: a classifier on a frozen random trunk learns nothing)
    assert run.scopes.trainable == (spec.scope,) and run.scopes.net == (spec.scope,)
    assert run.scopes.trains("MobilenetV1/Logits/Conv2d_1c_1x1/weights")
    assert run.scopes.trains("MobilenetV1/Conv2d_13_pointwise/weights")
    assert not run.use_cache and run.cache_reason == lines[-1] and "more than the classifier" in run.cache_reason
    assert lines[0].startswith(f"finetune: {NET} on ") and len(lines) == 3
    record = run.record()
    assert record["image_size"] == 32 and record["labels"] == ["plus", "x"] and record["input_range"] is None
    with pytest.raises(ValueError, match="--batch-size 3 does not divide over 2 devices"):
        resolve.resolve(RunConfig(dataset=str(dataset), **{**SMALL, "batch_size": 3}, num_devices=2), say=print)


def test_a_run_computes_its_scopes_once_and_the_graph_takes_them(dataset, tmp_path, monkeypatch):
    calls, given = [], []
    scopes_of, build = train_graph.trainable_scopes, train.build_train_graph
    monkeypatch.setattr(train_graph, "trainable_scopes",
                        lambda spec, trainable: calls.append(tuple(trainable)) or scopes_of(spec, trainable))
    monkeypatch.setattr(train, "build_train_graph", lambda *a, **k: given.append(k) or build(*a, **k))
    summary = train.train(RunConfig(dataset=str(dataset), train_dir=str(tmp_path), trainable="Conv2d_13_pointwise,logits",
                                    allow_random_trunk=True, max_steps=1, **SMALL), verbose=False)
    assert summary["final_step"] == 1
    # no `validate` given (finetune.serve.evaluate.validation_accuracy): no final validation, no eval dir
    assert summary["validation_accuracy"] is None and not (tmp_path / "eval_validation").exists()
    assert calls == [("Conv2d_13_pointwise", "logits"), ("all",)]  # once each, in resolve
    assert given[0]["run_scopes"].trainable == ("Conv2d_13_pointwise", "MobilenetV1/Logits")
    assert given[0]["precision"].name == "float32" and given[0]["input_range"] is None
    assert not (tmp_path / "restore_report.json").exists()  # scratch: nothing restored, no report


def test_starts_without_a_checkpoint(dataset, tmp_path):
    run = resolve.resolve(RunConfig(dataset=str(dataset), train_dir=str(tmp_path), max_steps=5, **SMALL),
                          say=lambda line: None)
    scratch = start.begin(run, [], None, str(tmp_path))
    assert isinstance(scratch, start.Scratch)
    assert scratch.text == f"No --ckpt: {NET} trains from scratch, every layer (--trainable all, the default without --ckpt)."
    insisted = resolve.resolve(RunConfig(dataset=str(dataset), trainable="logits", allow_random_trunk=True, max_steps=5,
                                         **SMALL), say=lambda line: None)
    assert start.begin(insisted, [], None, str(tmp_path)).text == (
        f"No --ckpt: {NET} trains from scratch, --trainable logits (--allow-random-trunk: the layers outside it stay "
        "at their random initial values).")
    assert scratch.report is None and scratch.init_fn() is None and scratch.init_op() is None
    assert scratch.start_step == 0 and scratch.checkpoint is None
    resume = start.begin(run, [], str(tmp_path / "model.ckpt-3"), str(tmp_path))
    assert isinstance(resume, start.Resume) and resume.start_step == 3 and resume.report is None
    assert resume.text.startswith(f"Resuming from {tmp_path / 'model.ckpt-3'} (step 3 of 5)")


def _folded_copy(pretrained: str, directory, image_size: int = 40) -> str:
    """A copy of the pretrained checkpoint with a conversion record (finetune.weights') saying its BatchNorm is
    folded, as `convert-weights --from tflite` writes one."""
    directory.mkdir()
    for path in glob.glob(glob.escape(pretrained) + ".*"):
        shutil.copy(path, directory / ("model.ckpt" + path[len(pretrained):]))
    record = {"net": NET, "image_size": image_size, "format": "tflite", "batch_norm_folded": True}
    (directory / f"model.ckpt{weights.CONVERSION_SUFFIX}").write_text(json.dumps(record))
    return str(directory / "model.ckpt")


def test_a_folded_checkpoint_trains_with_every_batch_norm_frozen_and_its_runs_pass_that_on(dataset, pretrained,
                                                                                            tmp_path):
    """Issue 18: the conversion record beside --ckpt says BatchNorm is folded; training every layer then keeps every
    BatchNorm in inference mode (statistics as restored), takes the converted image size, and a warm start from the
    run's train dir (a recipe's next stage) does the same."""
    assert resolve.CONVERSION_SUFFIX == weights.CONVERSION_SUFFIX
    ckpt = _folded_copy(pretrained, tmp_path / "converted")
    lines = []
    values = {**SMALL, "image_size": None, "trainable": "all", "max_steps": 2, "skip_eval": True}
    run = resolve.resolve(RunConfig(dataset=str(dataset), ckpt=ckpt, **values), say=lines.append)
    assert run.scopes.freeze_batch_norm and run.image_size == 40 and run.record()["batch_norm_folded"] is True
    assert lines[0].startswith(f"BatchNorm frozen: {ckpt} has BatchNorm folded") and len(lines) == 5
    assert lines[1] == f"image size 40: the converted model's ({ckpt}{weights.CONVERSION_SUFFIX})."
    summary = train.train(RunConfig(dataset=str(dataset), ckpt=ckpt, train_dir=str(tmp_path / "run"), **values),
                          verbose=False)
    before, after = checkpoint_values(ckpt), checkpoint_values(summary["checkpoint"])
    statistics = [name for name in before if name.endswith(("/moving_mean", "/moving_variance"))]
    assert len(statistics) == 2 * 27 and all(np.array_equal(before[n], after[n]) for n in statistics)
    trunk = "MobilenetV1/Conv2d_13_pointwise/weights"
    assert not np.array_equal(before[trunk], after[trunk])  # the trunk trains, its BatchNorm in inference mode
    again = resolve.resolve(RunConfig(dataset=str(dataset), ckpt=str(tmp_path / "run"), **values), say=lines.append)
    assert again.scopes.freeze_batch_norm and again.image_size == 40 and lines[5].startswith("BatchNorm frozen: ")
    with pytest.raises(ValueError, match=r"^--train-bn-stats: .* folded into its convolutions") as error:
        resolve.resolve(RunConfig(dataset=str(dataset), ckpt=ckpt, train_bn_stats=True, **values), say=print)
    assert "\n" not in str(error.value)
    plain = resolve.resolve(RunConfig(dataset=str(dataset), ckpt=pretrained, **values), say=lambda line: None)
    assert not plain.scopes.freeze_batch_norm and plain.image_size == 224 and "batch_norm_folded" not in plain.record()
