"""The nets' own image preprocessing, in TF-Slim's two styles, written with TensorFlow's image ops.

`preprocess_image(image, height, width, is_training, style)` turns one decoded image (uint8 [h, w, 3],
or float [h, w, 3] in [0, 1]) into the float32 [height, width, 3] tensor the net expects:

- ``inception`` (Inception, Inception-ResNet, MobileNet, NASNet, ... in TF-Slim): training takes a
  random crop covering 5-100% of the image with aspect ratio 3/4-4/3 (at least 10% of the whole
  image, up to 100 attempts; `crop_min_area` raises the 5% for small images whose object a small
  crop would cut out), resizes it bilinearly, flips left-right at random and, optionally,
  distorts brightness (max delta 32/255) and saturation ([0.5, 1.5]); evaluation keeps the central
  87.5% and resizes. Both scale to [-1, 1].
- ``vgg`` (VGG, ResNet v1): training resizes the smallest side to a random length in [256, 512],
  takes a random height x width crop and flips at random; evaluation resizes the smallest side to
  256 and takes the central crop. Both subtract the ImageNet RGB means (123.68, 116.78, 103.94)
  from [0, 255] pixel values. The 256/512 range is TF-Slim's for 224-px crops; for other crop sizes
  it scales with the crop (e.g. [73, 146] for 64 px), so a small crop still sees most of the image.

The exported graph (finetune.serve.export) runs the evaluation version on the decoded image it is given,
of any size, so evaluation, `finetune predict` and a plain TensorFlow client see the same pixels:
a decoded uint8 image (evaluation) and the same pixel values as float32 in [0, 255] (the exported
graph's float input, through `pixels_to_unit`) give bit-identical net inputs. This module has no state.
"""

from __future__ import annotations

from collections.abc import Callable

from nets.compat import tf

# isort: split
import tensorflow as tf2  # after nets.compat, which sets TensorFlow's log level

# TF-Slim's inception_preprocessing facts.
CENTRAL_FRACTION = 0.875
CROP_MIN_OBJECT_COVERED = 0.1
CROP_ASPECT_RATIO_RANGE = (0.75, 1.33)
CROP_AREA_RANGE = (0.05, 1.0)
CROP_MAX_ATTEMPTS = 100
BRIGHTNESS_MAX_DELTA = 32.0 / 255.0
SATURATION_RANGE = (0.5, 1.5)

# TF-Slim's vgg_preprocessing facts.
VGG_RGB_MEANS = (123.68, 116.78, 103.94)
VGG_RESIZE_SIDE_MIN = 256
VGG_RESIZE_SIDE_MAX = 512
VGG_REFERENCE_CROP = 224


def pixels_to_unit(pixels: tf.Tensor) -> tf.Tensor:
    """Pixel values in [0, 255], uint8 or float, -> float32 in [0, 1]: the same arithmetic for both
    (TensorFlow's uint8 `convert_image_dtype`: cast, then times 1/255)."""
    return tf.cast(pixels, tf.float32) * (1.0 / 255.0)


def _to_unit_float(image: tf.Tensor) -> tf.Tensor:
    """uint8 -> float32 in [0, 1]; float images are taken to be in [0, 1] already."""
    image = tf.convert_to_tensor(image)
    if image.dtype == tf.uint8:
        return pixels_to_unit(image)
    if image.dtype.is_integer:
        return tf.image.convert_image_dtype(image, tf.float32)
    return tf.cast(image, tf.float32)


def _op_seeds(seed: tf.Tensor | None, count: int) -> list[tf.Tensor]:
    """`count` independent stateless seeds (int64 [2]) split from one image's seed.

    `seed` None draws that image seed from TensorFlow's stateful generator (it follows the graph seed,
    but which image gets which draw depends on the thread that runs it).
    """
    if seed is None:
        seed = tf.random.uniform([2], maxval=tf.int64.max, dtype=tf.int64)
    return tf.unstack(tf2.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=count))


def _random_crop_box(image: tf.Tensor, seed: tf.Tensor, min_area: float) -> tf.Tensor:
    """A random crop of the image as Inception trains: TF-Slim's distorted bounding box, covering
    `min_area`-100% of the image."""
    whole_image = tf.constant([[[0.0, 0.0, 1.0, 1.0]]])
    begin, size, _ = tf2.image.stateless_sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=whole_image,
        seed=seed,
        min_object_covered=CROP_MIN_OBJECT_COVERED,
        aspect_ratio_range=CROP_ASPECT_RATIO_RANGE,
        area_range=(min_area, CROP_AREA_RANGE[1]),
        max_attempts=CROP_MAX_ATTEMPTS,
        use_image_if_no_bounding_boxes=True,
    )
    return tf.slice(image, begin, size)


def _distort_color(image: tf.Tensor, brightness_seed: tf.Tensor, saturation_seed: tf.Tensor) -> tf.Tensor:
    """TF-Slim's fast-mode colour distortion: brightness, then saturation, clipped to [0, 1]."""
    image = tf2.image.stateless_random_brightness(image, BRIGHTNESS_MAX_DELTA, seed=brightness_seed)
    image = tf2.image.stateless_random_saturation(image, *SATURATION_RANGE, seed=saturation_seed)
    return tf.clip_by_value(image, 0.0, 1.0)


def _resize(image: tf.Tensor, height: int, width: int) -> tf.Tensor:
    return tf2.image.resize(image, [height, width], method="bilinear")


