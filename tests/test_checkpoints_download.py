"""The registry and `finetune download` against an HTTP server on 127.0.0.1 serving generated archives."""

import contextlib
import dataclasses
import hashlib
import http.server
import io
import json
import re
import shutil
import socket
import ssl
import subprocess
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

import checkpoints
from checkpoints import download, registry
from finetune import cli
from nets import nets_factory
from nets.compat import tf

NAME = "mobilenet_v1_025"
ENTRY = registry.get(NAME)


class _Server(http.server.ThreadingHTTPServer):
    files: dict[str, bytes]
    cut_first_after: int | None = None  # send only this many bytes of the first response, then hang up
    ranges: list

    def handle_error(self, request, client_address):  # a client hanging up is part of the tests
        pass


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        server = self.server
        data = server.files.get(self.path.lstrip("/"))
        byte_range = self.headers.get("Range")
        server.ranges.append(byte_range)
        if data is None:
            self.send_error(404)
            return
        start = int(byte_range.split("=")[1].rstrip("-")) if byte_range else 0
        self.send_response(206 if byte_range else 200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        if server.cut_first_after is not None:
            self.wfile.write(data[start:start + server.cut_first_after])
            server.cut_first_after = None
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(data[start:])


@contextlib.contextmanager
def _running(monkeypatch, tmp_path, certificate: tuple[Path, Path] | None = None):
    """A server on 127.0.0.1 (https with `certificate`), set as the registry's base URL; the cache in tmp_path.

    NAME's entry loses its known sha256: the served archives are generated here.
    """
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.ranges = {}, []
    scheme = "http"
    if certificate:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*certificate)
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        scheme = "https"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(registry.URL_ENV, f"{scheme}://127.0.0.1:{httpd.server_address[1]}/")
    monkeypatch.setenv(download.HOME_ENV, str(tmp_path / "home"))
    monkeypatch.setitem(registry.REGISTRY, NAME, dataclasses.replace(ENTRY, sha256=None))
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def server(monkeypatch, tmp_path):
    with _running(monkeypatch, tmp_path) as httpd:
        yield httpd


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert.pem, key.pem), made with the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl command to make a test certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def _checkpoint_archive(tmp_path, checkpoint: str) -> tuple[bytes, np.ndarray]:
    """A tar.gz as published: ./CHECKPOINT.{index,data-*} plus another file; and the saved value."""
    value = np.random.default_rng(0).normal(size=[64, 100]).astype(np.float32)
    (tmp_path / "src").mkdir(parents=True)
    with tf.Graph().as_default():
        variable = tf.get_variable("MobilenetV1/Logits/weights", initializer=value)
        with tf.Session() as sess:
            sess.run(variable.initializer)
            tf.train.Saver([variable]).save(sess, str(tmp_path / "src" / checkpoint), write_meta_graph=False)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted((tmp_path / "src").iterdir()):
            if path.name != "checkpoint":
                tar.add(path, arcname=f"./{path.name}")
        info = tarfile.TarInfo("./info.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    return buffer.getvalue(), value


def _cache_leftovers(tmp_path) -> list[str]:
    root = tmp_path / "home"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def test_fetch_downloads_verifies_extracts_and_caches(server, tmp_path):
    server.files[ENTRY.archive], value = _checkpoint_archive(tmp_path, ENTRY.checkpoint)
    prefix = download.fetch(NAME, progress=False)
    assert prefix == str(tmp_path / "home" / "checkpoints" / NAME / ENTRY.checkpoint)
    np.testing.assert_array_equal(tf.train.load_checkpoint(prefix).get_tensor("MobilenetV1/Logits/weights"), value)
    source = json.loads((tmp_path / "home" / "checkpoints" / NAME / "SOURCE.json").read_text())
    assert source["archive_bytes"] == len(server.files[ENTRY.archive]) and len(source["sha256"]) == 64
    assert not (tmp_path / "home" / "checkpoints" / NAME / "info.txt").exists()
    assert _cache_leftovers(tmp_path) == sorted(
        ["checkpoints", "downloads", f"checkpoints/{NAME}", f"checkpoints/{NAME}/SOURCE.json",
         f"checkpoints/{NAME}/{ENTRY.checkpoint}.index", f"checkpoints/{NAME}/{ENTRY.checkpoint}.data-00000-of-00001"])

    # Cached: no second request; a registry name resolves to the cached prefix.
    assert download.fetch(NAME) == prefix and checkpoints.resolve_checkpoint(NAME) == prefix
    assert server.ranges == [None]


def test_an_interrupted_transfer_resumes_with_a_range_request(server, tmp_path):
    data, value = _checkpoint_archive(tmp_path, ENTRY.checkpoint)
    server.files[ENTRY.archive] = data
    server.cut_first_after = len(data) // 2
    prefix = download.fetch(NAME, progress=False)
    assert server.ranges == [None, f"bytes={len(data) // 2}-"]
    np.testing.assert_array_equal(tf.train.load_checkpoint(prefix).get_tensor("MobilenetV1/Logits/weights"), value)


def test_a_part_file_left_by_an_earlier_run_is_resumed(server, tmp_path):
    data, _ = _checkpoint_archive(tmp_path, ENTRY.checkpoint)
    server.files[ENTRY.archive] = data
    part = tmp_path / "home" / "downloads" / (ENTRY.archive + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(data[:1000])
    download.fetch(NAME, progress=False)
    assert server.ranges == ["bytes=1000-"] and not part.exists()


def test_a_transfer_that_keeps_failing_keeps_its_part_file(server, tmp_path):
    data, _ = _checkpoint_archive(tmp_path, ENTRY.checkpoint)
    server.files[ENTRY.archive] = data
    server.cut_first_after = 100
    with pytest.raises(OSError, match="failed after 1 attempts.*run again to resume"):
        download.fetch(NAME, progress=False, retries=0)
    assert (tmp_path / "home" / "downloads" / (ENTRY.archive + ".part")).stat().st_size == 100


@pytest.mark.parametrize("kind", ["garbage", "truncated gzip", "no checkpoint inside"])
def test_a_corrupt_archive_is_a_clear_error_and_leaves_nothing_half_extracted(server, tmp_path, kind):
    data, _ = _checkpoint_archive(tmp_path, ENTRY.checkpoint)
    if kind == "garbage":
        data = b"<html>not found</html>" * 50
    elif kind == "truncated gzip":
        data = data[: len(data) * 2 // 3]
    else:
        data, _ = _checkpoint_archive(tmp_path / "other", "other.ckpt")
    server.files[ENTRY.archive] = data
    with pytest.raises(ValueError, match=f"archive {ENTRY.archive} from http://127.0.0.1.* is corrupt.*"
                                         f"run `finetune download {NAME}` again"):
        download.fetch(NAME, progress=False)
    assert _cache_leftovers(tmp_path) == ["checkpoints", "downloads"]


def test_unreachable_server_and_unknown_names(monkeypatch, tmp_path):
    monkeypatch.setenv(download.HOME_ENV, str(tmp_path))
    with pytest.raises(OSError, match="cannot download http://127.0.0.1:1/.*|cannot reach http://127.0.0.1:1/"):
        download.fetch(NAME, base_url="http://127.0.0.1:1", progress=False)
    with pytest.raises(ValueError, match="Did you mean inception_v3"):
        registry.get("inception_v33")


def test_the_registry_agrees_with_the_zoo(monkeypatch):
    monkeypatch.delenv(registry.URL_ENV, raising=False)
    specs = nets_factory.specs()
    assert len(registry.REGISTRY) == 30
    known = {name for name, entry in registry.REGISTRY.items() if entry.sha256}
    assert known == {"inception_v1", "mobilenet_v1", "mobilenet_v1_075", "mobilenet_v1_050", "mobilenet_v1_025",
                     "mobilenet_v2", "mobilenet_v2_140", "mobilenet_v2_035"}
    assert len({registry.REGISTRY[name].sha256 for name in known}) == len(known)
    for entry in registry.REGISTRY.values():
        assert entry.url() == f"{entry.base_url}/{entry.archive}"
        assert entry.url().startswith(("https://download.tensorflow.org/models/", "https://storage.googleapis.com/"))
        assert entry.sha256 is None or re.fullmatch("[0-9a-f]{64}", entry.sha256), entry.name  # hashlib's hexdigest
        assert entry.net in specs, entry.name
        assert entry.num_classes == specs[entry.net].num_classes, entry.name
        assert entry.image_size == specs[entry.net].image_size, entry.name


def test_download_and_inspect_commands(server, tmp_path, capsys):
    server.files[ENTRY.archive], _ = _checkpoint_archive(tmp_path, ENTRY.checkpoint)
    assert cli.main(["download", NAME]) == 0
    prefix = capsys.readouterr().out.strip()
    assert prefix.endswith(f"checkpoints/{NAME}/{ENTRY.checkpoint}")
    assert cli.main(["download", "--list"]) == 0
    listing = capsys.readouterr().out
    assert f"{NAME} " in listing and prefix in listing and "inception_resnet_v2_2016_08_30.tar.gz" in listing

    assert cli.main(["inspect", prefix + ".index"]) == 0
    out = capsys.readouterr().out
    assert "MobilenetV1/Logits/weights  [64,100]  float32" in out
    assert out.strip().endswith(f"{prefix}: 1 tensors, 6,400 parameters, 0.0 MiB")
    assert cli.main(["inspect", str(tmp_path / "missing")]) == 2
    assert "finetune inspect: error: no checkpoint at" in capsys.readouterr().err


def test_a_known_sha256_is_checked_and_a_mismatch_leaves_nothing_behind(server, tmp_path, monkeypatch):
    data, value = _checkpoint_archive(tmp_path, ENTRY.checkpoint)
    server.files[ENTRY.archive] = data
    digest = hashlib.sha256(data).hexdigest()
    monkeypatch.setitem(registry.REGISTRY, NAME, dataclasses.replace(ENTRY, sha256="0" * 64))
    with pytest.raises(ValueError) as error:
        download.fetch(NAME, progress=False)
    assert str(error.value) == (f"archive {ENTRY.archive} from {ENTRY.url()} is corrupt: sha256 {digest} is not the "
                                f"known {'0' * 64}; deleted it; run `finetune download {NAME}` again")
    assert _cache_leftovers(tmp_path) == ["downloads"]  # no archive, no part file, no checkpoint folder
    assert download.cached(NAME) is None

    monkeypatch.setitem(registry.REGISTRY, NAME, dataclasses.replace(ENTRY, sha256=digest))
    prefix = download.fetch(NAME, progress=False)
    assert server.ranges == [None, None]  # the second download started over: nothing of the bad file was kept
    np.testing.assert_array_equal(tf.train.load_checkpoint(prefix).get_tensor("MobilenetV1/Logits/weights"), value)


def test_https_trusts_the_certificate_authorities_in_ssl_cert_file(certificate, monkeypatch, tmp_path):
    with _running(monkeypatch, tmp_path, certificate) as server:
        server.files[ENTRY.archive], value = _checkpoint_archive(tmp_path, ENTRY.checkpoint)
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        with pytest.raises(OSError) as error:
            download.fetch(NAME, progress=False)
        message = str(error.value)
        assert message.startswith(f"cannot reach {ENTRY.url()}: [SSL: CERTIFICATE_VERIFY_FAILED]") and "\n" not in message
        assert message.endswith("(set SSL_CERT_FILE to the CA bundle of a proxy or mirror that uses its own "
                                "certificate authority)")
        assert server.ranges == [] and _cache_leftovers(tmp_path) == ["downloads"]

        monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
        prefix = download.fetch(NAME, progress=False)
        assert ENTRY.url().startswith("https://127.0.0.1:") and server.ranges == [None]
        np.testing.assert_array_equal(tf.train.load_checkpoint(prefix).get_tensor("MobilenetV1/Logits/weights"), value)
