"""`--from keras`: a keras.applications weights file (.h5 or .weights.h5) of a net the zoo has too.

The file is loaded into the keras.applications model of the same architecture (Keras 3, the `keras`
package), whose layers are then paired in order with the zoo net's layers: each Conv2D /
DepthwiseConv2D / Dense with the BatchNormalization that reads its output, against each TF-Slim
`weights` / `depthwise_weights` variable with its `biases` and `BatchNorm/*`. Every pair must agree in
kind and shape; the values then carry over exactly:

- kernels keep their layout (Keras and TF-Slim are both [h, w, in, out]; a Dense [in, out] becomes the
  TF-Slim 1x1 convolution [1, 1, in, out], VGG's fc6 [7 * 7 * 512, 4096] the 7x7 one);
- a bias in front of a BatchNorm is folded into its moving mean (BN(x + b) with mean m is BN(x) with
  mean m - b);
- a different BatchNorm epsilon is folded into the moving variance (variance + eps_keras - eps_slim),
  so the normalization divides by the same number; a missing gamma is 1, a missing bias 0;
- Keras' VGG takes BGR images ('caffe' preprocessing): the first convolution's input channels are
  reversed so the TF-Slim net takes RGB.

Where the two architectures differ so that no exact mapping exists the conversion is refused (see
REFUSED): no approximation is written. Keras' classifiers have 1000 classes (no background class);
the checkpoint has the same 1000. A file without the classifier (include_top=False) gives the body
only, checked on the last feature map. TF-Slim's Inception auxiliary classifier has no Keras
counterpart: the checkpoint has none (build or train the net with create_aux_logits=False, or let the
AuxLogits scope start fresh).

The reference is the Keras model itself on the same images after Keras' own preprocessing
(`keras.applications.<module>.preprocess_input`); the tolerance is 1e-4 of the largest output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from checkpoints import scopes
from finetune.weights import ConversionError, Source, batch_norm_epsilons

FORMAT = "keras"
TOLERANCE = 1e-4
TOLERANCE_TEXT = f"{TOLERANCE:g} of the largest output (relative)"


@dataclass(frozen=True)
class Family:
    """How one zoo net is a keras.applications model."""

    application: str  # keras.applications attribute, e.g. "MobileNetV2"
    module: str  # its module (for preprocess_input), e.g. "mobilenet_v2"
    kwargs: dict = field(default_factory=dict)
    feature_end_point: str = ""  # the zoo end point equal to the Keras output without the classifier
    bgr: bool = False  # Keras' 'caffe' preprocessing: BGR channel order
    net_kwargs: dict = field(default_factory=dict)
    min_size: int = 32
    notop_absent: tuple[str, ...] = ()  # body scopes of the zoo net that a file without classifier lacks


def _mobilenet(alpha: float) -> Family:
    return Family("MobileNet", "mobilenet", {"alpha": alpha}, "Conv2d_13_pointwise")


def _mobilenet_v2(alpha: float) -> Family:
    return Family("MobileNetV2", "mobilenet_v2", {"alpha": alpha}, "layer_19")


FAMILIES: dict[str, Family] = {
    "mobilenet_v1": _mobilenet(1.0),
    "mobilenet_v1_075": _mobilenet(0.75),
    "mobilenet_v1_050": _mobilenet(0.5),
    "mobilenet_v1_025": _mobilenet(0.25),
    "mobilenet_v2": _mobilenet_v2(1.0),
    "mobilenet_v2_140": _mobilenet_v2(1.4),
    "mobilenet_v2_035": _mobilenet_v2(0.35),
    "inception_v3": Family("InceptionV3", "inception_v3", {}, "Mixed_7c",
                           net_kwargs={"create_aux_logits": False}, min_size=75),
    "inception_resnet_v2": Family("InceptionResNetV2", "inception_resnet_v2", {}, "Conv2d_7b_1x1",
                                  net_kwargs={"create_aux_logits": False}, min_size=75),
    "vgg_16": Family("VGG16", "vgg16", {}, "vgg_16/pool5", bgr=True, notop_absent=("vgg_16/fc6", "vgg_16/fc7")),
    "vgg_19": Family("VGG19", "vgg19", {}, "vgg_19/pool5", bgr=True, notop_absent=("vgg_19/fc6", "vgg_19/fc7")),
}

_RESNET_V1 = ("Keras' ResNet50/101/152 put each stage's stride on the first block's first 1x1 convolution and pad "
              "pool1 by one pixel on each side, TF-Slim's resnet_v1 strides the 3x3 convolution of the stage's last "
              "block and pools with SAME padding: the layers compute different things, so no exact mapping exists")
_RESNET_V2 = ("Keras' ResNet50V2/101V2/152V2 zero-pad conv1's output by one pixel on each side before max pooling it "
              "(values not yet through a ReLU, so the zeros win), TF-Slim's resnet_v2 max-pools with SAME padding "
              "(padding ignored, windows shifted by one): pool1 differs, so no exact mapping exists")
REFUSED: dict[str, str] = {
    **{f"resnet_v1_{d}": _RESNET_V1 for d in (50, 101, 152)},
    **{f"resnet_v2_{d}": _RESNET_V2 for d in (50, 101, 152)},
}


def _keras():
    import os

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    return keras


def _model(family: Family, path: str, image_size: int, spec_name: str):
    """The keras.applications model holding the file's weights: with the classifier if the file has it."""
    keras = _keras()
    build = getattr(keras.applications, family.application)
    errors = []
    for include_top in (True, False):
        keras.backend.clear_session()  # the same layer names as a fresh process gets
        kwargs = dict(family.kwargs, weights=None, include_top=include_top,
                      input_shape=(image_size, image_size, 3))
        if include_top:
            kwargs["classifier_activation"] = None
        try:
            model, created = _recording_creation(lambda: build(**kwargs))  # noqa: B023 (called at once)
            model.load_weights(path)
        except ValueError as error:
            errors.append(str(error).splitlines()[0])
            continue
        return model, include_top, created
    arguments = ", ".join(f"{k}={v}" for k, v in family.kwargs.items())
    raise ConversionError(f"{path} does not load into keras.applications.{family.application}({arguments}), the "
                          f"Keras form of {spec_name}: it holds another net or width (check --net); Keras says: "
                          f"{errors[-1].rstrip(':')[:200]}")


