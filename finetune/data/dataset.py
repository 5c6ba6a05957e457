"""Datasets: scan and check a dataset directory, then read it with a tf.data pipeline.

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

``build_dataset`` yields batches of (images float32 [B, H, W, 3], labels int64 [B]). An image that
does not decode (corrupt, truncated, a text file named .jpg, a format TensorFlow cannot read) is
skipped, never a crash, and its name goes into a set in the session: ``skipped_images(split)`` counts
the distinct ones (a bad file met every epoch is one), ``skipped_image_names(split)`` fetches them and
``describe_skipped`` says why each failed ("truncated JPEG"). Iterate the dataset with
``make_iterator(dataset)`` (an initializable iterator; one-shot iterators cannot hold the set), whose
initializer runs with the default Scaffold's local init op (MonitoredTrainingSession, slim's train
loop) or ``tf.tables_initializer()``. Training augments each image with stateless random ops seeded
by (seed, the image's place in the stream), so a seed gives the same batches whichever thread
preprocesses which image.

finetune.data.tfrecords (``finetune convert``) writes an image folder as such TFRecords.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nets.compat import tf

# isort: split
import tensorflow as tf2  # after nets.compat, which sets TensorFlow's log level

from finetune.data import preprocessing as preprocessing_lib

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
SPLITS = ("train", "validation")
DATASET_LABELS_FILE = "labels.txt"  # TF-Slim's `label:name` lines beside a TFRecord dataset
TFRECORD_SHUFFLE_BUFFER = 1024
_SCAN_BATCH = 256
_TFRECORD_NAME = re.compile(r"\.tfrecords?(-|$)|-\d+-of-\d+$")
_SPLIT_WORDS = {"train": "train", "validation": "validation", "val": "validation"}
_SKIPPED_COLLECTION = "finetune_skipped_images"
_FEATURES = {
    "image/encoded": tf.io.FixedLenFeature([], tf.string, default_value=""),
    "image/format": tf.io.FixedLenFeature([], tf.string, default_value="jpeg"),
    "image/class/label": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
}


@dataclass(frozen=True)
class DatasetInfo:
    """A checked dataset: what `build_dataset` reads.

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


# ---------------------------------------------------------------------------------------------
# scan_dataset


def scan_dataset(path: str, validation_fraction: float = 0.1, seed: int = 0) -> DatasetInfo:
    """Check the dataset at `path` and describe it; one-line ValueError/FileNotFoundError if unusable."""
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(
            f"Dataset directory {path} does not exist: give an image folder (one sub-folder per class) "
            "or a folder of TFRecords with labels.txt."
        )
    if not root.is_dir():
        raise ValueError(f"Dataset {path} is not a directory: give a folder of class sub-folders or of TFRecords.")
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation fraction must be in [0, 1), got {validation_fraction}.")
    info = _scan_tfrecords(root) if tfrecord_files(root) else _scan_folder(root, validation_fraction, seed)
    _check_imagesdecode_image(info)
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
            records = tf2.data.TFRecordDataset(self._shard).batch(_SCAN_BATCH)
            self._iterator = tf.data.make_initializable_iterator(records)
            keys = ("image/encoded", "image/class/label")
            features = tf.io.parse_example(self._iterator.get_next(), {k: _FEATURES[k] for k in keys})
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


# ---------------------------------------------------------------------------------------------
# The tf.data pipeline


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
    shard's path and the record's number ('SHARD#N'); `describe_skipped` turns them into words."""
    return _skip_table(split, graph).export()[0]


def make_iterator(dataset: tf2.data.Dataset, device: str | None = None) -> tf.data.Iterator:
    """An initializable iterator whose initializer runs with the default local init op.

    The initializer joins the TABLE_INITIALIZERS collection, which MonitoredTrainingSession's and
    slim's default local init ops run; with a plain session run `iterator.initializer` yourself.
    `device` (see `prefetch_device`): a GPU to copy batches ahead to (tf.data's prefetch_to_device, the
    iterator on that GPU, so a step finds its batch there); None leaves them on the host.
    """
    if device is not None:
        dataset = dataset.apply(tf2.data.experimental.prefetch_to_device(device, buffer_size=1))
    with tf.device(device) if device is not None else contextlib.nullcontext():
        iterator = tf.data.make_initializable_iterator(dataset)
    tf.add_to_collection(tf.GraphKeys.TABLE_INITIALIZERS, iterator.initializer)
    return iterator


def prefetch_device(places: Sequence[str]) -> str | None:
    """Where to prefetch training batches to: the GPU when the step runs on one GPU; None (the host) for CPUs, and
    for several towers, which each take a slice of the batch."""
    if len(places) == 1 and tf.DeviceSpec.from_string(places[0]).device_type == "GPU":
        return places[0]
    return None


def _folder_records(info: DatasetInfo, split: str, is_training: bool, seed: int) -> tf2.data.Dataset:
    """(path, label) pairs, shuffled anew each epoch when training."""
    records = tf2.data.Dataset.from_tensor_slices(
        (tf.constant(info.sources[split]), tf.constant(info.labels[split], dtype=tf.int64))
    )
    if is_training:
        records = records.shuffle(len(info.sources[split]), seed=seed, reshuffle_each_iteration=True)
    return records


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


def decode_image(encoded: tf.Tensor) -> tf.Tensor:
    """uint8 [h, w, 3] from JPEG/PNG/BMP/GIF bytes (grayscale, RGBA and CMYK become RGB)."""
    image = tf2.io.decode_image(encoded, channels=3, expand_animations=False, dtype=tf.uint8)
    image.set_shape([None, None, 3])
    return image


def _loader(info: DatasetInfo):
    """fn(*record) -> (uint8 image, int64 label) for the dataset's format; raises on corrupt data."""
    if info.format == "folder":
        return lambda path, label: (decode_image(tf.io.read_file(path)), label)

    def parse(shard, number, serialized):
        features = tf.io.parse_single_example(serialized, _FEATURES)
        return decode_image(features["image/encoded"]), features["image/class/label"]

    return parse


