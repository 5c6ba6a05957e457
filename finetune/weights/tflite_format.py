"""`--from tflite`: a TF-Slim net trained with quantization-aware training and converted to TFLite.

Such a file holds uint8 weights with their scale and zero point, int32 biases, and BatchNorm folded into
the convolutions (`<layer>/BatchNorm_Fold/bias`). Its tensor names keep TF-Slim's layer scopes
(`MobilenetV1/MobilenetV1/Conv2d_0/weights_quant/FakeQuantWithMinMaxVars`, several names joined by ';'
where TFLite fused ops), so each variable of the zoo net is found by its layer scope:

- `<layer>/weights`, `<layer>/depthwise_weights`: the layer's `weights_quant` tensor, dequantized
  ((q - zero_point) * scale, per tensor or per channel) and moved from TFLite's [out, h, w, in]
  ([1, h, w, channels] for depthwise) to TF-Slim's [h, w, in, out] ([h, w, channels, 1]);
- `<layer>/biases`: the int32 bias times its scale;
- `<layer>/BatchNorm/*`: identity around the folded bias: gamma 1, moving mean 0, moving variance
  1 - epsilon (so sqrt(variance + epsilon) is 1), beta the folded bias. Such a checkpoint is exact only
  while BatchNorm stays frozen (the default outside `--trainable` scopes; no `--train-bn-stats`).

The reference is `tf.lite.Interpreter` itself on the same uint8 images; the float net gets the same
input dequantized with the input tensor's own parameters. The two differ by the uint8 rounding of every
activation, so the tolerance is counted in quantization steps of the logits tensor.
"""

from __future__ import annotations

import re

import numpy as np

from checkpoints import scopes
from finetune.weights import ConversionError, Source, batch_norm_epsilons
from nets.compat import without_stderr_lines as _without_delegate_notice

FORMAT = "tflite"
TOLERANCE_STEPS = 8  # the logits' own quantization steps (measured on real photos: max 7, mean 1)
TOLERANCE_TEXT = f"{TOLERANCE_STEPS} quantization steps of the logits tensor (absolute)"
_WEIGHT_SUFFIXES = ("weights_quant/FakeQuantWithMinMaxVars", "weights")


def _interpreter(path: str):
    import warnings

    import tensorflow as tf

    try:
        with warnings.catch_warnings():  # the interpreter's notices about its future package and debug mode
            warnings.simplefilter("ignore")
            with _without_delegate_notice():
                interpreter = tf.lite.Interpreter(model_path=path, experimental_preserve_all_tensors=True)
                interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as error:
        raise ConversionError(f"{path} is not a TFLite model TensorFlow can read ({str(error).splitlines()[0]}).") from None
    return interpreter


def _dequantize(interpreter, detail: dict) -> np.ndarray:
    value = interpreter.get_tensor(detail["index"])
    if value.dtype in (np.float32, np.float64):
        return value.astype(np.float32)
    params = detail["quantization_parameters"]
    scales, zero_points = params["scales"], params["zero_points"]
    if scales.size == 0:
        raise ConversionError(f"tensor {detail['name']!r} is {value.dtype} without quantization parameters.")
    shape = [1] * value.ndim
    if scales.size > 1:
        shape[params["quantized_dimension"]] = scales.size
    return ((value.astype(np.float64) - zero_points.reshape(shape)) * scales.reshape(shape)).astype(np.float32)


class _Tensors:
    """The model's tensors, found by the end of any of their ';'-joined names."""

    def __init__(self, interpreter):
        self.interpreter = interpreter
        self.details = interpreter.get_tensor_details()

    def find(self, endings: tuple[str, ...]) -> dict | None:
        """The first weight or bias tensor one of whose names ends with one of `endings` (in that order)."""
        for ending in endings:
            for detail in self.details:
                if any(part == ending or part.endswith("/" + ending) for part in detail["name"].split(";")):
                    if self._is_weight(detail):
                        return detail
        return None

    @staticmethod
    def _is_weight(detail: dict) -> bool:
        # Activations, whose fused names list the layer's bias too, are [1, H, W, C] and not int32.
        return detail["dtype"] == np.int32 or len(detail["shape"]) != 4 or detail["shape"][0] != 1 or \
            "weights" in detail["name"]


