"""Files written whole, and the class-name list: the formats `RunDir` and export write with.

`write_atomically` writes text or bytes to a temporary file beside the target, flushed, then renamed
over it: a reader sees the old file or the new one, never a part; a failed write (disk full,
read-only) leaves the old file as it was and is one OSError naming the file and the space it needs.
The file gets the mode a plain `open` would give it (0666 less the umask), not mkstemp's 0600, so a
serving account can read an exported model. `write_json` writes strict JSON: a non-finite float
(NaN, Infinity) becomes null, never a token other readers refuse.

`LABELS_FILE` (labels.txt in a train dir and an export dir) holds class names, one a line, in label
order (`write_labels` / `read_labels`). It is not a TFRecord dataset's labels.txt, TF-Slim's
`label:name` lines (`finetune.data.scan.DATASET_LABELS_FILE`, read only by the dataset scanner):
a train dir's is found through `RunDir`, an export's through the model.json that names it, never
by looking for a labels.txt beside a file.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

LABELS_FILE = "labels.txt"  # class names, one a line (see the module docstring)
_DATASET_LINE = re.compile(r"(\d+):(.*)")  # TF-Slim's `label:name`, as a TFRecord dataset's labels.txt has


def write_atomically(path: str | Path, data: str | bytes) -> None:
    """Write `data` (text or bytes) to `path` whole: a temporary file beside it, flushed, then renamed over it.

    A failed write (disk full, read-only) leaves the old file as it was and is one OSError naming the file."""
    path = Path(path)
    temporary = None
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except OSError as error:
        free = shutil.disk_usage(path.parent).free if path.parent.is_dir() else 0
        size = len(data) if isinstance(data, bytes) else len(data.encode())
        raise OSError(error.errno, f"cannot write {path}: {error.strerror or error}; it needs about "
                      f"{megabytes(size)}, {megabytes(free)} free in {path.parent}: free space or "
                      "make it writable") from None
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


def finite_json(value):
    """`value` with every non-finite float replaced by None (JSON's null), in nested dicts, lists and tuples."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(item) for item in value]
    return value


def json_text(value, indent: int = 1) -> str:
    """Strict JSON text of `value` (non-finite floats as null), ending in a newline."""
    return json.dumps(finite_json(value), indent=indent, allow_nan=False) + "\n"


def write_json(path: str | Path, value: dict) -> None:
    write_atomically(path, json_text(value))


def read_json(path: str | Path) -> dict | None:
    """The JSON object in `path`, or None when there is no such file."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else None


def write_labels(path: str | Path, class_names: Sequence[str]) -> None:
    """labels.txt: one class name per line, in label order."""
    write_atomically(path, "".join(f"{name}\n" for name in class_names))


def read_labels(path: str | Path) -> list[str]:
    """Class names from a labels.txt of one name per line, in label order.

    ValueError (one line) for a TFRecord dataset's labels.txt (every line `i:name`, i = 0, 1, ...): its lines
    are not class names."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"labels file {path} not found: give a text file with one class name per line.")
    names = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    matches = [_DATASET_LINE.fullmatch(name) for name in names]
    if names and all(m and int(m.group(1)) == i for i, m in enumerate(matches)):
        raise ValueError(f"{path} is a TFRecord dataset's labels.txt (TF-Slim `label:name` lines), not class names "
                         "one per line: give the labels.txt of a train dir or an export.")
    return names


def megabytes(size: int) -> str:
    return f"{size / 2**20:.1f} MB"
