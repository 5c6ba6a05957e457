"""The tf.data pipeline: a checked dataset (`DatasetInfo`, from finetune.data.scan) as batches of one split.

``build_dataset`` yields batches of (images float32 [B, H, W, 3], labels int64 [B]). An image that
does not decode (corrupt, truncated, a text file named .jpg, a format TensorFlow cannot read) is
skipped, never a crash, and its name goes into a set in the session: ``skipped_images(split)`` counts
the distinct ones (a bad file met every epoch is one), ``skipped_image_names(split)`` fetches them and
finetune.data.forensics says why each failed ("truncated JPEG"). Iterate the batches with
``make_iterator(ds)`` (an initializable iterator; one-shot iterators cannot hold the set), whose
initializer runs with the default Scaffold's local init op (MonitoredTrainingSession, slim's train
loop) or ``tf.tables_initializer()``. Training augments each image with stateless random ops seeded
by (seed, the image's place in the stream), so a seed gives the same batches whichever thread
preprocesses which image.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from nets.compat import tf

# isort: split
import tensorflow as tf2  # after nets.compat, which sets TensorFlow's log level

from finetune.choices import SPLITS
from finetune.data import preprocessing as preprocessing_lib
from finetune.data import records
from finetune.data.records import DatasetInfo

TFRECORD_SHUFFLE_BUFFER = 1024
_SKIPPED_COLLECTION = "finetune_skipped_images"


def _skip_table(split: str, graph: tf.Graph | None = None) -> tf2.lookup.experimental.MutableHashTable:
    """The set (a string -> int64 hash table) of the names of `split`'s undecodable images in `graph`."""
    graph = graph or tf.get_default_graph()
    key = f"{_SKIPPED_COLLECTION}_{split}"
    existing = graph.get_collection(key)
    if existing:
        return existing[0]
    with graph.as_default(), tf.name_scope(None), tf.device("/cpu:0"):
        table = tf2.lookup.experimental.MutableHashTable(tf.string, tf.int64, default_value=0, checkpoint=False,
                                                        name=f"skipped_images_{split}")
    graph.add_to_collection(key, table)
    return table


def skipped_images(split: str, graph: tf.Graph | None = None) -> tf.Tensor:
    """How many distinct images of `split` the pipelines in `graph` skipped as undecodable so far (int64).

    An image is counted once however many epochs see it. The set lives in the session (a hash table
    that needs no initializer, is not saved in checkpoints and outlives iterator re-initializations);
    `skipped_image_names` gives its names.
    """
    return _skip_table(split, graph).size()


def skipped_image_names(split: str, graph: tf.Graph | None = None) -> tf.Tensor:
    """The names (string [N]) of the images `skipped_images` counts: a file's path, or a TFRecord
    shard's path and the record's number ('SHARD#N'); finetune.data.forensics turns them into words."""
    return _skip_table(split, graph).export()[0]


def make_iterator(ds: tf2.data.Dataset, device: str | None = None) -> tf.data.Iterator:
    """An initializable iterator whose initializer runs with the default local init op.

    The initializer joins the TABLE_INITIALIZERS collection, which MonitoredTrainingSession's and
    slim's default local init ops run; with a plain session run `iterator.initializer` yourself.
    `device` (see `prefetch_device`): a GPU to copy batches ahead to (tf.data's prefetch_to_device, the
    iterator on that GPU, so a step finds its batch there); None leaves them on the host.
    """
    if device is not None:
        ds = ds.apply(tf2.data.experimental.prefetch_to_device(device, buffer_size=1))
    with tf.device(device) if device is not None else contextlib.nullcontext():
        iterator = tf.data.make_initializable_iterator(ds)
    tf.add_to_collection(tf.GraphKeys.TABLE_INITIALIZERS, iterator.initializer)
    return iterator


def prefetch_device(places: Sequence[str]) -> str | None:
    """Where to prefetch training batches to: the GPU when the step runs on one GPU; None (the host) for CPUs, and
    for several towers, which each take a slice of the batch."""
    if len(places) == 1 and tf.DeviceSpec.from_string(places[0]).device_type == "GPU":
        return places[0]
    return None


