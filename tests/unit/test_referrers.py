"""SBOMs as artifacts that refer to an image: attached and found through the referrers API
where a registry has one, else through the referrers tag; every digest checked on the way
back. The registry here is a small in-memory fake of the distribution API (the integration
test uses Debian's docker-registry)."""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest

from dlenv.errors import IntegrityError
from dlenv.oci import MT_MANIFEST, Descriptor
from dlenv.oci.referrers import ARTIFACT_TYPES, attach, fetch, referrers, tag_of, with_referrer
from dlenv.oci.registry import Reference, RegistryClient
from dlenv.oci.store import OCIStore

CDX, SPDX = ARTIFACT_TYPES["cyclonedx"], ARTIFACT_TYPES["spdx"]


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class FakeRegistry:
    def __init__(self, api: bool) -> None:
        self.api = api  # answers OCI-Subject and serves /referrers/
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, bytes] = {}  # by digest and by tag
        self.uploads: dict[str, bytes] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        repo = "/v2/team/img"
        if path.startswith(f"{repo}/blobs/uploads/"):
            return self._upload(request)
        if path.startswith(f"{repo}/blobs/"):
            data = self.blobs.get(path.rsplit("/", 1)[1])
            return httpx.Response(404) if data is None else httpx.Response(200, content=data)
        if path.startswith(f"{repo}/manifests/"):
            reference = path.rsplit("/", 1)[1]
            if method == "PUT":
                body = request.read()
                self.manifests[reference] = body
                self.manifests[sha(body)] = body
                subject = json.loads(body).get("subject", {}).get("digest")
                headers = {"OCI-Subject": subject} if self.api and subject else {}
                return httpx.Response(201, headers=headers)
            body = self.manifests.get(reference)
            return httpx.Response(404) if body is None else httpx.Response(200, content=body)
        if path.startswith(f"{repo}/referrers/") and self.api:
            subject = path.rsplit("/", 1)[1]
            found = []
            for digest, body in self.manifests.items():
                doc = json.loads(body)
                if digest.startswith("sha256:") and doc.get("subject", {}).get("digest") == \
                        subject:
                    found.append({"mediaType": MT_MANIFEST, "digest": digest,
                                  "size": len(body), "artifactType": doc["artifactType"],
                                  "annotations": doc.get("annotations", {})})
            return httpx.Response(200, json={"schemaVersion": 2, "manifests": found})
        return httpx.Response(404)

    def _upload(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            self.uploads["u1"] = b""
            return httpx.Response(202, headers={"Location": "/v2/team/img/blobs/uploads/u1"})
        if request.method == "PATCH":
            self.uploads["u1"] += request.read()
            return httpx.Response(202, headers={"Location": "/v2/team/img/blobs/uploads/u1"})
        digest = request.url.params["digest"]
        self.blobs[digest] = self.uploads.pop("u1")
        return httpx.Response(201)


def client_for(fake: FakeRegistry) -> RegistryClient:
    return RegistryClient(transport=httpx.MockTransport(fake), credentials=lambda r: None,
                          mirrors={}, sleep=lambda s: None)


REF = Reference.parse("registry.example/team/img:1")
IMAGE = Descriptor(media_type=MT_MANIFEST, digest=sha(b"the image"), size=9)


@pytest.mark.parametrize("api", [False, True])
def test_two_sboms_attach_and_each_is_found_by_its_type(tmp_path, api):
    fake = FakeRegistry(api)
    client, store = client_for(fake), OCIStore(tmp_path / "store")
    cdx = attach(client, store, REF, IMAGE, CDX, b'{"bomFormat": "CycloneDX"}', {"a": "1"})
    spdx = attach(client, store, REF, IMAGE, SPDX, b'{"spdxVersion": "SPDX-2.3"}', {})
    doc = json.loads(fake.manifests[cdx])
    assert doc["subject"]["digest"] == IMAGE.digest and doc["artifactType"] == CDX
    assert doc["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    # a registry with the API keeps its own index: no referrers tag is written there
    assert (tag_of(IMAGE.digest) in fake.manifests) is not api
    found = referrers(client, REF, IMAGE.digest, CDX)
    assert [m["digest"] for m in found] == [cdx]
    assert fetch(client, REF, IMAGE.digest, found[0]) == b'{"bomFormat": "CycloneDX"}'
    assert [m["digest"] for m in referrers(client, REF, IMAGE.digest, SPDX)] == [spdx]
    assert referrers(client, REF, sha(b"another image"), CDX) == []


def test_what_the_registry_sends_back_is_checked(tmp_path):
    fake = FakeRegistry(api=False)
    client, store = client_for(fake), OCIStore(tmp_path / "store")
    cdx = attach(client, store, REF, IMAGE, CDX, b"{}", {})
    entry = referrers(client, REF, IMAGE.digest, CDX)[0]
    with pytest.raises(IntegrityError, match="does not refer to"):
        fetch(client, REF, sha(b"another image"), entry)  # listed under the wrong image
    blob = json.loads(fake.manifests[cdx])["layers"][0]["digest"]
    fake.blobs[blob] = b'{"tampered": true}'
    with pytest.raises(IntegrityError, match="not " + blob):
        fetch(client, REF, IMAGE.digest, entry)
    fake.manifests[cdx] = fake.manifests[cdx].replace(b"schemaVersion", b"schemaVersion ")
    with pytest.raises(IntegrityError, match="manifest that is not"):
        fetch(client, REF, IMAGE.digest, entry)


def test_the_referrers_index_keeps_others_and_replaces_the_same_digest():
    one = {"digest": "sha256:1", "artifactType": CDX}
    two = {"digest": "sha256:2", "artifactType": SPDX}
    index = json.loads(with_referrer(None, one))
    index = json.loads(with_referrer(index, two))
    again = json.loads(with_referrer(index, {**one, "annotations": {"x": "y"}}))
    assert [m["digest"] for m in again["manifests"]] == ["sha256:2", "sha256:1"]
    assert again["manifests"][1]["annotations"] == {"x": "y"}
    assert tag_of("sha256:abc") == "sha256-abc"
