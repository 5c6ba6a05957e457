"""A TensorFlow Lite model of the serving graph: its conversion, and the model loaded as a client loads it.

`convert` turns the frozen fixed-size serving graph (`finetune.serve.graph.serving_graph(fixed_size=True)`:
float32 [1, size, size, 3] pixels in [0, 255] in, evaluation's preprocessing, the net and the softmax inside;
`logits`, `probabilities`, `classes` out) into a .tflite with `tf.compat.v1.lite.TFLiteConverter.from_session`,
one of QUANTIZATIONS:

    float32   the graph as it is
    float16   weights stored as float16 (dequantized to float32 at load; about half the size)
    dynamic   weights stored as int8, activations float (dynamic-range quantization; about a quarter)
    int8      full-integer: weights and activations int8, their ranges calibrated on a representative sample;
              the input is uint8 (default), int8 or float32 (`input_type`), the outputs stay float32

A net using an op TFLite lacks fails in one line naming the op (ValueError).

`TFLiteModel(path)` has `finetune.serve.served.ServedModel`'s interface (`labels`, `input_type`, `run`,
`run_images`, `probabilities`, `decode`, `close`), so predict and the benchmarks take either. Its input size is
fixed: `run_images` resizes each decoded image to size x size (`fit`: PIL's bilinear, on uint8 pixels) before
the graph's own preprocessing (for the inception style a central 87.5% crop and a resize back to the size),
so its predictions are those of the .pb on the resized image, not on the image as it is. An integer input
gets the pixels quantized with the input tensor's own scale and zero point (calibration on photos gives
scale ~1, zero point 0 for uint8: the pixels as they are).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from finetune.serve.graph import INPUT, OUTPUTS
from finetune.serve.served import ImageModel, model_labels
from nets.compat import tf, without_stderr_lines

QUANTIZATIONS = ("float32", "float16", "dynamic", "int8")
INPUT_DTYPES = {"uint8": np.uint8, "int8": np.int8, "float32": np.float32}
# The converter's own lines on stderr for a quantized model (its C++ logging, not an error).
_CONVERTER_NOTICES = ("fully_quantize:", "INFO: ", "W0000 ", "I0000 ")


def convert(graph_def: tf.GraphDef, net: str, quantization: str, input_type: str = "uint8",
            representative: Callable[[], Iterator[list[np.ndarray]]] | None = None) -> bytes:
    """The .tflite bytes of a frozen fixed-size serving graph; ValueError (one line) naming an op TFLite lacks."""
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"--tflite must be one of {', '.join(QUANTIZATIONS)}, got {quantization!r}.")
    if input_type not in INPUT_DTYPES:
        raise ValueError(f"--tflite-input must be one of {', '.join(INPUT_DTYPES)}, got {input_type!r}.")
    with tf.Graph().as_default() as graph:
        tf.import_graph_def(graph_def, name="")
        with tf.Session(graph=graph) as session:
            converter = tf.lite.TFLiteConverter.from_session(
                session, [graph.get_tensor_by_name(f"{INPUT}:0")],
                [graph.get_tensor_by_name(f"{name}:0") for name in OUTPUTS])
            if quantization != "float32":
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
            if quantization == "float16":
                converter.target_spec.supported_types = [tf.float16]
            if quantization == "int8":
                if representative is None:
                    raise ValueError("int8 quantization needs calibration images.")
                converter.representative_dataset = representative
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
                converter.inference_input_type = tf.as_dtype(INPUT_DTYPES[input_type])
            try:
                with warnings.catch_warnings(), without_stderr_lines(_CONVERTER_NOTICES):
                    warnings.simplefilter("ignore")
                    return converter.convert()
            except Exception as error:  # ConverterError, and the calibrator's RuntimeError
                raise ValueError(unsupported_message(net, quantization, error)) from None


def unsupported_message(net: str, quantization: str, error: Exception) -> str:
    """One line for a failed conversion, naming the op TFLite lacks when the converter's message names one."""
    text = str(error)
    op = re.search(r"'tf\.(\w+)' op is neither a custom op nor a flex op", text) or \
        re.search(r"(?:not supported|unsupported)[^\n]*?\btf\.(\w+)", text) or \
        re.search(r"\bFlex(\w+)", text) or re.search(r"'tf\.(\w+)'", text)
    if op:
        return (f"{net} cannot be converted to TFLite ({quantization}): it uses the TensorFlow op {op.group(1)}, "
                "which TFLite's builtin ops lack; export the .pb or a SavedModel instead.")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"{net} cannot be converted to TFLite ({quantization}): {lines[-1] if lines else type(error).__name__}."