def _record_name(info: DatasetInfo):
    """fn(*record) -> the string that names the record's image: its path, or 'SHARD#N' (see `describe_skipped`)."""
    if info.format == "folder":
        return lambda path, label: path
    return lambda shard, number, serialized: tf.strings.join([shard, tf.strings.as_string(number)], separator="#")


def _decode_skipping(records: tf2.data.Dataset, info: DatasetInfo, table) -> tf2.data.Dataset:
    """(index in the stream, image, label) of each record that decodes; the names of those that do not go
    into `table` (a set, so a file seen every epoch is named once) and the record is dropped.

    Each record decodes in a one-element dataset of its own whose errors are ignored, followed by a
    fallback element: the first element out says whether it decoded. Indices count every record,
    skipped or not, in stream order (they seed the training augmentation, see `build_dataset`).
    """
    load, name_of = _loader(info), _record_name(info)

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
    decoded = records.enumerate().interleave(decode, num_parallel_calls=tf2.data.AUTOTUNE, deterministic=True)
    return decoded.filter(keep).map(index_image_label)


# ---------------------------------------------------------------------------------------------
# Skipped images: their names, why they do not decode, and the decoders' own messages


def _display_name(info: DatasetInfo, name: str) -> str:
    if info.format == "folder":
        return os.path.relpath(name, info.root)
    shard, _, number = name.rpartition("#")
    return f"{Path(shard).name} record {number}"


def _encoded_bytes(info: DatasetInfo, name: str) -> bytes | str:
    """The image bytes behind a skipped image's name, or why they cannot be read."""
    if info.format == "folder":
        try:
            return Path(name).read_bytes()
        except FileNotFoundError:
            return "missing (removed during the run)"
        except OSError as error:
            return f"unreadable ({error.strerror})"
    shard, _, number = name.rpartition("#")
    try:
        for i, record in enumerate(tf.io.tf_record_iterator(shard)):
            if i == int(number):
                example = tf.train.Example.FromString(record)
                return bytes(example.features.feature["image/encoded"].bytes_list.value[0])
    except Exception as error:  # a damaged shard or record: protobuf's or TensorFlow's error
        return f"unreadable record ({type(error).__name__})"
    return "record missing (shard rewritten during the run)"


def _why_undecodable(encoded: bytes) -> str:
    """A short reason from the bytes' format: empty, truncated (no end marker) or corrupt, or no image format."""
    end = encoded.rstrip(b"\0\r\n ")
    if not encoded:
        return "empty file"
    if encoded.startswith(b"\xff\xd8"):
        return "corrupt JPEG" if end.endswith(b"\xff\xd9") else "truncated JPEG"
    if encoded.startswith(b"\x89PNG\r\n\x1a\n"):
        return "corrupt PNG" if b"IEND" in end[-12:] else "truncated PNG"
    if encoded.startswith((b"GIF87a", b"GIF89a")):
        return "corrupt GIF" if end.endswith(b";") else "truncated GIF"
    if encoded.startswith(b"BM"):
        return "corrupt BMP"
    if encoded.startswith(b"RIFF") and encoded[8:12] == b"WEBP":
        return "corrupt WebP"
    return "not an image file"


def describe_skipped(info: DatasetInfo, names) -> list[dict[str, str]]:
    """[{"image": name relative to the dataset, "reason": ...}] of the names `skipped_image_names` fetched,
    sorted; the reason comes from the bytes (e.g. a JPEG without its end marker is 'truncated JPEG')."""
    described = []
    for name in sorted({n.decode() if isinstance(n, bytes) else str(n) for n in names}):
        encoded = _encoded_bytes(info, name)
        reason = encoded if isinstance(encoded, str) else _why_undecodable(encoded)
        described.append({"image": _display_name(info, name), "reason": reason})
    return described


