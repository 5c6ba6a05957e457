"""Small image datasets the data tests build: solid-colour folders (a pixel tells its class), TFRecords in
TF-Slim's format, and the pipeline run to its end."""

import io
from pathlib import Path

import numpy as np
from PIL import Image

from finetune.data import pipeline
from nets.compat import tf

COLOURS = {"blue": (0, 0, 255), "green": (0, 255, 0), "red": (255, 0, 0)}  # sorted: labels 0, 1, 2


def save(path: Path, colour=(255, 0, 0), size=(20, 16), mode="RGB", fmt=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", size, colour)
    image.convert(mode).save(path, fmt)
    return path


def colour_folder(root: Path, per_class: int = 4, layout: str = "flat") -> Path:
    """Solid-colour images, one class per colour, so a pixel tells its class."""
    for name, colour in COLOURS.items():
        for i in range(per_class):
            if layout == "flat":
                save(root / name / f"{i}.png", colour)
            else:
                split = "validation" if i == 0 else "train"
                save(root / split / name / f"{i}.png", colour)
    return root


def read(info, split, *, is_training=False, style="inception", size=16, epochs=1, seed=0, batch_size=4, **kwargs):
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


def expected_colour(labels: np.ndarray) -> np.ndarray:
    """Inception-style [-1, 1] values of each label's colour."""
    rgb = np.array([COLOURS[name] for name in sorted(COLOURS)], np.float32)
    return (rgb[labels] / 255.0 - 0.5) * 2.0


def write_tfrecord(path: Path, examples) -> None:
    with tf.io.TFRecordWriter(str(path)) as writer:
        for encoded, label in examples:
            feature = {
                "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[encoded])),
                "image/format": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"png"])),
                "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
            }
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())


def png_bytes(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (12, 12), colour).save(buffer, "PNG")
    return buffer.getvalue()
