"""Export a checkpoint as a frozen inference graph (.pb) and, optionally, a SavedModel; verify both.

Serving = evaluation. The exported graph takes an image as a client has it, decoded at its own size
or still encoded, and does the rest itself: the net's evaluation preprocessing
(`finetune.data.preprocessing.preprocess_image`, is_training=False, the function `finetune eval` runs),
the net, the softmax. Nothing is resized outside the graph:

    input          float32 [None, None, None, 3]: decoded RGB images at their own size, pixel values
                   in [0, 255]; a batch holds images of one size (send other sizes in other runs,
                   e.g. batches of one)                                            (input_type 'float')
                   string  [None]: encoded image bytes, each of any size (JPEG; PNG/GIF/BMP too) ('jpeg')
    logits         float32 [None, num_classes]
    probabilities  float32 [None, num_classes]  (softmax of the logits)
    classes        int64   [None]               (argmax)

An image decoded as evaluation decodes it (`finetune.data.records.decode_image`: TensorFlow's decode_image,
3 channels, a GIF's first frame, EXIF orientation not applied) and fed as float, its file's bytes fed
to a jpeg-input graph, and `finetune eval` on the file give the same probabilities.

Freezing uses TensorFlow's own tools: `convert_variables_to_constants` turns the restored variables
into constants, then `optimize_for_inference` strips what only training needs (Identity chains,
unused nodes) and folds each BatchNorm into the convolution before it. Beside the .pb go
`labels.txt` (one class name per line, in label order) and a JSON (model.json for model.pb) of the
input/output names, shapes and preprocessing: the contract above, for a client. A SavedModel gets
the same graph with a `serving_default` signature, and its labels.txt and JSON in `assets.extra/`.
Export refuses to replace files it did not write (a dataset's labels.txt), and an earlier export's
only when asked to (`overwrite`).

Every export is verified: the written graphs are loaded into fresh graphs, as a client loads them,
and fed raw sample images of several sizes and shapes (the net's size, tall, wide, smaller than the
input, several times larger); their outputs are compared with evaluation's pipeline on the same
images (decode, evaluation preprocessing, the checkpoint's net). The check fails above `tolerance`
(1e-4) for the probabilities or for the logits relative to their scale (max |logit|, at least 1).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from finetune.runs.run_dir import LABELS_FILE, write_json, write_labels
from finetune.runs.trained_model import TrainedModel
from nets.compat import tf

INPUT = "input"
OUTPUTS = ("logits", "probabilities", "classes")
INPUT_TYPES = ("float", "jpeg")
TOLERANCE = 1e-4
SIGNATURE = "serving_default"
SAVED_MODEL_EXTRA = "assets.extra"
INFO_SUFFIX = ".json"
EXPORTED_BY = "finetune export"  # model.json's mark: these files are an export's, --overwrite may replace them
_BATCH_NORM_OPS = ("FusedBatchNorm", "FusedBatchNormV3", "BatchNormWithGlobalNormalization")
_VARIABLE_OPS = ("VariableV2", "Variable", "VarHandleOp", "ReadVariableOp", "AssignVariableOp", "Assign")


# ---------------------------------------------------------------------------------------------
# The serving graph


def serving_graph(model: TrainedModel, input_type: str = "float") -> dict[str, tf.Tensor]:
    """Build input -> preprocessing -> net -> outputs in the default graph; return them by name."""
    if input_type not in INPUT_TYPES:
        raise ValueError(f"input type must be one of {', '.join(INPUT_TYPES)}, got {input_type!r}.")
    size = model.image_size
    if input_type == "float":
        inputs = tf.placeholder(tf.float32, [None, None, None, 3], name=INPUT)
    else:
        inputs = tf.placeholder(tf.string, [None], name=INPUT)
    images = tf.map_fn(lambda one: _preprocess(model, one, input_type), inputs,
                       fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32), name="preprocess")
    logits = tf.identity(tf.cast(model.logits(images), tf.float32), name="logits")
    return {
        INPUT: inputs,
        "logits": logits,
        "probabilities": tf.nn.softmax(logits, name="probabilities"),
        "classes": tf.argmax(logits, axis=1, name="classes"),
    }


def _preprocess(model: TrainedModel, one: tf.Tensor, input_type: str) -> tf.Tensor:
    """One raw image (float pixels in [0, 255] of any size, or encoded bytes) -> the net's evaluation input."""
    from finetune.data.preprocessing import pixels_to_unit, preprocess_image
    from finetune.data.records import decode_image

    image = pixels_to_unit(one) if input_type == "float" else decode_image(one)
    return preprocess_image(image, model.image_size, model.image_size, False, model.preprocessing)


