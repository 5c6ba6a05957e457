"""What a `--ckpt` value means: a path of a checkpoint, or the name of a registered one (fetched once)."""

from __future__ import annotations

import os

from checkpoints import download, registry
from checkpoints.reader import find_checkpoint


def resolve_checkpoint(path_or_name: str) -> str:
    """The checkpoint prefix meant by a prefix, a directory (its latest checkpoint), a file of the
    checkpoint (`.index`, `.data-*`, `.meta`, V1 `.ckpt`) or a registry name (downloaded and cached).
    """
    prefix = find_checkpoint(path_or_name)
    if prefix is not None:
        return prefix
    if path_or_name in registry.REGISTRY:
        return download.fetch(path_or_name)
    raise FileNotFoundError(
        f"no checkpoint at {os.path.expanduser(str(path_or_name))}: not a prefix, a file of a checkpoint or a "
        "directory, nor a known checkpoint name (`finetune download --list`)"
    )
