"""A small OCI distribution client: pull, push and digest lookup.

It handles Bearer-token and Basic auth (credentials from ~/.docker/config.json), registry
mirrors, bounded retries with backoff on 5xx and dropped connections, chunked uploads,
skipping blobs the registry has, and digest verification of everything it downloads.
The transport is injectable so tests can run without a network.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import httpx

from dlenv.cache import describe_transport_error, http_timeout
from dlenv.config import DEFAULT_REGISTRY, REPOSITORY, parse_mirrors
from dlenv.errors import ConfigError, IntegrityError, RegistryError, UsageError
from dlenv.fsutil import shorten
from dlenv.oci import MT_DOCKER_LIST, MT_DOCKER_MANIFEST, MT_INDEX, MT_MANIFEST, Descriptor
from dlenv.oci.store import OCIStore

ACCEPT = ", ".join([MT_MANIFEST, MT_INDEX, MT_DOCKER_MANIFEST, MT_DOCKER_LIST])
CHUNK = 16 << 20
RETRIES = 5
T = TypeVar("T")
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
MIRROR_TRIES = 2  # a mirror that does not answer is passed over quickly for the next source
PARALLEL = 4  # blobs sent or fetched at once (the large layers overlap the small ones)


def default_registry() -> str:
    """Where short names (``debian:bookworm-slim``) are found: the team configuration's
    ``registry.default`` (``DLENV_DEFAULT_REGISTRY``), else Docker Hub."""
    return os.environ.get("DLENV_DEFAULT_REGISTRY") or DEFAULT_REGISTRY


def configured_mirrors() -> dict[str, tuple[str, ...]]:
    """``registry.mirrors`` of the team configuration (``DLENV_REGISTRY_MIRRORS``)."""
    text = os.environ.get("DLENV_REGISTRY_MIRRORS", "")
    try:
        return parse_mirrors(text) if text else {}
    except ValueError as exc:
        raise ConfigError(f"DLENV_REGISTRY_MIRRORS {exc}",
                         fix="write REGISTRY=MIRROR[,MIRROR...] entries, space-separated") \
            from None


@dataclass(frozen=True, slots=True)
class Reference:
    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @classmethod
    def parse(cls, ref: str) -> Reference:
        digest = None
        if "@" in ref:
            ref, digest = ref.split("@", 1)
        tag = None
        head, _, last = ref.rpartition("/")
        if ":" in last:
            last, tag = last.split(":", 1)
        ref = f"{head}/{last}" if head else last
        first = ref.split("/", 1)[0]
        if "/" in ref and ("." in first or ":" in first or first == "localhost"):
            registry, repository = ref.split("/", 1)
        else:
            registry = default_registry()
            repository = ref if "/" in ref or registry != DEFAULT_REGISTRY else f"library/{ref}"
        if not REPOSITORY.fullmatch(repository):
            raise UsageError(f"{shorten(ref)} is not a valid image reference",
                             fix="write REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST], lowercase")
        return cls(registry, repository, tag if tag or digest else "latest", digest)

    @property
    def reference(self) -> str:
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        out = f"{self.registry}/{self.repository}"
        if self.tag:
            out += f":{self.tag}"
        return out + (f"@{self.digest}" if self.digest else "")


def docker_credentials(registry: str, config: Path | None = None) -> tuple[str, str] | None:
    """Credentials for ``registry`` where ``docker login`` keeps them: the registry's
    credential helper (``credHelpers``), else the default store (``credsStore``), else the
    ``auths`` entry. Nothing is written anywhere by dlenv."""
    path = config or Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker")) / "config.json"
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    keys = (registry, f"https://{registry}", f"http://{registry}")
    helpers = doc.get("credHelpers") or {}
    helper = next((helpers[k] for k in keys if k in helpers), None) or doc.get("credsStore")
    if isinstance(helper, str) and re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", helper):
        found = _from_helper(helper, registry)
        if found:
            return found
    auths = doc.get("auths", {})
    for key in keys:
        entry = auths.get(key)
        if entry and entry.get("auth"):
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            return user, password
    return None


def _from_helper(helper: str, registry: str) -> tuple[str, str] | None:
    """Ask ``docker-credential-HELPER get`` (the protocol Docker's own helpers speak)."""
    import shutil
    import subprocess

    exe = shutil.which(f"docker-credential-{helper}")
    if exe is None:
        return None
    try:
        proc = subprocess.run([exe, "get"], input=registry, capture_output=True, text=True,
                              timeout=30, check=False)
        data = json.loads(proc.stdout) if proc.returncode == 0 else None
    except (subprocess.TimeoutExpired, ValueError, OSError):
        return None
    if isinstance(data, dict) and isinstance(data.get("Username"), str) \
            and isinstance(data.get("Secret"), str):
        return data["Username"], data["Secret"]
    return None


def _document(ref: Reference, body: bytes) -> dict[str, Any]:
    """A manifest or index from a registry, which is outside input like any other."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise RegistryError(f"{ref}: the registry sent a manifest that is not JSON") from None
    if not isinstance(doc, dict):
        raise RegistryError(f"{ref}: the registry sent a manifest that is not a JSON object")
    return doc


def _digest(ref: Reference, value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"sha256:[0-9a-f]{64}", value):
        raise RegistryError(f"{ref}: the registry named a blob {shorten(value)}, not a sha256 "
                            "digest")
    return value


def _plain_http(registry: str) -> bool:
    host = registry.rsplit(":", 1)[0]
    return host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.")


class RegistryClient:
    def __init__(self, *, transport: httpx.BaseTransport | None = None,
                 mirrors: dict[str, tuple[str, ...]] | None = None, verify: Any = True,
                 credentials: Callable[[str], tuple[str, str] | None] = docker_credentials,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.http = httpx.Client(transport=transport, verify=verify, timeout=http_timeout(),
                                 follow_redirects=True)
        self.mirrors = configured_mirrors() if mirrors is None else mirrors
        self.credentials = credentials
        self.sleep = sleep
        self.tokens: dict[tuple[str, str], str] = {}

    def close(self) -> None:
        self.http.close()

    def _base(self, registry: str) -> str:
        if registry.startswith(("http://", "https://")):
            return registry.rstrip("/")
        if registry == DEFAULT_REGISTRY:
            registry = "registry-1." + registry
        return ("http://" if _plain_http(registry) else "https://") + registry

    def _auth(self, ref: Reference, challenge: str, scope: str) -> str | None:
        creds = self.credentials(ref.registry)
        if challenge.lower().startswith("basic"):
            if not creds:
                return None
            return "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        if "realm" not in params:
            return None
        query = {"scope": scope}
        if "service" in params:
            query["service"] = params["service"]
        auth = httpx.BasicAuth(*creds) if creds else None
        r = self.http.get(params["realm"], params=query, auth=auth)
        if r.status_code != 200:
            raise RegistryError(f"{ref.registry}: token request failed ({r.status_code})",
                                fix="log in with 'docker login' or check the credentials")
        body = r.json()
        token = body.get("token") or body.get("access_token")
        return f"Bearer {token}" if token else None

    def request(self, method: str, ref: Reference, path: str, *, push: bool = False,
                tries: int = RETRIES, **kwargs: Any) -> httpx.Response:
        """One registry request with auth and bounded retries; the response is read fully."""
        url = path if path.startswith("http") else f"{self._base(ref.registry)}/v2/{path}"
        scope = f"repository:{ref.repository}:{'pull,push' if push else 'pull'}"
        key = (ref.registry, scope)
        last: str = ""
        for attempt in range(tries):
            headers = dict(kwargs.pop("headers", {}) or {})
            kwargs["headers"] = headers
            if key in self.tokens:
                headers["Authorization"] = self.tokens[key]
            try:
                r = self.http.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                last = describe_transport_error(exc)
                self.sleep(min(0.5 * 2 ** attempt, 8))
                continue
            if r.status_code == 401 and key not in self.tokens:
                auth = self._auth(ref, r.headers.get("www-authenticate", ""), scope)
                if auth:
                    self.tokens[key] = auth
                    continue
            if r.status_code >= 500 or r.status_code == 429:
                last = f"HTTP {r.status_code}"
                self.sleep(min(0.5 * 2 ** attempt, 8))
                continue
            return r
        raise RegistryError(f"{ref.registry}: {method} {url} failed after {tries} tries "
                            f"({last})", fix="check that the registry is up and reachable")

    # --- reading ------------------------------------------------------------------------
    def _sources(self, ref: Reference) -> list[tuple[Reference, int]]:
        """Where to pull ``ref`` from, with how many tries each: the team's mirrors of its
        registry in order (quickly passed over), then the registry itself."""
        return [(replace(ref, registry=m), MIRROR_TRIES)
                for m in self.mirrors.get(ref.registry, ())] + [(ref, RETRIES)]

    def _first(self, ref: Reference, fetch: Callable[[Reference, int], T]) -> T:
        """``fetch`` from each source in turn until one has it. Every byte is checked by
        digest whoever sends it, so a mirror that sends wrong bytes is an error, not a
        miss."""
        *mirrors, (origin, tries) = self._sources(ref)
        for source, mirror_tries in mirrors:
            try:
                return fetch(source, mirror_tries)
            except IntegrityError:
                raise
            except RegistryError:
                continue  # a miss or a mirror that is down: the next source
        return fetch(origin, tries)

    def manifest(self, ref: Reference) -> tuple[bytes, str, str]:
        """(body, media type, digest) of a manifest, resolving an index to linux/amd64;
        from the first of the registry's mirrors that has it, else the registry."""
        return self._first(ref, self._manifest)

    def _manifest(self, ref: Reference, tries: int = RETRIES) -> tuple[bytes, str, str]:
        r = self.request("GET", ref, f"{ref.repository}/manifests/{ref.reference}",
                         headers={"Accept": ACCEPT}, tries=tries)
        if r.status_code == 404:
            raise RegistryError(f"{ref} not found", fix="check the name and tag")
        if r.status_code != 200:
            raise RegistryError(f"{ref}: manifest request failed ({r.status_code})")
        body = r.content
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if ref.digest and ref.digest != digest:
            raise IntegrityError(f"{ref}: registry sent a manifest with digest {digest}")
        media = r.headers.get("content-type", "").split(";")[0]
        doc = _document(ref, body)
        media = doc.get("mediaType", media)
        if media in (MT_INDEX, MT_DOCKER_LIST):
            try:
                for m in doc["manifests"]:
                    p = m.get("platform", {})
                    if p.get("os") == "linux" and p.get("architecture") == "amd64":
                        return self._manifest(Reference(ref.registry, ref.repository, None,
                                                        _digest(ref, m["digest"])), tries)
            except (KeyError, TypeError, AttributeError):
                raise RegistryError(f"{ref}: the registry sent a malformed index") from None
            raise RegistryError(f"{ref} has no linux/amd64 image")
        return body, media, digest

    def resolve_digest(self, ref: Reference) -> str:
        return self.manifest(ref)[2]

    def blob_to_store(self, ref: Reference, digest: str, store: OCIStore) -> None:
        """One blob into the store, checked by digest; from the first source that has it."""
        if store.has(digest) and store.verify_blob(digest):
            return
        self._first(ref, lambda source, tries: self._blob(source, digest, store, tries))

    def _blob(self, ref: Reference, digest: str, store: OCIStore, tries: int) -> None:
        """Download one blob; a connection cut midway resumes from the byte it reached
        (Range), or starts over when the registry does not honour Range."""
        last = ""
        url = f"{self._base(ref.registry)}/v2/{ref.repository}/blobs/{digest}"
        with store.writer() as f:
            h = hashlib.sha256()
            for attempt in range(tries):
                have = f.tell()
                headers = {"Range": f"bytes={have}-"} if have else {}
                scope_key = (ref.registry, f"repository:{ref.repository}:pull")
                if scope_key in self.tokens:
                    headers["Authorization"] = self.tokens[scope_key]
                try:
                    with self.http.stream("GET", url, headers=headers) as r:
                        if r.status_code == 401 and attempt == 0:
                            self.request("HEAD", ref, f"{ref.repository}/blobs/{digest}")
                            continue
                        if r.status_code >= 500 or r.status_code == 429:
                            last = f"HTTP {r.status_code}"
                            self.sleep(min(0.5 * 2 ** attempt, 8))
                            continue
                        if r.status_code not in (200, 206):
                            raise RegistryError(f"{ref}: blob {digest}: HTTP {r.status_code}")
                        if r.status_code == 200 and have:  # Range not honoured: anew
                            f.seek(0)
                            f.truncate()
                            h = hashlib.sha256()
                        for chunk in r.iter_bytes(1 << 20):
                            h.update(chunk)
                            f.write(chunk)
                except httpx.TransportError as exc:
                    last = describe_transport_error(exc)
                    self.sleep(min(0.5 * 2 ** attempt, 8))
                    continue
                if "sha256:" + h.hexdigest() != digest:
                    raise IntegrityError(f"{ref}: blob {digest} arrived with another digest")
                store.commit(f, digest)
                return
        raise RegistryError(f"{ref}: blob {digest} could not be downloaded after {tries} "
                            f"tries ({last})", fix="check that the registry is up and reachable")

    def pull(self, ref: Reference, store: OCIStore, tag: str | None = None) -> Descriptor:
        body, media, digest = self.manifest(ref)
        doc = _document(ref, body)
        try:
            digests = [_digest(ref, b["digest"]) for b in [doc["config"], *doc["layers"]]]
        except (KeyError, TypeError):
            raise RegistryError(f"{ref}: the registry sent a manifest without config or "
                                "layers") from None
        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            list(pool.map(lambda d: self.blob_to_store(ref, d, store), digests))
        desc = store.put_bytes(body, media)
        assert desc.digest == digest
        store.tag(tag or str(ref), desc)
        return desc

    # --- writing ------------------------------------------------------------------------
    def _chunks(self, path: Path) -> Iterator[bytes]:
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk

    def has_blob(self, ref: Reference, digest: str) -> bool:
        return self.request("HEAD", ref, f"{ref.repository}/blobs/{digest}",
                            push=True).status_code == 200

    def mount(self, ref: Reference, digest: str, source: str) -> bool:
        """Ask the registry to link a blob of its repository ``source`` into ``ref``'s."""
        if source == ref.repository:
            return False
        r = self.request("POST", ref, f"{ref.repository}/blobs/uploads/", push=True,
                         params={"mount": digest, "from": source})
        if r.status_code == 202:  # not mounted: the registry opened an upload instead
            self.request("DELETE", ref, self._absolute(ref, r.headers["location"]), push=True)
        return r.status_code == 201

    def push_blob(self, ref: Reference, store: OCIStore, digest: str,
                  mount_from: tuple[str, ...] = ()) -> bool:
        """Upload one blob unless the repository has it or the registry can mount it from
        another of its repositories (``mount_from``, tried in order: no bytes are sent);
        return whether it was sent."""
        if self.has_blob(ref, digest) or any(self.mount(ref, digest, m) for m in mount_from):
            return False
        self.upload(ref, store, digest)
        return True

    def upload(self, ref: Reference, store: OCIStore, digest: str) -> None:
        r = self.request("POST", ref, f"{ref.repository}/blobs/uploads/", push=True)
        if r.status_code not in (201, 202):
            raise RegistryError(f"{ref}: cannot start an upload ({r.status_code} {r.text[:200]})")
        location = self._absolute(ref, r.headers["location"])
        offset = 0
        for chunk in self._chunks(store.blob_path(digest)):
            r = self.request("PATCH", ref, location, push=True, content=chunk, headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + len(chunk) - 1}"})
            if r.status_code != 202:
                raise RegistryError(f"{ref}: upload chunk refused ({r.status_code})")
            location = self._absolute(ref, r.headers["location"])
            offset += len(chunk)
        sep = "&" if "?" in location else "?"
        r = self.request("PUT", ref, f"{location}{sep}digest={digest}", push=True)
        if r.status_code != 201:
            raise RegistryError(f"{ref}: upload of {digest} not accepted ({r.status_code})")

    def _absolute(self, ref: Reference, location: str) -> str:
        return location if location.startswith("http") else self._base(ref.registry) + location

    def push(self, store: OCIStore, manifest: Descriptor, ref: Reference,
             mount_from: tuple[str, ...] = ()) -> tuple[str, int]:
        """Push an image (each blob hashed in full first); return its digest and how many
        blobs were sent. ``mount_from``: repositories of the same registry that may hold
        some blobs already (cross-repository mounts)."""
        _, *blobs = store.verified_blobs(manifest)
        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            sent = sum(pool.map(lambda d: self.push_blob(ref, store, d, mount_from), blobs))
        body = store.blob_path(manifest.digest).read_bytes()
        r = self.request("PUT", ref, f"{ref.repository}/manifests/{ref.reference}", push=True,
                         content=body, headers={"Content-Type": manifest.media_type})
        if r.status_code not in (200, 201):
            raise RegistryError(f"{ref}: manifest refused ({r.status_code} {r.text[:200]})")
        return manifest.digest, sent

    # --- between registries ---------------------------------------------------------------
    def manifest_digest(self, ref: Reference) -> str | None:
        """The digest ``ref`` names at its registry now (no mirrors), or None when absent."""
        r = self.request("HEAD", ref, f"{ref.repository}/manifests/{ref.reference}",
                         headers={"Accept": ACCEPT})
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise RegistryError(f"{ref}: manifest request failed ({r.status_code})")
        found = r.headers.get("docker-content-digest")
        return _digest(ref, found) if found else self._manifest(ref)[2]

    def tags(self, ref: Reference) -> list[str]:
        """Every tag of ``ref``'s repository (following the registry's pages)."""
        found: list[str] = []
        path = f"{ref.repository}/tags/list?n=1000"
        for _ in range(1000):  # a bounded walk over the pages
            r = self.request("GET", ref, path)
            if r.status_code == 404:
                raise RegistryError(f"{ref.registry}/{ref.repository} not found",
                                    fix="check the repository's name")
            if r.status_code != 200:
                raise RegistryError(f"{ref}: tag list failed ({r.status_code})")
            tags = _document(ref, r.content).get("tags") or []
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise RegistryError(f"{ref}: the registry sent a malformed tag list")
            found += [t for t in tags if TAG.fullmatch(t)]
            following = re.search(r"<([^>]+)>", r.headers.get("link", ""))
            if not following:
                break
            path = following.group(1)
            if not path.startswith("http"):
                path = path.removeprefix("/v2/")
        return sorted(set(found))

    def copy(self, source: Reference, target: Reference, store: OCIStore,
             mount_from: tuple[str, ...] = (),
             manifest: tuple[bytes, str, str] | None = None) -> tuple[str, int]:
        """Copy an image between repositories or registries with its digest: blobs the
        target has are skipped, blobs the target registry holds in the source repository
        (same registry) or in ``mount_from`` are mounted, the rest pass through the store
        (verified by digest). ``manifest``: what ``manifest(source)`` gave, when the caller
        has it already. (digest, blobs sent)."""
        body, media, digest = manifest or self.manifest(source)
        doc = _document(source, body)
        try:
            blobs = [_digest(source, b["digest"]) for b in [doc["config"], *doc["layers"]]]
        except (KeyError, TypeError):
            raise RegistryError(f"{source}: the registry sent a manifest without config or "
                                "layers") from None
        sent = 0
        for blob in blobs:
            near = (source.repository,) if source.registry == target.registry else ()
            if self.has_blob(target, blob) or any(self.mount(target, blob, m)
                                                  for m in (*near, *mount_from)):
                continue
            self.blob_to_store(source, blob, store)
            self.upload(target, store, blob)
            sent += 1
        r = self.request("PUT", target, f"{target.repository}/manifests/{target.reference}",
                         push=True, content=body, headers={"Content-Type": media})
        if r.status_code not in (200, 201):
            raise RegistryError(f"{target}: manifest refused ({r.status_code} {r.text[:200]})")
        return digest, sent

