"""TF Hub image feature-vector models as backbones: the net `hub:PATH`, made on demand.

`spec("hub:PATH")` inspects the SavedModel at PATH (a local directory, or a handle tensorflow_hub resolves
through $TFHUB_CACHE_DIR) and returns a `NetSpec` whose network function builds, under the scope `HubNet`:

    images in [-1, 1] (inception preprocessing) -> rescaled to the model's input range
      -> HubNet/backbone: hub.KerasLayer(PATH)          features [B, D]   (end point 'PreLogits')
      -> HubNet/Logits: slim.fully_connected            logits [B, num_classes]

The backbone's variables are the SavedModel's own (initialised from it, not at random) and are put in
the graph's model-variable and trainable collections, so scopes, the restore plan, checkpoints and export
treat them like a zoo net's. The backbone runs in training mode (its BatchNorm updating) only when
`backbone_training` is true; the caller decides that from the trainable scopes.

A SavedModel lists its variables in `variables` / `trainable_variables` attributes (TF Hub's reusable
SavedModel; Keras models saved with tf.saved_model.save have them). One that does not (e.g. a plain
tf.Module) still runs on its saved weights, but hub.KerasLayer sees none of them: its backbone cannot
train (`HubModel.trainable` is False, the layer is built frozen) and its weights are counted from the
SavedModel's variables file (`saved_variables`, `num_parameters`).

A model is accepted when its `__call__` takes one float image batch [B, H, W, 3] and returns one float
tensor [B, D]. The image size comes from its signature when H and W are fixed; the input range from
`assets.extra/finetune_hub.json` (`{"image_size": S, "input_range": [lo, hi]}`, which `finetune export
--hub` writes) when present; otherwise both are for the caller to give.
"""

from __future__ import annotations

import functools
import json
import math
import weakref
from dataclasses import dataclass
from pathlib import Path

from nets.compat import slim, tf

PREFIX = "hub:"
SCOPE = "HubNet"
BACKBONE = "backbone"
BACKBONE_SCOPE = f"{SCOPE}/{BACKBONE}"  # the SavedModel's own variables live under it
METADATA = "assets.extra/finetune_hub.json"
INPUT_RANGES = ((0.0, 1.0), (-1.0, 1.0))
DEFAULT_IMAGE_SIZE = 224
DEFAULT_INPUT_RANGE = (0.0, 1.0)  # TF Hub's convention for image models


def is_hub(name: str) -> bool:
    """True for a net named `hub:PATH` (the one test of the project for a hub net)."""
    return name.startswith(PREFIX)


def handle_of(name: str) -> str:
    """PATH of the net `hub:PATH`."""
    return name[len(PREFIX):]


@dataclass(frozen=True)
class HubModel:
    """What the SavedModel says about itself."""

    handle: str
    path: str  # the local directory
    image_size: int | None  # fixed by its signature or metadata
    input_range: tuple[float, float] | None  # stated in its metadata
    feature_dim: int | None
    num_parameters: int = 0  # of the SavedModel's variables
    listed_variables: int = 0  # how many it lists (its `variables` attribute)
    trainable_variables: int = 0  # how many it lists as trainable (its `trainable_variables` attribute)
    saved_variables: int = 0  # how many its variables file holds, listed or not

    @property
    def trainable(self) -> bool:
        """Its backbone can train: it lists trainable variables (hub.KerasLayer trains only those)."""
        return self.trainable_variables > 0

    @property
    def unlisted(self) -> bool:
        """It holds variables it does not list: they run as saved, and hub.KerasLayer cannot train them."""
        return self.saved_variables > self.listed_variables


def parse_range(text) -> tuple[float, float]:
    """'0,1' | '-1,1' (or a pair) -> (lo, hi); ValueError otherwise."""
    try:
        values = tuple(float(v) for v in (text.split(",") if isinstance(text, str) else text))
    except (TypeError, ValueError):
        values = ()
    if values not in INPUT_RANGES:
        raise ValueError(f"--input-range must be 0,1 or -1,1, got {text!r}.")
    return values


def _resolve(handle: str) -> str:
    local = Path(handle).expanduser()
    if local.is_dir():
        return str(local.resolve())
    import tensorflow_hub as hub

    try:
        return hub.resolve(handle)
    except Exception as error:  # tensorflow_hub raises several kinds for a bad handle
        raise ValueError(f"hub model {handle!r} not found: give a SavedModel directory or a handle cached in "
                         f"$TFHUB_CACHE_DIR ({type(error).__name__}: {str(error).splitlines()[0][:120]}).") from None


