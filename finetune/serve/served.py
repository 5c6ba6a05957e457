"""An exported model loaded as a client loads it: the one loader of predict, export's verification and the
benchmarks.

`ServedModel(path)` takes a frozen .pb or a SavedModel directory that `finetune export` wrote, imports it
into its own graph and session, and runs it (`run` one batch, `run_images` images of any sizes in order,
`probabilities`). Its class names (`labels`) come only from the export's own files: the model.json
export wrote beside the .pb (`MODEL.json` for `MODEL.pb`; `assets.extra/model.json` in a SavedModel)
names its labels.txt (one name a line). Nothing else is read as class names, so a labels.txt that
happens to lie beside a .pb (a TFRecord dataset's `label:name` lines, a train dir's) is never taken
for the model's; without an export's model.json the classes are named by index ('0', '1', ...).

`decode` is evaluation's decoder (`finetune.data.records.decode_image`, in its own small graph), so a
float-input model gets the pixels `finetune eval` would see.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from finetune.runs.files import LABELS_FILE, read_json, read_labels
from finetune.serve.graph import INPUT, OUTPUTS, SIGNATURE
from nets.compat import tf

SAVED_MODEL_EXTRA = "assets.extra"
INFO_SUFFIX = ".json"
EXPORTED_BY = "finetune export"  # model.json's mark: these files are an export's, --overwrite may replace them


def info_path(model_path: str | Path) -> Path:
    """Where export writes the model.json of the model at `model_path` (a .pb, or a SavedModel dir)."""
    model_path = Path(model_path)
    if model_path.is_dir():
        return model_path / SAVED_MODEL_EXTRA / f"model{INFO_SUFFIX}"
    return model_path.with_suffix(INFO_SUFFIX)


def is_export_info(path: str | Path) -> bool:
    """Whether `path` is a model.json that `finetune export` wrote."""
    try:
        info = read_json(path)
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and (
        info.get("exported_by") == EXPORTED_BY or {"input", "outputs", "signature", "preprocessing"} <= info.keys()
    )


def export_labels_path(model_path: str | Path) -> Path | None:
    """The labels.txt the export's model.json names for the model at `model_path`; None without such a model.json."""
    info = info_path(model_path)
    return info.parent / read_json(info).get("labels", LABELS_FILE) if is_export_info(info) else None


def model_labels(model_path: str | Path, num_classes: int) -> list[str]:
    """The class names of the exported model at `model_path`: the labels.txt the export's model.json names,
    else '0'..'N-1' (see the module docstring); ValueError when that file's count is not the model's."""
    labels_path = export_labels_path(model_path)
    if labels_path is None or not labels_path.is_file():
        return [str(i) for i in range(num_classes)]
    names = read_labels(labels_path)
    if len(names) != num_classes:
        raise ValueError(f"{labels_path} has {len(names)} names for a {num_classes}-class model: "
                         "use the labels.txt written with this model.")
    return names


def load_graph_def(path: str | Path) -> tf.GraphDef:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"frozen graph {path} not found: give the .pb that `finetune export` wrote.")
    graph_def = tf.GraphDef()
    try:
        graph_def.ParseFromString(path.read_bytes())
    except Exception as error:  # protobuf raises its own DecodeError
        raise ValueError(f"{path} is not a frozen TensorFlow graph (.pb): {error}") from error
    return graph_def


def run_graph_def(graph_def: tf.GraphDef, inputs: np.ndarray) -> dict[str, np.ndarray]:
    """Import `graph_def` into a fresh graph and run its outputs on one batch of `inputs`."""
    with tf.Graph().as_default() as graph:
        tf.import_graph_def(graph_def, name="")
        with tf.Session(graph=graph) as session:
            return session.run({name: f"{name}:0" for name in OUTPUTS}, {f"{INPUT}:0": inputs})


