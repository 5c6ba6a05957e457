"""`finetune export --hub DIR`: a fine-tuned model (zoo net or hub backbone) as a reusable TF Hub SavedModel.

What DIR holds (TF2 SavedModel, TF Hub's reusable format):

    __call__(images, training=False) -> features [B, D]     images float32 [B, S, S, 3] in [0, 1]
    signatures: 'feature_vector' {'images'} -> {'features'}
                'classification' {'images'} -> {'logits', 'probabilities'}  (also 'serving_default')
    variables, trainable_variables, regularization_losses   (hub.KerasLayer(trainable=True) trains them;
                                                            trainable_variables are __call__'s, no classifier)
    assets.extra/finetune_hub.json  image size and input range ([0, 1]); labels.txt

How: eager variables are made from the checkpoint's values; the net's slim graph code is traced four times
(features / logits, inference / training mode) with tf.compat.v1.wrap_function, and a variable creator
hands every trace those same variables instead of new ones; so the functions share the variables, which
stay trainable. In training mode the BatchNorm statistics update with each call. The net's preprocessing
(scaling from [0, 1]) is inside; resizing to S x S is the caller's, as TF Hub image models expect.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from checkpoints import scopes
from finetune.runs.files import LABELS_FILE, write_json, write_labels
from finetune.runs.trained_model import TrainedModel
from nets import hub, nets_factory
from nets.compat import tf

# isort: split
import tensorflow as tf2  # after nets.compat, which sets TensorFlow's log level

_VGG_MEANS = (123.68, 116.78, 103.94)


def _variable_values(model: TrainedModel) -> tuple[dict[str, np.ndarray], set[str]]:
    """The net's variables (name -> checkpoint value) and which of them are trainable."""
    with tf.Graph().as_default() as graph:
        model.logits(tf.placeholder(tf.float32, [None, model.image_size, model.image_size, 3]))
        variables = [v for v in tf.global_variables() if v.op.name != "global_step"]
        trainable = {v.op.name for v in tf.trainable_variables()}
        restore = model.restore_op(variables)
        with tf.Session(graph=graph) as session:
            session.run(tf.global_variables_initializer())
            session.run(restore)
            values = session.run({v.op.name: v for v in variables})
    return values, trainable


def _scale(model: TrainedModel, images: tf.Tensor) -> tf.Tensor:
    """[0, 1] images -> the net's input values (its preprocessing's scaling, without the crop)."""
    if model.preprocessing == "vgg":
        return images * 255.0 - tf.constant(_VGG_MEANS)
    return images * 2.0 - 1.0


def _traced(model: TrainedModel, shared: dict[str, tf2.Variable], *, features: bool, training: bool):
    """One wrap_function of the net, its variables those of `shared`."""
    size = model.image_size

    def creator(next_creator, **kwargs):
        name = kwargs.get("name") or ""
        scope = tf.get_default_graph().get_name_scope()
        for candidate in (name, f"{scope}/{name}" if scope else name):
            if candidate in shared:
                return shared[candidate]
        raise ValueError(f"hub export: the net made a variable {name!r} the checkpoint has no value for.")

    def build(images):
        kwargs = {}
        if hub.is_hub(model.net):
            kwargs = {"input_range": model.input_range or hub.DEFAULT_INPUT_RANGE, "backbone_training": training}
        network_fn = nets_factory.get_network_fn(model.net, 0 if features else model.num_classes,
                                                 is_training=training)
        with tf.variable_creator_scope(creator):
            output, _ = network_fn(_scale(model, images), **kwargs)
        output = tf.cast(output, tf.float32)
        if output.shape.rank == 4:  # a [B, h, w, D] feature map: pooled whole
            output = tf.reduce_mean(output, [1, 2])
        updates = tf.get_collection(tf.GraphKeys.UPDATE_OPS) if training else []
        with tf.control_dependencies(updates):
            return tf.identity(output)

    return tf.compat.v1.wrap_function(build, [tf.TensorSpec([None, size, size, 3], tf.float32)])


def export_hub(model: TrainedModel, directory: str | Path) -> dict:
    """Write `model` to `directory` as a reusable TF Hub SavedModel; returns what the metadata file says."""
    directory = Path(directory)
    if not tf2.executing_eagerly():
        raise ValueError("export --hub writes a TF2 SavedModel and needs eager execution, which this process has "
                         "switched off: run `finetune export --hub` in its own process.")
    if directory.exists() and any(directory.iterdir()):
        raise ValueError(f"hub directory {directory} is not empty: remove it or choose another.")
    values, trainable = _variable_values(model)
    with tf2.init_scope():
        shared = {name: tf2.Variable(value, trainable=name in trainable, name=name) for name, value in values.items()}
    traces = {(f, t): _traced(model, shared, features=f, training=t) for f in (True, False) for t in (True, False)}
    for name, variable in shared.items():  # again: loading a hub backbone while tracing restores its original values
        variable.assign(values[name])
    size = model.image_size
    spec = tf2.TensorSpec([None, size, size, 3], tf.float32, name="images")

    root = tf2.__internal__.tracking.AutoTrackable()
    ordered = [shared[name] for name in values]
    root.variables = ordered
    # __call__'s variables: the classifier's stay in `variables` (the classification signature uses them)
    net_spec = nets_factory.get_spec(model.net)
    classifier = {name for name in values if scopes.matching_scope(name, net_spec.classifier_scopes, net_spec.scope)}
    root.trainable_variables = [v for name, v in zip(values, ordered) if v.trainable and name not in classifier]
    root.regularization_losses = []
    root.traces = list(traces.values())

    @tf2.function
    def call(images, training=False):
        return traces[(True, bool(training))](images)

    root.__call__ = call
    call.get_concrete_function(spec, training=False)
    call.get_concrete_function(spec, training=True)

    @tf2.function(input_signature=[spec])
    def feature_vector(images):
        return {"features": traces[(True, False)](images)}

    @tf2.function(input_signature=[spec])
    def classification(images):
        logits = traces[(False, False)](images)
        return {"logits": logits, "probabilities": tf2.nn.softmax(logits)}

    signatures = {"feature_vector": feature_vector, "classification": classification,
                  "serving_default": classification}
    tf2.saved_model.save(root, str(directory), signatures=signatures)
    metadata = {"net": model.net, "checkpoint": model.checkpoint, "num_classes": model.num_classes,
                "image_size": size, "input_range": [0.0, 1.0],
                "feature_dim": int(traces[(True, False)].structured_outputs.shape[-1])}
    extra = directory / "assets.extra"
    extra.mkdir(parents=True, exist_ok=True)
    write_json(extra / "finetune_hub.json", metadata)
    write_labels(extra / LABELS_FILE, model.class_names)
    return metadata