def _recording_creation(build):
    """(build(), the layers in the order they were created): the order TF-Slim creates its variables in too."""
    keras = _keras()
    created: list = []
    layer_class = keras.layers.Layer
    original = layer_class.__dict__["__new__"]  # a staticmethod

    def recording(cls, *args, **kwargs):
        layer = original.__func__(cls, *args, **kwargs)
        created.append(layer)
        return layer

    layer_class.__new__ = staticmethod(recording)
    try:
        model = build()
    finally:
        layer_class.__new__ = original
    return model, created


@dataclass
class _Unit:
    """One layer with weights and its BatchNorm: Keras values, or TF-Slim variable names."""

    name: str
    kernel: object
    bias: object = None
    batch_norm: object = None  # Keras: the BatchNormalization layer; TF-Slim: the BatchNorm scope
    depthwise: bool = False


def _keras_units(model, creation_order: list) -> list[_Unit]:
    keras = _keras()
    weighted = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)
    batch_norm_of = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            producer = layer.input._keras_history.operation
            batch_norm_of[producer.name] = layer
    in_model = {id(layer) for layer in model.layers}
    units = []
    for layer in (layer for layer in creation_order if id(layer) in in_model):
        if isinstance(layer, keras.layers.SeparableConv2D) or (
                not isinstance(layer, weighted) and layer.weights and
                not isinstance(layer, keras.layers.BatchNormalization)):
            raise ConversionError(f"Keras layer {layer.name} ({type(layer).__name__}) has no TF-Slim counterpart here.")
        if isinstance(layer, weighted):
            depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
            kernel = np.asarray(layer.kernel)
            bias = np.asarray(layer.bias) if getattr(layer, "use_bias", False) else None
            units.append(_Unit(layer.name, kernel, bias, batch_norm_of.get(layer.name), depthwise))
    return units


def _slim_units(published: dict[str, tuple[int, ...]]) -> list[_Unit]:
    units = []
    for name in published:
        scope, leaf = name.rsplit("/", 1)
        if leaf in ("weights", "depthwise_weights"):
            bias = f"{scope}/biases" if f"{scope}/biases" in published else None
            batch_norm = f"{scope}/BatchNorm" if f"{scope}/BatchNorm/moving_mean" in published else None
            units.append(_Unit(scope, name, bias, batch_norm, leaf == "depthwise_weights"))
    return units


