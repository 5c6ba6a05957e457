"""`finetune export --tflite`: the serving graph as a verified TensorFlow Lite model, with labels.txt and model.json.

The .tflite is converted (`finetune.serve.tflite.convert`) from the same serving graph as the .pb, frozen the
same way, with its input fixed at the model's size: float32 [1, size, size, 3] pixels in [0, 255] (uint8 or
int8 for an int8 model, per `input_type`), evaluation's preprocessing inside. int8 calibrates its activation
ranges on up to CALIBRATION_IMAGES images (seeded sample): the run's training images, or a folder given.

Verification: the written bytes, loaded as a client loads them (`TFLiteModel`), against the float graph
they came from (the frozen fixed-size graph in TensorFlow) on the same images, resized to the model's size:
the run's validation split (up to VERIFICATION_IMAGES), else the calibration images, else the .pb
verification's synthetic sample images. The top-1 agreement below MIN_AGREEMENT[quantization] refuses the
export (ValueError, one line; nothing written). Files are those of the .pb export, by its writers: OUTPUT,
labels.txt and OUTPUT.json (the contract: input dtype, shape, range and quantization, the outputs, the
preprocessing, the quantization, the calibration and the verification figures), with the same refusal to
replace files it did not write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from finetune.runs.files import LABELS_FILE, write_atomically
from finetune.runs.trained_model import TrainedModel
from finetune.serve import tflite, verify
from finetune.serve.export import check_destination, preprocessing_info, write_sidecars
from finetune.serve.graph import INPUT, frozen_serving_graph
from finetune.serve.served import EXPORTED_BY, Decoder, info_path
from nets.compat import tf

CALIBRATION_IMAGES = 200
VERIFICATION_IMAGES = 300
SEED = 0
# Least top-1 agreement with the float graph: float32 is the same arithmetic (XNNPACK's kernels differ from
# TensorFlow's by float rounding only, 1e-6 on the probabilities), so every image must agree. float16 and
# dynamic-range weights move the probabilities by ~1e-3 (measured: mobilenet_v1_025 on the real photos),
# which flips only near-ties: 99% and 98%. int8 rounds every activation; on the real photos the fine-tuned
# quantized mobilenet agreed on every image, and near-ties flip more often on nets whose classes are close:
# 95% still refuses a calibration that went wrong (such a model agrees by chance, 1/classes).
MIN_AGREEMENT = {"float32": 1.0, "float16": 0.99, "dynamic": 0.98, "int8": 0.95}


@dataclass
class ImageSet:
    """Images (files, or encoded bytes from TFRecords) and where they came from (for messages and model.json)."""

    encoded: list[bytes | Path]
    source: str


def folder_images(directory: str | Path) -> ImageSet:
    """Every image file under `directory` (any depth); ValueError when there is none."""
    from finetune.data.scan import IMAGE_EXTENSIONS

    root = Path(directory)
    if not root.is_dir():
        raise ValueError(f"--calibration {directory} is not a directory: give a folder of images.")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise ValueError(f"--calibration {directory} holds no images ({', '.join(IMAGE_EXTENSIONS)}).")
    return ImageSet(files, f"{len(files)} images of {directory}")


def run_images(train_dir: str | Path) -> dict[str, ImageSet]:
    """The run's dataset by split ('train', 'validation' when it has images), split as training split it."""
    from finetune.data.scan import scan_dataset
    from finetune.runs.run_dir import RunDir

    config = RunDir(str(train_dir)).final_run().run_config()
    dataset = config.get("dataset")
    if not dataset or not Path(dataset).is_dir():
        raise ValueError(f"the run's dataset {dataset} is not there to calibrate and verify on: give --calibration "
                         "DIR (a folder of images like the training ones).")
    info = scan_dataset(dataset, float(config.get("validation_fraction", 0.1)), int(config.get("seed", 0)))
    sets = {}
    for split, sources in info.sources.items():
        items = [Path(s) for s in sources] if info.format == "folder" else _records(sources, CALIBRATION_IMAGES * 2)
        if items:
            sets[split] = ImageSet(items, f"the {split} split of {dataset}")
    return sets


def _records(shards: Sequence[str], limit: int) -> list[bytes]:
    """The encoded images of the first `limit` records of the shards (in a seeded order)."""
    found: list[bytes] = []
    shards = sorted(shards)
    for shard in [shards[i] for i in np.random.default_rng(SEED).permutation(len(shards))]:
        for record in tf.io.tf_record_iterator(shard):
            example = tf.train.Example.FromString(record)
            found.append(example.features.feature["image/encoded"].bytes_list.value[0])
            if len(found) >= limit:
                return found
    return found


@dataclass
class TFLiteResult:
    """What export --tflite wrote and how it verified."""

    path: str
    labels: str
    info: str
    size_bytes: int
    quantization: str
    input_dtype: str
    images: int
    verified_on: str
    agreement: float
    max_probability_difference: float
    min_agreement: float
    calibration: str | None
    calibration_images: int


