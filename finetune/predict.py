"""Classify image files with an exported model (a frozen .pb or a SavedModel directory from `finetune export`).

The model does its own preprocessing, so images only need decoding: for a float-input model each
image becomes RGB pixel values resized (bilinear) to the input's height and width; a jpeg-input
model gets the file's encoded bytes (other formats re-encoded as PNG). Images go through in batches;
one that is missing or does not decode is reported by name and the others still run.

Class names come from the labels.txt export wrote beside the .pb (or in the SavedModel's
assets.extra/); without it, classes are shown by index.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from finetune import export
from finetune.run_dir import LABELS_FILE, read_labels
from nets.compat import tf

_TF_DECODABLE = ("JPEG", "PNG", "GIF", "BMP")


class ExportedModel:
    """An exported graph loaded in its own session: `probabilities(inputs)` for a batch."""

    def __init__(self, path: str | Path):
        path = Path(path)
        self.path = path
        self.graph = tf.Graph()
        self.session = tf.Session(graph=self.graph)
        with self.graph.as_default():
            if path.is_dir():
                self._input, self._output = self._load_saved_model(path)
                labels_dir = path / export.SAVED_MODEL_EXTRA
            else:
                tf.import_graph_def(export.load_graph_def(path), name="")
                self._input = self.graph.get_tensor_by_name(f"{export.INPUT}:0")
                self._output = self.graph.get_tensor_by_name("probabilities:0")
                labels_dir = path.parent
        self.input_type = "jpeg" if self._input.dtype == tf.string else "float"
        self.image_size = tuple(self._input.shape.as_list()[1:3]) if self.input_type == "float" else None
        num_classes = self._output.shape.as_list()[-1]
        labels_path = labels_dir / LABELS_FILE
        self.labels = read_labels(labels_path) if labels_path.is_file() else [str(i) for i in range(num_classes)]
        if len(self.labels) != num_classes:
            raise ValueError(f"{labels_path} has {len(self.labels)} names for a {num_classes}-class model: "
                             "use the labels.txt written with this model.")

    def _load_saved_model(self, path: Path) -> tuple[tf.Tensor, tf.Tensor]:
        if not (path / "saved_model.pb").is_file():
            raise FileNotFoundError(f"{path} is not a SavedModel (no saved_model.pb): give a .pb or a SavedModel dir.")
        meta_graph = tf.saved_model.loader.load(self.session, [tf.saved_model.tag_constants.SERVING], str(path))
        signature = meta_graph.signature_def[export.SIGNATURE]
        return (self.graph.get_tensor_by_name(signature.inputs[export.INPUT].name),
                self.graph.get_tensor_by_name(signature.outputs["probabilities"].name))

    def probabilities(self, inputs: np.ndarray) -> np.ndarray:
        return self.session.run(self._output, {self._input: inputs})

    def close(self) -> None:
        self.session.close()


def load_model(path: str | Path) -> ExportedModel:
    if not Path(path).exists():
        raise FileNotFoundError(f"model {path} not found: give the .pb or SavedModel dir `finetune export` wrote.")
    return ExportedModel(path)


def read_image(path: str | Path, model: ExportedModel) -> np.ndarray | bytes:
    """One model input from an image file; ValueError naming the file if it is missing or does not decode."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            if model.input_type == "jpeg":
                return _encoded(Path(path), image)
            rgb = image.convert("RGB")
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"{path}: not a readable image ({error})") from None
    height, width = model.image_size
    if rgb.size != (width, height):
        rgb = rgb.resize((width, height), Image.BILINEAR)
    return np.asarray(rgb, np.float32)


def _encoded(path: Path, image) -> bytes:
    """The file's bytes when TensorFlow decodes its format, else the image re-encoded as PNG."""
    if image.format in _TF_DECODABLE:
        return path.read_bytes()
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def predict(model: ExportedModel, images: Sequence[str], *, top_k: int = 5, batch_size: int = 32) -> list[dict]:
    """Per image, in order: {"image", "predictions": [{"label", "class", "probability"}, ...]} or {"image", "error"}."""
    if top_k < 1 or batch_size < 1:
        raise ValueError(f"top-k and batch size must be at least 1, got {top_k} and {batch_size}.")
    results: list[dict] = []
    readable: list[tuple[int, np.ndarray | bytes]] = []
    for path in images:
        try:
            readable.append((len(results), read_image(path, model)))
            results.append({"image": str(path)})
        except ValueError as error:
            results.append({"image": str(path), "error": str(error)})
    k = min(top_k, len(model.labels))
    for start in range(0, len(readable), batch_size):
        batch = readable[start:start + batch_size]
        inputs = [item for _, item in batch]
        inputs = np.array(inputs, dtype=object) if model.input_type == "jpeg" else np.stack(inputs)
        for (index, _), row in zip(batch, model.probabilities(inputs)):
            best = np.argsort(-row, kind="stable")[:k]
            results[index]["predictions"] = [
                {"label": model.labels[c], "class": int(c), "probability": float(row[c])} for c in best
            ]
    return results


def format_table(results: list[dict]) -> str:
    """A table of image, rank, label and probability; unreadable images show their error."""
    from tabulate import tabulate

    rows = []
    for result in results:
        if "error" in result:
            rows.append((result["image"], "-", f"error: {result['error']}", ""))
            continue
        for rank, entry in enumerate(result["predictions"], 1):
            rows.append((result["image"] if rank == 1 else "", rank, entry["label"], f"{entry['probability']:.4f}"))
    return tabulate(rows, headers=["image", "#", "label", "probability"])


def format_json(results: list[dict]) -> str:
    return json.dumps(results, indent=2)