def _to_slim_layout(value: np.ndarray, shape: tuple[int, ...], name: str, net: str) -> np.ndarray:
    if value.size != int(np.prod(shape)):
        raise ConversionError(f"{name}: the file's tensor has shape {list(value.shape)}, the net wants {list(shape)}: "
                              f"the file is not a {net} (check --net).")
    if name.endswith("depthwise_weights"):  # [1, h, w, c*m] -> [h, w, c, m]
        return value.reshape(shape)
    if value.ndim == 4:  # [out, h, w, in] -> [h, w, in, out]
        value = value.transpose(1, 2, 3, 0)
    elif value.ndim == 2:  # fully connected [out, in] -> [in, out]
        value = value.T
    return value.reshape(shape)


def _layer_scope(name: str, net_scope: str) -> str:
    """'MobilenetV1/Conv2d_0/BatchNorm/beta' -> 'Conv2d_0' (the scope below the net's, without BatchNorm)."""
    scope = name.rsplit("/", 1)[0]
    scope = re.sub(r"/BatchNorm$", "", scope)
    return scope[len(net_scope) + 1:] if scope.startswith(net_scope + "/") else scope


def _image_input(path: str, interpreter, image_size: int | None) -> tuple[dict, int]:
    """(the input's detail, its size) of a TFLite model with one square image input; ConversionError otherwise."""
    inputs = interpreter.get_input_details()
    if len(inputs) != 1 or len(inputs[0]["shape"]) != 4:
        raise ConversionError(f"{path}: want one image input [1, H, W, 3], got {[list(d['shape']) for d in inputs]}.")
    _, height, width, _ = (int(d) for d in inputs[0]["shape"])
    if height != width:
        raise ConversionError(f"{path}: input is {height}x{width}; only square inputs are supported.")
    if image_size and image_size != height:
        raise ConversionError(f"{path} runs at {height} px only: drop --image-size or give {height}.")
    return inputs[0], height


def _classifier(path: str, interpreter, tensors: _Tensors) -> tuple[int, dict | None]:
    """(the class count, the logits tensor's detail or None): the logits are the [1, classes] activation that
    feeds the output softmax (not the output itself)."""
    classifier = tensors.find(tuple("Logits/Conv2d_1c_1x1/" + s for s in _WEIGHT_SUFFIXES))
    if classifier is None:
        raise ConversionError(f"{path} has no TF-Slim classifier tensor (Logits/Conv2d_1c_1x1/weights_quant): "
                              f"it is not a TF-Slim net converted to TFLite.")
    num_classes = int(classifier["shape"][0])
    output_index = interpreter.get_output_details()[0]["index"]
    logits = next((d for d in tensors.details if list(d["shape"]) == [1, num_classes] and d["dtype"] != np.int32
                   and d["index"] != output_index), None)
    return num_classes, logits


def _variable_values(path: str, spec, interpreter, tensors: _Tensors, num_classes: int,
                     height: int) -> dict[str, np.ndarray]:
    """Every published variable of `spec` from the model's tensors: weights dequantized into slim's layout,
    biases, and folded BatchNorm written as identity with the folded bias as beta."""
    epsilons = batch_norm_epsilons(spec.name, num_classes, height)
    values: dict[str, np.ndarray] = {}
    unmatched = []
    for name, shape in spec.published_variables().items():
        if spec.num_classes != num_classes and scopes.scope_matches("Logits", name, spec.scope):
            shape = shape[:-1] + (num_classes,)
        value = _variable_value(name, shape, spec, interpreter, tensors, epsilons)
        if value is None:
            unmatched.append(name)
        else:
            values[name] = value
    if unmatched:
        raise ConversionError(f"{path} has no tensor for {len(unmatched)} variables of {spec.name} "
                              f"(e.g. {unmatched[0]}): it is not a quantized {spec.name} (check --net).")
    return values


