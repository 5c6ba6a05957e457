"""Datasets: describing folders and TFRecords, the tf.data pipeline, corrupt images, `finetune convert`."""

import contextlib
import io
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from finetune import cli
from finetune.data import forensics, pipeline, preprocessing, records, scan, tfrecords
from nets.compat import tf

COLOURS = {"blue": (0, 0, 255), "green": (0, 255, 0), "red": (255, 0, 0)}  # sorted: labels 0, 1, 2


def _save(path: Path, colour=(255, 0, 0), size=(20, 16), mode="RGB", fmt=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", size, colour)
    image.convert(mode).save(path, fmt)
    return path


def _colour_folder(root: Path, per_class: int = 4, layout: str = "flat") -> Path:
    """Solid-colour images, one class per colour, so a pixel tells its class."""
    for name, colour in COLOURS.items():
        for i in range(per_class):
            if layout == "flat":
                _save(root / name / f"{i}.png", colour)
            else:
                split = "validation" if i == 0 else "train"
                _save(root / split / name / f"{i}.png", colour)
    return root


def _read(info, split, *, is_training=False, style="inception", size=16, epochs=1, seed=0, batch_size=4, **kwargs):
    """Run `build_dataset` (extra kwargs passed on) to the end in a new graph: (images, labels, skipped count)."""
    with tf.Graph().as_default():
        dataset = pipeline.build_dataset(
            info,
            split,
            batch_size=batch_size,
            image_size=size,
            preprocessing=style,
            is_training=is_training,
            num_epochs=epochs,
            seed=seed,
            **kwargs,
        )
        images, labels = pipeline.make_iterator(dataset).get_next()
        skipped = pipeline.skipped_images(split)
        with tf.Session() as session:
            session.run([tf.local_variables_initializer(), tf.tables_initializer()])
            batches = []
            while True:
                try:
                    batches.append(session.run([images, labels]))
                except tf.errors.OutOfRangeError:
                    break
            count = session.run(skipped)
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches]), int(count)


def _expected_colour(labels: np.ndarray) -> np.ndarray:
    """Inception-style [-1, 1] values of each label's colour."""
    rgb = np.array([COLOURS[name] for name in sorted(COLOURS)], np.float32)
    return (rgb[labels] / 255.0 - 0.5) * 2.0


def _write_tfrecord(path: Path, examples) -> None:
    with tf.io.TFRecordWriter(str(path)) as writer:
        for encoded, label in examples:
            feature = {
                "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[encoded])),
                "image/format": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"png"])),
                "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
            }
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())


def _png_bytes(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (12, 12), colour).save(buffer, "PNG")
    return buffer.getvalue()


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


