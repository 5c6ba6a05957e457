"""Classify image files with an exported model (a frozen .pb, a SavedModel directory or a .tflite from
`finetune export`).

The model (`finetune.serve.served.ServedModel`) does its own preprocessing on images of any size (see
finetune.serve.graph), so predict only decodes, and decodes as `finetune eval` does: a float-input
model gets each image's pixels from
`finetune.data.records.decode_image` (TensorFlow's decoder; PIL for formats TensorFlow does not read), at
their own size; a jpeg-input model gets the file's bytes (other formats re-encoded as PNG). So
predict, eval and a plain TensorFlow client give the same probabilities for a file.

Images go through in chunks of `batch_size` files (a float batch holds one size, so a chunk runs
once per size). An image that is missing, does not decode, or whose header says it is larger than
`MAX_PIXELS` (checked before decoding: a 20000x20000 PNG or a decompression bomb is not decoded) is
reported by name and the others still run. A .tflite (`finetune.serve.tflite.TFLiteModel`, the same
interface) takes decoded pixels too, each resized to its fixed input size.

Class names come from the labels.txt that the export's model.json names (beside the .pb, or in the
SavedModel's assets.extra/); without the export's model.json, classes are shown by index: a labels.txt
that merely lies beside the .pb (a TFRecord dataset's `label:name` lines) is never read.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from finetune.serve.served import ServedModel, encode
from finetune.serve.tflite import TFLiteModel
from nets.compat import tf

_TF_DECODABLE = ("JPEG", "PNG", "GIF", "BMP")
# PIL's own decompression-bomb limit (Image.MAX_IMAGE_PIXELS): about 9459 x 9459, 0.27 GB as uint8 pixels.
MAX_PIXELS = 89_478_485


def load_model(path: str | Path) -> ServedModel | TFLiteModel:
    """The exported model at `path` (a .pb, a SavedModel dir, or a .tflite) with its class names (ValueError
    now, not at the first image, when the export's labels.txt does not fit the model)."""
    model = TFLiteModel(path) if Path(path).suffix == ".tflite" else ServedModel(path)
    try:
        _ = model.labels  # read now, so a labels.txt of another model fails here
    except BaseException:
        model.close()
        raise
    return model


def read_image(path: str | Path, model: ServedModel) -> np.ndarray | bytes:
    """One model input from an image file: uint8 pixels [h, w, 3] (float model) or encoded bytes (jpeg model).

    ValueError naming the file if it is missing, does not decode, or is larger than MAX_PIXELS.
    """
    path = Path(path)
    image_format = _checked_format(path)
    if image_format in _TF_DECODABLE:
        encoded = path.read_bytes()
        if model.input_type == "jpeg":
            return encoded
        try:
            return model.decode(encoded)
        except tf.errors.OpError as error:
            raise ValueError(f"{path}: not a readable image ({_first_line(error.message)})") from None
    pixels = _pil_pixels(path)  # a format TensorFlow does not read (TIFF, WebP, ...)
    return pixels if model.input_type == "float" else encode(pixels, "PNG")


def _checked_format(path: Path) -> str:
    """The image's format from its header alone; ValueError if missing, not an image, or too large."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size is checked below
            with Image.open(path) as image:
                image_format, (width, height) = image.format, image.size
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except Image.DecompressionBombError as error:  # PIL's own check, at twice its limit
        raise ValueError(f"{path}: too large to decode ({str(error).rstrip('.')}): give a smaller image") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ValueError(f"{path}: not a readable image ({error})") from None
    if width * height > MAX_PIXELS:
        raise ValueError(f"{path}: {width}x{height} pixels is too large to decode (more than {MAX_PIXELS:,}): "
                         "resize it first") from None
    return image_format


def _pil_pixels(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), np.uint8)
    except (OSError, SyntaxError, ValueError) as error:
        raise ValueError(f"{path}: not a readable image ({error})") from None


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else "TensorFlow could not decode it"


def predict(model: ServedModel, images: Sequence[str], *, top_k: int = 5, batch_size: int = 32) -> list[dict]:
    """Per image, in order: {"image", "predictions": [{"label", "class", "probability"}, ...]} or {"image", "error"}."""
    if top_k < 1 or batch_size < 1:
        raise ValueError(f"top-k and batch size must be at least 1, got {top_k} and {batch_size}.")
    k = min(top_k, len(model.labels))
    results: list[dict] = []
    for start in range(0, len(images), batch_size):
        chunk = [str(path) for path in images[start:start + batch_size]]
        inputs: dict[str, np.ndarray | bytes] = {}
        errors: dict[str, str] = {}
        for path in chunk:
            try:
                inputs[path] = read_image(path, model)
            except ValueError as error:
                errors[path] = str(error)
        outcome = {**errors, **_run(model, inputs)}
        for path in chunk:
            row = outcome[path]
            if isinstance(row, str):
                results.append({"image": path, "error": row})
                continue
            best = np.argsort(-row, kind="stable")[:k]
            results.append({"image": path, "predictions": [
                {"label": model.labels[c], "class": int(c), "probability": float(row[c])} for c in best
            ]})
    return results


def _run(model: ServedModel, inputs: dict[str, np.ndarray | bytes]) -> dict[str, np.ndarray | str]:
    """Each input's probabilities; if the run fails (a jpeg-input graph that cannot decode a file), each
    image again on its own, so the failing one gets its error and the others still run."""
    if not inputs:
        return {}
    try:
        return dict(zip(inputs, model.probabilities(list(inputs.values()))))
    except tf.errors.OpError as error:
        if len(inputs) > 1:
            return {path: row for one in inputs.items() for path, row in _run(model, dict([one])).items()}
        path = next(iter(inputs))
        if isinstance(error, tf.errors.InvalidArgumentError):
            return {path: f"{path}: not a readable image ({_first_line(error.message)})"}
        return {path: f"{path}: the model failed on it ({type(error).__name__}: {_first_line(error.message)})"}


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
    headers = ["image", "#", "label", "probability"]
    return tabulate(fit_to_terminal(rows, headers, column=2), headers=headers)


def fit_to_terminal(rows: list[tuple], headers: list[str], column: int, width: int | None = None,
                    least: int = 20) -> list[tuple]:
    """`rows` with the texts of `column` cut to end in '…' so that tabulate's table (a column as wide as its
    widest text or its header and 2, two spaces between columns) fits `width` characters, the terminal's by
    default (`shutil.get_terminal_size`, which reads $COLUMNS); that column keeps at least `least` characters.
    ImageNet's labels are lists of synonyms."""
    import shutil

    width = shutil.get_terminal_size().columns if width is None else width
    widths = [max([len(header) + 2, *(len(str(row[i])) for row in rows)]) for i, header in enumerate(headers)]
    room = max(width - sum(widths) + widths[column] - 2 * (len(headers) - 1), least)
    return [(*row[:column], _cut(str(row[column]), room), *row[column + 1:]) for row in rows]


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def format_json(results: list[dict]) -> str:
    return json.dumps(results, indent=2)
