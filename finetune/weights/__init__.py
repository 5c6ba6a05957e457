"""Weights from outside TF-Slim: convert another format's file into a TF-Slim checkpoint of a zoo net, then prove it.

`convert(source_format, path, net, output)` reads the file with its format's reader (one module per
format in this package, each with `FORMAT`, `TOLERANCE_TEXT` and `read(path, spec, image_size) -> Source`), writes
every variable of the zoo net under its published TF-Slim name, then builds the net again in a fresh
graph, restores the new checkpoint by name and runs it on the same images as the source's own runtime
(each side after its own preprocessing). A difference above the format's tolerance is a
`ConversionError`: a checkpoint that does not reproduce its source is not kept.
"""

from __future__ import annotations

import dataclasses
import glob
import importlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from checkpoints import scopes
from finetune import choices
from finetune.runs.files import write_json

FORMATS = choices.WEIGHT_FORMATS
NUM_CHECK_IMAGES = 2
CONVERSION_SUFFIX = ".conversion.json"  # beside a checkpoint convert-weights wrote: what it was verified against
# ... which training reads (finetune.train.resolve): "net", "image_size" (the size verified at, the source's) and
# "batch_norm_folded" (true: BatchNorm must stay in inference mode, its statistics identity placeholders)
_CHECKPOINT_FILE = re.compile(r"\.(index|data-\d+-of-\d+)$")


class ConversionError(ValueError):
    """The file cannot be converted exactly into the net (one line: what and why)."""


@dataclass
class Source:
    """What a format reader hands back: the net's variables and the source's own runtime.

    values: published TF-Slim variable name -> array (already in TF-Slim's layout).
    net_kwargs: extra arguments to build the net the way the values fit (e.g. create_aux_logits=False).
    image_size: the size the verification runs at (the source's input size where it has one).
    net_inputs: uint8 images [B, S, S, 3] -> the float tensor the TF-Slim net takes (the source's
      preprocessing, written for the TF-Slim net; e.g. a BGR->RGB swap already folded into the weights).
    reference: uint8 images -> the source runtime's output for `end_point`.
    end_point: the net end point compared ("Logits", or a feature end point for a file without classifier).
    tolerance: the largest max |difference| accepted; `relative` divides it by max |reference|.
    """

    values: dict[str, np.ndarray]
    num_classes: int
    image_size: int
    net_inputs: Callable[[np.ndarray], np.ndarray]
    reference: Callable[[np.ndarray], np.ndarray]
    end_point: str = "Logits"
    tolerance: float = 1e-4
    relative: bool = True
    net_kwargs: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    absent_scopes: tuple[str, ...] = ()  # net scopes the file has no weights for: not written (they start fresh)
    batch_norm_folded: bool = False  # BatchNorm written as identity around a folded bias: exact only while frozen


@dataclass
class Result:
    checkpoint: str
    net: str
    num_classes: int
    variables: int
    max_difference: float
    mean_difference: float
    relative_difference: float
    tolerance: float
    relative: bool
    end_point: str
    image_size: int
    images: int
    top1_agreement: float | None
    notes: list[str]

    def summary(self) -> str:
        kind = "relative" if self.relative else "absolute"
        lines = [
            f"wrote {self.checkpoint} ({self.variables} variables of {self.net}, {self.num_classes} classes)",
            f"verified on {self.images} images at {self.image_size} px: {self.end_point} max |difference| "
            f"{self.max_difference:.3g} (mean {self.mean_difference:.3g}, relative {self.relative_difference:.3g}; "
            f"{kind} tolerance {self.tolerance:.3g})"
            + (f", top-1 agreement {self.top1_agreement:.0%}" if self.top1_agreement is not None else ""),
        ]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def reader(source_format: str):
    if source_format not in FORMATS:
        raise ConversionError(f"unknown weights format {source_format!r}: use one of {', '.join(FORMATS)}.")
    return importlib.import_module(f"finetune.weights.{source_format}_format")


def load_images(paths: Sequence[str], size: int) -> np.ndarray:
    """uint8 [B, size, size, 3]: each image resized (bilinear, no crop) to the square input."""
    from PIL import Image, UnidentifiedImageError

    images = []
    for path in paths:
        try:
            with Image.open(path) as image:
                images.append(np.asarray(image.convert("RGB").resize((size, size), Image.BILINEAR), np.uint8))
        except FileNotFoundError as error:
            raise ConversionError(f"image {path} not found: give existing image files to --images.") from error
        except UnidentifiedImageError as error:
            raise ConversionError(f"{path} is not a readable image: give JPEG/PNG files to --images.") from error
    return np.stack(images)


