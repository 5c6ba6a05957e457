"""Images that do not decode: skipped, counted and named with a reason, in folders and TFRecords."""

import contextlib
import io

import numpy as np
import pytest
from helpers.images import COLOURS
from helpers.images import colour_folder as _colour_folder
from helpers.images import expected_colour as _expected_colour
from helpers.images import png_bytes as _png_bytes
from helpers.images import read as _read
from helpers.images import save as _save
from helpers.images import write_tfrecord as _write_tfrecord
from PIL import Image

from finetune.data import forensics, pipeline, scan
from nets.compat import tf


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