def interpreter(path: str | Path | None = None, content: bytes | None = None, threads: int | None = None):
    """A `tf.lite.Interpreter` with its tensors allocated, without its deprecation and delegate notices;
    ValueError (one line) when the file is not a TFLite model."""
    try:
        with warnings.catch_warnings(), without_stderr_lines():
            warnings.simplefilter("ignore")
            model = tf.lite.Interpreter(model_path=None if content else str(path), model_content=content,
                                        num_threads=threads)
            model.allocate_tensors()
    except (ValueError, RuntimeError) as error:
        raise ValueError(f"{path or 'the model'} is not a TFLite model TensorFlow can read "
                         f"({str(error).strip().splitlines()[0]}).") from None
    return model


def fit(image: np.ndarray, size: int) -> np.ndarray:
    """A decoded image as uint8 [size, size, 3]: as it is when already that size, else PIL's bilinear resize."""
    from PIL import Image

    pixels = np.clip(np.asarray(image), 0, 255).astype(np.uint8)
    if pixels.shape[:2] == (size, size):
        return pixels
    return np.asarray(Image.fromarray(pixels).resize((size, size), Image.BILINEAR), np.uint8)


class TFLiteModel(ImageModel):
    """A .tflite that `finetune export --tflite` wrote, with ServedModel's interface (see the module docstring)."""

    input_type = "float"  # fed decoded pixels, as a float-input .pb

    def __init__(self, path: str | Path, *, content: bytes | None = None, threads: int | None = None):
        self.path = Path(path)
        if content is None and not self.path.is_file():
            raise FileNotFoundError(f"model {path} not found: give the .tflite `finetune export --tflite` wrote.")
        self.interpreter = interpreter(self.path, content, threads)
        self.input = self.interpreter.get_input_details()[0]
        outputs = {detail["name"]: detail for detail in self.interpreter.get_output_details()}
        shape = [int(d) for d in self.input["shape"]]
        if not set(OUTPUTS) <= outputs.keys() or len(shape) != 4 or shape[0] != 1 or shape[1] != shape[2]:
            raise ValueError(f"{path} is not a TFLite model `finetune export --tflite` wrote (input {shape}, outputs "
                             f"{', '.join(outputs)}): want one image [1, size, size, 3] in and {', '.join(OUTPUTS)} out.")
        self.outputs = {name: outputs[name] for name in OUTPUTS}
        self.image_size = shape[1]
        self.num_classes = int(self.outputs["probabilities"]["shape"][-1])

    @property
    def labels(self) -> list[str]:
        return model_labels(self.path, self.num_classes)

    def _quantized(self, pixels: np.ndarray) -> np.ndarray:
        dtype = self.input["dtype"]
        if dtype == np.float32:
            return pixels.astype(np.float32)
        scale, zero_point = self.input["quantization"]
        limits = np.iinfo(dtype)
        return np.clip(np.round(pixels / scale + zero_point), limits.min, limits.max).astype(dtype)

    def run(self, inputs: np.ndarray, names: Sequence[str] = OUTPUTS) -> dict[str, np.ndarray]:
        """The outputs `names` for a batch of images of the model's size [B, size, size, 3], pixels in [0, 255],
        one invocation per image."""
        rows = []
        for pixels in np.asarray(inputs, np.float32):
            self.interpreter.set_tensor(self.input["index"], self._quantized(pixels[None]))
            self.interpreter.invoke()
            rows.append({name: self.interpreter.get_tensor(self.outputs[name]["index"])[0] for name in names})
        return {name: np.stack([row[name] for row in rows]) for name in names}

    def run_images(self, images: Sequence) -> dict[str, np.ndarray]:
        """The outputs for decoded images of any sizes, in order, each resized to the model's size (`fit`)."""
        return self.run(np.stack([fit(image, self.image_size) for image in images]))
