"""The skipped-image report: why each image the pipeline skipped does not decode, and quiet decoders.

The pipeline (finetune.data.pipeline) skips an image that does not decode and keeps its name in the
session (`skipped_image_names`): a file's path, or a TFRecord shard's path and the record's number
('SHARD#N'). `describe_skipped(info, names)` reads each one's bytes again and says why, in words, from
its format ("truncated JPEG", "not an image file"); `format_skipped` makes that one line. TensorFlow's
decoders write their own messages about a bad image straight to stderr: `decoder_messages_dropped()`
drops them for a block (the run names each skipped image once instead).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path

from finetune.data.records import DatasetInfo
from nets.compat import tf


def _display_name(info: DatasetInfo, name: str) -> str:
    if info.format == "folder":
        return os.path.relpath(name, info.root)
    shard, _, number = name.rpartition("#")
    return f"{Path(shard).name} record {number}"


def _encoded_bytes(info: DatasetInfo, name: str) -> bytes | str:
    """The image bytes behind a skipped image's name, or why they cannot be read."""
    if info.format == "folder":
        try:
            return Path(name).read_bytes()
        except FileNotFoundError:
            return "missing (removed during the run)"
        except OSError as error:
            return f"unreadable ({error.strerror})"
    shard, _, number = name.rpartition("#")
    try:
        for i, record in enumerate(tf.io.tf_record_iterator(shard)):
            if i == int(number):
                example = tf.train.Example.FromString(record)
                return bytes(example.features.feature["image/encoded"].bytes_list.value[0])
    except Exception as error:  # a damaged shard or record: protobuf's or TensorFlow's error
        return f"unreadable record ({type(error).__name__})"
    return "record missing (shard rewritten during the run)"


def _why_undecodable(encoded: bytes) -> str:
    """A short reason from the bytes' format: empty, truncated (no end marker) or corrupt, or no image format."""
    end = encoded.rstrip(b"\0\r\n ")
    if not encoded:
        return "empty file"
    if encoded.startswith(b"\xff\xd8"):
        return "corrupt JPEG" if end.endswith(b"\xff\xd9") else "truncated JPEG"
    if encoded.startswith(b"\x89PNG\r\n\x1a\n"):
        return "corrupt PNG" if b"IEND" in end[-12:] else "truncated PNG"
    if encoded.startswith((b"GIF87a", b"GIF89a")):
        return "corrupt GIF" if end.endswith(b";") else "truncated GIF"
    if encoded.startswith(b"BM"):
        return "corrupt BMP"
    if encoded.startswith(b"RIFF") and encoded[8:12] == b"WEBP":
        return "corrupt WebP"
    return "not an image file"


def describe_skipped(info: DatasetInfo, names) -> list[dict[str, str]]:
    """[{"image": name relative to the dataset, "reason": ...}] of the names `skipped_image_names` fetched,
    sorted; the reason comes from the bytes (e.g. a JPEG without its end marker is 'truncated JPEG')."""
    described = []
    for name in sorted({n.decode() if isinstance(n, bytes) else str(n) for n in names}):
        encoded = _encoded_bytes(info, name)
        reason = encoded if isinstance(encoded, str) else _why_undecodable(encoded)
        described.append({"image": _display_name(info, name), "reason": reason})
    return described


def format_skipped(skipped: Sequence[dict[str, str]], limit: int = 5) -> str:
    """'3 images skipped: a/001.jpg (truncated JPEG), ...' (the first `limit` named), or '' for none."""
    if not skipped:
        return ""
    named = ", ".join(f"{s['image']} ({s['reason']})" for s in skipped[:limit])
    more = f" and {len(skipped) - limit} more" if len(skipped) > limit else ""
    return f"{len(skipped)} image{'s' if len(skipped) != 1 else ''} skipped: {named}{more}"


# What TensorFlow's image decoders write straight to stderr about a bad image: its own log lines from the
# decoder sources, and libjpeg's / libpng's / giflib's messages, which have no prefix.
_DECODER_MESSAGE = re.compile(
    r"^[EWI]\d{4} [\d:.]+ +\d+ (jpeg|png|gif|bmp|webp|decode_image|image)\w*\.cc:\d+\] "
    r"|^(Corrupt JPEG data|Premature end of JPEG|Invalid JPEG file structure|Invalid SOS parameters|Bogus |"
    r"Improper call to JPEG library|Input file read error|Not a JPEG file|Unsupported marker|Unsupported JPEG|"
    r"Warning: unknown JFIF|Huffman table|Quantization table|Inconsistent progression|Invalid component ID|"
    r"Invalid progressive parameters|Empty input file|libpng (warning|error)|GIF-LIB|"
    r"Application transferred too few scanlines|Unexpected marker|Wrong JPEG library version)"
)


def is_decoder_message(line: str) -> bool:
    return bool(_DECODER_MESSAGE.search(line))


@contextlib.contextmanager
def decoder_messages_dropped() -> Iterator[None]:
    """For the block, TensorFlow's decoder messages (see `is_decoder_message`) are dropped from stderr, and
    every other line written to file descriptor 2 passes through tqdm.write, above any progress bar.

    A bad image's messages ("Premature end of JPEG data", from tf.data's threads) would otherwise break
    the training progress bar; the run names each skipped image once instead (`describe_skipped`).
    Python's own sys.stderr (the bar itself) keeps writing to the terminal directly.
    """
    try:
        terminal = os.dup(2)
    except OSError:  # no stderr at all
        yield
        return
    from tqdm import tqdm

    python_stderr = sys.stderr
    swap = _writes_to_fd2(python_stderr)
    if python_stderr is not None:
        python_stderr.flush()
    stream = python_stderr
    if swap:  # a bar made in the block keeps this stream: it stays usable after the block, until collected
        fd = os.dup(terminal)
        stream = open(fd, "w", buffering=1, errors="backslashreplace", closefd=False)  # noqa: SIM115
        weakref.finalize(stream, os.close, fd)
    read_end, write_end = os.pipe()

    def forward():
        with os.fdopen(read_end, "rb") as pipe:
            for raw in pipe:
                line = raw.decode(errors="replace")
                if not is_decoder_message(line):
                    if stream is None:
                        os.write(terminal, raw)
                    else:
                        tqdm.write(line.rstrip("\n"), file=stream)

    forwarder = threading.Thread(target=forward, name="stderr-forwarder", daemon=True)
    os.dup2(write_end, 2)
    os.close(write_end)
    forwarder.start()
    if swap:
        sys.stderr = stream
    try:
        yield
    finally:
        if swap:
            sys.stderr = python_stderr
            stream.flush()
        os.dup2(terminal, 2)  # closes the pipe's last write end: the forwarder reads to the end and stops
        forwarder.join(timeout=10)
        os.close(terminal)


def _writes_to_fd2(stream) -> bool:
    try:
        return stream is not None and stream.fileno() == 2
    except (AttributeError, OSError, ValueError):  # io.StringIO, pytest's capture objects
        return False