def inception_preprocessing(
    image: tf.Tensor,
    height: int,
    width: int,
    is_training: bool,
    *,
    color_distortion: bool = True,
    crop_min_area: float = CROP_AREA_RANGE[0],
    seed: tf.Tensor | None = None,
) -> tf.Tensor:
    """See the module docstring; returns float32 [height, width, 3] in [-1, 1]."""
    if is_training:
        crop_seed, flip_seed, brightness_seed, saturation_seed = _op_seeds(seed, 4)
        image = _resize(_random_crop_box(_to_unit_float(image), crop_seed, crop_min_area), height, width)
        image = tf2.image.stateless_random_flip_left_right(image, seed=flip_seed)
        if color_distortion:
            image = _distort_color(image, brightness_seed, saturation_seed)
    else:
        # Crop first (a slice: the same values either way) so a large image is converted to float only
        # in its central part.
        image = _resize(_to_unit_float(tf.image.central_crop(image, CENTRAL_FRACTION)), height, width)
    return (image - 0.5) * 2.0


def _resize_smallest_side(image: tf.Tensor, smallest_side: tf.Tensor) -> tf.Tensor:
    """Resize keeping the aspect ratio so that the smaller side is `smallest_side` pixels."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.cast(smallest_side, tf.float32) / tf.reduce_min(shape)
    new_shape = tf.cast(tf.math.round(shape * scale), tf.int32)
    return tf2.image.resize(image, new_shape, method="bilinear")


def _vgg_resize_range(height: int, width: int) -> tuple[int, int]:
    """TF-Slim's [256, 512] for 224-px crops, scaled to this crop size."""
    ratio = max(height, width) / VGG_REFERENCE_CROP
    return round(VGG_RESIZE_SIDE_MIN * ratio), round(VGG_RESIZE_SIDE_MAX * ratio)


def _central_crop(image: tf.Tensor, height: int, width: int) -> tf.Tensor:
    shape = tf.shape(image)
    top = (shape[0] - height) // 2
    left = (shape[1] - width) // 2
    return tf.slice(image, [top, left, 0], [height, width, -1])


def vgg_preprocessing(
    image: tf.Tensor,
    height: int,
    width: int,
    is_training: bool,
    *,
    color_distortion: bool = True,
    crop_min_area: float = CROP_AREA_RANGE[0],
    seed: tf.Tensor | None = None,
) -> tf.Tensor:
    """See the module docstring; returns float32 [height, width, 3], mean-subtracted [0, 255] values.

    `color_distortion` and `crop_min_area` are accepted for a uniform signature; TF-Slim's VGG
    preprocessing has no colour distortion and crops by its resize range instead.
    """
    del color_distortion, crop_min_area
    image = _to_unit_float(image) * 255.0
    side_min, side_max = _vgg_resize_range(height, width)
    if is_training:
        side_seed, crop_seed, flip_seed = _op_seeds(seed, 3)
        side = tf2.random.stateless_uniform([], side_seed, side_min, side_max + 1, dtype=tf.int32)
        image = tf2.image.stateless_random_crop(_resize_smallest_side(image, side), [height, width, 3], crop_seed)
        image = tf2.image.stateless_random_flip_left_right(image, seed=flip_seed)
    else:
        image = _central_crop(_resize_smallest_side(image, side_min), height, width)
    return image - tf.constant(VGG_RGB_MEANS, dtype=tf.float32)


def describe_evaluation(style: str, height: int, width: int) -> str:
    """In words, what the evaluation mode of `style` does to a decoded image of any size."""
    if style == "inception":
        return (f"central {CENTRAL_FRACTION:.1%} crop, bilinear resize to {height}x{width}, "
                "pixel values scaled from [0, 255] to [-1, 1]")
    side = _vgg_resize_range(height, width)[0]
    return (f"bilinear resize of the smaller side to {side} (aspect ratio kept), central {height}x{width} crop, "
            f"RGB means {VGG_RGB_MEANS} subtracted from the [0, 255] values")


STYLES: dict[str, Callable[..., tf.Tensor]] = {
    "inception": inception_preprocessing,
    "vgg": vgg_preprocessing,
}


def preprocess_image(
    image: tf.Tensor,
    height: int,
    width: int,
    is_training: bool,
    style: str,
    *,
    color_distortion: bool = True,
    crop_min_area: float = CROP_AREA_RANGE[0],
    seed: tf.Tensor | None = None,
) -> tf.Tensor:
    """Preprocess one image [h, w, 3] (uint8, or float in [0, 1]) as the net's style does.

    Returns float32 [height, width, 3]. `color_distortion` and `crop_min_area` (the smallest share of
    the image's area a random crop keeps, TF-Slim's 0.05 by default) apply to the inception style's
    training mode only. `seed` (int [2], training mode only) seeds this image's random crop, flip and colours:
    every random op is stateless, so the same seed gives the same pixels whichever thread runs it (the
    input pipeline gives each image of the stream its own, see finetune.data.pipeline); None draws one.
    """
    if style not in STYLES:
        raise ValueError(f"Unknown preprocessing style {style!r}: choose one of {', '.join(STYLES)}.")
    if not 0 < crop_min_area <= CROP_AREA_RANGE[1]:
        raise ValueError(f"crop_min_area must be in (0, 1], got {crop_min_area}.")
    image = STYLES[style](image, height, width, is_training, color_distortion=color_distortion,
                          crop_min_area=crop_min_area, seed=seed)
    image.set_shape([height, width, 3])
    return image
