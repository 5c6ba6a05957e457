"""Export a checkpoint as a frozen inference graph (.pb) and, optionally, a SavedModel; verify both.

The serving graph takes raw images and does the net's evaluation preprocessing itself:

    input          float32 [None, H, W, 3], RGB pixel values in [0, 255]    (input_type 'float')
                   string  [None], encoded image bytes (JPEG; PNG/GIF/BMP decode too)  ('jpeg')
    logits         float32 [None, num_classes]
    probabilities  float32 [None, num_classes]  (softmax of the logits)
    classes        int64   [None]               (argmax)

Freezing uses TensorFlow's own tools: `convert_variables_to_constants` turns the restored variables
into constants, then `optimize_for_inference` strips what only training needs (Identity chains,
unused nodes) and folds each BatchNorm into the convolution before it. Beside the .pb go
`labels.txt` (one class name per line, in label order) and a JSON of the input/output names, shapes
and preprocessing. A SavedModel gets the same graph with a `serving_default` signature, and its
labels.txt and JSON in `assets.extra/`.

Every export is verified: the written graphs are loaded into fresh graphs and run on sample inputs,
and their outputs compared with the checkpoint graph's. The check fails above `tolerance` (1e-4)
for the probabilities or for the logits relative to their scale (max |logit|, at least 1).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nets.compat import tf

# isort: split
import tensorflow as tf2  # after nets.compat, which sets TensorFlow's log level

from finetune.run_dir import LABELS_FILE, write_json, write_labels
from finetune.trained_model import TrainedModel

INPUT = "input"
OUTPUTS = ("logits", "probabilities", "classes")
INPUT_TYPES = ("float", "jpeg")
TOLERANCE = 1e-4
SIGNATURE = "serving_default"
SAVED_MODEL_EXTRA = "assets.extra"
INFO_SUFFIX = ".json"
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
        inputs = tf.placeholder(tf.float32, [None, size, size, 3], name=INPUT)
    else:
        inputs = tf.placeholder(tf.string, [None], name=INPUT)
    images = tf.map_fn(lambda one: _preprocess(model, one, input_type), inputs, fn_output_signature=tf.float32,
                       name="preprocess")
    logits = tf.identity(tf.cast(model.logits(images), tf.float32), name="logits")
    return {
        INPUT: inputs,
        "logits": logits,
        "probabilities": tf.nn.softmax(logits, name="probabilities"),
        "classes": tf.argmax(logits, axis=1, name="classes"),
    }


def _preprocess(model: TrainedModel, one: tf.Tensor, input_type: str) -> tf.Tensor:
    """One raw image (float pixels in [0, 255], or encoded bytes) -> the net's evaluation-mode input."""
    from finetune.preprocessing import preprocess_image

    if input_type == "float":
        image = one / 255.0
    else:
        image = tf2.io.decode_image(one, channels=3, expand_animations=False, dtype=tf.uint8)
        image.set_shape([None, None, 3])
    return preprocess_image(image, model.image_size, model.image_size, False, model.preprocessing)


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
    """Import `graph_def` into a fresh graph and run its outputs on `inputs`."""
    with tf.Graph().as_default() as graph:
        tf.import_graph_def(graph_def, name="")
        with tf.Session(graph=graph) as session:
            return session.run({name: f"{name}:0" for name in OUTPUTS}, {f"{INPUT}:0": inputs})


def run_saved_model(directory: str | Path, inputs: np.ndarray) -> dict[str, np.ndarray]:
    """Load a SavedModel into a fresh graph and run its serving signature on `inputs`."""
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as session:
        meta_graph = tf.saved_model.loader.load(session, [tf.saved_model.tag_constants.SERVING], str(directory))
        signature = meta_graph.signature_def[SIGNATURE]
        fetches = {name: info.name for name, info in signature.outputs.items()}
        return session.run(fetches, {signature.inputs[INPUT].name: inputs})


def sample_inputs(input_type: str, image_size: int, count: int = 4, seed: int = 0) -> np.ndarray:
    """Deterministic sample images for the verification: float pixels, or the same encoded as JPEG."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, [count, 8, 8, 3])
    pixels = np.stack([_upscale(c, image_size) for c in coarse]) + rng.normal(0, 8, [count, image_size, image_size, 3])
    pixels = np.clip(pixels, 0, 255).astype(np.float32)
    if input_type == "float":
        return pixels
    return np.array([_jpeg(p) for p in pixels], dtype=object)


def _upscale(coarse: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(coarse.astype(np.uint8)).resize((size, size), Image.BILINEAR), np.float32)


def _jpeg(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="JPEG", quality=90)
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
    saved_model_max_difference: dict[str, float] | None = None


def export(
    model: TrainedModel,
    output: str | Path,
    *,
    input_type: str = "float",
    saved_model_dir: str | Path | None = None,
    tolerance: float = TOLERANCE,
    num_samples: int = 4,
) -> ExportResult:
    """Freeze `model` into `output` (.pb) with labels.txt and OUTPUT.json beside it; optionally a SavedModel.

    Verifies both against the checkpoint graph on `num_samples` sample inputs; ValueError above tolerance.
    """
    output = Path(output)
    saved_model_dir = Path(saved_model_dir) if saved_model_dir else None
    if saved_model_dir and saved_model_dir.exists() and any(saved_model_dir.iterdir()):
        raise ValueError(f"SavedModel directory {saved_model_dir} is not empty: remove it or choose another.")
    samples = sample_inputs(input_type, model.image_size, num_samples)
    with tf.Graph().as_default() as graph:
        tensors = serving_graph(model, input_type)
        restore = model.restore_op(tf.global_variables())
        with tf.Session(graph=graph) as session:
            session.run(tf.global_variables_initializer())
            session.run(restore)
            reference = session.run({name: tensors[name] for name in OUTPUTS}, {tensors[INPUT]: samples})
            batch_norms = op_counts(graph.as_graph_def(), _BATCH_NORM_OPS)
            graph_def = freeze(session, input_type)

    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(graph_def.SerializeToString())
    differences = max_differences(reference, run_graph_def(load_graph_def(output), samples))
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
    )
    if saved_model_dir:
        write_saved_model(graph_def, saved_model_dir)
        result.saved_model_max_difference = max_differences(reference, run_saved_model(saved_model_dir, samples))
        _check(str(saved_model_dir), result.saved_model_max_difference, tolerance)
    info = model_info(model, input_type, result)
    _write_sidecars(output.parent, output.with_suffix(INFO_SUFFIX), model, info)
    if saved_model_dir:
        extra = saved_model_dir / SAVED_MODEL_EXTRA
        _write_sidecars(extra, extra / f"model{INFO_SUFFIX}", model, info)
    return result


def model_info(model: TrainedModel, input_type: str, result: ExportResult) -> dict:
    """The JSON written beside the graph: input/output names, dtypes, shapes, preprocessing, provenance."""
    size = model.image_size
    if input_type == "float":
        input_info = {"dtype": "float32", "shape": [None, size, size, 3],
                      "values": "RGB pixel values in [0, 255] (any image resized to the shape)"}
    else:
        input_info = {"dtype": "string", "shape": [None], "values": "encoded image bytes (JPEG; PNG/GIF/BMP too)"}
    classes = model.num_classes
    return {
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
            "mode": "evaluation (finetune.preprocessing.preprocess_image, is_training=False)",
        },
        "signature": SIGNATURE,
        "verification": {
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