def test_corrupt_images_are_skipped_and_counted(tmp_path):
    root = _colour_folder(tmp_path / "d", per_class=2, layout="split")
    (root / "train" / "red" / "zz_text.jpg").write_text("this is not a jpeg")
    truncated = _save(tmp_path / "whole.png", (255, 0, 0), size=(64, 64)).read_bytes()
    (root / "train" / "blue" / "zz_truncated.png").write_bytes(truncated[: len(truncated) // 2])
    (root / "validation" / "red" / "zz_empty.png").write_bytes(b"")  # last in reading order
    info = scan.scan_dataset(str(root))
    assert info.num_examples == {"train": 5, "validation": 4}
    for split, kept in (("train", 3), ("validation", 3)):
        images, labels, skipped = _read(info, split)
        assert (len(labels), skipped) == (kept, info.num_examples[split] - kept)
        np.testing.assert_allclose(images.mean(axis=(1, 2)), _expected_colour(labels), atol=1e-5)
    _, labels, skipped = _read(info, "train", is_training=True, epochs=3)
    assert (len(labels), skipped) == (9, 2)  # two bad files seen three times each: two skipped images


def test_skipped_images_are_named_with_a_reason(tmp_path):
    root = _colour_folder(tmp_path / "d", per_class=2)
    jpeg = io.BytesIO()
    Image.new("RGB", (32, 32), (9, 99, 199)).save(jpeg, "JPEG")
    png = _save(tmp_path / "whole.png", (255, 0, 0), size=(64, 64)).read_bytes()
    bad = {"red/cut.jpg": jpeg.getvalue()[:-40], "red/cut.png": png[: len(png) // 2], "green/text.jpg": b"hello",
           "blue/empty.png": b"", "blue/scrambled.jpg": jpeg.getvalue()[:2] + b"\x00" * 300 + b"\xff\xd9"}
    for name, content in bad.items():
        (root / name).write_bytes(content)
    info = scan.scan_dataset(str(root), validation_fraction=0.0)
    with tf.Graph().as_default():
        dataset = pipeline.build_dataset(info, "train", batch_size=4, image_size=8, preprocessing="inception",
                                     is_training=True, num_epochs=3)
        batch = pipeline.make_iterator(dataset).get_next()
        count, names = pipeline.skipped_images("train"), pipeline.skipped_image_names("train")
        with tf.Session() as session:
            session.run(tf.tables_initializer())
            with contextlib.suppress(tf.errors.OutOfRangeError):
                while True:
                    session.run(batch)
            count, names = session.run([count, names])
    skipped = forensics.describe_skipped(info, names)
    assert count == 5 and skipped == [
        {"image": "blue/empty.png", "reason": "empty file"}, {"image": "blue/scrambled.jpg", "reason": "corrupt JPEG"},
        {"image": "green/text.jpg", "reason": "not an image file"}, {"image": "red/cut.jpg", "reason": "truncated JPEG"},
        {"image": "red/cut.png", "reason": "truncated PNG"}]
    assert forensics.format_skipped(skipped, limit=2) == (
        "5 images skipped: blue/empty.png (empty file), blue/scrambled.jpg (corrupt JPEG) and 3 more")


def test_decoder_messages_are_dropped_and_other_lines_kept(capfd):
    import os

    with forensics.decoder_messages_dropped():
        os.write(2, b"E0000 00:00:1796003646.878842    3770 jpeg_mem.cc:331] Premature end of JPEG data.\n")
        os.write(2, b"Corrupt JPEG data: 611 extraneous bytes before marker 0xd9\nsomething else\n")
        os.write(2, b"E0000 00:00:1796003646.878842    3770 session.cc:1] a real error\n")
    err = capfd.readouterr().err
    assert "JPEG" not in err and "something else\n" in err and "a real error" in err
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"


def test_corrupt_tfrecord_images_are_skipped_and_counted(tmp_path):
    examples = [(_png_bytes(COLOURS["green"]), 1), (b"garbage", 0), (_png_bytes(COLOURS["red"]), 2), (b"\x89PNG", 0)]
    _write_tfrecord(tmp_path / "x_validation_00000-of-00001.tfrecord", examples)
    _write_tfrecord(tmp_path / "x_train_00000-of-00001.tfrecord", examples[:1])
    (tmp_path / "labels.txt").write_text("0:blue\n1:green\n2:red\n")
    info = scan.scan_dataset(str(tmp_path))
    images, labels, skipped = _read(info, "validation")
    assert list(labels) == [1, 2] and skipped == 2
    np.testing.assert_allclose(images.mean(axis=(1, 2)), _expected_colour(labels), atol=1e-5)


def test_a_split_without_one_decodable_image_fails_early(tmp_path):
    root = tmp_path / "d"
    _save(root / "train" / "a" / "0.png")
    (root / "validation" / "a").mkdir(parents=True)
    (root / "validation" / "a" / "0.jpg").write_text("not a jpeg")
    (root / "validation" / "a" / "1.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"No validation image of .* decodes \(first file: .*0.jpg\)"):
        scan.scan_dataset(str(root))
    _save(root / "validation" / "a" / "2.png")  # one readable image is enough
    assert scan.scan_dataset(str(root)).num_examples == {"train": 1, "validation": 3}


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


# --- convert ---------------------------------------------------------------------------------------


def test_convert_writes_tfrecords_that_read_back_the_same(tmp_path):
    root = _colour_folder(tmp_path / "photos", per_class=5)
    (root / "red" / "broken.jpg").write_text("not an image")
    split = scan.scan_dataset(str(root), validation_fraction=0.2, seed=3)
    result = tfrecords.convert_to_tfrecords(str(root), str(tmp_path / "out"), shards=2, validation_fraction=0.2, seed=3)
    assert result.skipped == [str(root / "red" / "broken.jpg")]
    expected = {s: sum(not p.endswith("broken.jpg") for p in split.sources[s]) for s in ("train", "validation")}
    assert result.num_examples == expected and sum(expected.values()) == 15
    names = sorted(Path(f).name for f in result.files)
    assert names == [
        "photos_train_00000-of-00002.tfrecord",
        "photos_train_00001-of-00002.tfrecord",
        "photos_validation_00000-of-00002.tfrecord",
        "photos_validation_00001-of-00002.tfrecord",
    ]
    assert (tmp_path / "out" / "labels.txt").read_text() == "0:blue\n1:green\n2:red\n"

    # Every record holds a source image's exact bytes with its folder's label.
    sources = Counter((p.read_bytes(), split.class_names.index(p.parent.name)) for p in root.glob("*/*.png"))
    with tf.Graph().as_default():
        files = tf.data.Dataset.list_files(str(tmp_path / "out" / "*.tfrecord"), shuffle=False)
        parsed = files.interleave(tf.data.TFRecordDataset).map(lambda r: tf.io.parse_single_example(r, records.FEATURES))
        element = tf.data.make_one_shot_iterator(parsed).get_next()
        seen = []
        with tf.Session() as session:
            while True:
                try:
                    example = session.run(element)
                except tf.errors.OutOfRangeError:
                    break
                assert example["image/format"] == b"png"
                seen.append((example["image/encoded"], example["image/class/label"]))
    assert Counter(seen) == sources and len(seen) == 15

    info = scan.scan_dataset(str(tmp_path / "out"))
    assert (info.format, info.class_names, info.num_examples) == (
        "tfrecord",
        ["blue", "green", "red"],
        result.num_examples,
    )
    for name in ("train", "validation"):
        images, labels, skipped = _read(info, name)
        assert sorted(labels) == sorted(
            label for p, label in zip(split.sources[name], split.labels[name]) if not p.endswith("broken.jpg")
        )
        assert skipped == 0
        np.testing.assert_allclose(images.mean(axis=(1, 2)), _expected_colour(labels), atol=1e-5)


def test_convert_stores_bmp_and_gif_as_png(tmp_path):
    root = tmp_path / "photos"
    _save(root / "a" / "0.bmp", (0, 255, 0))
    _save(root / "b" / "0.gif", (0, 0, 255), mode="P")
    _save(root / "c" / "0.jpg", (255, 0, 0), fmt="JPEG")
    tfrecords.convert_to_tfrecords(str(root), str(tmp_path / "out"), shards=1, validation_fraction=0.0)
    (shard,) = (tmp_path / "out").glob("*.tfrecord")
    with tf.Graph().as_default():
        parsed = tf.data.TFRecordDataset(str(shard)).map(lambda r: tf.io.parse_single_example(r, records.FEATURES))
        element = tf.data.make_one_shot_iterator(parsed).get_next()
        with tf.Session() as session:
            examples = sorted((session.run(element) for _ in range(3)), key=lambda e: e["image/class/label"])
    assert [e["image/format"] for e in examples] == [b"png", b"png", b"jpeg"]
    assert examples[2]["image/encoded"] == (root / "c" / "0.jpg").read_bytes()
    decoded = [np.asarray(Image.open(io.BytesIO(e["image/encoded"])).convert("RGB")) for e in examples[:2]]
    np.testing.assert_array_equal(decoded[0][0, 0], (0, 255, 0))
    np.testing.assert_array_equal(decoded[1][0, 0], (0, 0, 255))


def test_convert_command_and_its_errors(tmp_path, capsys):
    root = _colour_folder(tmp_path / "photos", per_class=2, layout="split")
    out = tmp_path / "out"
    assert cli.main(["convert", "--images", str(root), "--output", str(out), "--shards", "5"]) == 0
    assert "wrote 3 train, 3 validation examples of 3 classes" in capsys.readouterr().out
    assert len(list(out.glob("*_train_*-of-00003.tfrecord"))) == 3  # no more shards than images
    assert cli.main(["convert", "--images", str(root), "--output", str(out)]) == 2
    assert "already holds a TFRecord dataset" in capsys.readouterr().err
    assert cli.main(["convert", "--images", str(tmp_path / "none"), "--output", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("finetune convert: error: Dataset directory") and err.count("\n") == 1


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
