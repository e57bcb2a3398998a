"""Downloads cut midway resume from the byte they reached: a local server on 127.0.0.1 that
drops the first connection halfway through a blob, then honours Range."""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
from collections.abc import Iterator
from typing import ClassVar

import httpx
import pytest

from dlenv.cache import ContentCache
from dlenv.oci.registry import Reference, RegistryClient
from dlenv.oci.store import OCIStore

BODY = os.urandom(3 << 20)
KEPT = 1 << 20  # of the half sent before the cut, the whole 1 MiB chunks the client had read
DIGEST = "sha256:" + hashlib.sha256(BODY).hexdigest()


class Cutting(http.server.BaseHTTPRequestHandler):
    """Serves BODY at any path: the first GET stops after half of it and drops the
    connection; later GETs honour ``Range`` (206) unless the server is told not to."""

    ranges = True
    requests: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        wanted = self.headers.get("Range")
        type(self).requests.append(wanted)
        start = int(wanted.split("=")[1].rstrip("-")) if wanted and self.ranges else 0
        first = len(type(self).requests) == 1
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(BODY) - start))
        self.end_headers()
        if first:
            self.wfile.write(BODY[:len(BODY) // 2])
            self.wfile.flush()
            self.connection.shutdown(2)  # dropped midway
            return
        self.wfile.write(BODY[start:])

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[Cutting]]]:
    handler = type("Handler", (Cutting,), {"requests": [], "ranges": True})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_address[1]}", handler
    httpd.shutdown()
    httpd.server_close()


def test_a_registry_blob_cut_midway_resumes_from_the_byte_it_reached(server, tmp_path):
    host, handler = server
    store = OCIStore(tmp_path / "store")
    client = RegistryClient(mirrors={}, sleep=lambda s: None, credentials=lambda r: None)
    client.blob_to_store(Reference.parse(f"{host}/team/env:1"), DIGEST, store)
    assert store.blob_path(DIGEST).read_bytes() == BODY
    assert handler.requests == [None, f"bytes={KEPT}-"]


def test_a_registry_that_ignores_range_gets_the_blob_again_from_the_start(server, tmp_path):
    host, handler = server
    handler.ranges = False
    store = OCIStore(tmp_path / "store")
    client = RegistryClient(mirrors={}, sleep=lambda s: None, credentials=lambda r: None)
    client.blob_to_store(Reference.parse(f"{host}/team/env:1"), DIGEST, store)
    assert store.blob_path(DIGEST).read_bytes() == BODY  # not the half twice
    assert len(handler.requests) == 2


def test_a_wheel_download_cut_midway_resumes_too(server, tmp_path):
    host, handler = server
    cache = ContentCache(tmp_path / "blobs")
    with httpx.Client() as client:
        path = cache.fetch(client, f"http://{host}/torch.whl", DIGEST.split(":")[1],
                           sleep=lambda s: None)
    assert path.read_bytes() == BODY
    assert handler.requests == [None, f"bytes={KEPT}-"]


def test_a_wheel_server_that_ignores_range_sends_it_whole_and_it_is_checked_as_sent(
        server, tmp_path):
    host, handler = server
    handler.ranges = False
    cache = ContentCache(tmp_path / "blobs")
    with httpx.Client() as client:
        path = cache.fetch(client, f"http://{host}/torch.whl", DIGEST.split(":")[1],
                           sleep=lambda s: None)
    assert path.read_bytes() == BODY and len(handler.requests) == 2
