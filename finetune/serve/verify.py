"""The verification harness: an exported model, loaded as a client loads it, against evaluation's pipeline.

`verify(model, path, ...)` feeds the written model (`finetune.serve.served.ServedModel`) raw sample images
of the shapes clients send (`sample_images`: the net's size, tall, wide, smaller than the input, several
times larger) and compares its outputs with evaluation's own pipeline on the same images
(`evaluation_outputs`: `finetune.data.records.decode_image`, evaluation preprocessing, the checkpoint's
net). An image decoded as evaluation decodes it and fed as float, its file's bytes fed to a jpeg-input
graph, and `finetune eval` on the file give the same probabilities. The check fails (one-line
ValueError) above `tolerance` (TOLERANCE, 1e-4) for the probabilities or for the logits relative to
their scale (max |logit|, at least 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from finetune.runs.trained_model import TrainedModel
from finetune.serve.graph import OUTPUTS
from finetune.serve.served import ServedModel, encode
from nets.compat import tf

TOLERANCE = 1e-4


@dataclass
class Samples:
    """The sample images of one verification: raw pixels, what the model is fed, evaluation's outputs."""

    images: list[np.ndarray]
    inputs: list
    reference: dict[str, np.ndarray]

    @property
    def sizes(self) -> list[str]:
        return [f"{image.shape[0]}x{image.shape[1]}" for image in self.images]


def samples(model: TrainedModel, input_type: str) -> Samples:
    """Sample images for `model` and evaluation's outputs on them (PNG for a float model: exact pixels)."""
    images = sample_images(model.image_size)
    encoded = [encode(image, "PNG" if input_type == "float" else "JPEG") for image in images]
    return Samples(images, images if input_type == "float" else encoded, evaluation_outputs(model, encoded))


def verify(path: str | Path, samples: Samples, tolerance: float = TOLERANCE) -> dict[str, float]:
    """The written model at `path` (a .pb or SavedModel dir) on `samples`; its max differences from
    evaluation's outputs, or ValueError above `tolerance`."""
    with ServedModel(path) as served:
        differences = max_differences(samples.reference, served.run_images(samples.inputs))
    check(str(path), differences, tolerance)
    return differences


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


def check(name: str, differences: dict[str, float], tolerance: float) -> None:
    """ValueError (one line) when `differences` exceed `tolerance` (see the module docstring)."""
    worst = max(differences["logits_relative"], differences["probabilities"])
    if worst > tolerance:
        raise ValueError(
            f"exported {name} differs from the checkpoint graph by {worst:.3g} (> {tolerance:g}): "
            f"logits {differences['logits']:.3g}, probabilities {differences['probabilities']:.3g}; "
            "the export is not faithful, report this graph."
        )