def evaluation_outputs(model: TrainedModel, encoded: Sequence[bytes]) -> dict[str, np.ndarray]:
    """Outputs of evaluation's own pipeline on encoded images, one at a time: `finetune.data.records.decode_image`,
    `preprocess_image` in evaluation mode, the checkpoint's net with its variables restored."""
    from finetune.data.preprocessing import preprocess_image
    from finetune.data.records import decode_image

    size = model.image_size
    with tf.Graph().as_default() as graph:
        one = tf.placeholder(tf.string, [])
        image = preprocess_image(decode_image(one), size, size, False, model.preprocessing)
        logits = tf.cast(model.logits(image[None]), tf.float32)
        fetches = {"logits": logits, "probabilities": tf.nn.softmax(logits), "classes": tf.argmax(logits, axis=1)}
        restore = model.restore_op(tf.global_variables())
        with tf.Session(graph=graph) as session:
            session.run(tf.global_variables_initializer())
            session.run(restore)
            rows = [session.run(fetches, {one: item}) for item in encoded]
    return {name: np.concatenate([row[name] for row in rows]) for name in OUTPUTS}


def freeze(session: tf.Session, input_type: str) -> tf.GraphDef:
    """The session's serving graph with variables as constants, training nodes stripped, BatchNorm folded."""
    from tensorflow.python.tools import optimize_for_inference_lib

    frozen = tf.graph_util.convert_variables_to_constants(session, session.graph.as_graph_def(), list(OUTPUTS))
    dtype = tf.float32 if input_type == "float" else tf.string
    optimized = optimize_for_inference_lib.optimize_for_inference(
        frozen, [INPUT], list(OUTPUTS), dtype.as_datatype_enum
    )
    # optimize_for_inference rebuilds the node list without the function library that holds the
    # preprocessing loop's body; put it back.
    optimized.library.CopyFrom(frozen.library)
    return optimized


def op_counts(graph_def: tf.GraphDef, ops: tuple[str, ...]) -> int:
    """How many nodes of `graph_def` (functions included) run one of `ops`."""
    nodes = list(graph_def.node) + [n for f in graph_def.library.function for n in f.node_def]
    return sum(node.op in ops for node in nodes)


# ---------------------------------------------------------------------------------------------
# Loading and running what was written


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


