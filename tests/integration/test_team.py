"""A team's configuration with real registries: pulls try the team's mirror first and fall
back to the origin (a mirror that misses or is down), and a pull the origin cannot serve
comes from the mirror."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from dlenv.config import TEAM_FILE
from dlenv.oci import MT_MANIFEST
from dlenv.oci.registry import Reference, RegistryClient
from dlenv.oci.store import OCIStore
from tests.conftest import free_port, run_dlenv

pytestmark = pytest.mark.integration


def tiny_image(store: OCIStore) -> str:
    """A one-layer image in ``store``; its manifest digest."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo("etc/team-note")
        body = b"pulled through the team's mirror\n"
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    raw = data.getvalue()
    layer = store.put_bytes(gzip.compress(raw, mtime=0),
                            "application/vnd.oci.image.layer.v1.tar+gzip")
    import hashlib

    config = store.put_bytes(json.dumps({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]},
        "config": {}}).encode(), "application/vnd.oci.image.config.v1+json")
    manifest = store.put_bytes(json.dumps({
        "schemaVersion": 2, "mediaType": MT_MANIFEST, "config": config.to_json(),
        "layers": [layer.to_json()]}).encode(), MT_MANIFEST)
    store.tag("tiny", manifest)
    return manifest.digest


def push(store: OCIStore, ref: str) -> None:
    client = RegistryClient(mirrors={})
    try:
        client.push(store, store.resolve("tiny"), Reference.parse(ref))  # type: ignore[arg-type]
    finally:
        client.close()


def team_dir(tmp_path: Path, name: str, mirrors: dict[str, list[str]]) -> Path:
    where = tmp_path / name
    where.mkdir()
    lines = "\n".join(f'"{reg}" = {json.dumps(ms)}' for reg, ms in mirrors.items())
    (where / TEAM_FILE).write_text(f"[registry.mirrors]\n{lines}\n")
    return where


def pull(ref: str, where: Path, cache: Path) -> dict[str, object]:
    r = run_dlenv("pull", ref, "--cache-dir", str(cache), "--json", cwd=where)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def misses(log: Path, path: str) -> int:
    return log.read_text().count(f'"GET {path} HTTP/1.1" 404')  # the access log


def test_pulls_try_the_team_mirror_first_and_fall_back_to_the_origin(registry, second_registry,
                                                                     tmp_path):
    mirror, mirror_root = second_registry
    store = OCIStore(tmp_path / "source")
    digest = tiny_image(store)
    push(store, f"{registry}/team/tiny:1")

    # The mirror does not have it yet: asked first, it misses, and the origin serves.
    where = team_dir(tmp_path, "team-a", {registry: [mirror]})
    assert pull(f"{registry}/team/tiny:1", where, tmp_path / "c1")["digest"] == digest
    assert misses(mirror_root / "log", "/v2/team/tiny/manifests/1") == 1

    # Once the mirror holds it, a pull whose origin is unreachable comes from the mirror.
    push(store, f"{mirror}/team/tiny:1")
    gone = f"127.0.0.1:{free_port()}"
    where = team_dir(tmp_path, "team-b", {gone: [mirror]})
    assert pull(f"{gone}/team/tiny:1", where, tmp_path / "c2")["digest"] == digest
    stored = OCIStore(tmp_path / "c2" / "store")
    assert stored.has(digest) and len(stored.read_json(digest)["layers"]) == 1

    # A mirror that is down is passed over.
    where = team_dir(tmp_path, "team-c", {registry: [f"127.0.0.1:{free_port()}"]})
    assert pull(f"{registry}/team/tiny:1", where, tmp_path / "c3")["digest"] == digest


def uploads(log: Path) -> int:
    """Blob uploads a registry finished (each ends with one PUT)."""
    return sum(1 for line in log.read_text().splitlines()
               if '"PUT /v2/' in line and "/blobs/uploads/" in line and '" 201 ' in line)


def test_copy_and_mirror_send_only_missing_blobs_and_keep_the_digest(registry, second_registry,
                                                                     tmp_path):
    from tests.conftest import DOCKER, docker_ready

    site_b, site_b_root = second_registry
    store = OCIStore(tmp_path / "source")
    digest = tiny_image(store)
    for tag in ("2026.1", "2026.2", "nightly"):
        push(store, f"{registry}/envs/copy-me:{tag}")
    cache = tmp_path / "cache"

    before = uploads(site_b_root / "log")
    r = run_dlenv("copy", f"{registry}/envs/copy-me:2026.1", f"{site_b}/site/copy-me:2026.1",
                  "--cache-dir", str(cache), "--json")
    assert r.returncode == 0, r.stderr
    (copied,) = json.loads(r.stdout)
    assert (copied["digest"], copied["blobs_sent"], copied["skipped"]) == (digest, 2, False)
    assert uploads(site_b_root / "log") - before == 2  # the config and the one layer

    # the team's environments, Harbor-replication style: tags matching a pattern
    r = run_dlenv("mirror", f"{registry}/envs/copy-me", "--to", f"{site_b}/replica",
                  "--tags", "2026.*", "--cache-dir", str(cache), "--json")
    assert r.returncode == 0, r.stderr
    done = {c["target"]: c for c in json.loads(r.stdout)}
    assert sorted(done) == [f"{site_b}/replica/envs/copy-me:2026.1",
                            f"{site_b}/replica/envs/copy-me:2026.2"]
    assert all(c["digest"] == digest and c["blobs_sent"] == 0 for c in done.values())  # mounted
    again = run_dlenv("mirror", f"{registry}/envs/copy-me", "--to", f"{site_b}/replica",
                      "--tags", "2026.*", "--cache-dir", str(cache), "--json")
    assert all(c["skipped"] for c in json.loads(again.stdout))  # idempotent
    assert uploads(site_b_root / "log") - before == 2

    docker_ready()
    pulled = __import__("subprocess").run(
        [DOCKER, "pull", f"{site_b}/replica/envs/copy-me@{digest}"], capture_output=True,
        text=True, check=False)
    assert pulled.returncode == 0, pulled.stderr
