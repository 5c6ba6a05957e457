"""finetune.bench's input-pipeline and start-up figures on tiny inputs: every figure is there and positive."""

import pytest

from finetune import bench


def test_input_pipeline_reads_jpeg_folder_and_tfrecords():
    result = bench.bench_input("inception", image_size=32, batch_size=4, num_images=8, source_size=48, batches=2,
                               rounds=1)
    for source in ("jpeg_folder", "tfrecords"):
        assert result[source]["images_per_second"] > 0 and result[source]["runs"] == 1


@pytest.mark.slow
def test_train_reports_start_to_first_step_and_peak_memory():
    result = bench.bench_train("mobilenet_v1_025", image_size=32, batch_size=2, steps=1, num_classes=3,
                               input_pipeline=False)
    start = result["start_to_first_step"]
    parts = ("build_graph_s", "plan_restore_s", "init_s", "restore_s", "first_step_s")
    assert all(start[p] > 0 for p in parts)
    assert abs(start["total_s"] - sum(start[p] for p in parts)) < 1e-6
    assert result["images_per_second"] > 0 and result["peak_memory_mib"] > 100


@pytest.mark.slow  # three graphs and sessions
def test_precision_times_each_contender_against_float32():
    result = bench.bench_precision("mobilenet_v1_025", image_size=32, batch_size=2, steps=1, num_classes=3)
    rows = {r["precision"]: r for r in result["rows"]}
    assert list(rows) == list(bench.PRECISION_CONTENDERS)
    assert rows["float32"]["speedup"] == 1.0
    assert all(r["median_ms"] > 0 and r["runs"] == 1 for r in rows.values())
