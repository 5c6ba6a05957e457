"""TF-Slim's inception and vgg preprocessing: shapes, ranges, train vs eval behaviour."""

import numpy as np
import pytest

from finetune.data import preprocessing
from nets.compat import tf


def _run(image: np.ndarray, size: int, is_training: bool, style: str, repeats: int = 1, **kwargs) -> np.ndarray:
    """Preprocess `image` `repeats` times in a new graph; returns [repeats, size, size, 3]."""
    with tf.Graph().as_default():
        placeholder = tf.placeholder(image.dtype, [None, None, 3])
        out = preprocessing.preprocess_image(placeholder, size, size, is_training, style, **kwargs)
        session = tf.Session()
    with session:
        return np.stack([session.run(out, {placeholder: image}) for _ in range(repeats)])


def _ramp(height: int = 48, width: int = 64) -> np.ndarray:
    """uint8 image whose red channel rises left to right (to see flips) and blue falls top to bottom."""
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = np.linspace(0, 255, width)[None, :]
    image[..., 2] = np.linspace(255, 0, height)[:, None]
    return image


@pytest.mark.parametrize("style", ["inception", "vgg"])
@pytest.mark.parametrize("is_training", [True, False])
def test_output_shape_and_dtype(style, is_training):
    out = _run(_ramp(), 32, is_training, style)[0]
    assert out.shape == (32, 32, 3) and out.dtype == np.float32
    if style == "inception":
        assert -1.0 <= out.min() and out.max() <= 1.0
    else:
        means = np.array(preprocessing.VGG_RGB_MEANS)
        assert np.all(out >= -means - 1e-3) and np.all(out <= 255 - means + 1e-3)


def test_static_shape_is_set(graph):
    out = preprocessing.preprocess_image(tf.placeholder(tf.uint8, [None, None, 3]), 24, 40, True, "inception")
    assert out.shape.as_list() == [24, 40, 3]


def test_inception_scales_to_minus_one_one():
    image = np.zeros((40, 40, 3), np.uint8)
    image[..., 0], image[..., 2] = 255, 0
    out = _run(image, 16, False, "inception")[0]
    np.testing.assert_allclose(out[..., 0], 1.0, atol=1e-6)
    np.testing.assert_allclose(out[..., 2], -1.0, atol=1e-6)


def test_inception_eval_central_crop_drops_the_border():
    # A 3-px red frame around a blue 64x64 image: the central 87.5% (56 px) keeps none of it.
    image = np.zeros((64, 64, 3), np.uint8)
    image[..., 2] = 255
    image[:3], image[-3:], image[:, :3], image[:, -3:] = (255, 0, 0), (255, 0, 0), (255, 0, 0), (255, 0, 0)
    out = _run(image, 28, False, "inception")[0]
    np.testing.assert_allclose(out[..., 0], -1.0, atol=1e-5)
    np.testing.assert_allclose(out[..., 2], 1.0, atol=1e-5)


def test_vgg_subtracts_the_rgb_means():
    image = np.full((50, 70, 3), 200, np.uint8)
    out = _run(image, 32, False, "vgg")[0]
    expected = 200.0 - np.array(preprocessing.VGG_RGB_MEANS, np.float32)
    np.testing.assert_allclose(out, np.broadcast_to(expected, out.shape), atol=1e-3)


def test_vgg_eval_is_the_central_crop_of_the_aspect_preserving_resize():
    # A 100x50 (h x w) image with distinct top and bottom: resizing the short side to 37 px for a
    # 32-px crop (256/224 of it) gives 74x37; the central crop must see neither extreme row.
    image = np.zeros((100, 50, 3), np.uint8)
    image[:10] = 255
    image[-10:] = 128
    out = _run(image, 32, False, "vgg")[0] + np.array(preprocessing.VGG_RGB_MEANS, np.float32)
    np.testing.assert_allclose(out, 0.0, atol=1e-3)
    assert preprocessing._vgg_resize_range(224, 224) == (256, 512)