def random_images(size: int, count: int = NUM_CHECK_IMAGES, seed: int = 0) -> np.ndarray:
    """Seeded smooth random images (noise blurred by upsampling), uint8 [count, size, size, 3]."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(count, max(size // 8, 1), max(size // 8, 1), 3)).astype(np.float32)
    reps = -(-size // coarse.shape[1])
    fine = np.repeat(np.repeat(coarse, reps, axis=1), reps, axis=2)[:, :size, :size]
    noise = rng.normal(0, 12, size=fine.shape)
    return np.clip(fine + noise, 0, 255).astype(np.uint8)


def _build(net: str, num_classes: int, image_size: int, net_kwargs: dict):
    """The net in the current graph on a float placeholder: (placeholder, end_points, variables)."""
    from nets import nets_factory
    from nets.compat import tf

    network_fn = nets_factory.get_network_fn(net, num_classes)
    images = tf.placeholder(tf.float32, [None, image_size, image_size, 3], name="images")
    logits, end_points = network_fn(images, **net_kwargs)
    end_points = dict(end_points)
    end_points.setdefault("Logits", logits)
    return images, end_points, tf.global_variables()


def _variable_of(tensor) -> str | None:
    """The variable a tensor reads (through Identity / ReadVariableOp), or None."""
    op = tensor.op
    while op.type in ("Identity", "ReadVariableOp", "Enter") and op.inputs:
        op = op.inputs[0].op
    return op.name if op.type in ("VarHandleOp", "VariableV2") else None


def _batch_norm_epsilons(graph) -> dict[str, float]:
    """Variable scope of each BatchNorm -> the epsilon its fused op uses (found through the moving mean it reads)."""
    epsilons = {}
    for op in graph.get_operations():
        if op.type.startswith("FusedBatchNorm"):
            variable = _variable_of(op.inputs[3])
            if variable:
                epsilons[variable.rsplit("/", 1)[0]] = op.get_attr("epsilon")
    return epsilons


def batch_norm_epsilons(net: str, num_classes: int, image_size: int, net_kwargs: dict | None = None) -> dict:
    """Variable scope of each BatchNorm of the net (e.g. 'MobilenetV1/Conv2d_0/BatchNorm') -> its epsilon."""
    from nets.compat import tf

    with tf.Graph().as_default() as graph:
        _build(net, num_classes, image_size, net_kwargs or {})
        return {scope: eps for scope, eps in _batch_norm_epsilons(graph).items()}


def _in_scopes(name: str, scope_list: Sequence[str]) -> bool:
    """Whether `name` lies under one of `scope_list` (checkpoints.scopes' rule: at a scope boundary)."""
    return scopes.matching_scope(name, scope_list) is not None


def write_checkpoint(net: str, source: Source, output: str) -> tuple[str, int]:
    """Assign every variable of the net from `source.values` and save; every variable must be covered exactly."""
    from nets.compat import tf

    with tf.Graph().as_default():
        _, _, variables = _build(net, source.num_classes, source.image_size, source.net_kwargs)
        names = {v.op.name: v for v in variables if not _in_scopes(v.op.name, source.absent_scopes)}
        missing = sorted(set(names) - set(source.values))
        extra = sorted(set(source.values) - set(names))
        if missing or extra:
            what = (f"{len(missing)} variables of {net} have no value in the file (e.g. {', '.join(missing[:3])})"
                    if missing else f"{len(extra)} converted values are not variables of {net} "
                    f"(e.g. {', '.join(extra[:3])})")
            raise ConversionError(f"{what}: the file is not a {net} (check --net).")
        for name, variable in names.items():
            want = tuple(variable.shape.as_list())
            if tuple(source.values[name].shape) != want:
                raise ConversionError(f"{name}: the file gives shape {source.values[name].shape}, {net} has {want}: "
                                      f"the file is not a {net} of this width or class count (check --net).")
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        saver = tf.train.Saver(list(names.values()), write_version=tf.train.SaverDef.V2)
        feeds, assigns = {}, []
        for name, variable in names.items():
            value = tf.placeholder(variable.dtype.base_dtype, variable.shape)
            feeds[value] = source.values[name].astype(variable.dtype.base_dtype.as_numpy_dtype)
            assigns.append(variable.assign(value))
        with tf.Session() as session:
            session.run(assigns, feeds)
            path = saver.save(session, output, write_meta_graph=False, write_state=False)
    return path, len(names)


def net_outputs(net: str, checkpoint: str, source: Source, images: np.ndarray) -> np.ndarray:
    """The TF-Slim net rebuilt in a fresh graph, restored from `checkpoint` by name, on the source's inputs."""
    from nets.compat import tf

    with tf.Graph().as_default():
        placeholder, end_points, variables = _build(net, source.num_classes, source.image_size, source.net_kwargs)
        if source.end_point not in end_points:
            raise ConversionError(f"{net} has no end point {source.end_point!r}.")
        output = end_points[source.end_point]
        restored = [v for v in variables if not _in_scopes(v.op.name, source.absent_scopes)]
        with tf.Session() as session:
            session.run(tf.variables_initializer([v for v in variables if v not in restored]))
            tf.train.Saver(restored).restore(session, checkpoint)
            return session.run(output, {placeholder: source.net_inputs(images)})


def compare(ours: np.ndarray, reference: np.ndarray) -> tuple[float, float, float, float | None]:
    """(max |difference|, mean |difference|, max relative to max |reference|, top-1 agreement of [B, C] outputs)."""
    ours = np.asarray(ours, np.float64).reshape(reference.shape)
    difference = float(np.max(np.abs(ours - reference)))
    mean = float(np.mean(np.abs(ours - reference)))
    relative = difference / max(float(np.max(np.abs(reference))), 1e-12)
    top1 = None
    if ours.ndim == 2:
        top1 = float(np.mean(np.argmax(ours, 1) == np.argmax(reference, 1)))
    return difference, mean, relative, top1


def check_output(output: str, overwrite: bool) -> None:
    """Refuse, in one line and before any work, an --output that holds a checkpoint: one convert-weights did not
    write (no `.conversion.json` beside it) always, an earlier conversion unless `overwrite`. Export's rule."""
    existing = [p.name for p in _checkpoint_files(output)] + ([Path(output).name] if Path(output).is_file() else [])
    if not existing:
        return
    if not Path(output + CONVERSION_SUFFIX).is_file():
        raise ConversionError(f"{output} is a checkpoint convert-weights did not write ({existing[0]}): it is never "
                              "replaced; give another --output.")
    if not overwrite:
        raise ConversionError(f"{output} holds an earlier conversion: give --overwrite to replace it, or another "
                              "--output.")


def _move_checkpoint(source: str, target: str) -> None:
    """The checkpoint files of prefix `source` renamed to prefix `target` (data before index: a reader finds the
    index last), and whatever else `target` held removed."""
    for path in _checkpoint_files(target):
        path.unlink()
    moved = sorted(_checkpoint_files(source), key=lambda p: p.name.endswith(".index"))
    for path in moved:
        path.replace(target + path.name[len(Path(source).name):])


def _checkpoint_files(prefix: str) -> list[Path]:
    """The V2 checkpoint files of `prefix` (.index, .data-*), sorted."""
    name = Path(prefix).name
    return sorted(p for p in Path(prefix).parent.glob(glob.escape(name) + ".*")
                  if _CHECKPOINT_FILE.fullmatch(p.name[len(name):]))


def _remove_checkpoint(prefix: str) -> None:
    for path in _checkpoint_files(prefix):
        path.unlink(missing_ok=True)


def convert(source_format: str, path: str, net: str, output: str, image_paths: Sequence[str] = (),
            image_size: int | None = None, *, overwrite: bool = False) -> Result:
    """Convert `path` into a TF-Slim checkpoint of `net` at `output`, verified against the source's runtime.

    The checkpoint is written beside `output` under a temporary name and takes its place only once verified, so
    a failed conversion leaves `output` as it was; `check_output` says what may be replaced."""
    from nets import nets_factory

    spec = nets_factory.get_spec(net)
    if not Path(path).is_file():
        raise ConversionError(f"weights file {path} not found: give the {source_format} file to convert.")
    check_output(output, overwrite)
    source = reader(source_format).read(path, spec, image_size)
    images = (load_images(image_paths, source.image_size) if image_paths
              else random_images(source.image_size))
    staging = str(Path(output).parent / f".{Path(output).name}.converting")
    try:
        checkpoint, count = write_checkpoint(net, source, staging)
        result = _verify(source_format, path, net, source, images, checkpoint, count)
        _move_checkpoint(staging, output)
    finally:
        _remove_checkpoint(staging)
    result = dataclasses.replace(result, checkpoint=output)
    write_json(output + CONVERSION_SUFFIX,
               dict(result.__dict__) | {"source": str(path), "format": source_format,
                                        "batch_norm_folded": source.batch_norm_folded})
    return result


def _verify(source_format: str, path: str, net: str, source: Source, images: np.ndarray, checkpoint: str,
            count: int) -> Result:
    """The conversion's Result, or ConversionError when the net on `checkpoint` does not reproduce the source."""
    reference = np.asarray(source.reference(images), np.float64)
    ours = net_outputs(net, checkpoint, source, images)
    difference, mean, relative, top1 = compare(ours, reference)
    measured = relative if source.relative else difference
    if not measured <= source.tolerance:  # NaN fails too
        raise ConversionError(
            f"the converted {net} does not reproduce {path}: {source.end_point} differ by {difference:.3g} "
            f"(relative {relative:.3g}) > tolerance {source.tolerance:.3g}; the checkpoint was not kept.")
    return Result(checkpoint, net, source.num_classes, count, difference, mean, relative, source.tolerance,
                  source.relative, source.end_point, source.image_size, len(images), top1, source.notes)