def encode(pixels: np.ndarray, image_format: str) -> bytes:
    """uint8 RGB pixels [h, w, 3] as an image file's bytes ('PNG' keeps them exactly; 'JPEG' at quality 90)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=image_format, **({"quality": 90} if image_format == "JPEG" else {}))
    return buffer.getvalue()


class ImageModel:
    """What predict and bench use of a loaded model, whatever runs it: `run_images` (the subclass's),
    `probabilities`, evaluation's decoder, and closing."""

    _decoder: Decoder | None = None

    def run_images(self, images: Sequence) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def probabilities(self, images: Sequence) -> np.ndarray:
        """Probabilities [N, classes] of model inputs in order, whatever their sizes."""
        return self.run_images(images)["probabilities"]

    def decode(self, encoded: bytes) -> np.ndarray:
        """An image file's bytes as evaluation decodes them: uint8 [h, w, 3]."""
        if self._decoder is None:
            self._decoder = Decoder()
        return self._decoder(encoded)

    def close(self) -> None:
        if self._decoder is not None:
            self._decoder.close()
            self._decoder = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ServedModel(ImageModel):
    """An exported .pb or SavedModel directory loaded as a client loads it, in its own graph and session,
    with its class names."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"model {path} not found: give the .pb or SavedModel dir `finetune export` wrote.")
        self.graph = tf.Graph()
        self.session = tf.Session(graph=self.graph)
        self._decoder: Decoder | None = None
        try:
            self._load()
        except BaseException:
            self.session.close()
            raise

    def _load(self) -> None:
        with self.graph.as_default():
            if self.path.is_dir():
                names = self._load_saved_model()
            else:
                tf.import_graph_def(load_graph_def(self.path), name="")
                names = {name: f"{name}:0" for name in (INPUT, *OUTPUTS)}
        self.input = self.graph.get_tensor_by_name(names[INPUT])
        self.outputs = {name: self.graph.get_tensor_by_name(names[name]) for name in OUTPUTS}
        self.input_type = "jpeg" if self.input.dtype == tf.string else "float"
        self.num_classes = self.outputs["probabilities"].shape.as_list()[-1]
        if self.input_type == "float" and any(self.input.shape.as_list()[1:3]):
            raise ValueError(f"{self.path} takes images resized to {self.input.shape.as_list()[1:3]} outside the "
                             "graph (an export of an earlier finetune, whose predictions differ from eval's): "
                             "export it again.")

    def _load_saved_model(self) -> dict[str, str]:
        if not (self.path / "saved_model.pb").is_file():
            raise FileNotFoundError(f"{self.path} is not a SavedModel (no saved_model.pb): give a .pb or a SavedModel dir.")
        meta_graph = tf.saved_model.loader.load(self.session, [tf.saved_model.tag_constants.SERVING], str(self.path))
        signature = meta_graph.signature_def[SIGNATURE]
        return {INPUT: signature.inputs[INPUT].name, **{name: signature.outputs[name].name for name in OUTPUTS}}

    @functools.cached_property
    def labels(self) -> list[str]:
        """The class names (`model_labels`)."""
        return model_labels(self.path, self.num_classes)

    def run(self, inputs: np.ndarray, names: Sequence[str] = OUTPUTS) -> dict[str, np.ndarray]:
        """The outputs `names` for one batch: float images of one size [B, h, w, 3], or encoded bytes [B]."""
        return self.session.run({name: self.outputs[name] for name in names}, {self.input: inputs})

    def run_images(self, images: Sequence) -> dict[str, np.ndarray]:
        """The outputs for images in order: encoded bytes in one run; decoded images ([h, w, 3], any sizes)
        in one run per size, since a float batch holds one size."""
        if self.input_type == "jpeg":
            batch = np.empty(len(images), dtype=object)
            batch[:] = list(images)
            return self.run(batch)
        by_size: dict[tuple[int, ...], list[int]] = {}
        for index, image in enumerate(images):
            by_size.setdefault(np.shape(image), []).append(index)
        rows: list[dict] = [{}] * len(images)
        for indices in by_size.values():
            outputs = self.run(np.stack([np.asarray(images[i], np.float32) for i in indices]))
            for position, index in enumerate(indices):
                rows[index] = {name: value[position] for name, value in outputs.items()}
        return {name: np.stack([row[name] for row in rows]) for name in OUTPUTS}

    def close(self) -> None:
        super().close()
        self.session.close()


class Decoder:
    """Evaluation's decoder (finetune.data.records.decode_image) in its own small graph: bytes -> uint8 [h, w, 3]."""

    def __init__(self):
        from finetune.data.records import decode_image

        self.graph = tf.Graph()
        with self.graph.as_default():
            self._encoded = tf.placeholder(tf.string, [])
            self._image = decode_image(self._encoded)
        self.session = tf.Session(graph=self.graph)

    def __call__(self, encoded: bytes) -> np.ndarray:
        return self.session.run(self._image, {self._encoded: encoded})

    def close(self) -> None:
        self.session.close()