def _decode_skipping(stream: tf2.data.Dataset, info: DatasetInfo, table) -> tf2.data.Dataset:
    """(index in the stream, image, label) of each record that decodes; the names of those that do not go
    into `table` (a set, so a file seen every epoch is named once) and the record is dropped.

    Each record decodes in a one-element dataset of its own whose errors are ignored, followed by a
    fallback element: the first element out says whether it decoded. Indices count every record,
    skipped or not, in stream order (they seed the training augmentation, see `build_dataset`).
    """
    load, name_of = records.loader(info), records.record_name(info)

    def decode(index, record):
        decoded = tf2.data.Dataset.from_tensors(record).map(lambda *r: (True, *load(*r))).ignore_errors()
        failed = tf2.data.Dataset.from_tensors((False, tf.zeros([1, 1, 3], tf.uint8), tf.constant(-1, tf.int64)))
        return decoded.concatenate(failed).take(1).map(
            lambda ok, image, label: (index, ok, name_of(*record), image, label))

    def keep(index, ok, name, image, label):
        def note_skipped():
            with tf.control_dependencies([table.insert(tf.reshape(name, [1]), tf.constant([1], tf.int64))]):
                return tf.constant(False)

        return tf.cond(ok, lambda: tf.constant(True), note_skipped)

    def index_image_label(index, ok, name, image, label):
        return index, image, label

    # Each record's dataset yields one element, so the deterministic interleave keeps the stream's order.
    decoded = stream.enumerate().interleave(decode, num_parallel_calls=tf2.data.AUTOTUNE, deterministic=True)
    return decoded.filter(keep).map(index_image_label)


def build_dataset(
    info: DatasetInfo,
    split: str,
    *,
    batch_size: int,
    image_size: int,
    preprocessing: str,
    is_training: bool,
    num_epochs: int | None = None,
    seed: int = 0,
    drop_remainder: bool = False,
    color_distortion: bool = True,
    crop_min_area: float = preprocessing_lib.CROP_AREA_RANGE[0],
    augment: bool = True,
) -> tf2.data.Dataset:
    """Batches of (images float32 [B, image_size, image_size, 3], labels int64 [B]) of one split.

    Training shuffles (seeded) and augments with the `preprocessing` style's training mode;
    evaluation reads in order with its evaluation mode (`color_distortion` and `crop_min_area`, the
    smallest share of the image a random crop keeps, tune the inception style's training augmentation;
    see finetune.data.preprocessing). `num_epochs=None` repeats forever. Undecodable images are skipped
    and counted in `skipped_images(split)` (see the module docstring: iterate with `make_iterator`).
    `augment=False` shuffles training images but preprocesses them as evaluation does (`--augment none`).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}.")
    if info.num_examples.get(split, 0) == 0:
        raise ValueError(f"Dataset {info.root} has no {split} images: add them (or a validation fraction > 0).")
    if preprocessing not in preprocessing_lib.STYLES:
        raise ValueError(
            f"Unknown preprocessing style {preprocessing!r}: choose one of {', '.join(preprocessing_lib.STYLES)}."
        )
    stream = records.read_records(info, split, is_training, seed)
    if is_training and info.format == "tfrecord":
        stream = stream.shuffle(TFRECORD_SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
    images = _decode_skipping(stream.repeat(num_epochs), info, _skip_table(split))

    def prepare(index, image, label):
        # Training: each image's random crop, flip and colours come from its own stateless seed (the run's
        # seed, its place in the stream), so they do not depend on which thread preprocesses it.
        image_seed = tf.stack([tf.constant(seed, tf.int64), index]) if is_training else None
        image = preprocessing_lib.preprocess_image(
            image, image_size, image_size, is_training and augment, preprocessing, color_distortion=color_distortion,
            crop_min_area=crop_min_area, seed=image_seed,
        )
        return image, label

    images = images.map(prepare, num_parallel_calls=tf2.data.AUTOTUNE, deterministic=True)  # seeded runs keep their order
    return images.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf2.data.AUTOTUNE)