def _net_variables(net: str, num_classes: int, image_size: int, net_kwargs: dict) -> dict[str, tuple[int, ...]]:
    """Name -> shape of the zoo net's variables, in creation order."""
    from finetune.weights import _build
    from nets.compat import tf

    with tf.Graph().as_default():
        _, _, variables = _build(net, num_classes, image_size, net_kwargs)
        return {v.op.name: tuple(v.shape.as_list()) for v in variables}


def _pair(keras_unit: _Unit, slim_unit: _Unit, shapes: dict, epsilons: dict, net: str) -> dict[str, np.ndarray]:
    where = f"Keras layer {keras_unit.name} -> {slim_unit.name}"
    if keras_unit.depthwise != slim_unit.depthwise:
        raise ConversionError(f"{where}: one is depthwise, the other not: the file is not a {net} (check --net).")
    want = shapes[slim_unit.kernel]
    kernel = keras_unit.kernel
    if kernel.ndim == 2 and len(want) == 4:  # Dense as a TF-Slim convolution over the flattened [h, w, c] map
        if kernel.size != int(np.prod(want)):
            raise ConversionError(f"{where}: kernel {list(kernel.shape)} vs {list(want)}: the file is not a {net}.")
        kernel = kernel.reshape(want)
    if tuple(kernel.shape) != want:
        raise ConversionError(f"{where}: kernel shape {list(kernel.shape)}, the net has {list(want)}: "
                              f"the file is not a {net} (check --net).")
    values = {slim_unit.kernel: kernel}
    bias = keras_unit.bias
    if slim_unit.batch_norm is None and keras_unit.batch_norm is not None:
        raise ConversionError(f"{where}: Keras normalizes this layer's output, TF-Slim does not: no exact mapping.")
    if slim_unit.batch_norm is not None:
        bn = keras_unit.batch_norm
        if bn is None:
            raise ConversionError(f"{where}: TF-Slim normalizes this layer's output, Keras does not: no exact mapping.")
        scope = slim_unit.batch_norm
        if f"{scope}/gamma" not in shapes and bn.scale and not np.all(np.asarray(bn.gamma) == 1):
            raise ConversionError(f"{where}: Keras' BatchNorm has a scale (gamma), TF-Slim's none: no exact mapping.")
        if f"{scope}/beta" not in shapes and bn.center:
            raise ConversionError(f"{where}: Keras' BatchNorm has an offset (beta), TF-Slim's none: no exact mapping.")
        mean = np.asarray(bn.moving_mean, np.float64)
        if bias is not None:
            mean = mean - bias  # BN(x + b; mean) == BN(x; mean - b)
            bias = None
        variance = np.asarray(bn.moving_variance, np.float64) + bn.epsilon - epsilons[scope]
        if np.any(variance <= 0):
            raise ConversionError(f"{where}: Keras' BatchNorm epsilon {bn.epsilon:g} is smaller than TF-Slim's "
                                  f"{epsilons[scope]:g} by more than a moving variance: no exact mapping.")
        channels = mean.shape
        values[f"{scope}/moving_mean"] = mean
        values[f"{scope}/moving_variance"] = variance
        if f"{scope}/gamma" in shapes:
            values[f"{scope}/gamma"] = np.asarray(bn.gamma) if bn.scale else np.ones(channels)
        if f"{scope}/beta" in shapes:
            values[f"{scope}/beta"] = np.asarray(bn.beta) if bn.center else np.zeros(channels)
    if slim_unit.bias is not None:
        values[slim_unit.bias] = bias if bias is not None else np.zeros(shapes[slim_unit.bias])
    elif bias is not None:
        raise ConversionError(f"{where}: Keras adds a bias that TF-Slim's layer does not have: no exact mapping.")
    return {name: np.asarray(value, np.float32) for name, value in values.items()}


def _family(spec, image_size: int | None):
    """(keras.applications family, image size) of a zoo net; ConversionError when Keras has none or too small."""
    if spec.name in REFUSED:
        raise ConversionError(f"--from keras cannot give {spec.name}: {REFUSED[spec.name]}.")
    if spec.name not in FAMILIES:
        raise ConversionError(f"keras.applications has no {spec.name}; --from keras converts "
                              f"{', '.join(FAMILIES)}.")
    family = FAMILIES[spec.name]
    size = image_size or spec.image_size
    if size < family.min_size:
        raise ConversionError(f"--image-size {size} is too small for {spec.name}: give at least {family.min_size}.")
    return family, size


