"""The training loop on mobilenet_v1_025 at 32 px, batch 4, a few steps: what trains, what stays, what is saved."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.runs import QUICK_NET as NET
from helpers.runs import checkpoint_values as _values

from finetune.config import RunConfig
from finetune.data import synthetic
from finetune.serve import evaluate
from finetune.train import graph as train_graph
from finetune.train import hooks
from finetune.train import loop as train
from nets import nets_factory
from nets.compat import tf

SMALL = {"net": NET, "batch_size": 4, "image_size": 32, "save_interval_secs": 3600}


@pytest.fixture(scope="module")
def datasets(dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    source = synthetic.write_shapes_dataset(root / "source", ["circle", "square", "triangle"], train_per_class=6,
                                            validation_per_class=2, image_size=36, seed=0)
    return source, Path(dataset)  # the target: conftest's plus/x dataset


@pytest.fixture(scope="module")
def source_ckpt(datasets, tmp_path_factory):
    """A 'pretrained' checkpoint: all layers trained from scratch, so BatchNorm statistics moved off their init."""
    train_dir = tmp_path_factory.mktemp("source_run")
    summary = train.train(RunConfig(dataset=str(datasets[0]), train_dir=str(train_dir), trainable="all",
                                    max_steps=4, skip_eval=True, **SMALL), verbose=False)
    return summary["checkpoint"]


def _model_names(values: dict) -> list[str]:
    return [n for n in values if n.startswith("MobilenetV1/") and not n.endswith(("/Momentum", "ExponentialMovingAverage"))]


def test_logits_only_run_keeps_every_other_variable_and_bn_statistics(datasets, source_ckpt, tmp_path):
    summary = train.train(RunConfig(dataset=str(datasets[1]), train_dir=str(tmp_path), ckpt=source_ckpt,
                                    trainable="logits", learning_rate=0.1, max_steps=3, save_interval_steps=1,
                                    keep_checkpoints=5, **{**SMALL, "save_interval_secs": None}), verbose=False,
                          validate=evaluate.validation_accuracy)
    # no model.ckpt-0 (it would only copy --ckpt): the first save is after step 1
    pretrained, initial, final = _values(source_ckpt), _values(str(tmp_path / "model.ckpt-1")), \
        _values(summary["checkpoint"])
    assert summary["final_step"] == 3 and summary["checkpoint"].endswith("model.ckpt-3")
    frozen = [n for n in _model_names(final) if not n.startswith("MobilenetV1/Logits")]
    assert any(n.endswith("moving_mean") for n in frozen) and any(n.endswith("moving_variance") for n in frozen)
    for name in frozen:
        np.testing.assert_array_equal(final[name], pretrained[name], err_msg=name)
    moved = [n for n in pretrained if n.endswith("moving_mean")]
    assert any(np.abs(pretrained[n]).max() > 0 for n in moved), "the source run should have moved BN statistics"
    classifier = [n for n in _model_names(final) if n.startswith("MobilenetV1/Logits")]
    assert classifier and all(not np.array_equal(final[n], initial[n]) for n in classifier)
    assert not any(n.endswith("/Momentum") and not n.startswith("MobilenetV1/Logits") for n in final)

    run_config = json.loads((tmp_path / "run_config.json").read_text())
    assert run_config["net"] == NET and run_config["num_classes"] == 2 and run_config["image_size"] == 32
    assert run_config["labels"] == ["plus", "x"] and run_config["preprocessing"] == "inception"
    assert (tmp_path / "labels.txt").read_text().split() == ["plus", "x"]
    report = json.loads((tmp_path / "restore_report.json").read_text())
    assert report["options"]["exclude_scopes"] == ["MobilenetV1/Logits"]  # 2 classes here, 1001 in the source
    assert sorted(e["variable"] for e in report["skipped"]) == sorted(classifier)
    assert len(report["restored"]) == len(_model_names(final)) - len(classifier)
    saved = json.loads((tmp_path / "run_summary.json").read_text())
    # the final validation is written where `finetune eval --train-dir` writes too, and agrees with its counts
    metrics = json.loads((tmp_path / "eval_validation" / "metrics.json").read_text())
    confusion = np.array(metrics["confusion_matrix"])
    assert saved["steps"] == 3 and saved["validation_accuracy"] == metrics["top1"]
    assert metrics["top1"] == pytest.approx(np.trace(confusion) / confusion.sum()) and confusion.sum() == 4


def _kilo_class_dataset(root, images) -> str:
    """A TFRecord dataset with 1000 classes in labels.txt and the given PNG files as examples of classes 0, 1, ..."""
    root.mkdir()
    (root / "labels.txt").write_text("".join(f"{i}:class_{i}\n" for i in range(1000)))
    with tf.io.TFRecordWriter(str(root / "kilo_train.tfrecord")) as writer:
        for label, path in enumerate(images):
            feature = {"image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[path.read_bytes()])),
                       "image/format": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"png"])),
                       "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label]))}
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    return str(root)


@pytest.mark.slow
def test_background_class_drop_restores_a_1001_class_classifier_into_1000_classes(datasets, pretrained, tmp_path):
    assert nets_factory.get_spec(NET).num_classes == 1001
    ckpt = pretrained
    dataset = _kilo_class_dataset(tmp_path / "kilo", sorted((datasets[1] / "train" / "plus").glob("*.png"))[:4])
    # the classifier is frozen (only the last conv layer trains), so model.ckpt-1 holds it as restored
    train.train(RunConfig(dataset=dataset, train_dir=str(tmp_path / "run"), ckpt=ckpt, background_class="drop",
                          trainable="Conv2d_13_pointwise", max_steps=1, skip_eval=True, **SMALL), verbose=False)

    pretrained, initial = _values(ckpt), _values(str(tmp_path / "run" / "model.ckpt-1"))
    classifier = [n for n in _model_names(initial) if n.startswith("MobilenetV1/Logits")]
    assert sorted(classifier) == ["MobilenetV1/Logits/Conv2d_1c_1x1/biases", "MobilenetV1/Logits/Conv2d_1c_1x1/weights"]
    for name in classifier:
        assert pretrained[name].shape[-1] == 1001 and initial[name].shape[-1] == 1000
        np.testing.assert_array_equal(initial[name], pretrained[name][..., 1:], err_msg=name)  # rows 1..1000
        assert not np.array_equal(initial[name], pretrained[name][..., :1000])
    report = json.loads((tmp_path / "run" / "restore_report.json").read_text())
    assert report["options"]["background_class"] == "drop" and not report["skipped"]
    assert {e["variable"]: e.get("transform") for e in report["restored"] if e["variable"] in classifier} == \
        dict.fromkeys(classifier, "drop background row")


def test_frozen_scopes_build_batch_norm_in_inference_mode(graph):
    spec = nets_factory.get_spec(NET)
    images = tf.zeros([2, 32, 32, 3])
    scopes = train_graph.trainable_scopes(spec, ("Conv2d_13_pointwise", "logits"))
    assert scopes == ("Conv2d_13_pointwise", *spec.classifier_scopes)
    train_graph.build_logits(spec, images, 5, scopes, weight_decay=0.0, train_bn_stats=False)
    modes = {op.name.split("/BatchNorm")[0].split("/")[-1]: op.get_attr("is_training")
             for op in graph.get_operations() if op.type.startswith("FusedBatchNorm")}
    assert len(modes) == 27 and modes["Conv2d_13_pointwise"] is True
    assert [layer for layer, training in modes.items() if training] == ["Conv2d_13_pointwise"]
    updates = {op.name.split("/BatchNorm")[0].split("/")[-1] for op in tf.get_collection(tf.GraphKeys.UPDATE_OPS)}
    assert updates == {"Conv2d_13_pointwise"}


def test_train_bn_stats_lets_frozen_batch_norm_train(graph):
    spec = nets_factory.get_spec(NET)
    train_graph.build_logits(spec, tf.zeros([2, 32, 32, 3]), 5, spec.classifier_scopes, weight_decay=0.0,
                       train_bn_stats=True)
    modes = [op.get_attr("is_training") for op in graph.get_operations() if op.type.startswith("FusedBatchNorm")]
    assert modes and all(modes)


def test_applied_gradient_global_norm_never_exceeds_clip(datasets, tmp_path):
    clip, lr = 0.05, 0.5
    train.train(RunConfig(dataset=str(datasets[0]), train_dir=str(tmp_path), trainable="all", optimizer="sgd",
                          lr_schedule="fixed", learning_rate=lr, clip_grad_norm=clip, max_steps=4,
                          save_interval_steps=1, keep_checkpoints=10, skip_eval=True,
                          **{**SMALL, "save_interval_secs": None}), verbose=False)
    steps = [_values(str(tmp_path / f"model.ckpt-{i}")) for i in range(1, 5)]  # no step-0 copy of the init
    with tf.Graph().as_default():
        trainable = {v.op.name for v in _trainable_variables(3)}
    for before, after in zip(steps, steps[1:]):
        applied = np.sqrt(sum(np.sum((after[n] - before[n]) ** 2) for n in trainable)) / lr
        # clipping was active (from-scratch gradients are far larger) and bounds the update
        assert applied == pytest.approx(clip, rel=1e-3)


def _trainable_variables(num_classes: int) -> list:
    spec = nets_factory.get_spec(NET)
    train_graph.build_logits(spec, tf.zeros([1, 32, 32, 3]), num_classes, (spec.scope,), weight_decay=0.0,
                       train_bn_stats=False)
    return tf.trainable_variables()


@pytest.mark.slow
def test_rerun_resumes_step_count_and_refuses_another_nets_dir(datasets, tmp_path, capsys):
    config = RunConfig(dataset=str(datasets[0]), train_dir=str(tmp_path), trainable="all", max_steps=2,
                       skip_eval=True, **SMALL)
    first = train.train(config, verbose=False)
    second = train.train(config.replace(max_steps=4), verbose=True)
    assert (first["start_step"], first["final_step"]) == (0, 2)
    assert (second["start_step"], second["final_step"], second["steps"]) == (2, 4, 2)
    assert "Resuming from" in capsys.readouterr().out
    # a finished run asked again (or for fewer steps) trains nothing: its checkpoint stays at step 4
    third = train.train(config.replace(max_steps=3), verbose=True)
    assert third == second  # nothing to train: the finished run's summary is kept as it was, and returned
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("model.ckpt-4")
    assert "nothing to train" in capsys.readouterr().out
    # the same dir with another class count: refused before anything runs or is written
    with pytest.raises(ValueError, match="different net or class count"):
        train.train(config.replace(dataset=str(datasets[1])), verbose=False)
    assert json.loads((tmp_path / "run_config.json").read_text())["num_classes"] == 3


def test_bad_images_are_named_once_each_and_their_decoder_messages_kept_off_stderr(datasets, tmp_path, capfd):
    import io
    import shutil

    from PIL import Image

    from finetune.data import records

    dataset = tmp_path / "data"
    shutil.copytree(datasets[1], dataset)
    jpeg = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), np.uint8)).save(jpeg, "JPEG")
    (dataset / "train" / "plus" / "broken.png").write_bytes(b"this is not a png")
    (dataset / "train" / "x" / "cut.jpg").write_bytes(jpeg.getvalue()[:-100])
    (dataset / "train" / "x" / "empty.jpg").write_bytes(b"")
    with tf.Graph().as_default(), tf.Session() as session:  # TensorFlow's decoder does complain on stderr
        with pytest.raises(tf.errors.InvalidArgumentError):
            session.run(records.decode_image(tf.constant(jpeg.getvalue()[:-100])))
    assert "Premature end of JPEG" in capfd.readouterr().err
    # 15 files (12 good), 4 per step: 10 steps read each bad file three times or more
    summary = train.train(RunConfig(dataset=str(dataset), train_dir=str(tmp_path / "run"), max_steps=10,
                                    skip_eval=True, **SMALL), verbose=True)
    assert summary["final_step"] == 10
    expected = [{"image": "train/plus/broken.png", "reason": "not an image file"},
                {"image": "train/x/cut.jpg", "reason": "truncated JPEG"},
                {"image": "train/x/empty.jpg", "reason": "empty file"}]
    assert summary["skipped_images"] == expected
    assert json.loads((tmp_path / "run" / "run_summary.json").read_text())["skipped_images"] == expected
    out, err = capfd.readouterr()
    assert ("3 images skipped: train/plus/broken.png (not an image file), train/x/cut.jpg (truncated JPEG), "
            "train/x/empty.jpg (empty file)") in out
    assert "10/10" in err and "Premature end of JPEG" not in err and "jpeg_mem.cc" not in err


@pytest.mark.slow
def test_deterministic_runs_of_one_command_give_bit_identical_checkpoints(datasets, source_ckpt, tmp_path):
    # The same start (a restored checkpoint), so only the seed's randomness can tell runs apart: data order,
    # augmentation, dropout. Once here, once through the CLI in a fresh process, then with another seed.
    flags = {"dataset": str(datasets[1]), "ckpt": source_ckpt, "trainable": "all", "max_steps": 4, "skip_eval": True,
             "deterministic": True, **SMALL}
    first = train.train(RunConfig(train_dir=str(tmp_path / "first"), **flags), verbose=False)["checkpoint"]
    command = [sys.executable, "-m", "finetune.cli", "--train-dir", str(tmp_path / "again"), "--deterministic"]
    command += [arg for key, value in flags.items() if key != "deterministic"
                for arg in ([f"--{key.replace('_', '-')}"] + ([] if value is True else [str(value)]))]
    subprocess.run(command, check=True, capture_output=True, timeout=600)
    other = train.train(RunConfig(train_dir=str(tmp_path / "other"), seed=1, **flags), verbose=False)["checkpoint"]
    first, again, other = _values(first), _values(str(tmp_path / "again" / "model.ckpt-4")), _values(other)
    assert first.keys() == again.keys() == other.keys() and len(first) > 200
    differing = [name for name in first if not np.array_equal(first[name], again[name])]
    assert differing == []
    trained = [n for n in _model_names(first) if n.endswith("weights")]
    assert trained and all(not np.array_equal(first[n], other[n]) for n in trained)


@pytest.mark.slow
def test_nan_loss_stops_without_saving_it(datasets, tmp_path):
    config = RunConfig(dataset=str(datasets[0]), train_dir=str(tmp_path), trainable="all", optimizer="sgd",
                       lr_schedule="fixed", learning_rate=0.01, max_steps=1, skip_eval=True, **SMALL)
    train.train(config, verbose=False)  # a good model.ckpt-1, then a resume that diverges
    with pytest.raises(hooks.NonFiniteLossError, match="last good checkpoint is .*model.ckpt-1"):
        train.train(config.replace(learning_rate=1e38, max_steps=6), verbose=False)
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("model.ckpt-1")
    assert all(np.isfinite(v).all() for v in _values(str(tmp_path / "model.ckpt-1")).values())


class _InterruptAt(tf.train.SessionRunHook):
    def __init__(self, step: int):
        self._step, self._count = step, 0

    def after_run(self, run_context, run_values):
        self._count += 1
        if self._count == self._step:
            raise KeyboardInterrupt


def test_ctrl_c_saves_a_checkpoint_and_returns(datasets, tmp_path):
    summary = train.train(RunConfig(dataset=str(datasets[1]), train_dir=str(tmp_path), max_steps=50, **SMALL),
                          hooks=[_InterruptAt(2)], verbose=False)
    assert summary["stopped"] == "interrupted"
    assert summary["checkpoint"].endswith("model.ckpt-2")
    assert json.loads((tmp_path / "run_summary.json").read_text())["final_step"] == 2


@pytest.mark.slow
def test_two_towers_train_the_same_variables(datasets, tmp_path):
    summary = train.train(RunConfig(dataset=str(datasets[0]), train_dir=str(tmp_path), trainable="all", max_steps=2,
                                    num_devices=2, skip_eval=True, **SMALL), verbose=False)
    values = _values(summary["checkpoint"])
    assert summary["final_step"] == 2 and not any(n.startswith("tower_") for n in values)
    assert "MobilenetV1/Conv2d_0/weights" in values


def test_unknown_trainable_scope_is_a_short_error(graph):
    variables = [tf.Variable(0.0, name=f"Net/Block_{i}/w") for i in range(30)]
    assert select_trainable_names(variables, ["Block_3"]) == ["Net/Block_3/w"]
    with pytest.raises(ValueError, match=r"'Nope' matches no variable .*Net/Block_0.* and 26 more") as error:
        train_graph.select_trainable(variables, ["Nope"], "Net")
    assert len(str(error.value)) < 300 and "\n" not in str(error.value)


def select_trainable_names(variables, scopes):
    return [v.op.name for v in train_graph.select_trainable(variables, scopes, "Net")]


def test_a_one_class_dataset_is_refused_before_anything_is_written(tmp_path):
    data_dir = synthetic.write_shapes_dataset(tmp_path / "one", ["circle"], train_per_class=3, validation_per_class=1,
                                              image_size=32, seed=0)
    with pytest.raises(ValueError, match=r"has one class \(circle\): a classifier needs at least two") as error:
        train.train(RunConfig(dataset=str(data_dir), train_dir=str(tmp_path / "run"), max_steps=1, **SMALL),
                    verbose=False)
    assert "\n" not in str(error.value) and not (tmp_path / "run").exists()
