"""ADD: local archives extracted (detected by content), --unpack, URLs from a loopback server, --checksum, git refused."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import zstandard

from imagekit.builder.context import BuildContext
from imagekit.errors import BuildError
from tests.builder.copy.conftest import Harness

LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"
LAST_MODIFIED_EPOCH = 1445412480


def tar_bytes(entries: dict[str, bytes], *, owner: int = 0) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid, info.mtime = len(data), 0o640, owner, owner, 1_000_000
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


COMPRESSORS = {
    "plain": lambda data: data,
    "gzip": lambda data: gzip.compress(data),
    "bzip2": lambda data: bz2.compress(data),
    "xz": lambda data: lzma.compress(data),
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
}


@pytest.mark.parametrize("codec", sorted(COMPRESSORS))
def test_local_archives_are_extracted(harness: Harness, codec: str) -> None:
    """Detected by content: the archive is named `payload.bin` whatever its format."""
    harness.write("payload.bin", COMPRESSORS[codec](tar_bytes({"top.txt": b"T", "sub/inner.txt": b"I"}, owner=7)))
    harness.copy("ADD payload.bin /opt")
    found = harness.listing()
    assert found["opt/top.txt"] == ("file", 0o640, 7, 7, b"T")  # owners and modes from the archive
    assert found["opt/sub/inner.txt"][4] == b"I"
    assert "opt/payload.bin" not in found


def test_unpack_false_copies_the_archive(harness: Harness) -> None:
    data = gzip.compress(tar_bytes({"x": b"X"}))
    harness.write("a.tar.gz", data)
    harness.copy("ADD --unpack=false a.tar.gz /keep/")
    assert harness.listing()["keep/a.tar.gz"][4] == data


def test_not_an_archive_is_copied(harness: Harness) -> None:
    harness.write("fake.tar.gz", b"\x1f\x8b but not really gzip")
    harness.write("notes.txt", b"hello")
    harness.copy("ADD fake.tar.gz notes.txt /d/")
    assert harness.listing()["d/fake.tar.gz"][4] == b"\x1f\x8b but not really gzip"
    assert harness.listing()["d/notes.txt"][4] == b"hello"


def test_archive_cannot_escape_its_destination(harness: Harness, tmp_path: Path) -> None:
    harness.write("evil.tar", tar_bytes({"../../escape.txt": b"E"}))
    with pytest.raises(BuildError, match=r"Builderfile:2: ADD evil.tar: entry '../../escape.txt': the path leaves the root"):
        harness.copy("ADD evil.tar /opt/")
    assert not (tmp_path / "escape.txt").exists()
    assert not (harness.root / "escape.txt").exists()


def test_archive_cut_short_is_an_error(harness: Harness) -> None:
    whole = gzip.compress(tar_bytes({"a": os.urandom(100_000), "b": b"B"}))  # the cut falls inside "a"
    harness.write("cut.tgz", whole[: len(whole) // 2])
    with pytest.raises(BuildError, match=r"Builderfile:2: ADD cut.tgz: corrupt gzip stream"):
        harness.copy("ADD cut.tgz /x/")


def test_unpack_is_in_the_checksum(harness: Harness) -> None:
    harness.write("a.tar", tar_bytes({"x": b"X"}))
    assert harness.plan("ADD a.tar /d/").checksum() != harness.plan("ADD --unpack=false a.tar /d/").checksum()


# --- URLs ----------------------------------------------------------------------------------------------------


class Server:
    """A loopback HTTP server with fixed routes: path -> (status, body, headers)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes, dict[str, str]]] = {}
        routes = self.routes

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                status, body, headers = routes.get(self.path, (404, b"not found", {}))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.close()


def test_url_needs_no_context(harness: Harness, server: Server) -> None:
    server.routes["/f"] = (200, b"F", {})
    harness.copy(f"ADD {server.url}/f /f", context=BuildContext(None, None))
    assert harness.listing()["f"][4] == b"F"


def test_url_into_a_directory(harness: Harness, server: Server) -> None:
    server.routes["/files/tool.sh"] = (200, b"#!/bin/sh\n", {"Last-Modified": LAST_MODIFIED})
    harness.copy(f"ADD {server.url}/files/tool.sh /usr/bin/")
    assert harness.listing()["usr/bin/tool.sh"] == ("file", 0o600, 0, 0, b"#!/bin/sh\n")
    assert (harness.root / "usr" / "bin" / "tool.sh").stat().st_mtime == LAST_MODIFIED_EPOCH


