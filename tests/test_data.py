"""Datasets: describing folders and TFRecords, and the tf.data pipeline."""

from pathlib import Path

import numpy as np
import pytest
from helpers.images import colour_folder as _colour_folder
from helpers.images import expected_colour as _expected_colour
from helpers.images import png_bytes as _png_bytes
from helpers.images import read as _read
from helpers.images import save as _save
from helpers.images import write_tfrecord as _write_tfrecord
from PIL import Image

from finetune.data import pipeline, preprocessing, scan
from nets.compat import tf

# --- scan_dataset ---------------------------------------------------------------------------


def test_folder_classes_sorted_and_labels_match_folders(tmp_path):
    info = scan.scan_dataset(str(_colour_folder(tmp_path / "d", layout="split")))
    assert info.format == "folder" and info.class_names == ["blue", "green", "red"] and info.num_classes == 3
    assert info.num_examples == {"train": 9, "validation": 3}
    for split in ("train", "validation"):
        for path, label in zip(info.sources[split], info.labels[split]):
            assert Path(path).parent.name == info.class_names[label]
            assert Path(path).parts[-3] == split


def test_seeded_split_is_deterministic_disjoint_and_per_class(tmp_path):
    root = tmp_path / "d"
    for name in ("a", "b"):
        for i in range(10):
            _save(root / name / f"{i}.png")
    first = scan.scan_dataset(str(root), validation_fraction=0.3, seed=5)
    again = scan.scan_dataset(str(root), validation_fraction=0.3, seed=5)
    other = scan.scan_dataset(str(root), validation_fraction=0.3, seed=6)
    assert first.sources == again.sources
    assert first.sources["validation"] != other.sources["validation"]
    train, validation = set(first.sources["train"]), set(first.sources["validation"])
    assert not train & validation and len(train | validation) == 20
    assert first.num_examples == {"train": 14, "validation": 6}
    assert [first.labels["validation"].count(label) for label in (0, 1)] == [3, 3]


def test_missing_dataset_dir_is_a_one_line_error(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        scan.scan_dataset(str(tmp_path / "nowhere"))
    message = str(error.value)
    assert "nowhere" in message and "does not exist" in message and "\n" not in message


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda root: root.mkdir(), "no class sub-folders"),
        (lambda root: (root / "cats").mkdir(parents=True), "cats has no images"),
        (
            lambda root: ((root / "notes").mkdir(parents=True), (root / "notes" / "a.txt").write_text("x")),
            "notes has no images",
        ),
        (
            lambda root: (_save(root / "train" / "a" / "0.png"), _save(root / "validation" / "b" / "0.png")),
            "b is not a class of the training split",
        ),
    ],
)
def test_bad_folders_are_one_line_errors(tmp_path, make, match):
    root = tmp_path / "d"
    make(root)
    with pytest.raises(ValueError, match=match) as error:
        scan.scan_dataset(str(root))
    assert "\n" not in str(error.value)


def test_tfrecords_need_a_good_labels_file(tmp_path):
    _write_tfrecord(tmp_path / "x_train_00000-of-00001.tfrecord", [(_png_bytes((1, 2, 3)), 0)])
    with pytest.raises(FileNotFoundError, match="labels.txt is missing"):
        scan.scan_dataset(str(tmp_path))
    (tmp_path / "labels.txt").write_text("0:a\n2:b\n")
    with pytest.raises(ValueError, match="0..N-1"):
        scan.scan_dataset(str(tmp_path))
    (tmp_path / "labels.txt").write_text("0:a\nb\n")
    with pytest.raises(ValueError, match="line 2"):
        scan.scan_dataset(str(tmp_path))


def test_label_outside_the_classes_stops_before_training_naming_the_file(tmp_path):
    good = tmp_path / "x_train_00000-of-00002.tfrecord"
    bad = tmp_path / "x_train_00001-of-00002.tfrecord"
    _write_tfrecord(good, [(_png_bytes((1, 2, 3)), 1)])
    _write_tfrecord(bad, [(_png_bytes((1, 2, 3)), 0), (_png_bytes((1, 2, 3)), 2)])
    (tmp_path / "labels.txt").write_text("0:cat\n1:dog\n")
    with pytest.raises(ValueError, match=r"x_train_00001-of-00002.tfrecord: record 1 has label 2, outside \[0, 2\)"):
        scan.scan_dataset(str(tmp_path))