def _variable_value(name: str, shape: tuple, spec, interpreter, tensors: _Tensors,
                    epsilons: dict[str, float]) -> np.ndarray | None:
    layer = _layer_scope(name, spec.scope)
    leaf = name.rsplit("/", 1)[1]
    if leaf in ("weights", "depthwise_weights"):
        detail = tensors.find(tuple(f"{layer}/{s}" for s in _WEIGHT_SUFFIXES))
        return None if detail is None else _to_slim_layout(_dequantize(interpreter, detail), shape, name, spec.name)
    if leaf in ("biases", "beta"):
        detail = tensors.find((f"{layer}/BatchNorm_Fold/bias" if leaf == "beta" else f"{layer}/biases",))
        return None if detail is None else _dequantize(interpreter, detail).reshape(shape)
    if leaf == "gamma":
        return np.ones(shape, np.float32)
    if leaf == "moving_mean":
        return np.zeros(shape, np.float32)
    if leaf == "moving_variance":
        epsilon = epsilons.get(name.rsplit("/", 1)[0])
        return None if epsilon is None else np.full(shape, 1.0, np.float32) - np.float32(epsilon)
    return None


def _runtime(interpreter, input_detail: dict, output: dict):
    """(net_inputs, reference): the source's input convention as the slim net's inputs, and the TFLite runtime's
    dequantized outputs of images [N, H, W, 3] in [0, 255]."""
    in_params = input_detail["quantization_parameters"]
    in_scale = float(in_params["scales"][0]) if in_params["scales"].size else 1.0
    in_zero = float(in_params["zero_points"][0]) if in_params["zero_points"].size else 0.0

    def net_inputs(images: np.ndarray) -> np.ndarray:
        if input_detail["dtype"] == np.uint8:
            return ((images.astype(np.float32) - in_zero) * in_scale).astype(np.float32)
        return images.astype(np.float32) / 127.5 - 1.0

    def reference(images: np.ndarray) -> np.ndarray:
        rows = []
        for image in images:
            feed = image[None].astype(input_detail["dtype"]) if input_detail["dtype"] == np.uint8 \
                else net_inputs(image[None])
            interpreter.set_tensor(input_detail["index"], feed)
            interpreter.invoke()
            rows.append(_dequantize(interpreter, output).reshape(-1))
        return np.stack(rows)

    return net_inputs, reference


def read(path: str, spec, image_size: int | None = None) -> Source:
    interpreter = _interpreter(path)
    tensors = _Tensors(interpreter)
    input_detail, height = _image_input(path, interpreter, image_size)
    num_classes, logits = _classifier(path, interpreter, tensors)
    values = _variable_values(path, spec, interpreter, tensors, num_classes, height)
    output = logits if logits is not None else interpreter.get_output_details()[0]
    net_inputs, reference = _runtime(interpreter, input_detail, output)
    params = output["quantization_parameters"]
    step = float(params["scales"][0]) if params["scales"].size else 0.0
    return Source(
        values=values,
        num_classes=num_classes,
        image_size=height,
        net_inputs=net_inputs,
        reference=reference,
        end_point="Logits" if logits is not None else "Predictions",
        tolerance=TOLERANCE_STEPS * step if step else 1e-4,
        relative=not step,
        batch_norm_folded=True,
        notes=[
            "BatchNorm is folded in the source: it is written as identity (gamma 1, mean 0, variance 1 - epsilon, "
            "beta = the folded bias); training keeps BatchNorm frozen (in inference mode, also in --trainable "
            "scopes; no --train-bn-stats), as this record says (batch_norm_folded).",
            f"the source was trained at {height} px: training takes {height} px from this record unless "
            "--image-size says otherwise.",
            f"dequantized from {input_detail['dtype'].__name__} weights: logits match the TFLite runtime up to "
            f"its activation rounding ({TOLERANCE_TEXT}).",
        ],
    )
