"""The download cache: files stored by sha256, verified on the way in and on every read.

Writes go to a temporary name in the same directory, are fsynced, then renamed, so a killed
download or a full disk never leaves a wrong file under a digest's name. Concurrent builds
may fetch the same file; the rename makes the last writer win with identical content.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import platformdirs

from dlenv.errors import FetchError, IntegrityError, UsageError
from dlenv.fsutil import ensure_dir, shorten, temp_prefix

if TYPE_CHECKING:  # httpx is imported where a download happens: it costs every start 60 ms
    import httpx

CHUNK = 1 << 20
RETRIES = 4
# A server that accepts no connection in 10 s, or sends nothing for 30 s, is retried, then
# reported (a stalled mirror used to cost four times two minutes before any word).
CONNECT_TIMEOUT, READ_TIMEOUT = 10.0, 30.0


def describe_transport_error(exc: httpx.TransportError) -> str:
    """What went wrong on the wire, in words (httpx's timeouts carry no message)."""
    import httpx

    host = ""
    with contextlib.suppress(RuntimeError):
        host = exc.request.url.host
    where = f" from {host}" if host else ""
    if isinstance(exc, httpx.ConnectTimeout):
        return f"no connection{where} within {CONNECT_TIMEOUT:.0f} s"
    if isinstance(exc, httpx.ReadTimeout):
        return f"nothing arrived{where} for {READ_TIMEOUT:.0f} s"
    return str(exc) or type(exc).__name__


def default_cache_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        return Path(explicit)
    env = os.environ.get("DLENV_CACHE_DIR")
    return Path(env) if env else Path(platformdirs.user_cache_dir("dlenv"))


def tls_context(ca_bundle: str | None) -> Any:
    """What httpx verifies servers with: the given CA bundle, else its default."""
    if not ca_bundle:
        return True
    import ssl  # only where TLS is set up: every command loads this module

    try:
        return ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"the CA bundle {shorten(ca_bundle)} cannot be read: "
                         f"{getattr(exc, 'strerror', None) or exc}",
                         fix="set index.ca_bundle (or SSL_CERT_FILE) to a PEM file of CA "
                             "certificates that exists on this host") from None


def host_bundle() -> str | None:
    """The host's CA bundle: what this machine trusts (mounted into containers, never baked)."""
    import ssl

    for candidate in (os.environ.get("SSL_CERT_FILE"), ssl.get_default_verify_paths().cafile,
                      "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def http_timeout() -> httpx.Timeout:
    import httpx

    return httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT)


def http_client(ca_bundle: str | None = None) -> httpx.Client:
    import httpx

    return httpx.Client(follow_redirects=True, timeout=http_timeout(),
                        verify=tls_context(ca_bundle),
                        headers={"User-Agent": "dlenv"})