class ServedModel:
    """An exported .pb or SavedModel directory loaded as a client loads it, in its own graph and session."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"model {path} not found: give the .pb or SavedModel dir `finetune export` wrote.")
        self.graph = tf.Graph()
        self.session = tf.Session(graph=self.graph)
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

    def run(self, inputs: np.ndarray) -> dict[str, np.ndarray]:
        """The outputs for one batch: float images of one size [B, h, w, 3], or encoded bytes [B]."""
        return self.session.run(self.outputs, {self.input: inputs})

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
        self.session.close()

    def __enter__(self) -> ServedModel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def sample_images(image_size: int, seed: int = 0) -> list[np.ndarray]:
    """Deterministic uint8 RGB images of the shapes clients send: the net's size (twice, so one run holds
    a batch), tall, wide, smaller than the net's input, several times larger."""
    s = image_size
    shapes = [(s, s), (s, s), (2 * s + 7, s // 2 + 3), (s // 2 + 1, 3 * s - 5), (max(s // 3, 2), max(s // 4, 2)),
              (3 * s + 1, 4 * s)]
    rng = np.random.default_rng(seed)
    images = []
    for height, width in shapes:
        smooth = _upscale(rng.uniform(0, 255, [8, 8, 3]), height, width)
        images.append(np.clip(smooth + rng.normal(0, 8, [height, width, 3]), 0, 255).astype(np.uint8))
    return images


def sample_inputs(input_type: str, image_size: int, count: int = 4, seed: int = 0) -> np.ndarray:
    """A batch of `count` deterministic images at the net's size: float pixels, or the same encoded as JPEG."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, [count, 8, 8, 3])
    noise = rng.normal(0, 8, [count, image_size, image_size, 3])
    pixels = np.stack([_upscale(c, image_size, image_size) for c in coarse]) + noise
    pixels = np.clip(pixels, 0, 255).astype(np.float32)
    if input_type == "float":
        return pixels
    return np.array([encode(p.astype(np.uint8), "JPEG") for p in pixels], dtype=object)


def _upscale(coarse: np.ndarray, height: int, width: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(coarse.astype(np.uint8)).resize((width, height), Image.BILINEAR), np.float32)


def encode(pixels: np.ndarray, image_format: str) -> bytes:
    """uint8 RGB pixels [h, w, 3] as an image file's bytes ('PNG' keeps them exactly; 'JPEG' at quality 90)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=image_format, **({"quality": 90} if image_format == "JPEG" else {}))
    return buffer.getvalue()


def max_differences(reference: dict[str, np.ndarray], exported: dict[str, np.ndarray]) -> dict[str, float]:
    """Largest |difference| of logits (absolute and relative to max(1, max |logit|)) and probabilities."""
    logits = float(np.abs(reference["logits"] - exported["logits"]).max())
    scale = max(1.0, float(np.abs(reference["logits"]).max()))
    return {
        "logits": logits,
        "logits_relative": logits / scale,
        "probabilities": float(np.abs(reference["probabilities"] - exported["probabilities"]).max()),
        "classes_differing": int((reference["classes"] != exported["classes"]).sum()),
    }


def _check(name: str, differences: dict[str, float], tolerance: float) -> None:
    worst = max(differences["logits_relative"], differences["probabilities"])
    if worst > tolerance:
        raise ValueError(
            f"exported {name} differs from the checkpoint graph by {worst:.3g} (> {tolerance:g}): "
            f"logits {differences['logits']:.3g}, probabilities {differences['probabilities']:.3g}; "
            "the export is not faithful, report this graph."
        )


# ---------------------------------------------------------------------------------------------
# Export


@dataclass
class ExportResult:
    """What export wrote and how it verified."""

    graph: str
    labels: str
    info: str
    saved_model: str | None
    size_bytes: int
    nodes: int
    batch_norms_folded: int
    batch_norms_left: int
    max_difference: dict[str, float]
    sample_sizes: list[str]
    saved_model_max_difference: dict[str, float] | None = None


def export(
    model: TrainedModel,
    output: str | Path,
    *,
    input_type: str = "float",
    saved_model_dir: str | Path | None = None,
    tolerance: float = TOLERANCE,
    overwrite: bool = False,
) -> ExportResult:
    """Freeze `model` into `output` (.pb) with labels.txt and OUTPUT.json beside it; optionally a SavedModel.

    Verifies both against evaluation's pipeline on raw sample images of several sizes; ValueError above
    tolerance. ValueError before any work if `output`'s folder holds a labels.txt, OUTPUT.json or
    `output` itself, or `saved_model_dir` is not empty, unless `overwrite` (and, for the SavedModel
    dir, it holds an earlier export).
    """
    if input_type not in INPUT_TYPES:
        raise ValueError(f"input type must be one of {', '.join(INPUT_TYPES)}, got {input_type!r}.")
    output = Path(output)
    saved_model_dir = Path(saved_model_dir) if saved_model_dir else None
    check_destination(output, saved_model_dir, overwrite)
    images = sample_images(model.image_size)
    encoded = [encode(image, "PNG" if input_type == "float" else "JPEG") for image in images]  # PNG: exact pixels
    inputs = images if input_type == "float" else encoded
    reference = evaluation_outputs(model, encoded)
    with tf.Graph().as_default() as graph:
        serving_graph(model, input_type)
        restore = model.restore_op(tf.global_variables())
        with tf.Session(graph=graph) as session:
            session.run(tf.global_variables_initializer())
            session.run(restore)
            batch_norms = op_counts(graph.as_graph_def(), _BATCH_NORM_OPS)
            graph_def = freeze(session, input_type)

    output.parent.mkdir(parents=True, exist_ok=True)
    _write_bytes(output, graph_def.SerializeToString())
    with ServedModel(output) as served:
        differences = max_differences(reference, served.run_images(inputs))
    _check(str(output), differences, tolerance)
    left = op_counts(graph_def, _BATCH_NORM_OPS)
    result = ExportResult(
        graph=str(output),
        labels=str(output.parent / LABELS_FILE),
        info=str(output.with_suffix(INFO_SUFFIX)),
        saved_model=str(saved_model_dir) if saved_model_dir else None,
        size_bytes=output.stat().st_size,
        nodes=len(graph_def.node),
        batch_norms_folded=batch_norms - left,
        batch_norms_left=left,
        max_difference=differences,
        sample_sizes=[f"{image.shape[0]}x{image.shape[1]}" for image in images],
    )
    if saved_model_dir:
        if saved_model_dir.exists():
            shutil.rmtree(saved_model_dir)  # an earlier export's, as check_destination made sure
        write_saved_model(graph_def, saved_model_dir)
        with ServedModel(saved_model_dir) as served:
            result.saved_model_max_difference = max_differences(reference, served.run_images(inputs))
        _check(str(saved_model_dir), result.saved_model_max_difference, tolerance)
    info = model_info(model, input_type, result)
    _write_sidecars(output.parent, output.with_suffix(INFO_SUFFIX), model, info)
    if saved_model_dir:
        extra = saved_model_dir / SAVED_MODEL_EXTRA
        _write_sidecars(extra, extra / f"model{INFO_SUFFIX}", model, info)
    return result


def check_destination(output: Path, saved_model_dir: Path | None, overwrite: bool) -> None:
    """Refuse, in one line, to replace what export did not write, and an earlier export unless `overwrite`.

    Export writes OUTPUT, labels.txt and OUTPUT.json into OUTPUT's folder; a labels.txt there may be a
    dataset's or a train dir's (whose next run reads it), so any of the three already there stops the
    export unless `overwrite`. A non-empty SavedModel dir is replaced only when it holds an earlier
    export (its assets.extra/model.json) and `overwrite`.
    """
    if output.is_dir():
        raise ValueError(f"--output {output} is a directory: give the .pb file to write, e.g. {output / 'model.pb'}.")
    present = [path for path in (output, output.parent / LABELS_FILE, output.with_suffix(INFO_SUFFIX)) if path.exists()]
    if present and not overwrite:
        names = ", ".join(path.name for path in present)
        earlier = [path.name for path in sorted(output.parent.glob(f"*{INFO_SUFFIX}")) if is_export_info(path)]
        if earlier:
            raise ValueError(f"{output.parent} holds an earlier export ({earlier[0]}); this one would replace {names}: "
                             "pass --overwrite to replace it, or give --output in another folder.")
        raise ValueError(f"{output.parent} already holds {names}, which finetune export did not write (a dataset's "
                         "or train dir's labels?): give --output in another folder, or pass --overwrite to replace it.")
    if saved_model_dir is None or not saved_model_dir.exists():
        return
    if not saved_model_dir.is_dir():
        raise ValueError(f"SavedModel directory {saved_model_dir} is a file: give a new directory.")
    if not any(saved_model_dir.iterdir()):
        return
    if not is_export_info(saved_model_dir / SAVED_MODEL_EXTRA / f"model{INFO_SUFFIX}"):
        raise ValueError(f"SavedModel directory {saved_model_dir} is not empty and holds no earlier export: "
                         "remove it or choose another.")
    if not overwrite:
        raise ValueError(f"SavedModel directory {saved_model_dir} holds an earlier export: pass --overwrite to "
                         "replace it, or choose another.")


def is_export_info(path: Path) -> bool:
    """Whether `path` is a model.json that `finetune export` wrote."""
    try:
        info = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and (
        info.get("exported_by") == EXPORTED_BY or {"input", "outputs", "signature", "preprocessing"} <= info.keys()
    )


def _write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` whole: a temporary file beside it, then renamed over it."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def model_info(model: TrainedModel, input_type: str, result: ExportResult) -> dict:
    """The JSON written beside the graph: the serving contract (input/output names, dtypes, shapes,
    preprocessing) and provenance."""
    from finetune.data.preprocessing import describe_evaluation

    size = model.image_size
    if input_type == "float":
        input_info = {"dtype": "float32", "shape": [None, None, None, 3],
                      "values": "decoded RGB images at their own size, not resized, pixel values in [0, 255]; "
                                "one size per batch (send images of other sizes in other runs, e.g. one by one)"}
    else:
        input_info = {"dtype": "string", "shape": [None],
                      "values": "encoded image bytes, each of any size (JPEG; PNG/GIF/BMP too)"}
    classes = model.num_classes
    return {
        "exported_by": EXPORTED_BY,
        "net": model.net,
        "checkpoint": model.checkpoint,
        "global_step": model.global_step,
        "num_classes": classes,
        "image_size": size,
        "labels": LABELS_FILE,
        "input": {"name": f"{INPUT}:0", "type": input_type, **input_info},
        "outputs": {
            "logits": {"name": "logits:0", "dtype": "float32", "shape": [None, classes]},
            "probabilities": {"name": "probabilities:0", "dtype": "float32", "shape": [None, classes]},
            "classes": {"name": "classes:0", "dtype": "int64", "shape": [None]},
        },
        "preprocessing": {
            "style": model.preprocessing,
            "in_graph": True,
            "mode": "evaluation (finetune.data.preprocessing.preprocess_image, is_training=False), as finetune eval",
            "steps": describe_evaluation(model.preprocessing, size, size),
            "decoding": "as finetune eval decodes (tf.io.decode_image, channels=3, a GIF's first frame, "
                        "EXIF orientation not applied); the jpeg input decodes inside the graph",
        },
        "signature": SIGNATURE,
        "verification": {
            "against": "finetune eval's pipeline (decode, evaluation preprocessing, checkpoint) on raw images",
            "sample_sizes": result.sample_sizes,
            "tolerance": TOLERANCE,
            "max_difference": result.max_difference,
            "saved_model_max_difference": result.saved_model_max_difference,
        },
        "batch_norms_folded": result.batch_norms_folded,
        "batch_norms_left": result.batch_norms_left,
    }


def _write_sidecars(directory: Path, info_path: Path, model: TrainedModel, info: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    write_labels(directory / LABELS_FILE, model.class_names)
    write_json(info_path, info)


def write_saved_model(graph_def: tf.GraphDef, directory: Path) -> None:
    """A SavedModel (serve tag) of the frozen graph with a `serving_default` predict signature."""
    with tf.Graph().as_default() as graph:
        tf.import_graph_def(graph_def, name="")
        inputs = {INPUT: graph.get_tensor_by_name(f"{INPUT}:0")}
        outputs = {name: graph.get_tensor_by_name(f"{name}:0") for name in OUTPUTS}
        signature = tf.saved_model.signature_def_utils.predict_signature_def(inputs, outputs)
        with tf.Session(graph=graph) as session:
            builder = tf.saved_model.Builder(str(directory))
            builder.add_meta_graph_and_variables(
                session, [tf.saved_model.tag_constants.SERVING], signature_def_map={SIGNATURE: signature}
            )
            builder.save()
