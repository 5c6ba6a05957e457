"""Write an image folder as TF-Slim TFRecords (`finetune convert`), readable by finetune.data.scan and TF-Slim."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from finetune.choices import SPLITS
from finetune.data.records import decode_image
from finetune.data.scan import DATASET_LABELS_FILE, scan_dataset, tfrecord_files
from nets.compat import tf

DEFAULT_SHARDS = 5
_MAGIC = ((b"\xff\xd8\xff", "jpeg"), (b"\x89PNG\r\n\x1a\n", "png"), (b"GIF8", "gif"), (b"BM", "bmp"))
_STORED_FORMATS = ("jpeg", "png")


@dataclass(frozen=True)
class ConvertResult:
    """What `convert_to_tfrecords` wrote: examples per split, the files, the images it skipped."""

    output: str
    class_names: list[str]
    num_examples: dict[str, int]
    files: list[str]
    skipped: list[str]


def _image_format(encoded: bytes) -> str:
    return next((name for magic, name in _MAGIC if encoded.startswith(magic)), "unknown")


def _example(encoded: bytes, label: int, height: int, width: int) -> tf.train.Example:
    def bytes_feature(value: bytes) -> tf.train.Feature:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    def int_feature(value: int) -> tf.train.Feature:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    return tf.train.Example(
        features=tf.train.Features(
            feature={
                "image/encoded": bytes_feature(encoded),
                "image/format": bytes_feature(_image_format(encoded).encode()),
                "image/class/label": int_feature(label),
                "image/height": int_feature(height),
                "image/width": int_feature(width),
            }
        )
    )


class _ImageChecker:
    """Decodes image bytes with the pipeline's own decoder, in a private graph.

    `check(encoded)` returns (bytes to store, height, width), or None if the image does not decode.
    JPEG and PNG are stored as they are; other formats (BMP, GIF) are re-encoded as PNG, since
    TF-Slim's own TFRecord decoder reads only JPEG, PNG and raw pixels.
    """

    def __init__(self):
        self._graph = tf.Graph()
        with self._graph.as_default():
            self._encoded = tf.placeholder(tf.string, [])
            image = decode_image(self._encoded)
            self._shape = tf.shape(image)[:2]
            self._png = tf.io.encode_png(image)
        self._session = tf.Session(graph=self._graph)

    def check(self, encoded: bytes) -> tuple[bytes, int, int] | None:
        keep = _image_format(encoded) in _STORED_FORMATS
        fetches = self._shape if keep else (self._shape, self._png)
        try:
            result = self._session.run(fetches, {self._encoded: encoded})
        except tf.errors.InvalidArgumentError:
            return None
        (height, width), stored = (result, encoded) if keep else result
        return stored, int(height), int(width)

    def close(self) -> None:
        self._session.close()


def _shard_names(name: str, split: str, count: int) -> list[str]:
    return [f"{name}_{split}_{i:05d}-of-{count:05d}.tfrecord" for i in range(count)]


def convert_to_tfrecords(
    images: str,
    output: str,
    *,
    shards: int = DEFAULT_SHARDS,
    validation_fraction: float = 0.1,
    seed: int = 0,
) -> ConvertResult:
    """Write the image folder `images` as TF-Slim TFRecords in `output`, with labels.txt.

    Splits as `scan_dataset` does (train/ and validation/ folders, else a seeded split); each
    split's examples are shuffled (seeded) and written into up to `shards` files named
    `<folder name>_<split>_<i>-of-<n>.tfrecord`. Every image is decoded first with the pipeline's
    decoder; those that fail are skipped and listed. JPEG and PNG files are stored byte for byte,
    BMP and GIF re-encoded as PNG. Refuses an output folder that already holds
    TFRecords or labels.txt.
    """
    if shards < 1:
        raise ValueError(f"--shards must be at least 1, got {shards}.")
    info = scan_dataset(images, validation_fraction, seed)
    if info.format != "folder":
        raise ValueError(f"{images} already holds TFRecords: give an image folder (one sub-folder per class).")
    out = Path(output)
    if out.is_dir() and (tfrecord_files(out) or (out / DATASET_LABELS_FILE).exists()):
        raise FileExistsError(f"{output} already holds a TFRecord dataset: give an empty or new output folder.")
    out.mkdir(parents=True, exist_ok=True)
    name = Path(images).resolve().name
    rng = np.random.default_rng(seed)
    checker = _ImageChecker()
    written, files, skipped = {}, [], []
    try:
        for split in SPLITS:
            examples = list(zip(info.sources[split], info.labels[split]))
            order = rng.permutation(len(examples))
            chunks = np.array_split(order, min(shards, len(examples))) if examples else []
            written[split] = 0
            for shard_name, chunk in zip(_shard_names(name, split, len(chunks)), chunks):
                with tf.io.TFRecordWriter(str(out / shard_name)) as writer:
                    for index in chunk:
                        path, label = examples[index]
                        checked = checker.check(Path(path).read_bytes())
                        if checked is None:
                            skipped.append(path)
                            continue
                        stored, height, width = checked
                        writer.write(_example(stored, label, height, width).SerializeToString())
                        written[split] += 1
                files.append(str(out / shard_name))
    finally:
        checker.close()
    (out / DATASET_LABELS_FILE).write_text("".join(f"{i}:{c}\n" for i, c in enumerate(info.class_names)))
    return ConvertResult(str(out), info.class_names, written, files, skipped)
