"""finetune.bench.core's input-pipeline and start-up figures on tiny inputs: every figure is there, its images per
second follow from its time, and every time lies within the wall time of the call that measured it."""

import time

import pytest

from finetune.bench import core as bench


def test_input_pipeline_reads_jpeg_folder_and_tfrecords():
    began = time.perf_counter()
    result = bench.bench_input("inception", image_size=32, batch_size=4, num_images=8, source_size=48, batches=2,
                               rounds=1)
    wall = time.perf_counter() - began
    for source in ("jpeg_folder", "tfrecords"):
        seconds = result[source]["median_ms"] / 1000
        assert result[source]["runs"] == 1 and 0 < seconds < wall
        assert result[source]["images_per_second"] == pytest.approx(2 * 4 / seconds)  # 2 batches of 4


@pytest.mark.slow
def test_train_reports_start_to_first_step_and_peak_memory():
    began = time.perf_counter()
    result = bench.bench_train("mobilenet_v1_025", image_size=32, batch_size=2, steps=1, num_classes=3,
                               input_pipeline=False)
    wall = time.perf_counter() - began
    start = result["start_to_first_step"]
    parts = ("build_graph_s", "plan_restore_s", "init_s", "restore_s", "first_step_s")
    assert abs(start["total_s"] - sum(start[p] for p in parts)) < 1e-6 and 0 < start["total_s"] < wall
    assert start["init_and_restore_s"] == pytest.approx(start["init_s"] + start["restore_s"])
    step_seconds = result["step"]["median_ms"] / 1000
    assert 0 < step_seconds < wall and result["images_per_second"] == pytest.approx(2 / step_seconds)
    assert result["peak_memory_mib"] > 100
    init = result["init_in_fresh_session"]
    assert all(0 < init[which]["median_ms"] / 1000 < wall for which in ("all", "not_restored"))


def test_random_checkpoint_has_random_batch_norm_statistics_and_a_global_step_when_asked(tmp_path):
    from nets.compat import tf

    reader = tf.train.load_checkpoint(bench.random_checkpoint("mobilenet_v1_025", 3, 32, tmp_path, global_step=True))
    shapes = reader.get_variable_to_shape_map()
    assert "global_step" in shapes
    values = {kind: [reader.get_tensor(k) for k in shapes if k.endswith(f"/{kind}")]
              for kind in ("moving_mean", "moving_variance", "beta", "gamma")}
    assert all(len(v) == 27 for v in values.values())  # 13 depthwise + 14 pointwise BatchNorms
    assert all((v != 0).all() for v in values["moving_mean"] + values["beta"])
    assert all(((v >= 0.5) & (v <= 1.5) & (v != 1)).all() for v in values["moving_variance"])
    assert all(((v >= 0.8) & (v <= 1.2) & (v != 1)).all() for v in values["gamma"])


@pytest.mark.slow
def test_eval_against_tf_slim_gives_the_same_accuracy_on_the_same_checkpoint_and_images():
    from finetune.bench import peers as bench_peers

    began = time.perf_counter()
    result = bench_peers.bench_eval("mobilenet_v1_025", image_size=32, batch_size=4, images_per_class=3,
                                    source_size=48, rounds=1)
    wall = time.perf_counter() - began
    rows = {row["framework"]: row for row in result["rows"]}
    assert set(rows) == {"finetune", "tf-slim"} and result["images"] == 12
    assert rows["finetune"]["accuracy"] == rows["tf-slim"]["accuracy"]
    assert rows["finetune"]["recall_4"] == rows["tf-slim"]["recall_4"]
    for row in rows.values():  # 12 images in one timed round
        seconds = row["median_ms"] / 1000
        assert 0 < seconds < wall and row["images_per_second"] == pytest.approx(12 / seconds)


@pytest.mark.slow  # three graphs and sessions
def test_precision_times_each_contender_against_float32():
    began = time.perf_counter()
    result = bench.bench_precision("mobilenet_v1_025", image_size=32, batch_size=2, steps=1, num_classes=3)
    wall = time.perf_counter() - began
    rows = {r["precision"]: r for r in result["rows"]}
    assert list(rows) == list(bench.PRECISION_CONTENDERS)
    assert rows["float32"]["speedup"] == 1.0
    assert all(0 < r["median_ms"] / 1000 < wall and r["runs"] == 1 for r in rows.values())
    assert all(r["speedup"] == pytest.approx(rows["float32"]["median_ms"] / r["median_ms"]) for r in rows.values())


def test_bench_cache_reads_finetunes_numbers_through_run_dir(tmp_path):
    """bench cache's finetune runs are read back through RunDir.summary (the one owner of run_summary.json)."""
    from finetune.bench import e2e as bench_e2e
    from finetune.runs.run_dir import RunDir

    RunDir(tmp_path).write_summary({"steps": 12, "validation_accuracy": 0.75, "seconds": 3.5, "final_step": 12})
    command = ["python", "-m", "finetune.cli", "--train-dir", str(tmp_path), "--epochs", "1"]
    assert bench_e2e._finetune_result(command) == {"steps": 12, "validation_accuracy": 0.75, "train_seconds": 3.5}
    with pytest.raises(RuntimeError, match="holds no run summary"):
        bench_e2e._finetune_result(["--train-dir", str(tmp_path / "never_ran")])


def test_bench_peers_default_contenders_are_the_peers_modules():
    import argparse

    from finetune.bench import peers as bench_peers
    from finetune.commands import bench as bench_command

    parser = argparse.ArgumentParser()
    bench_command.add_arguments(parser)
    assert tuple(parser.parse_args(["peers"]).frameworks.split(",")) == bench_peers.FRAMEWORKS
