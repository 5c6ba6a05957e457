"""finetune bench cache's and peers' moving parts on a tiny net: the BatchNorm-calibrated checkpoint, TF-Slim's
classifier-only loop (what it trains, what it keeps, its validation accuracy), the JPEG-fed peers contender."""

import time

import numpy as np
import pytest
from helpers.runs import QUICK_NET as NET
from helpers.runs import checkpoint_values as _values

from finetune.bench import core as bench
from finetune.bench import e2e as bench_e2e
from finetune.bench import peers as bench_peers
from finetune.data import pipeline, scan, synthetic
from finetune.runs.trained_model import TrainedModel
from finetune.serve import evaluate
from nets import nets_factory
from nets.compat import tf


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    return str(synthetic.write_shapes_dataset(root / "images", ["circle", "stripes_h"], train_per_class=8,
                                              validation_per_class=2, image_size=40, seed=0, image_format="jpeg"))


@pytest.mark.slow
def test_calibrated_checkpoint_normalizes_the_first_layer_on_its_images(folder, tmp_path):
    checkpoint = bench_e2e.calibrated_checkpoint(NET, 1001, 32, folder, tmp_path, images=16)
    values = _values(checkpoint)
    spec = nets_factory.get_spec(NET)
    info = scan.scan_dataset(folder, 0.0)
    with tf.Graph().as_default():  # the net in inference mode, from the checkpoint, over the same 16 images
        iterator = pipeline.make_iterator(pipeline.build_dataset(info, "train", batch_size=16, image_size=32,
                                                         preprocessing=spec.preprocessing, is_training=False))
        images, _ = iterator.get_next()
        _, end_points = nets_factory.get_network_fn(NET, 1001)(images)
        first = end_points["Conv2d_0"]  # conv + BatchNorm (beta 0, gamma absent) + ReLU6
        pre_relu = first.op.inputs[0] if first.op.type == "Relu6" else first
        with tf.Session() as session:
            session.run(iterator.initializer)
            tf.train.Saver().restore(session, checkpoint)
            normalized = session.run(pre_relu)
    assert not np.allclose(values["MobilenetV1/Conv2d_0/BatchNorm/moving_variance"], 1.0)
    np.testing.assert_allclose(normalized.mean(axis=(0, 1, 2)), 0.0, atol=1e-3)
    variance = values["MobilenetV1/Conv2d_0/BatchNorm/moving_variance"]
    np.testing.assert_allclose(normalized.var(axis=(0, 1, 2)), variance / (variance + 0.001), rtol=0.01)  # epsilon


@pytest.mark.slow
def test_slim_loop_trains_the_classifier_only_and_reports_accuracy(folder, tmp_path):
    source = bench.random_checkpoint(NET, 1001, 32, tmp_path)
    result = bench_e2e.slim_loop(folder, source, NET, image_size=32, batch_size=4, epochs=1,
                                 logdir=str(tmp_path / "slim"))
    assert result["steps"] == 4
    # the accuracy of the saved classifier on the 4 validation images, as finetune's own evaluation computes it
    final = tf.train.latest_checkpoint(str(tmp_path / "slim"))
    info = scan.scan_dataset(folder, 0.0)
    model = TrainedModel.from_checkpoint(final, NET, 2, image_size=32, class_names=info.class_names)
    metrics = evaluate.evaluate(model, info, split="validation", batch_size=4, progress=False)
    assert metrics["num_examples"] == 4 and result["validation_accuracy"] == metrics["top1"]
    trained, before = _values(final), _values(source)
    assert trained["global_step"] == 4
    classifier = [n for n in trained if n.startswith("MobilenetV1/Logits/") and "Momentum" not in n]
    assert classifier and all(trained[n].shape[-1] == 2 for n in classifier)
    for name, value in trained.items():
        if name.startswith("MobilenetV1/") and name not in classifier and "Momentum" not in name and "moving" not in name:
            np.testing.assert_array_equal(value, before[name], err_msg=name)  # frozen (but BatchNorm statistics)


def test_peers_feeds_finetune_from_a_jpeg_folder():
    began = time.perf_counter()
    result = bench_peers.bench_peers(NET, image_size=32, batch_size=2, steps=1, warmup=1,
                                     frameworks=("finetune", "finetune-jpeg"), modes=("logits",))
    wall = time.perf_counter() - began
    rows = {r["framework"]: r for r in result["rows"]}
    assert set(rows) == {"finetune", "finetune-jpeg"}
    for row in rows.values():  # one timed step of a batch of 2, within the call
        seconds = row["median_step_ms"] / 1000
        assert 0 < seconds < wall and row["images_per_second"] == pytest.approx(2 / seconds)
    with pytest.raises(ValueError, match="unknown contender"):
        bench_peers.bench_peers(NET, image_size=32, frameworks=("finetune", "pytorch"))
