"""Find a checkpoint from what the user typed, and read its variable names, shapes and dtypes.

Everything here goes through TensorFlow's own readers (`tf.train.load_checkpoint`,
`tf.train.latest_checkpoint`), so V2 bundles (`.index` + `.data-*`) and V1 single-file `.ckpt`
checkpoints read alike.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from nets.compat import tf

# The files of one checkpoint, besides the V1 single file: strip these to get the prefix.
_CHECKPOINT_SUFFIX = re.compile(r"\.(index|meta|data-\d{5}-of-\d{5})$")


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of a checkpoint."""

    shape: tuple[int, ...]
    dtype: str

    @property
    def size(self) -> int:
        size = 1
        for dim in self.shape:
            size *= dim
        return size

    @property
    def nbytes(self) -> int:
        return self.size * tf.as_dtype(self.dtype).size


def _is_checkpoint_prefix(prefix: str) -> bool:
    """A V2 prefix (PREFIX.index exists) or a V1 single-file checkpoint."""
    if os.path.isfile(prefix + ".index"):
        return True
    return os.path.isfile(prefix) and not _CHECKPOINT_SUFFIX.search(prefix) and _readable(prefix)


def _readable(path: str) -> bool:
    try:
        tf.train.load_checkpoint(path)
    except Exception:  # noqa: BLE001 (TF raises several types for "not a checkpoint")
        return False
    return True


def latest_checkpoint(directory: str) -> str | None:
    """`tf.train.latest_checkpoint`, except that a copied folder uses its own files.

    TF-Slim (and any Saver without save_relative_paths) writes absolute paths into the `checkpoint`
    state file; a copy of such a folder would restore from the original location (or from nothing,
    once the original is gone). A path outside `directory` whose basename is a checkpoint inside it
    means that inside one.
    """
    state = tf.train.get_checkpoint_state(directory)
    if state and state.model_checkpoint_path:
        recorded = state.model_checkpoint_path
        local = os.path.join(directory, os.path.basename(recorded))
        outside = os.path.realpath(os.path.dirname(recorded)) != os.path.realpath(directory)
        if outside and _is_checkpoint_prefix(local):
            return local
    return tf.train.latest_checkpoint(directory)


def _latest_in_directory(directory: str) -> str | None:
    """The directory's latest checkpoint (its `checkpoint` state file), else its only checkpoint."""
    latest = latest_checkpoint(directory)
    if latest:
        return latest
    prefixes = sorted({_CHECKPOINT_SUFFIX.sub("", str(p)) for p in Path(directory).glob("*.index")})
    prefixes += sorted(str(p) for p in Path(directory).glob("*.ckpt") if _is_checkpoint_prefix(str(p)))
    if len(prefixes) > 1:
        listed = ", ".join(os.path.basename(p) for p in prefixes)
        raise ValueError(f"{directory} holds several checkpoints and no `checkpoint` file: {listed}. Name one.")
    return prefixes[0] if prefixes else None


def find_checkpoint(path: str) -> str | None:
    """The checkpoint prefix at a path: a prefix, a directory (its latest checkpoint) or a file of the
    checkpoint (`.index`, `.data-*`, `.meta`, V1 `.ckpt`); None when nothing is at the path.

    A directory without checkpoints is a FileNotFoundError, a file that is no checkpoint a ValueError.
    """
    path = os.path.expanduser(str(path))
    if os.path.isdir(path):
        latest = _latest_in_directory(path)
        if latest is None:
            raise FileNotFoundError(f"no checkpoint in directory {path}: expected a `checkpoint` file or *.index files")
        return latest
    prefix = _CHECKPOINT_SUFFIX.sub("", path)
    if _is_checkpoint_prefix(prefix):
        return prefix
    if os.path.isfile(path):
        raise ValueError(_not_a_checkpoint(path))
    return None


# Weights files `finetune convert-weights --from FORMAT` turns into checkpoints: file suffix -> (what, FORMAT).
_CONVERTIBLE = {".tflite": ("a TFLite model", "tflite"), ".h5": ("a Keras weights file", "keras")}


def _not_a_checkpoint(path: str) -> str:
    """The one line for a file that is no checkpoint; a weights file another format holds names the conversion."""
    what, source_format = _CONVERTIBLE.get(os.path.splitext(path)[1].lower(), (None, None))
    if what:
        return (f"{path} is {what}, not a TensorFlow checkpoint: convert it with `finetune convert-weights --from "
                f"{source_format} {path} --net NET --output CKPT`, then give --ckpt CKPT")
    return f"{path} is not a TensorFlow checkpoint (neither a V2 prefix/.index/.data file nor V1 .ckpt)"


def read_variables(prefix: str) -> dict[str, TensorInfo]:
    """Name -> TensorInfo of every tensor in the checkpoint at `prefix` (see resolve_checkpoint)."""
    try:
        reader = tf.train.load_checkpoint(prefix)
    except Exception as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"cannot read checkpoint {prefix}: {first}") from error
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()
    return {name: TensorInfo(tuple(shapes[name]), dtypes[name].name) for name in sorted(shapes)}


def checkpoint_problem(prefix: str) -> str | None:
    """Why the checkpoint at `prefix` does not read back whole (missing .index or data, truncated, corrupt), else
    None. Reads every tensor (TensorFlow checks each one's size and checksum), so it costs one pass over the data."""
    if not os.path.isfile(prefix + ".index") and not _is_checkpoint_prefix(prefix):
        return f"{os.path.basename(prefix)}.index is missing"
    try:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception as error:  # noqa: BLE001 (TF raises DataLoss, NotFound, IndexError, ... for a bad file)
        lines = [line for line in str(error).strip().splitlines() if line.strip()]
        detail = lines[0] if lines else type(error).__name__
        truncated = isinstance(error, IndexError) or "less bytes" in detail or "truncated" in detail.lower()
        return f"its data is truncated ({detail})" if truncated else f"it does not read ({detail[:200]})"
    return None


def verify_checkpoint(prefix: str) -> None:
    """ValueError naming the checkpoint when it does not read back whole (see checkpoint_problem)."""
    problem = checkpoint_problem(prefix)
    if problem is not None:
        raise ValueError(f"checkpoint {prefix} is unusable: {problem}. Download or copy it again, or give another "
                         "--ckpt.")


def checkpoint_table(prefix: str) -> str:
    """A table of the checkpoint's tensors (name, shape, dtype) with their count, parameters and bytes."""
    from tabulate import tabulate

    tensors = read_variables(prefix)
    rows = [(name, "[" + ",".join(map(str, t.shape)) + "]", t.dtype, t.size) for name, t in tensors.items()]
    parameters = sum(t.size for t in tensors.values())
    megabytes = sum(t.nbytes for t in tensors.values()) / 2**20
    table = tabulate(rows, headers=["variable", "shape", "dtype", "parameters"], intfmt=",")
    return f"{table}\n{prefix}: {len(tensors)} tensors, {parameters:,} parameters, {megabytes:.1f} MiB"
