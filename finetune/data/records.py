"""A checked dataset (`DatasetInfo`) and its records: what each is and how its image decodes.

A folder dataset's record is (path, label); a TFRecord dataset's is (shard path, record number in
the shard, serialized example) with TF-Slim's features (`FEATURES`). `read_records(info, split, ...)`
streams a split's records (shuffled each epoch, seeded, when training), `loader(info)` turns a
record into (uint8 image, int64 label) and raises on an image that does not decode, `record_name(info)`
names a record's image ('PATH' or 'SHARD#N', see finetune.data.forensics). `decode_image` is the one
image decoder of evaluation, training and serving. Imports `nets.compat` (TensorFlow), nothing else of
the project.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nets.compat import tf

# isort: split
import tensorflow as tf2  # after nets.compat, which sets TensorFlow's log level

FEATURES = {
    "image/encoded": tf.io.FixedLenFeature([], tf.string, default_value=""),
    "image/format": tf.io.FixedLenFeature([], tf.string, default_value="jpeg"),
    "image/class/label": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
}


@dataclass(frozen=True)
class DatasetInfo:
    """A checked dataset (finetune.data.scan.scan_dataset makes it): what finetune.data.pipeline reads.

    sources[split]: image paths ('folder') or TFRecord shard paths ('tfrecord');
    labels[split]: the label of each image path ('folder' only).
    """

    root: str
    format: str  # 'folder' | 'tfrecord'
    class_names: list[str]
    num_examples: dict[str, int]
    sources: dict[str, list[str]] = field(repr=False)
    labels: dict[str, list[int]] = field(default_factory=dict, repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _folder_records(info: DatasetInfo, split: str, is_training: bool, seed: int) -> tf2.data.Dataset:
    """(path, label) pairs, shuffled anew each epoch when training."""
    pairs = tf2.data.Dataset.from_tensor_slices(
        (tf.constant(info.sources[split]), tf.constant(info.labels[split], dtype=tf.int64))
    )
    if is_training:
        pairs = pairs.shuffle(len(info.sources[split]), seed=seed, reshuffle_each_iteration=True)
    return pairs


def _tfrecord_records(info: DatasetInfo, split: str, is_training: bool, seed: int) -> tf2.data.Dataset:
    """(shard path, record number in the shard, serialized example); shards read interleaved, in a
    seeded random order each epoch when training."""
    shards = info.sources[split]
    files = tf2.data.Dataset.from_tensor_slices(tf.constant(shards))
    if is_training:
        files = files.shuffle(len(shards), seed=seed, reshuffle_each_iteration=True)

    def numbered_records(shard):
        return tf2.data.TFRecordDataset(shard).enumerate().map(lambda number, record: (shard, number, record))

    return files.interleave(
        numbered_records,
        cycle_length=min(len(shards), 8),
        num_parallel_calls=tf2.data.AUTOTUNE,
        deterministic=True,
    )


def read_records(info: DatasetInfo, split: str, is_training: bool, seed: int) -> tf2.data.Dataset:
    """A split's records in the dataset's format (see the module docstring), shuffled (seeded) when training."""
    read = _folder_records if info.format == "folder" else _tfrecord_records
    return read(info, split, is_training, seed)


def decode_image(encoded: tf.Tensor) -> tf.Tensor:
    """uint8 [h, w, 3] from JPEG/PNG/BMP/GIF bytes (grayscale, RGBA and CMYK become RGB)."""
    image = tf2.io.decode_image(encoded, channels=3, expand_animations=False, dtype=tf.uint8)
    image.set_shape([None, None, 3])
    return image


def loader(info: DatasetInfo):
    """fn(*record) -> (uint8 image, int64 label) for the dataset's format; raises on corrupt data."""
    if info.format == "folder":
        return lambda path, label: (decode_image(tf.io.read_file(path)), label)

    def parse(shard, number, serialized):
        features = tf.io.parse_single_example(serialized, FEATURES)
        return decode_image(features["image/encoded"]), features["image/class/label"]

    return parse


def record_name(info: DatasetInfo):
    """fn(*record) -> the string that names the record's image: its path, or 'SHARD#N' (finetune.data.forensics)."""
    if info.format == "folder":
        return lambda path, label: path
    return lambda shard, number, serialized: tf.strings.join([shard, tf.strings.as_string(number)], separator="#")