def export_tflite(model: TrainedModel, output: str | Path, quantization: str, *, input_type: str = "uint8",
                  calibration: ImageSet | None = None, validation: ImageSet | None = None,
                  min_agreement: float | None = None, overwrite: bool = False) -> TFLiteResult:
    """Convert `model` to OUTPUT (.tflite), verify it, write it with labels.txt and OUTPUT.json beside it."""
    output = Path(output)
    if output.suffix != ".tflite":
        raise ValueError(f"--output {output} must end in .tflite with --tflite, e.g. {output.with_suffix('.tflite')}.")
    if min_agreement is not None and not 0 <= min_agreement <= 1:
        raise ValueError(f"--min-agreement is a fraction in [0, 1], got {min_agreement}.")
    check_destination(output, None, overwrite)
    if quantization == "int8" and calibration is None:
        raise ValueError("int8 needs calibration images: give --calibration DIR (a folder of images), or export "
                         "from --train-dir, whose training images calibrate it.")
    input_type = input_type if quantization == "int8" else "float32"
    graph_def, _ = frozen_serving_graph(model, "float", fixed_size=True)
    size = model.image_size
    decode = Decoder()
    try:
        calibration_pixels = _pixels(calibration, decode, size, CALIBRATION_IMAGES) \
            if calibration and quantization == "int8" else None
        checked = validation or calibration
        pixels = _pixels(checked, decode, size, VERIFICATION_IMAGES) if checked else \
            np.stack([tflite.fit(image, size) for image in verify.sample_images(size)]).astype(np.float32)
    finally:
        decode.close()
    verified_on = checked.source if checked else "the .pb verification's synthetic sample images"

    def representative():
        for image in calibration_pixels:
            yield [image[None]]

    content = tflite.convert(graph_def, model.net, quantization, input_type,
                             representative if calibration_pixels is not None else None)
    reference = _float_probabilities(graph_def, pixels)
    with tflite.TFLiteModel(output, content=content) as converted:
        probabilities = converted.run(pixels, ("probabilities",))["probabilities"]
        input_detail = converted.input
    agreement = float(np.mean(reference.argmax(1) == probabilities.argmax(1)))
    least = MIN_AGREEMENT[quantization] if min_agreement is None else min_agreement
    difference = float(np.abs(reference - probabilities).max())
    if agreement < least:
        raise ValueError(f"the {quantization} TFLite model agrees with the float graph on the top-1 class of "
                         f"{agreement:.1%} of {len(pixels)} images ({verified_on}), below {least:.0%} "
                         f"(max probability difference {difference:.3f}): not written; try --tflite float16 or "
                         "dynamic" + (", or other --calibration images." if quantization == "int8" else "."))
    output.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(output, content)
    result = TFLiteResult(path=str(output), labels=str(output.parent / LABELS_FILE), info=str(info_path(output)),
                          size_bytes=len(content), quantization=quantization, input_dtype=input_type,
                          images=len(pixels), verified_on=verified_on, agreement=agreement,
                          max_probability_difference=difference, min_agreement=least,
                          calibration=calibration.source if quantization == "int8" else None,
                          calibration_images=len(calibration_pixels) if quantization == "int8" else 0)
    write_sidecars(output.parent, info_path(output), model, tflite_info(model, result, input_detail))
    return result


def _pixels(images: ImageSet, decode: Decoder, size: int, limit: int) -> np.ndarray:
    """Up to `limit` of the images (a seeded sample), decoded as evaluation decodes, resized to size x size."""
    pixels = []
    for index, item in enumerate(sample(images.encoded, limit)):
        try:
            pixels.append(tflite.fit(decode(item.read_bytes() if isinstance(item, Path) else item), size))
        except tf.errors.OpError:
            name = item if isinstance(item, Path) else f"image {index} of {images.source}"
            raise ValueError(f"{name} is not a readable image.") from None
    return np.stack(pixels).astype(np.float32)


def sample(items: Sequence, limit: int, seed: int = SEED) -> list:
    """`items` if at most `limit`, else `limit` of them drawn with `seed`, in their order."""
    if len(items) <= limit:
        return list(items)
    chosen = np.random.default_rng(seed).choice(len(items), limit, replace=False)
    return [items[i] for i in sorted(chosen)]


def _float_probabilities(graph_def: tf.GraphDef, pixels: np.ndarray) -> np.ndarray:
    """The float graph's probabilities, one image per run (its input is [1, size, size, 3])."""
    with tf.Graph().as_default() as graph:
        tf.import_graph_def(graph_def, name="")
        with tf.Session(graph=graph) as session:
            return np.concatenate([session.run("probabilities:0", {f"{INPUT}:0": image[None]}) for image in pixels])


def tflite_info(model: TrainedModel, result: TFLiteResult, input_detail: dict) -> dict:
    """model.json of a .tflite: the contract (as the .pb's) and the quantization, calibration, verification."""
    size, classes = model.image_size, model.num_classes
    scale, zero_point = input_detail["quantization"]
    input_info = {"name": input_detail["name"], "dtype": result.input_dtype, "shape": [1, size, size, 3],
                  "values": f"one decoded RGB image resized to {size}x{size} (bilinear), pixel values in [0, 255]"}
    if result.input_dtype != "float32":
        input_info["quantization"] = {"scale": float(scale), "zero_point": int(zero_point),
                                      "feed": "round(pixel / scale + zero_point)"}
    return {
        "exported_by": EXPORTED_BY,
        "format": "tflite",
        "quantization": result.quantization,
        "net": model.net,
        "checkpoint": model.checkpoint,
        "global_step": model.global_step,
        "num_classes": classes,
        "image_size": size,
        "labels": LABELS_FILE,
        "input": input_info,
        "outputs": {
            "logits": {"name": "logits", "dtype": "float32", "shape": [1, classes]},
            "probabilities": {"name": "probabilities", "dtype": "float32", "shape": [1, classes]},
            "classes": {"name": "classes", "dtype": "int64", "shape": [1]},
        },
        "preprocessing": preprocessing_info(model),
        "calibration": {"images": result.calibration_images, "source": result.calibration}
        if result.calibration else None,
        "verification": {
            "against": "the float graph it was converted from, on the same images resized to the input size",
            "images": result.images,
            "source": result.verified_on,
            "top1_agreement": result.agreement,
            "min_agreement": result.min_agreement,
            "max_probability_difference": result.max_probability_difference,
        },
    }