@functools.cache
def inspect(handle: str) -> HubModel:
    """Load the SavedModel (in a throwaway graph) and check it is an image feature vector; ValueError otherwise."""
    import tensorflow_hub as hub

    path = _resolve(handle)
    if not (Path(path) / "saved_model.pb").is_file():
        raise ValueError(f"hub model {handle!r}: {path} holds no saved_model.pb; give a TF2 SavedModel directory.")
    with tf.Graph().as_default():
        try:
            obj = hub.load(path)
        except Exception as error:
            raise ValueError(f"hub model {handle!r} does not load: {str(error).splitlines()[0][:160]}") from None
        call = obj.__call__ if callable(obj) else None
        functions = list(getattr(call, "concrete_functions", None) or [])
        if not functions:
            raise ValueError(f"hub model {handle!r} has no __call__ function (signatures: "
                             f"{sorted(getattr(obj, 'signatures', {}) or {})}); a TF2 Hub feature-vector model is "
                             "needed.")
        args = functions[0].structured_input_signature[0]
        inputs = args[0] if args else None
        outputs = functions[0].structured_outputs
        listed, trainable = list(getattr(obj, "variables", [])), list(getattr(obj, "trainable_variables", []))
    saved = _saved_variables(path)
    num_parameters = sum(saved.values()) if saved else sum(v.shape.num_elements() or 0 for v in listed)
    if not isinstance(inputs, tf.TensorSpec) or inputs.shape.rank != 4 or not inputs.dtype.is_floating \
            or inputs.shape[-1] not in (3, None):
        raise ValueError(f"hub model {handle!r} is not an image feature vector: it takes {_describe(inputs)}, not "
                         "a float image batch [B, H, W, 3].")
    if not hasattr(outputs, "shape") or outputs.shape.rank != 2 or not outputs.dtype.is_floating:
        raise ValueError(f"hub model {handle!r} is not an image feature vector: it returns {_describe(outputs)}, "
                         "not one float tensor [B, D].")
    height, width = inputs.shape[1], inputs.shape[2]
    size = height if height is not None and height == width else None
    stated_range = None
    metadata = Path(path) / METADATA
    if metadata.is_file():
        stated = json.loads(metadata.read_text())
        size = size or stated.get("image_size")
        stated_range = parse_range(stated["input_range"]) if stated.get("input_range") else None
    return HubModel(handle=handle, path=path, image_size=size, input_range=stated_range,
                    feature_dim=outputs.shape[1], num_parameters=num_parameters, listed_variables=len(listed),
                    trainable_variables=len(trainable), saved_variables=len(saved))


def _saved_variables(path: str) -> dict[str, int]:
    """The SavedModel's variables (checkpoint key -> element count), from its variables file: {} without one."""
    try:
        reader = tf.train.load_checkpoint(str(Path(path) / "variables" / "variables"))
    except (tf.errors.OpError, ValueError):
        return {}
    shapes = reader.get_variable_to_shape_map()
    return {key: math.prod(shape) for key, shape in shapes.items() if key != "_CHECKPOINTABLE_OBJECT_GRAPH"}


def _describe(value) -> str:
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"{value.dtype.name} {value.shape.as_list() if value.shape.rank is not None else 'of unknown rank'}"
    return f"{type(value).__name__} {value!r}"[:120]


def resolve_input(model: HubModel, image_size: int | None, input_range) -> tuple[int, tuple[float, float], str]:
    """(image size, input range, a line saying where each came from) for a run; ValueError when a flag
    contradicts what the model states."""
    if model.image_size and image_size and image_size != model.image_size:
        raise ValueError(f"--image-size {image_size}: hub model {model.handle} takes {model.image_size} px "
                         "(its signature); drop the flag.")
    wanted = parse_range(input_range) if input_range is not None else None
    if model.input_range and wanted and wanted != model.input_range:
        raise ValueError(f"--input-range {input_range}: hub model {model.handle} states "
                         f"{_range_text(model.input_range)}; drop the flag.")
    size = model.image_size or image_size or DEFAULT_IMAGE_SIZE
    size_source = "the model" if model.image_size else ("--image-size" if image_size else "the default")
    value_range = model.input_range or wanted or DEFAULT_INPUT_RANGE
    range_source = "the model" if model.input_range else ("--input-range" if wanted else "the default")
    line = (f"hub model {model.handle}: image size {size} (from {size_source}), input range "
            f"{_range_text(value_range)} (from {range_source}), {model.feature_dim} features")
    return size, value_range, line


def run_input(name: str, image_size: int | None, input_range) -> tuple[int, tuple[float, float], str]:
    """resolve_input for the net `hub:PATH`, given the run's --image-size and --input-range."""
    return resolve_input(inspect(handle_of(name)), image_size, input_range)


def check_backbone_trains(name: str, trainable: str, scope_list, trains) -> None:
    """One-line ValueError when the trainable scopes (`scope_list`, and `trains(name)`: whether a variable
    `name` trains) ask the backbone of `hub:PATH` to train but its SavedModel lists no trainable variables."""
    model = inspect(handle_of(name))
    asked = trains(f"{BACKBONE_SCOPE}/kernel") or any(
        scope.startswith((f"{BACKBONE_SCOPE}/", f"{BACKBONE}/")) for scope in scope_list)
    if asked and not model.trainable:
        raise ValueError(f"--trainable {trainable} asks the backbone of hub model {model.handle} to train, but its "
                         "SavedModel lists no trainable variables (no `trainable_variables` attribute), so nothing "
                         "of it can train: use --trainable logits, or re-save the model with its variables tracked "
                         "(`variables` and `trainable_variables` attributes, as a Keras model saved whole has).")


