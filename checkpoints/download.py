"""Fetch a registered checkpoint into the cache: resumable download, verified archive, atomic extraction.

Layout under `$FINETUNE_HOME` (default ~/.cache/finetune):
  downloads/ARCHIVE.part      an unfinished download (resumed with an HTTP Range request)
  checkpoints/NAME/           the checkpoint's files and SOURCE.json (url, size, sha256, checkpoint name),
                              renamed into place only once complete and readable.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import ssl
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

from checkpoints import registry
from checkpoints.reader import read_variables

HOME_ENV = "FINETUNE_HOME"
_CHUNK = 1 << 20
_TIMEOUT_SECONDS = 60
_SOURCE_FILE = "SOURCE.json"
_CA_ENV = "SSL_CERT_FILE"  # read by OpenSSL itself when urllib verifies an https server


def home() -> Path:
    return Path(os.environ.get(HOME_ENV) or "~/.cache/finetune").expanduser()


def _checkpoint_dir(name: str) -> Path:
    return home() / "checkpoints" / name


def cached(name: str) -> str | None:
    """The cached checkpoint prefix of a registry name, or None."""
    directory = _checkpoint_dir(name)
    if not (directory / _SOURCE_FILE).is_file():
        return None
    recorded = json.loads((directory / _SOURCE_FILE).read_text()).get("checkpoint")
    return str(directory / (recorded or os.path.basename(registry.get(name).checkpoint)))


def fetch(name: str, *, base_url: str | None = None, progress: bool = True, retries: int = 3) -> str:
    """The checkpoint prefix of a registry name: cached, or downloaded, verified and extracted now."""
    entry = registry.get(name)
    prefix = cached(name)
    if prefix:
        return prefix
    url = entry.url(base_url)
    archive = home() / "downloads" / entry.archive
    archive.parent.mkdir(parents=True, exist_ok=True)
    download(url, archive, progress=progress, retries=retries)
    try:
        _extract(archive, entry, url)
    except ValueError:
        archive.unlink(missing_ok=True)
        raise
    archive.unlink()
    return cached(name)


def download(url: str, target: Path, *, progress: bool = True, retries: int = 3) -> None:
    """Download url to target through target.part, resuming the part file with a Range request."""
    part = target.with_name(target.name + ".part")
    failure: Exception | None = None
    for _ in range(retries + 1):
        try:
            if _download_once(url, part, progress):
                part.replace(target)
                return
            failure = ConnectionError("connection closed before the end")
        except (http.client.IncompleteRead, ConnectionError, TimeoutError) as error:
            failure = error
    raise OSError(f"download of {url} failed after {retries + 1} attempts ({failure}); run again to resume {part}")


def _download_once(url: str, part: Path, progress: bool) -> bool:
    """One request appending to part; True when part holds the whole file."""
    from tqdm import tqdm

    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=_TIMEOUT_SECONDS)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # the part file is not a prefix of this file: start over
            part.unlink()
            return False
        raise OSError(f"cannot download {url}: HTTP {error.code} {error.reason}") from error
    except urllib.error.URLError as error:
        hint = (f"set {_CA_ENV} to the CA bundle of a proxy or mirror that uses its own certificate authority"
                if isinstance(error.reason, ssl.SSLCertVerificationError) else f"set ${registry.URL_ENV} to use a mirror")
        raise OSError(f"cannot reach {url}: {error.reason} ({hint})") from error
    with response:
        if offset and response.status != 206:  # the server ignored the Range header
            offset = 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length else None
        with (
            open(part, "ab" if offset else "wb") as out,
            tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024, desc=part.name[:-5],
                 disable=not progress, file=sys.stderr) as bar,
        ):
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                bar.update(len(chunk))
    return total is None or part.stat().st_size == total


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _is_checkpoint_file(member: str, checkpoint: str) -> bool:
    """True if archive path `member` is the checkpoint's V1 file or one of PREFIX.index / .data-* / .meta, where
    `checkpoint` names the file or prefix by its trailing path ("x.ckpt", "ema/model-540000")."""
    path, target = "/" + member, "/" + checkpoint
    at = path.rfind(target)
    rest = path[at + len(target):] if at >= 0 else None
    return rest is not None and (rest == "" or (rest.startswith(".") and "/" not in rest))


def _checkpoint_prefix(tar: tarfile.TarFile, entry: registry.Pretrained) -> str:
    """The checkpoint's name in the archive: the registry's, or the archive's only V2 checkpoint."""
    if entry.checkpoint:
        return entry.checkpoint
    indexes = [m.name[: -len(".index")] for m in tar.getmembers() if m.isfile() and m.name.endswith(".index")]
    if len(indexes) != 1:
        raise ValueError(f"it holds {len(indexes)} checkpoints ({', '.join(indexes) or 'no .index file'}), not one")
    return indexes[0]


def _checkpoint_members(tar: tarfile.TarFile, checkpoint: str) -> list[tarfile.TarInfo]:
    """The archive's files of the checkpoint (the V1 file, or PREFIX.index / .data-* / .meta)."""
    return [m for m in tar.getmembers() if m.isfile() and _is_checkpoint_file(m.name, checkpoint)]


def _extract(archive: Path, entry: registry.Pretrained, url: str) -> None:
    """Verify the archive and move its checkpoint files into the cache in one rename; ValueError if corrupt."""
    digest = _sha256(archive)
    corrupt = f"archive {archive.name} from {url} is corrupt"
    fix = f"deleted it; run `finetune download {entry.name}` again"
    if entry.sha256 and digest != entry.sha256:
        raise ValueError(f"{corrupt}: sha256 {digest} is not the known {entry.sha256}; {fix}")
    destination = _checkpoint_dir(entry.name)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}-", dir=destination.parent))
    try:
        try:
            with tarfile.open(archive) as tar:
                try:
                    checkpoint = _checkpoint_prefix(tar, entry)
                except ValueError as error:
                    raise ValueError(f"{corrupt}: {error}; {fix}") from error
                members = _checkpoint_members(tar, checkpoint)
                if not members:
                    raise ValueError(f"{corrupt}: it holds no {checkpoint}; {fix}")
                for member in members:
                    with tar.extractfile(member) as src, open(staging / os.path.basename(member.name), "wb") as dst:
                        shutil.copyfileobj(src, dst, _CHUNK)
        except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
            raise ValueError(f"{corrupt} ({' '.join(str(error).split())}); {fix}") from error
        checkpoint = os.path.basename(checkpoint)
        try:
            read_variables(str(staging / checkpoint))  # a checkpoint TensorFlow can read
        except ValueError as error:
            raise ValueError(f"{corrupt}: {error}; {fix}") from error
        source = {"name": entry.name, "url": url, "archive_bytes": archive.stat().st_size, "sha256": digest,
                  "checkpoint": checkpoint}
        (staging / _SOURCE_FILE).write_text(json.dumps(source, indent=1) + "\n")
        if destination.exists():
            shutil.rmtree(destination)
        staging.rename(destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def table() -> str:
    """The registry as a printable table, with what is cached."""
    from tabulate import tabulate

    rows = [
        (e.name, e.num_classes, e.image_size, e.top1, e.top5, e.archive, cached(e.name) or "")
        for e in registry.REGISTRY.values()
    ]
    return tabulate(rows, headers=["name", "classes", "image size", "top-1", "top-5", "archive", "cached at"],
                    floatfmt=".1f")
