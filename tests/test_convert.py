"""`finetune convert`: image folders into TF-Slim TFRecords that read back the same."""

import io
from collections import Counter
from pathlib import Path

import numpy as np
from helpers.images import colour_folder as _colour_folder
from helpers.images import expected_colour as _expected_colour
from helpers.images import read as _read
from helpers.images import save as _save
from PIL import Image

from finetune import cli
from finetune.data import records, scan, tfrecords
from nets.compat import tf


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
