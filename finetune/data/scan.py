"""Scan and check a dataset directory into a `DatasetInfo` (finetune.data.records), before any training.

Two layouts are read (``scan_dataset`` tells them apart and checks them before any training):

- an image folder: ``DIR/<class>/*.jpg|png|bmp|gif``, or ``DIR/train/<class>/...`` with an optional
  ``DIR/validation/<class>/...``. Without a validation folder a seeded, per-class split keeps
  ``validation_fraction`` of each class's images for validation. Class names are sorted; a class's
  label is its index, as TF-Slim's converters and Keras number them.
- TFRecords in TF-Slim's format (``image/encoded``, ``image/format``, ``image/class/label``) with
  ``labels.txt`` of ``label:name`` lines. File names tell the splits apart as TF-Slim names them
  (``flowers_train_00000-of-00005.tfrecord``, ``..._validation_...``); if no file name says
  ``train`` or ``validation`` every file is training data (otherwise files naming neither, such as
  ``_test_`` shards, are not read). ``scan_dataset`` reads every record's
  label once (counting examples too), so a label outside the class range stops the run before the
  first step, naming the file.

``scan_dataset`` also decodes each split's first readable image, so a split of which none decodes fails
here, in words. finetune.data.pipeline reads a `DatasetInfo` with tf.data; finetune.data.tfrecords
(``finetune convert``) writes an image folder as such TFRecords.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nets.compat import tf

# isort: split
import tensorflow as tf2  # after nets.compat, which sets TensorFlow's log level

from finetune.choices import SPLITS
from finetune.data import records
from finetune.data.records import DatasetInfo

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
DATASET_LABELS_FILE = "labels.txt"  # TF-Slim's `label:name` lines beside a TFRecord dataset
_SCAN_BATCH = 256
_TFRECORD_NAME = re.compile(r"\.tfrecords?(-|$)|-\d+-of-\d+$")
_SPLIT_WORDS = {"train": "train", "validation": "validation", "val": "validation"}


def scan_dataset(dataset_dir: str, validation_fraction: float = 0.1, seed: int = 0) -> DatasetInfo:
    """Check the dataset directory and describe it; one-line ValueError/FileNotFoundError if unusable."""
    root = Path(dataset_dir)
    if not root.exists():
        raise FileNotFoundError(
            f"Dataset directory {dataset_dir} does not exist: give an image folder (one sub-folder per class) "
            "or a folder of TFRecords with labels.txt."
        )
    if not root.is_dir():
        raise ValueError(f"Dataset {dataset_dir} is not a directory: give a folder of class sub-folders or of TFRecords.")
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation fraction must be in [0, 1), got {validation_fraction}.")
    info = _scan_tfrecords(root) if tfrecord_files(root) else _scan_folder(root, validation_fraction, seed)
    _check_decodes(info)
    return info


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_in(folder: Path) -> list[str]:
    return sorted(
        str(p)
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() and not p.name.startswith(".")
    )


def _class_images(folder: Path, class_names: Sequence[str] | None = None) -> dict[str, list[str]]:
    """{class: sorted image paths} of a folder of class sub-folders; checks every class has images."""
    found = {d.name: _images_in(d) for d in _subdirs(folder)}
    if not found:
        raise ValueError(
            f"{folder} has no class sub-folders: put each class's images in {folder}/<class name>/ "
            f"({', '.join(IMAGE_EXTENSIONS)})."
        )
    empty = [name for name, images in found.items() if not images]
    if empty and class_names is None:
        raise ValueError(
            f"Class folder {folder / empty[0]} has no images ({', '.join(IMAGE_EXTENSIONS)}): add images or remove it."
        )
    if class_names is not None:
        unknown = sorted(set(found) - set(class_names))
        if unknown:
            raise ValueError(f"{folder / unknown[0]} is not a class of the training split: rename or remove it.")
    return found


def _seeded_split(images: dict[str, list[str]], fraction: float, seed: int) -> tuple[dict, dict]:
    """Per class, a seeded random `fraction` of images for validation (at least one image left to train)."""
    rng = np.random.default_rng(seed)
    train, validation = {}, {}
    for name in sorted(images):
        paths = images[name]
        order = rng.permutation(len(paths))
        n_val = min(round(len(paths) * fraction), len(paths) - 1)
        validation[name] = sorted(paths[i] for i in order[:n_val])
        train[name] = sorted(paths[i] for i in order[n_val:])
    return train, validation


def _scan_folder(root: Path, validation_fraction: float, seed: int) -> DatasetInfo:
    if (root / "train").is_dir():
        train = _class_images(root / "train")
        class_names = sorted(train)
        if (root / "validation").is_dir():
            validation = _class_images(root / "validation", class_names)
        else:
            train, validation = _seeded_split(train, validation_fraction, seed)
    else:
        train, validation = _seeded_split(_class_images(root), validation_fraction, seed)
        class_names = sorted(train)
    sources, labels = {}, {}
    for split, images in (("train", train), ("validation", validation)):
        sources[split] = [p for name in class_names for p in images.get(name, [])]
        labels[split] = [i for i, name in enumerate(class_names) for _ in images.get(name, [])]
    return DatasetInfo(
        root=str(root),
        format="folder",
        class_names=class_names,
        num_examples={split: len(sources[split]) for split in SPLITS},
        sources=sources,
        labels=labels,
    )


def tfrecord_files(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_file() and _TFRECORD_NAME.search(p.name))


def _split_of(file_name: str) -> str | None:
    for word in re.split(r"[^a-z]+", file_name.lower()):
        if word in _SPLIT_WORDS:
            return _SPLIT_WORDS[word]
    return None


def read_labels_file(path: Path) -> list[str]:
    """Class names in label order from a TF-Slim labels.txt (`label:name` lines, labels 0..N-1)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: TFRecord datasets need a labels.txt of `label:name` lines.")
    names: dict[int, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        label, sep, name = line.partition(":")
        if not sep or not label.strip().isdigit() or not name.strip():
            raise ValueError(f"{path} line {number} is {line!r}, not `label:name`: fix labels.txt.")
        if int(label) in names:
            raise ValueError(f"{path} line {number}: label {int(label)} appears twice: fix labels.txt.")
        names[int(label)] = name.strip()
    if sorted(names) != list(range(len(names))) or not names:
        raise ValueError(f"{path} must number its classes 0..N-1 without gaps, found labels {sorted(names)}.")
    return [names[i] for i in range(len(names))]


class _RecordScanner:
    """Counts TFRecord shards' records, checking each has an image and a label in [0, num_classes).

    One private graph and session for all shards; parses only the label and the image's length.
    """

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self._graph = tf.Graph()
        with self._graph.as_default():
            self._shard = tf.placeholder(tf.string, [])
            batches = tf2.data.TFRecordDataset(self._shard).batch(_SCAN_BATCH)
            self._iterator = tf.data.make_initializable_iterator(batches)
            keys = ("image/encoded", "image/class/label")
            features = tf.io.parse_example(self._iterator.get_next(), {k: records.FEATURES[k] for k in keys})
            self._scan = (features["image/class/label"], tf.strings.length(features["image/encoded"]))
        self._session = tf.Session(graph=self._graph)

    def count(self, shard: Path) -> int:
        self._session.run(self._iterator.initializer, {self._shard: str(shard)})
        count = 0
        while True:
            try:
                labels, lengths = self._session.run(self._scan)
            except tf.errors.OutOfRangeError:
                return count
            except tf.errors.DataLossError:
                raise ValueError(
                    f"{shard} is truncated or not a TFRecord file: rewrite it (`finetune convert`)."
                ) from None
            except tf.errors.InvalidArgumentError as error:
                raise ValueError(
                    f"{shard} holds records TF-Slim's format does not read: {error.message.splitlines()[0]}"
                ) from None
            self._check(shard, count, labels, lengths)
            count += len(labels)

    def _check(self, shard: Path, first: int, labels: np.ndarray, lengths: np.ndarray) -> None:
        missing = np.flatnonzero((lengths == 0) | (labels == -1))
        if missing.size:
            raise ValueError(
                f"{shard}: record {first + missing[0]} lacks image/encoded or image/class/label: "
                "write it with `finetune convert`."
            )
        outside = np.flatnonzero((labels < 0) | (labels >= self.num_classes))
        if outside.size:
            raise ValueError(
                f"{shard}: record {first + outside[0]} has label {labels[outside[0]]}, "
                f"outside [0, {self.num_classes}) of {DATASET_LABELS_FILE}: fix the record or {DATASET_LABELS_FILE}."
            )

    def close(self) -> None:
        self._session.close()


def _scan_tfrecords(root: Path) -> DatasetInfo:
    class_names = read_labels_file(root / DATASET_LABELS_FILE)
    files = tfrecord_files(root)
    by_split = {split: [f for f in files if _split_of(f.name) == split] for split in SPLITS}
    if not any(by_split.values()):
        by_split["train"] = files
    scanner = _RecordScanner(len(class_names))
    try:
        counts = {split: sum(scanner.count(f) for f in shards) for split, shards in by_split.items()}
    finally:
        scanner.close()
    if counts["train"] == 0:
        raise ValueError(f"{root} has no training records: its TFRecord files are empty.")
    return DatasetInfo(
        root=str(root),
        format="tfrecord",
        class_names=class_names,
        num_examples=counts,
        sources={split: [str(f) for f in shards] for split, shards in by_split.items()},
    )


def _check_decodes(info: DatasetInfo) -> None:
    """Decode each split's records in order until one succeeds (usually the first).

    A split without one readable image fails here, in words, instead of as a training pipeline
    that skips records forever without yielding a batch.
    """
    load = records.loader(info)
    splits = [split for split in SPLITS if info.num_examples[split]]
    with tf.Graph().as_default() as graph:
        firsts = {}
        for split in splits:
            shapes = records.read_records(info, split, False, 0).map(lambda *record: tf.shape(load(*record)[0]))
            firsts[split] = tf.data.make_one_shot_iterator(shapes.ignore_errors().take(1)).get_next()
    with tf.Session(graph=graph) as session:
        for split in splits:
            try:
                session.run(firsts[split])
            except tf.errors.OutOfRangeError:
                raise ValueError(
                    f"No {split} image of {info.root} decodes (first file: {info.sources[split][0]}): "
                    f"give images TensorFlow reads ({', '.join(IMAGE_EXTENSIONS)})."
                ) from None