def _values(path: str, spec, family, model, creation_order, num_classes: int, size: int, net_kwargs: dict,
            absent: tuple) -> dict[str, np.ndarray]:
    """The slim variables' values, Keras' layers paired in creation order with the net's units."""
    shapes = _net_variables(spec.name, num_classes, size, net_kwargs)
    epsilons = batch_norm_epsilons(spec.name, num_classes, size, net_kwargs)
    keras_units = _keras_units(model, creation_order)
    slim_units = [u for u in _slim_units(shapes) if scopes.matching_scope(u.name, absent) is None]
    if len(keras_units) != len(slim_units):
        raise ConversionError(f"{path} has {len(keras_units)} layers with weights, {spec.name} "
                              f"{'with' if num_classes else 'without'} its classifier has {len(slim_units)}: "
                              f"the file is not a {spec.name} (check --net).")
    values: dict[str, np.ndarray] = {}
    for keras_unit, slim_unit in zip(keras_units, slim_units):
        values.update(_pair(keras_unit, slim_unit, shapes, epsilons, spec.name))
    first = slim_units[0].kernel
    if family.bgr:
        values[first] = values[first][:, :, ::-1, :].copy()  # the net takes RGB where Keras took BGR
    return values


def _runtime(family, model):
    """(net_inputs, reference): Keras' preprocessing as the slim net's inputs, and Keras' outputs."""
    preprocess = getattr(_keras().applications, family.module).preprocess_input

    def keras_inputs(images: np.ndarray) -> np.ndarray:
        return np.asarray(preprocess(images.astype(np.float32).copy()), np.float32)

    def net_inputs(images: np.ndarray) -> np.ndarray:
        inputs = keras_inputs(images)
        return inputs[..., ::-1].copy() if family.bgr else inputs

    def reference(images: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict(keras_inputs(images), verbose=0), np.float64)

    return net_inputs, reference


def _notes(family, num_classes: int, absent: tuple, net_kwargs: dict) -> list[str]:
    notes = []
    if num_classes:
        notes.append(f"Keras' classifier has {num_classes} classes (no background class): build and fine-tune "
                     f"the net with --num-classes {num_classes} or let the classifier start fresh.")
    else:
        notes.append(f"the file has no classifier (include_top=False): the checkpoint holds the body; "
                     f"checked on {family.feature_end_point}.")
    if absent:
        notes.append(f"the file has no {' or '.join(absent)} (Keras keeps them with the classifier): they are not "
                     f"in the checkpoint and start fresh.")
    if net_kwargs.get("create_aux_logits") is False:
        notes.append("Keras has no auxiliary classifier: the checkpoint has no AuxLogits (they start fresh).")
    if family.bgr:
        notes.append("Keras' VGG takes BGR minus (103.939, 116.779, 123.68); the first convolution's input channels "
                     "are reversed so the net takes RGB; the zoo's vgg preprocessing subtracts (123.68, 116.78, "
                     "103.94), 0.001 off Keras' in two channels.")
    return notes


def read(path: str, spec, image_size: int | None = None) -> Source:
    family, size = _family(spec, image_size)
    model, include_top, creation_order = _model(family, path, size, spec.name)
    num_classes = int(model.output.shape[-1]) if include_top else 0
    if include_top and family.bgr and size != 224:
        raise ConversionError(f"{spec.name} with its classifier runs at 224 px only (fc6 is a 7x7 convolution): "
                              f"drop --image-size or give 224.")
    net_kwargs = dict(family.net_kwargs) if num_classes else {}
    absent = () if include_top else family.notop_absent
    values = _values(path, spec, family, model, creation_order, num_classes, size, net_kwargs, absent)
    net_inputs, reference = _runtime(family, model)
    notes = _notes(family, num_classes, absent, net_kwargs)
    return Source(
        values=values,
        num_classes=num_classes,
        image_size=size,
        net_inputs=net_inputs,
        reference=reference,
        end_point="Logits" if num_classes else family.feature_end_point,
        tolerance=TOLERANCE,
        relative=True,
        net_kwargs=net_kwargs,
        notes=notes,
        absent_scopes=absent,
    )