class LazyClient:
    """``http_client``, made on first use (once, from any thread): a build that finds every
    file in the cache pays neither httpx's import nor the CA bundle's loading (0.2 s)."""

    def __init__(self, ca_bundle: str | None) -> None:
        self.ca_bundle = ca_bundle
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def get(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = http_client(self.ca_bundle)
            return self._client

    def __enter__(self) -> LazyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._client is not None:
            self._client.close()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


class ContentCache:
    """Files by sha256 under ``root/sha256/``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "sha256"
        ensure_dir(self.dir, "the download cache")

    def path(self, sha256: str) -> Path:
        return self.dir / sha256

    def verified(self, sha256: str) -> Path | None:
        """The cached file if present and intact; a damaged one is removed."""
        path = self.path(sha256)
        if not path.exists():
            return None
        if sha256_file(path) != sha256:
            path.unlink(missing_ok=True)
            return None
        return path

    def fetch(self, client: httpx.Client | LazyClient, url: str, sha256: str,
              progress: Callable[[int], None] | None = None,
              sleep: Callable[[float], None] = time.sleep) -> Path:
        """Return the verified file for ``sha256``, downloading it from ``url`` if needed.

        Transient failures (connection drops, 5xx, 429) are retried with backoff, resuming
        from what already arrived when the server honours Range.
        """
        import httpx

        found = self.verified(sha256)
        if found is not None:
            if progress:
                progress(found.stat().st_size)
            return found
        if isinstance(client, LazyClient):
            client = client.get()
        fd, tmp_name = tempfile.mkstemp(dir=self.dir, prefix=temp_prefix(sha256[:16]),
                                        suffix=".part")
        tmp = Path(tmp_name)
        os.close(fd)
        last = ""
        actual = ""
        try:
            for attempt in range(RETRIES):
                try:
                    actual = self._download(client, url, tmp, progress)
                    break
                except httpx.UnsupportedProtocol:
                    raise FetchError(f"{shorten(url)}: dlenv downloads over http(s) only",
                                     fix="serve the files over HTTP, or run 'dlenv lock' "
                                         "with an http(s) index") from None
                except (httpx.TransportError, _Retryable) as exc:
                    last = describe_transport_error(exc) \
                        if isinstance(exc, httpx.TransportError) else str(exc)
                    sleep(min(2 ** attempt * 0.5, 8))
            else:
                raise FetchError(f"download of {url} failed after {RETRIES} tries: {last}",
                                 fix="check the network or the mirror, then run again")
            return self._keep(tmp, sha256, f"{url}: sha256 is {{}}, the lock pins", fix=(
                "the server sent other content than was locked; check the mirror, or run "
                "'dlenv lock' if the artefact was really replaced"), actual=actual)
        finally:
            tmp.unlink(missing_ok=True)

    def put(self, source: IO[bytes], sha256: str, what: str) -> Path:
        """Keep what ``source`` holds as the file for ``sha256`` (``what`` names it in an
        error): written to a temporary name and checked before it takes the name."""
        fd, tmp_name = tempfile.mkstemp(dir=self.dir, prefix=temp_prefix(sha256[:16]),
                                        suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := source.read(CHUNK):
                    out.write(chunk)
            return self._keep(tmp, sha256, f"{what}: sha256 is {{}}, not", fix="copy it again "
                              "from its source")
        finally:
            tmp.unlink(missing_ok=True)

    def _keep(self, tmp: Path, sha256: str, mismatch: str, fix: str, actual: str = "") -> Path:
        """``tmp`` as the file for ``sha256`` when it hashes to it (``actual``: its hash,
        taken as it was written) (fsynced, renamed); else ``mismatch`` (with the hash
        found) followed by the one expected."""
        actual = actual or sha256_file(tmp)
        if actual != sha256:
            raise IntegrityError(f"{mismatch.format(actual)} {sha256}", fix=fix)
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, self.path(sha256))
        return self.path(sha256)

    @staticmethod
    def _download(client: httpx.Client, url: str, tmp: Path,
                  progress: Callable[[int], None] | None) -> str:
        """Download into ``tmp`` (resuming after what it holds, when the server allows);
        the sha256 of what ``tmp`` holds then, hashed as it is written (a second pass over
        CUDA's 2.5 GB of wheels took about 2 CPU-seconds)."""
        have = tmp.stat().st_size
        headers = {"Range": f"bytes={have}-"} if have else {}
        sha = hashlib.sha256()
        with client.stream("GET", url, headers=headers) as r:
            if r.status_code in (429,) or r.status_code >= 500:
                raise _Retryable(f"HTTP {r.status_code}")
            if r.status_code >= 400:
                raise FetchError(f"{url}: HTTP {r.status_code}",
                                 fix="the file is gone from the server; run 'dlenv lock' again")
            mode = "ab" if r.status_code == 206 else "wb"
            if mode == "ab":
                with tmp.open("rb") as f:
                    hashlib.file_digest(f, lambda: sha)
            with tmp.open(mode) as f:
                for chunk in r.iter_bytes(CHUNK):
                    f.write(chunk)
                    sha.update(chunk)
                    if progress:
                        progress(len(chunk))
        return sha.hexdigest()


class _Retryable(Exception):
    pass
