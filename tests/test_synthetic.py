"""The procedural shapes dataset: layout, determinism, variety, speed."""

import time

import numpy as np
import pytest
from PIL import Image

from finetune.data import scan, synthetic


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_writes_an_image_folder_with_train_and_validation(tmp_path):
    classes = ["ring", "circle", "x"]
    root = synthetic.write_shapes_dataset(
        tmp_path / "shapes", classes, train_per_class=4, validation_per_class=2, image_size=40, seed=1
    )
    assert root == tmp_path / "shapes"
    for split, count in (("train", 4), ("validation", 2)):
        for name in classes:
            files = sorted((root / split / name).iterdir())
            assert len(files) == count
            image = _pixels(files[0])
            assert image.shape == (40, 40, 3) and image.dtype == np.uint8
    info = scan.scan_dataset(str(root))
    assert info.class_names == ["circle", "ring", "x"]
    assert info.num_examples == {"train": 12, "validation": 6}


def test_deterministic_per_seed_and_independent_of_other_classes(tmp_path):
    kwargs = {"train_per_class": 3, "validation_per_class": 1, "image_size": 32}
    a = synthetic.write_shapes_dataset(tmp_path / "a", ["square", "dots"], seed=7, **kwargs)
    b = synthetic.write_shapes_dataset(tmp_path / "b", ["dots"], seed=7, **kwargs)
    c = synthetic.write_shapes_dataset(tmp_path / "c", ["dots"], seed=8, **kwargs)
    for split in ("train", "validation"):
        for name in sorted(p.name for p in (b / split / "dots").iterdir()):
            np.testing.assert_array_equal(_pixels(a / split / "dots" / name), _pixels(b / split / "dots" / name))
            assert not np.array_equal(_pixels(b / split / "dots" / name), _pixels(c / split / "dots" / name))


def test_every_class_draws_varied_images():
    assert len(synthetic.SHAPE_CLASSES) >= 8
    for name in synthetic.SHAPE_CLASSES:
        images = [synthetic.draw_shape(name, 32, np.random.default_rng([3, i])) for i in range(3)]
        for image in images:
            assert image.shape == (32, 32, 3) and image.dtype == np.uint8
            assert image.std() > 5  # a pattern on a background, not a flat image
        assert not np.array_equal(images[0], images[1])


def test_patterns_are_dark_ink_on_light_paper():
    # The darkest pixels (the pattern) are well below the brightest ones (the background) in every image.
    for name in synthetic.SHAPE_CLASSES:
        for i in range(5):
            grey = synthetic.draw_shape(name, 48, np.random.default_rng([9, i])).astype(np.float32).mean(axis=2)
            dark, light = np.percentile(grey, [3, 60])
            assert light > 130 and light - dark > 60, (name, i, dark, light)


def test_texture_classes_have_more_edges_than_filled_shapes():
    # A measurable class signal: vertical stripes cross many more horizontal edges than a disc.
    def energy(name: str) -> np.ndarray:
        images = [synthetic.draw_shape(name, 32, np.random.default_rng([5, i])).astype(np.float32) for i in range(40)]
        edges = [np.abs(np.diff(im.mean(axis=2), axis=1)).mean() for im in images]
        return np.array(edges)

    stripes, circle = energy("stripes_v"), energy("circle")
    assert stripes.mean() > 2 * circle.mean()


def test_jpeg_format(tmp_path):
    root = synthetic.write_shapes_dataset(
        tmp_path / "j", ["plus"], train_per_class=1, validation_per_class=1, image_size=32, seed=0, image_format="jpeg"
    )
    assert [p.suffix for p in (root / "train" / "plus").iterdir()] == [".jpg"]


def test_rewrites_its_own_root_and_refuses_a_foreign_one(tmp_path):
    root = synthetic.write_shapes_dataset(
        tmp_path / "s", ["circle", "ring"], train_per_class=1, validation_per_class=1, image_size=16, seed=0
    )
    synthetic.write_shapes_dataset(root, ["square"], train_per_class=1, validation_per_class=1, image_size=16, seed=0)
    assert sorted(p.name for p in (root / "train").iterdir()) == ["square"]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "photo.jpg").write_bytes(b"x")
    with pytest.raises(ValueError, match="not empty"):
        synthetic.write_shapes_dataset(
            tmp_path / "mine", ["circle"], train_per_class=1, validation_per_class=1, image_size=16, seed=0
        )
    assert (tmp_path / "mine" / "photo.jpg").exists()


def test_unknown_class_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="hexagon"):
        synthetic.write_shapes_dataset(
            tmp_path / "s", ["hexagon"], train_per_class=1, validation_per_class=1, image_size=16, seed=0
        )


def test_a_few_hundred_images_in_seconds(tmp_path):
    start = time.perf_counter()
    synthetic.write_shapes_dataset(
        tmp_path / "s", synthetic.SHAPE_CLASSES, train_per_class=20, validation_per_class=5, image_size=64, seed=0
    )
    assert time.perf_counter() - start < 10.0


def test_an_interrupted_write_leaves_no_half_dataset(tmp_path, monkeypatch):
    calls = []
    draw = synthetic.draw_shape

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return draw(*args)

    monkeypatch.setattr(synthetic, "draw_shape", interrupted)
    kwargs = {"train_per_class": 2, "validation_per_class": 1, "image_size": 16, "seed": 0}
    with pytest.raises(KeyboardInterrupt):
        synthetic.write_shapes_dataset(tmp_path / "s", ["circle", "ring"], **kwargs)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(synthetic, "draw_shape", draw)
    root = synthetic.write_shapes_dataset(tmp_path / "s", ["circle", "ring"], **kwargs)
    assert (root / synthetic.MANIFEST).exists() and len(list(root.glob("*/*/*.png"))) == 6