@pytest.mark.parametrize("style", ["inception", "vgg"])
def test_eval_is_deterministic_and_train_is_random(style):
    image = _ramp()
    evals = _run(image, 32, False, style, repeats=3)
    np.testing.assert_array_equal(evals[0], evals[1])
    np.testing.assert_array_equal(evals[0], evals[2])
    trains = _run(image, 32, True, style, repeats=6)
    assert not all(np.allclose(trains[0], t) for t in trains[1:])
    assert not any(np.allclose(evals[0], t) for t in trains)


@pytest.mark.parametrize("style", ["inception", "vgg"])
def test_training_flips_left_right_sometimes(style):
    # The ramp's red channel rises to the right; a flipped crop falls to the right.
    outs = _run(_ramp(), 24, True, style, repeats=16, color_distortion=False)
    slopes = np.sign(outs[:, :, -1, 0].mean(axis=1) - outs[:, :, 0, 0].mean(axis=1))
    assert (slopes > 0).any() and (slopes < 0).any()


def test_float_and_uint8_inputs_agree():
    image = _ramp()
    as_uint8 = _run(image, 32, False, "inception")[0]
    as_float = _run(image.astype(np.float32) / 255.0, 32, False, "inception")[0]
    np.testing.assert_allclose(as_uint8, as_float, atol=1e-5)


@pytest.mark.parametrize("style", ["inception", "vgg"])
def test_decoded_uint8_and_served_float_pixels_give_identical_inputs(style):
    """Evaluation feeds the decoded uint8 image, the exported graph the same pixels as float32 in [0, 255]
    through pixels_to_unit: the net sees bit-identical inputs, for a tall, a wide and a small image."""
    rng = np.random.default_rng(0)
    for height, width in ((91, 30), (27, 120), (9, 13)):
        image = rng.integers(0, 256, [height, width, 3], dtype=np.uint8)
        with tf.Graph().as_default():
            pixels = tf.placeholder(tf.float32, [None, None, 3])
            served = preprocessing.preprocess_image(preprocessing.pixels_to_unit(pixels), 32, 32, False, style)
            with tf.Session() as session:
                as_served = session.run(served, {pixels: image.astype(np.float32)})
        np.testing.assert_array_equal(_run(image, 32, False, style)[0], as_served)


def test_color_distortion_can_be_turned_off():
    # Without distortion a flat grey image stays flat grey whatever crop or flip is drawn.
    image = np.full((40, 40, 3), 128, np.uint8)
    plain = _run(image, 16, True, "inception", repeats=4, color_distortion=False)
    np.testing.assert_allclose(plain, (128 / 255 - 0.5) * 2, atol=1e-5)
    distorted = _run(image, 16, True, "inception", repeats=4)
    assert not np.allclose(distorted, (128 / 255 - 0.5) * 2, atol=1e-3)


def test_crop_min_area_one_keeps_the_whole_image_and_the_default_crops():
    # A square image at its own size: a crop of all of its area is the image itself (or its mirror).
    image = _ramp(32, 32)
    whole = (image / 255.0 - 0.5) * 2.0
    outs = _run(image, 32, True, "inception", repeats=8, color_distortion=False, crop_min_area=1.0)
    for out in outs:
        assert np.allclose(out, whole, atol=1e-5) or np.allclose(out, whole[:, ::-1], atol=1e-5)
    cropped = _run(image, 32, True, "inception", repeats=8, color_distortion=False)
    assert not all(np.allclose(out, whole, atol=1e-3) or np.allclose(out, whole[:, ::-1], atol=1e-3)
                   for out in cropped)


def test_crop_min_area_default_is_tf_slims_and_bad_values_are_errors(graph):
    from finetune.config import RunConfig

    assert preprocessing.CROP_AREA_RANGE == (0.05, 1.0)
    assert RunConfig.__dataclass_fields__["crop_min_area"].default == preprocessing.CROP_AREA_RANGE[0]
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="crop_min_area must be in"):
            preprocessing.preprocess_image(tf.zeros([8, 8, 3], tf.uint8), 8, 8, True, "inception", crop_min_area=bad)


def test_unknown_style_is_a_one_line_error(graph):
    with pytest.raises(ValueError, match="Unknown preprocessing style 'resnet'.*inception, vgg"):
        preprocessing.preprocess_image(tf.zeros([8, 8, 3], tf.uint8), 8, 8, False, "resnet")