def default_train_dir(name: str) -> str:
    """runs/hub_<PATH as one file name> for the net `hub:PATH`."""
    return "runs/hub_" + "".join(c if c.isalnum() or c in "._-" else "_" for c in handle_of(name)).strip("_")


def net_kwargs(name: str, input_range, backbone_training: bool = False) -> dict:
    """The network function's extra arguments for the net `name` ({} for a zoo net): its input range, and
    whether the backbone runs in training mode (the caller decides, from its trainable scopes)."""
    if not is_hub(name):
        return {}
    return {"input_range": tuple(input_range), "backbone_training": backbone_training}


def _range_text(value_range) -> str:
    return ",".join(f"{v:g}" for v in value_range)


def hub_arg_scope(weight_decay: float = 0.0):
    with slim.arg_scope([slim.fully_connected], weights_regularizer=slim.l2_regularizer(weight_decay)) as scope:
        return scope


_LAYERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # graph -> {variable scope: its hub.KerasLayer}


def _backbone_layer(path: str):
    """The hub.KerasLayer of the SavedModel at `path`, trainable when it lists trainable variables (a layer
    with none would only log Keras' "trainable but has zero trainable weights" at every build)."""
    import tensorflow_hub as hub

    scope = tf.get_variable_scope().name
    layers = _LAYERS.setdefault(tf.get_default_graph(), {})  # towers after the first reuse the layer
    if scope not in layers or not tf.get_variable_scope().reuse:
        # The SavedModel's variables take the name scope's names: make it the variable scope's (no tower_i/).
        with tf.name_scope(f"{scope}/"):
            layers[scope] = hub.KerasLayer(path, trainable=inspect(path).trainable, name=BACKBONE)
    return layers[scope]


def hub_net(images: tf.Tensor, num_classes: int = 1000, is_training: bool = False, *, path: str,
            input_range=DEFAULT_INPUT_RANGE, backbone_training: bool | None = None, scope: str = SCOPE,
            reuse=None, **unused) -> tuple[tf.Tensor, dict]:
    """The hub backbone plus a linear classifier; images in [-1, 1]. num_classes=0 returns the features."""
    lo, hi = parse_range(input_range)
    training = is_training if backbone_training is None else backbone_training
    end_points = {}
    with tf.variable_scope(scope, [images], reuse=reuse) as net_scope:
        net = (images + 1.0) * ((hi - lo) / 2.0) + lo
        with tf.variable_scope(BACKBONE):
            layer = _backbone_layer(path)
            # the SavedModel computes in float32 whatever the run's precision; the classifier in the images' dtype
            features = tf.cast(layer(tf.cast(net, tf.float32), training=bool(training)), images.dtype)
        graph = tf.get_default_graph()
        for variable in layer.weights:
            if variable not in graph.get_collection(tf.GraphKeys.MODEL_VARIABLES):
                graph.add_to_collection(tf.GraphKeys.MODEL_VARIABLES, variable)
        for variable in layer.trainable_weights:
            if variable not in graph.get_collection(tf.GraphKeys.TRAINABLE_VARIABLES):
                graph.add_to_collection(tf.GraphKeys.TRAINABLE_VARIABLES, variable)
        end_points["PreLogits"] = features
        if not num_classes:
            return features, end_points
        logits = slim.fully_connected(features, num_classes, activation_fn=None, scope="Logits")
        end_points["Logits"] = logits
        end_points["Predictions"] = tf.nn.softmax(logits, name="Predictions")
        del net_scope
    return logits, end_points


@functools.cache
def spec(name: str):
    """The NetSpec of `hub:PATH`; ValueError naming what is wrong with the model."""
    from nets.spec import NetSpec

    handle = name[len(PREFIX):]
    model = inspect(handle)
    if Path(handle).expanduser().is_dir():  # a local directory by its absolute path: run_config.json works anywhere
        name = PREFIX + model.path
    network_fn = functools.partial(hub_net, path=model.path, input_range=model.input_range or DEFAULT_INPUT_RANGE)
    network_fn.__name__ = "hub_net"
    network_fn.default_image_size = model.image_size or DEFAULT_IMAGE_SIZE
    return NetSpec(name=name, network_fn=network_fn, arg_scope_fn=hub_arg_scope,
                   image_size=model.image_size or DEFAULT_IMAGE_SIZE, num_classes=1000, preprocessing="inception",
                   scope=SCOPE, classifier_scopes=(f"{SCOPE}/Logits",))
