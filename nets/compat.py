"""Make tf-slim 1.1.0 (2020) work on TensorFlow 2.21. Every such fix lives here.

Import ``tf`` and ``slim`` from this module instead of importing ``tf_slim`` directly, so the
fixes are in place before tf_slim touches the moved modules:

1. ``tensorflow.python.layers.{normalization,convolutional,core,pooling}`` lazily load
   ``tf_keras.legacy_tf_layers.*``; tf-keras 2.21 keeps those at ``tf_keras.src.legacy_tf_layers``.
   We alias the modules in ``sys.modules`` (``slim.batch_norm`` fails without it).
2. ``slim.learning`` / ``tf_slim.training`` clip gradients through ``ops.IndexedSlices``, which
   moved to ``tensorflow.python.framework.indexed_slices``. We put the class back on ``ops``; likewise
   ``ops.Tensor`` (now ``tensorflow.python.framework.tensor.Tensor``), which tf_slim's layer utilities
   check against (``slim.batch_norm(updates_collections=None)`` fails without it).
3. TF2's tensor equality makes every ``Tensor``/``Variable`` hash ask the eager context, and the
   legacy layers behind slim hash all global variables for each new weight: building a deep net
   gets ~2.5x slower (inception_resnet_v2 at 299 px: 11.3 s -> 4.5 s here). Graph-mode code compares
   tensors by identity anyway (TF1 behaviour), so we switch it off. Eager ``t1 == t2`` then compares
   identity too; the toolkit builds its models in graphs.
"""

import contextlib
import importlib
import os
import re
import sys
import tempfile

# TensorFlow's C++ start-up chatter (CUDA probing, CPU flags) is noise for a CLI user.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Part of that chatter is written (by absl, before any log set-up) whatever TF_CPP_MIN_LOG_LEVEL says:
# absl's banner, INFO/WARNING lines (oneDNN, "Could not find cuda drivers"), and then, on the first
# device query, "failed call to cuInit" (an ERROR line, but on a machine without a CUDA driver it says
# nothing more than that no GPU will be used). `quiet_startup` drops exactly these lines.
_ABSL_BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_INFO_OR_WARNING = re.compile(r"[IW]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] ")
_NO_CUDA_DRIVER = "Could not find cuda drivers on your machine"
_CUINIT_FAILED = re.compile(r"E\d{4} .*\] failed call to cuInit")


def _startup_chatter(line: str, no_cuda_driver: bool) -> bool:
    return (line.startswith(_ABSL_BANNER) or bool(_INFO_OR_WARNING.match(line))
            or (no_cuda_driver and bool(_CUINIT_FAILED.match(line))))


def _flush_stderr() -> None:
    if sys.stderr is not None:
        sys.stderr.flush()


@contextlib.contextmanager
def _filtered_stderr(drop):
    """Hold file descriptor 2 (the C++ runtime's stderr, which Python's sys.stderr cannot catch) in a temporary
    file for the block, then write back its text less the lines `drop(line, text)` says to drop."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all (a closed fd 2): nothing to filter
        yield
        return
    _flush_stderr()
    try:
        with tempfile.TemporaryFile() as held:
            os.dup2(held.fileno(), 2)
            try:
                yield
            finally:
                _flush_stderr()
                os.dup2(saved, 2)
                held.seek(0)
                text = held.read().decode(errors="replace")
                data = "".join(line for line in text.splitlines(keepends=True) if not drop(line, text)).encode()
                while data:
                    data = data[os.write(2, data):]
    finally:
        os.close(saved)


@contextlib.contextmanager
def quiet_startup():
    """Every line the block writes to file descriptor 2 but the start-up chatter above (errors, tracebacks and
    anything else come through, in order).

    Off when TF_CPP_MIN_LOG_LEVEL is below 2 (the user asked for TensorFlow's INFO or WARNING lines).
    """
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") < "2":
        yield
        return
    with _filtered_stderr(lambda line, text: _startup_chatter(line, _NO_CUDA_DRIVER in text)):
        yield


with quiet_startup():
    import tensorflow as _tf

    _tf.config.list_physical_devices("GPU")  # CUDA's probe, and its cuInit line, happen here, inside the filter

_LEGACY_LAYERS = "tf_keras.legacy_tf_layers"
_LEGACY_LAYERS_NEW = "tf_keras.src.legacy_tf_layers"
_LEGACY_SUBMODULES = ("base", "convolutional", "core", "normalization", "pooling", "variable_scope_shim")


def _alias_legacy_tf_layers() -> None:
    if _LEGACY_LAYERS in sys.modules:
        return
    try:
        importlib.import_module(_LEGACY_LAYERS)
        return  # an older tf-keras still has it where tensorflow looks
    except ImportError:
        pass
    package = importlib.import_module(_LEGACY_LAYERS_NEW)
    sys.modules[_LEGACY_LAYERS] = package
    for name in _LEGACY_SUBMODULES:
        module = importlib.import_module(f"{_LEGACY_LAYERS_NEW}.{name}")
        sys.modules[f"{_LEGACY_LAYERS}.{name}"] = module


def _restore_ops_indexed_slices() -> None:
    from tensorflow.python.framework import indexed_slices, ops

    if not hasattr(ops, "IndexedSlices"):
        ops.IndexedSlices = indexed_slices.IndexedSlices


def _restore_ops_tensor() -> None:
    from tensorflow.python.framework import ops, tensor

    if not hasattr(ops, "Tensor"):
        ops.Tensor = tensor.Tensor


def apply() -> None:
    """Apply every fix; idempotent."""
    _alias_legacy_tf_layers()
    _restore_ops_indexed_slices()
    _restore_ops_tensor()
    _tf.compat.v1.disable_tensor_equality()


apply()

import tf_slim as slim  # noqa: E402  (must come after the fixes)

tf = _tf.compat.v1

TFLITE_DELEGATE_NOTICE = "INFO: Created TensorFlow Lite XNNPACK delegate"


@contextlib.contextmanager
def without_stderr_lines(prefixes: tuple[str, ...] = (TFLITE_DELEGATE_NOTICE,)):
    """What the block writes to file descriptor 2, less the lines starting with one of `prefixes` (by default
    the TFLite runtime's notice that it made its default XNNPACK delegate)."""
    with _filtered_stderr(lambda line, text: line.startswith(prefixes)):
        yield


__all__ = ["apply", "slim", "tf", "without_stderr_lines"]