def test_tfrecord_splits_follow_tf_slim_file_names(tmp_path):
    _write_tfrecord(tmp_path / "flowers_train_00000-of-00002.tfrecord", [(_png_bytes((1, 2, 3)), 0)] * 3)
    _write_tfrecord(tmp_path / "flowers_train_00001-of-00002.tfrecord", [(_png_bytes((1, 2, 3)), 1)] * 2)
    _write_tfrecord(tmp_path / "flowers_validation_00000-of-00001.tfrecord", [(_png_bytes((1, 2, 3)), 1)])
    (tmp_path / "labels.txt").write_text("0:daisy\n1:rose\n")
    info = scan.scan_dataset(str(tmp_path))
    assert info.format == "tfrecord" and info.class_names == ["daisy", "rose"]
    assert info.num_examples == {"train": 5, "validation": 1}


# --- the pipeline --------------------------------------------------------------------------------


@pytest.mark.parametrize("style, low, high", [("inception", -1.0, 1.0), ("vgg", -124.0, 152.0)])
@pytest.mark.parametrize("is_training", [True, False])
def test_pipeline_shapes_dtypes_ranges(tmp_path, style, low, high, is_training):
    info = scan.scan_dataset(str(_colour_folder(tmp_path / "d", layout="split")))
    images, labels, skipped = _read(info, "train", is_training=is_training, style=style, size=24)
    assert images.shape == (9, 24, 24, 3) and images.dtype == np.float32
    assert labels.dtype == np.int64 and sorted(labels) == sorted(info.labels["train"])
    assert low <= images.min() and images.max() <= high and skipped == 0


def test_eval_labels_match_the_pixels_and_keep_order(tmp_path):
    info = scan.scan_dataset(str(_colour_folder(tmp_path / "d", layout="split")))
    images, labels, _ = _read(info, "validation")
    assert list(labels) == info.labels["validation"] == [0, 1, 2]
    np.testing.assert_allclose(images.mean(axis=(1, 2)), _expected_colour(labels), atol=1e-5)


def test_training_shuffles_by_seed_and_repeats_epochs(tmp_path):
    root = tmp_path / "d"
    for i in range(12):
        _save(root / f"c{i:02d}" / "0.png")
    info = scan.scan_dataset(str(root), validation_fraction=0.0)
    kwargs = {"is_training": True, "epochs": 2, "style": "vgg"}
    _, first, _ = _read(info, "train", seed=1, **kwargs)
    _, again, _ = _read(info, "train", seed=1, **kwargs)
    _, other, _ = _read(info, "train", seed=2, **kwargs)
    assert len(first) == 24 and sorted(first) == sorted(list(range(12)) * 2)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert not np.array_equal(first[:12], first[12:])  # reshuffled each epoch
    assert list(_read(info, "train")[1]) == list(range(12))  # evaluation reads in order


@pytest.mark.parametrize("style", ["inception", "vgg"])
def test_training_augmentation_is_a_function_of_seed_and_place_in_the_stream(tmp_path, style):
    # One textured image per class: each epoch augments it anew; the same seed gives the same pixels in a new
    # pipeline (whatever thread ran each image), another seed other pixels.
    rng = np.random.default_rng(0)
    root = tmp_path / "d"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), np.uint8)).save(root / name / "0.png")
    info = scan.scan_dataset(str(root), validation_fraction=0.0)
    kwargs = {"is_training": True, "epochs": 4, "style": style, "batch_size": 2}
    first, labels, _ = _read(info, "train", seed=3, **kwargs)
    again, labels_again, _ = _read(info, "train", seed=3, **kwargs)
    other, _, _ = _read(info, "train", seed=4, **kwargs)
    np.testing.assert_array_equal(labels, labels_again)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    epochs = first[labels == 0]  # the same image, four epochs
    assert len(epochs) == 4 and all(not np.array_equal(epochs[i], epochs[j]) for i in range(4) for j in range(i))


def test_training_crop_keeps_at_least_crop_min_area(tmp_path):
    # Left half red, right half blue: crop_min_area 1 keeps the whole image; TF-Slim's 5% often one half only.
    image = np.zeros((32, 32, 3), np.uint8)
    image[:, :16, 0] = image[:, 16:, 2] = 255
    root = tmp_path / "d"
    for i in range(8):
        (root / "c").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / "c" / f"{i}.png")
    info = scan.scan_dataset(str(root), validation_fraction=0.0)
    kwargs = {"is_training": True, "size": 32, "color_distortion": False}
    expected = (image / 255.0 - 0.5) * 2.0
    whole, _, _ = _read(info, "train", crop_min_area=1.0, **kwargs)
    for out in whole:  # the whole image, or its mirror
        assert np.allclose(out, expected, atol=1e-5) or np.allclose(out, expected[:, ::-1], atol=1e-5)
    small, _, _ = _read(info, "train", epochs=8, **kwargs)
    assert ((small[..., 0].max(axis=(1, 2)) < 0) | (small[..., 2].max(axis=(1, 2)) < 0)).any()