def format_skipped(skipped: Sequence[dict[str, str]], limit: int = 5) -> str:
    """'3 images skipped: a/001.jpg (truncated JPEG), ...' (the first `limit` named), or '' for none."""
    if not skipped:
        return ""
    named = ", ".join(f"{s['image']} ({s['reason']})" for s in skipped[:limit])
    more = f" and {len(skipped) - limit} more" if len(skipped) > limit else ""
    return f"{len(skipped)} image{'s' if len(skipped) != 1 else ''} skipped: {named}{more}"


# What TensorFlow's image decoders write straight to stderr about a bad image: its own log lines from the
# decoder sources, and libjpeg's / libpng's / giflib's messages, which have no prefix.
_DECODER_MESSAGE = re.compile(
    r"^[EWI]\d{4} [\d:.]+ +\d+ (jpeg|png|gif|bmp|webp|decode_image|image)\w*\.cc:\d+\] "
    r"|^(Corrupt JPEG data|Premature end of JPEG|Invalid JPEG file structure|Invalid SOS parameters|Bogus |"
    r"Improper call to JPEG library|Input file read error|Not a JPEG file|Unsupported marker|Unsupported JPEG|"
    r"Warning: unknown JFIF|Huffman table|Quantization table|Inconsistent progression|Invalid component ID|"
    r"Invalid progressive parameters|Empty input file|libpng (warning|error)|GIF-LIB|"
    r"Application transferred too few scanlines|Unexpected marker|Wrong JPEG library version)"
)


def is_decoder_message(line: str) -> bool:
    return bool(_DECODER_MESSAGE.search(line))


@contextlib.contextmanager
def decoder_messages_dropped() -> Iterator[None]:
    """For the block, TensorFlow's decoder messages (see `is_decoder_message`) are dropped from stderr, and
    every other line written to file descriptor 2 passes through tqdm.write, above any progress bar.

    A bad image's messages ("Premature end of JPEG data", from tf.data's threads) would otherwise break
    the training progress bar; the run names each skipped image once instead (`describe_skipped`).
    Python's own sys.stderr (the bar itself) keeps writing to the terminal directly.
    """
    try:
        terminal = os.dup(2)
    except OSError:  # no stderr at all
        yield
        return
    from tqdm import tqdm

    python_stderr = sys.stderr
    swap = _writes_to_fd2(python_stderr)
    if python_stderr is not None:
        python_stderr.flush()
    stream = python_stderr
    if swap:  # a bar made in the block keeps this stream: it stays usable after the block, until collected
        fd = os.dup(terminal)
        stream = open(fd, "w", buffering=1, errors="backslashreplace", closefd=False)  # noqa: SIM115
        weakref.finalize(stream, os.close, fd)
    read_end, write_end = os.pipe()

    def forward():
        with os.fdopen(read_end, "rb") as pipe:
            for raw in pipe:
                line = raw.decode(errors="replace")
                if not is_decoder_message(line):
                    if stream is None:
                        os.write(terminal, raw)
                    else:
                        tqdm.write(line.rstrip("\n"), file=stream)

    forwarder = threading.Thread(target=forward, name="stderr-forwarder", daemon=True)
    os.dup2(write_end, 2)
    os.close(write_end)
    forwarder.start()
    if swap:
        sys.stderr = stream
    try:
        yield
    finally:
        if swap:
            sys.stderr = python_stderr
            stream.flush()
        os.dup2(terminal, 2)  # closes the pipe's last write end: the forwarder reads to the end and stops
        forwarder.join(timeout=10)
        os.close(terminal)


def _writes_to_fd2(stream) -> bool:
    try:
        return stream is not None and stream.fileno() == 2
    except (AttributeError, OSError, ValueError):  # io.StringIO, pytest's capture objects
        return False


def _check_imagesdecode_image(info: DatasetInfo) -> None:
    """Decode each split's records in order until one succeeds (usually the first).

    A split without one readable image fails here, in words, instead of as a training pipeline
    that skips records forever without yielding a batch.
    """
    read = _folder_records if info.format == "folder" else _tfrecord_records
    load = _loader(info)
    splits = [split for split in SPLITS if info.num_examples[split]]
    with tf.Graph().as_default() as graph:
        firsts = {}
        for split in splits:
            shapes = read(info, split, False, 0).map(lambda *record: tf.shape(load(*record)[0]))
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
    read = _folder_records if info.format == "folder" else _tfrecord_records
    records = read(info, split, is_training, seed)
    if is_training and info.format == "tfrecord":
        records = records.shuffle(TFRECORD_SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
    records = records.repeat(num_epochs)
    images = _decode_skipping(records, info, _skip_table(split))

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
