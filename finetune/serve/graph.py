"""The serving graph and its freezing: the contract an exported model keeps with its clients.

Serving = evaluation. The graph takes an image as a client has it, decoded at its own size or still
encoded, and does the rest itself: the net's evaluation preprocessing
(`finetune.data.preprocessing.preprocess_image`, is_training=False, the function `finetune eval` runs),
the net, the softmax. Nothing is resized outside the graph:

    input          float32 [None, None, None, 3]: decoded RGB images at their own size, pixel values
                   in [0, 255]; a batch holds images of one size (send other sizes in other runs,
                   e.g. batches of one)                                            (input_type 'float')
                   string  [None]: encoded image bytes, each of any size (JPEG; PNG/GIF/BMP too) ('jpeg')
    logits         float32 [None, num_classes]
    probabilities  float32 [None, num_classes]  (softmax of the logits)
    classes        int64   [None]               (argmax)

Freezing uses TensorFlow's own tools: `convert_variables_to_constants` turns the restored variables
into constants, then `optimize_for_inference` strips what only training needs (Identity chains,
unused nodes) and folds each BatchNorm into the convolution before it. `write_saved_model` gives the
frozen graph a `serving_default` signature of the same names.
"""

from __future__ import annotations

from pathlib import Path

from finetune.runs.trained_model import TrainedModel
from nets.compat import tf

INPUT = "input"
OUTPUTS = ("logits", "probabilities", "classes")
INPUT_TYPES = ("float", "jpeg")
SIGNATURE = "serving_default"
BATCH_NORM_OPS = ("FusedBatchNorm", "FusedBatchNormV3", "BatchNormWithGlobalNormalization")
VARIABLE_OPS = ("VariableV2", "Variable", "VarHandleOp", "ReadVariableOp", "AssignVariableOp", "Assign")


def check_input_type(input_type: str) -> None:
    if input_type not in INPUT_TYPES:
        raise ValueError(f"input type must be one of {', '.join(INPUT_TYPES)}, got {input_type!r}.")


def serving_graph(model: TrainedModel, input_type: str = "float", *, fixed_size: bool = False) -> dict[str, tf.Tensor]:
    """Build input -> preprocessing -> net -> outputs in the default graph; return them by name.

    `fixed_size` (float input only): the input is one image of the net's size, float32 [1, size, size, 3]
    in [0, 255], preprocessed by the same function without the loop over the batch (the graph a TFLite
    export converts: TFLite wants static shapes)."""
    check_input_type(input_type)
    size = model.image_size
    if fixed_size:
        if input_type != "float":
            raise ValueError("a fixed-size serving graph takes float input only.")
        inputs = tf.placeholder(tf.float32, [1, size, size, 3], name=INPUT)
        images = _preprocess(model, inputs[0], input_type)[None]
    else:
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


def frozen_serving_graph(model: TrainedModel, input_type: str, *,
                         fixed_size: bool = False) -> tuple[tf.GraphDef, int]:
    """(the frozen serving graph of `model`'s restored checkpoint, its BatchNorm count before freezing)."""
    with tf.Graph().as_default() as graph:
        serving_graph(model, input_type, fixed_size=fixed_size)
        restore = model.restore_op(tf.global_variables())
        with tf.Session(graph=graph) as session:
            session.run(tf.global_variables_initializer())
            session.run(restore)
            batch_norms = op_counts(graph.as_graph_def(), BATCH_NORM_OPS)
            return freeze(session, input_type), batch_norms


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