def test_grayscale_cmyk_bmp_gif_come_out_rgb(tmp_path):
    root = tmp_path / "d"
    _save(root / "a_gray" / "g.png", (90, 90, 90), mode="L")
    _save(root / "b_cmyk" / "c.jpg", (255, 0, 0), mode="CMYK", fmt="JPEG")
    _save(root / "c_bmp" / "b.bmp", (0, 255, 0))
    _save(root / "d_gif" / "g.gif", (0, 0, 255), mode="P")
    _save(root / "e_rgba" / "a.png", (0, 255, 0), mode="RGBA")
    assert Image.open(root / "b_cmyk" / "c.jpg").mode == "CMYK"
    info = scan.scan_dataset(str(root), validation_fraction=0.0)
    images, labels, skipped = _read(info, "train", style="vgg", batch_size=5)
    assert images.shape == (5, 16, 16, 3) and skipped == 0
    rgb = images.mean(axis=(1, 2)) + np.array(preprocessing.VGG_RGB_MEANS)
    expected = [(90, 90, 90), (255, 0, 0), (0, 255, 0), (0, 0, 255), (0, 255, 0)]
    np.testing.assert_allclose(rgb[np.argsort(labels)], expected, atol=4.0)  # JPEG is lossy


def test_build_dataset_rejects_empty_split_and_unknown_style(tmp_path, graph):
    info = scan.scan_dataset(str(_colour_folder(tmp_path / "d", per_class=2)), validation_fraction=0.0)
    kwargs = {"batch_size": 2, "image_size": 8, "is_training": False}
    with pytest.raises(ValueError, match="no validation images"):
        pipeline.build_dataset(info, "validation", preprocessing="inception", **kwargs)
    with pytest.raises(ValueError, match="Unknown preprocessing style"):
        pipeline.build_dataset(info, "train", preprocessing="caffe", **kwargs)


def test_skipped_images_are_one_set_per_split_outside_checkpoints(graph):
    train = pipeline._skip_table("train")
    assert pipeline._skip_table("train") is train and pipeline._skip_table("validation") is not train
    assert not tf.global_variables() and not tf.local_variables()
    assert not tf.get_collection(tf.GraphKeys.SAVEABLE_OBJECTS)


# --- input on a GPU --------------------------------------------------------------------------------


def test_prefetch_device_is_the_one_gpu_only():
    assert pipeline.prefetch_device(["/gpu:0"]) == "/gpu:0"
    assert pipeline.prefetch_device(["/cpu:0"]) is None
    assert pipeline.prefetch_device(["/gpu:0", "/gpu:1"]) is None  # each tower takes a slice on its own GPU
    assert pipeline.prefetch_device(["/cpu:0", "/cpu:1"]) is None


@pytest.mark.parametrize("device", [None, "/gpu:0"])
def test_make_iterator_prefetches_to_a_gpu(device):
    import tensorflow as tf2

    values = np.arange(24, dtype=np.float32).reshape(2, 2, 2, 3)
    with tf.Graph().as_default() as graph:
        dataset = tf2.data.Dataset.from_tensors((values, np.array([1, 2], np.int64))).repeat()
        iterator = pipeline.make_iterator(dataset, device)
        images, labels = iterator.get_next()
        types = {op.type for op in graph.get_operations()}
        if device:  # copy_to_device (a generator dataset) + prefetch, the iterator and its batches on the GPU
            assert {"GeneratorDataset", "WrapDatasetVariant"} <= types
            assert images.op.device == "/device:GPU:0"
            assert iterator._iterator_resource.device == "/device:GPU:0"
        else:
            assert "GeneratorDataset" not in types and images.op.device == ""
        # On this CPU-only machine soft placement runs the GPU ops on the CPU: the batch comes through unchanged.
        with tf.Session(graph=graph, config=tf.ConfigProto(allow_soft_placement=True)) as session:
            session.run(iterator.initializer)
            got_images, got_labels = session.run([images, labels])
    np.testing.assert_array_equal(got_images, values)
    np.testing.assert_array_equal(got_labels, [1, 2])