def test_url_to_a_file_name_without_last_modified(harness: Harness, server: Server) -> None:
    server.routes["/x"] = (200, b"data", {})
    harness.copy(f"ADD --chmod=644 {server.url}/x /renamed")
    assert harness.listing()["renamed"] == ("file", 0o644, 0, 0, b"data")
    assert (harness.root / "renamed").stat().st_mtime == 0


def test_url_without_a_name(harness: Harness, server: Server) -> None:
    server.routes["/"] = (200, b"index", {})
    harness.copy(f"ADD {server.url}/ /d/")
    assert harness.listing()["d/__unnamed__"][4] == b"index"


def test_url_checksum(harness: Harness, server: Server) -> None:
    body = b"verified content"
    server.routes["/v"] = (200, body, {})
    good = "sha256:" + hashlib.sha256(body).hexdigest()
    harness.copy(f"ADD --checksum={good} {server.url}/v /v")
    assert harness.listing()["v"][4] == body
    bad = "sha256:" + "0" * 64
    with pytest.raises(BuildError, match=rf"Builderfile:2: ADD {server.url}/v: checksum mismatch: --checksum={bad} but the download is {good}"):
        harness.copy(f"ADD --checksum={bad} {server.url}/v /w")
    assert [p.read_bytes() for p in harness.staging.iterdir()] == [body]  # the bad download is gone
    assert not (harness.root / "w").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ADD --checksum=sha256:abc URL/v /v", "ADD --checksum=sha256:abc: invalid sha256 digest"),
        ("ADD --checksum=sha256:" + "a" * 64 + " local.txt /v", "ADD --checksum requires HTTP(S) or Git sources"),
        ("ADD --checksum=sha256:" + "a" * 64 + " URL/v URL/w /d/", "ADD --checksum can't be specified for multiple sources"),
        ("COPY URL/v /v", "source can't be a URL for COPY"),
        ("ADD https://github.com/moby/buildkit.git#v0.10.1 /src", "git sources are not supported yet"),
        ("ADD git@github.com:moby/buildkit.git /src", "git sources are not supported yet"),
    ],
)
def test_url_flag_errors(harness: Harness, server: Server, text: str, message: str) -> None:
    harness.write("local.txt", "L")
    with pytest.raises(BuildError) as caught:
        harness.copy(text.replace("URL", server.url))
    assert str(caught.value).startswith("Builderfile:2: ")
    assert message in str(caught.value)


def test_url_password_never_in_a_message(harness: Harness, server: Server) -> None:
    url = server.url.replace("http://", "http://user:s3cret@")
    with pytest.raises(BuildError) as caught:
        harness.copy(f"ADD {url}/missing /m")
    assert "s3cret" not in str(caught.value)
    assert "user:***@127.0.0.1" in str(caught.value)


def test_url_http_error(harness: Harness, server: Server) -> None:
    with pytest.raises(BuildError, match=rf"Builderfile:2: ADD {server.url}/missing: the server answered 404"):
        harness.copy(f"ADD {server.url}/missing /m")


def test_url_size_cap(harness: Harness, server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    server.routes["/big"] = (200, b"x" * 5000, {})
    monkeypatch.setenv("IMAGEKIT_MAX_DOWNLOAD_BYTES", "1K")
    with pytest.raises(BuildError, match="the download is larger than 1024 bytes"):
        harness.copy(f"ADD {server.url}/big /b")
    assert list(harness.staging.iterdir()) == []


def test_url_archives_stay_packed_unless_asked(harness: Harness, server: Server) -> None:
    archive = gzip.compress(tar_bytes({"inside.txt": b"I"}))
    server.routes["/a.tar.gz"] = (200, archive, {})
    harness.copy(f"ADD {server.url}/a.tar.gz /packed/")
    assert harness.listing()["packed/a.tar.gz"][4] == archive
    harness.copy(f"ADD --unpack=true {server.url}/a.tar.gz /unpacked/")
    assert harness.listing()["unpacked/inside.txt"][4] == b"I"


def test_url_content_is_in_the_checksum(harness: Harness, server: Server) -> None:
    server.routes["/c"] = (200, b"one", {})
    first = harness.plan(f"ADD {server.url}/c /c").checksum()
    assert first == harness.plan(f"ADD {server.url}/c /c").checksum()
    server.routes["/c"] = (200, b"two", {})
    assert first != harness.plan(f"ADD {server.url}/c /c").checksum()


def test_url_connection_refused(harness: Harness, server: Server) -> None:
    url = server.url
    server.close()
    with pytest.raises(BuildError, match=rf"Builderfile:2: ADD {url}/gone: download failed \(ConnectionError"):
        harness.copy(f"ADD {url}/gone /g")
