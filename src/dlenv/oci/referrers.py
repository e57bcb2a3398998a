"""Artifacts that refer to an image (an SBOM), by the OCI distribution spec 1.1: an image
manifest whose ``subject`` is the image, found through the registry's referrers API, or, on a
registry without it, through the referrers tag scheme (an index tagged ``sha256-<hex>`` of the
image's digest, which the pusher keeps up to date).

The documents are built here (pure); ``attach`` and ``fetch`` talk to a registry through
``RegistryClient`` and check every digest they read."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from dlenv.errors import IntegrityError, RegistryError
from dlenv.fsutil import canonical_json
from dlenv.oci import MT_INDEX, MT_MANIFEST, Descriptor
from dlenv.oci.registry import Reference, RegistryClient
from dlenv.oci.store import OCIStore

MT_EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY = b"{}"  # the config of an artifact that needs none
MAX_ARTIFACT = 64 << 20  # bytes of an artifact's blob read back into memory
ARTIFACT_TYPES = {"cyclonedx": "application/vnd.cyclonedx+json",
                  "spdx": "application/spdx+json"}


def artifact_manifest(subject: Descriptor, artifact_type: str, blob: Descriptor,
                      annotations: dict[str, str]) -> bytes:
    """The manifest of an artifact of one blob that refers to ``subject``."""
    return canonical_json({
        "schemaVersion": 2, "mediaType": MT_MANIFEST, "artifactType": artifact_type,
        "config": {"mediaType": MT_EMPTY, "digest": _sha(EMPTY), "size": len(EMPTY)},
        "layers": [blob.to_json()],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest,
                    "size": subject.size},
        "annotations": annotations,
    })


def tag_of(digest: str) -> str:
    """The referrers tag of an image digest (``sha256-<hex>``)."""
    algorithm, _, hexdigest = digest.partition(":")
    return f"{algorithm}-{hexdigest}"


def with_referrer(index: dict[str, Any] | None, entry: dict[str, Any]) -> bytes:
    """The referrers index with ``entry`` (replacing one of the same digest), others kept."""
    kept = [m for m in (index or {}).get("manifests", [])
            if isinstance(m, dict) and m.get("digest") != entry["digest"]]
    return canonical_json({"schemaVersion": 2, "mediaType": MT_INDEX,
                           "manifests": [*kept, entry]})


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json(ref: Reference, body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except ValueError:
        raise RegistryError(f"{ref}: the registry sent a document that is not JSON") from None
    if not isinstance(doc, dict):
        raise RegistryError(f"{ref}: the registry sent a malformed document")
    return doc


def _get_manifest(client: RegistryClient, ref: Reference, reference: str,
                  accept: str) -> bytes | None:
    r = client.request("GET", ref, f"{ref.repository}/manifests/{reference}",
                       headers={"Accept": accept})
    if r.status_code == 404:
        return None
    if r.status_code != 200:
        raise RegistryError(f"{ref}: GET manifests/{reference} failed ({r.status_code})")
    return r.content


def _put_manifest(client: RegistryClient, ref: Reference, reference: str, body: bytes,
                  media_type: str) -> dict[str, str]:
    r = client.request("PUT", ref, f"{ref.repository}/manifests/{reference}", push=True,
                       content=body, headers={"Content-Type": media_type})
    if r.status_code not in (200, 201):
        raise RegistryError(f"{ref}: manifest refused ({r.status_code} {r.text[:200]})")
    return {k.lower(): v for k, v in r.headers.items()}


def attach(client: RegistryClient, store: OCIStore, ref: Reference, subject: Descriptor,
           artifact_type: str, data: bytes, annotations: dict[str, str]) -> str:
    """Push ``data`` as an artifact referring to ``subject`` in ``ref``'s repository; its
    manifest digest. A registry that answers the manifest's PUT without ``OCI-Subject`` has
    no referrers API, so the referrers tag's index is updated as the spec says."""
    blob = store.put_bytes(data, artifact_type)
    store.put_bytes(EMPTY, MT_EMPTY)
    for digest in (blob.digest, _sha(EMPTY)):
        client.push_blob(ref, store, digest)
    body = artifact_manifest(subject, artifact_type, blob, annotations)
    digest = _sha(body)
    headers = _put_manifest(client, ref, digest, body, MT_MANIFEST)
    if headers.get("oci-subject") != subject.digest:
        tag = tag_of(subject.digest)
        found = _get_manifest(client, ref, tag, MT_INDEX)
        entry = {"mediaType": MT_MANIFEST, "digest": digest, "size": len(body),
                 "artifactType": artifact_type, "annotations": annotations}
        index = with_referrer(_json(ref, found) if found else None, entry)
        _put_manifest(client, ref, tag, index, MT_INDEX)
    return digest


def referrers(client: RegistryClient, ref: Reference, subject: str,
              artifact_type: str) -> list[dict[str, Any]]:
    """The descriptors of ``subject``'s referrers of ``artifact_type``: from the referrers
    API when the registry has it, else from the referrers tag."""
    r = client.request("GET", ref, f"{ref.repository}/referrers/{subject}",
                       params={"artifactType": artifact_type}, headers={"Accept": MT_INDEX})
    if r.status_code == 200:
        index = _json(ref, r.content)
    elif r.status_code == 404:
        found = _get_manifest(client, ref, tag_of(subject), MT_INDEX)
        index = _json(ref, found) if found else {}
    else:
        raise RegistryError(f"{ref}: the referrers of {subject} cannot be listed "
                            f"({r.status_code})")
    return [m for m in index.get("manifests", []) if isinstance(m, dict)
            and m.get("artifactType") == artifact_type and isinstance(m.get("digest"), str)]


def fetch(client: RegistryClient, ref: Reference, subject: str,
          descriptor: dict[str, Any]) -> bytes:
    """The blob of one referrer, every digest checked: the manifest's, that it refers to
    ``subject``, and the blob's."""
    digest = descriptor["digest"]
    body = _get_manifest(client, ref, digest, MT_MANIFEST)
    if body is None:
        raise RegistryError(f"{ref}: the referrer {digest} is listed but missing")
    if _sha(body) != digest:
        raise IntegrityError(f"{ref}: the registry sent a manifest that is not {digest}")
    doc = _json(ref, body)
    if (doc.get("subject") or {}).get("digest") != subject:
        raise IntegrityError(f"{ref}: {digest} does not refer to {subject}")
    layers = doc.get("layers") or []
    if len(layers) != 1 or not isinstance(layers[0], dict):
        raise RegistryError(f"{ref}: {digest} is not an artifact of one blob")
    blob, size = str(layers[0].get("digest")), int(layers[0].get("size", 0))
    if size > MAX_ARTIFACT:
        raise RegistryError(f"{ref}: the artifact's blob is {size} bytes, more than "
                            f"{MAX_ARTIFACT}")
    r = client.request("GET", ref, f"{ref.repository}/blobs/{blob}")
    if r.status_code != 200:
        raise RegistryError(f"{ref}: blob {blob} cannot be read ({r.status_code})")
    if _sha(r.content) != blob:
        raise IntegrityError(f"{ref}: the registry sent a blob that is not {blob}")
    return r.content
