"""Deterministic layers, the store's atomicity, and retries against failing servers."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import random
import subprocess
import tarfile
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlenv.cache import ContentCache
from dlenv.errors import FetchError, IntegrityError, RegistryError
from dlenv.oci import MT_MANIFEST, Descriptor
from dlenv.oci.image import manifest_json
from dlenv.oci.layer import LayerOptions, write_layer
from dlenv.oci.registry import Reference, RegistryClient
from dlenv.oci.store import OCIStore
from dlenv.resolve.debian import SuiteIndex, closure, parse_packages, verify_inrelease

FILES = st.dictionaries(
    st.from_regex(r"[a-z]{1,8}(/[a-z]{1,8}){0,2}", fullmatch=True),
    st.binary(max_size=200), min_size=1, max_size=12)


def make_tree(root: Path, files: dict[str, bytes], order: list[str], umask: int) -> None:
    old = os.umask(umask)
    try:
        for name in order:
            path = root / name
            if any(p.exists() and not p.is_dir() for p in path.parents):
                continue
            if path.exists():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(files[name])
            os.utime(path, (random.randint(0, 2**31), random.randint(0, 2**31)))
    finally:
        os.umask(old)


def digest_of(root: Path, compression: str = "gzip") -> tuple[str, str]:
    sink = io.BytesIO()
    blob = write_layer(root, sink, LayerOptions(epoch=1700000000, compression=compression))
    assert blob.descriptor.digest == "sha256:" + hashlib.sha256(sink.getvalue()).hexdigest()
    return blob.descriptor.digest, blob.diff_id


@settings(max_examples=25, deadline=None)
@given(files=FILES, seed=st.integers(0, 1000))
def test_layer_bytes_do_not_depend_on_file_order_umask_or_clock(tmp_path_factory, files, seed):
    a, b = tmp_path_factory.mktemp("a"), tmp_path_factory.mktemp("b")
    names = sorted(files)
    shuffled = names[:]
    random.Random(seed).shuffle(shuffled)
    make_tree(a, files, names, 0o022)
    make_tree(b, files, shuffled, 0o077)
    # the same set of paths must exist in both (a path may be shadowed by a file parent)
    listing = lambda r: sorted(str(p.relative_to(r)) for p in r.rglob("*"))  # noqa: E731
    if listing(a) != listing(b):
        return
    assert digest_of(a) == digest_of(b)
    assert digest_of(a, "zstd")[1] == digest_of(b, "zstd")[1]


def test_layer_keeps_hard_links_symlinks_and_fixed_metadata(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin/tool").write_bytes(b"#!/bin/sh\n")
    os.chmod(tmp_path / "bin/tool", 0o700)
    os.link(tmp_path / "bin/tool", tmp_path / "bin/tool2")
    (tmp_path / "bin/alias").symlink_to("tool")
    sink = io.BytesIO()
    opts = LayerOptions(epoch=42, compression="none", owners={"bin": (1000, 1000)})
    write_layer(tmp_path, sink, opts)
    sink.seek(0)
    with tarfile.open(fileobj=sink) as tar:
        members = {m.name: m for m in tar}
    assert list(members) == ["bin", "bin/alias", "bin/tool", "bin/tool2"]
    assert members["bin/tool"].mode == 0o755 and members["bin/tool"].mtime == 42
    assert members["bin/tool2"].islnk() and members["bin/tool2"].linkname == "bin/tool"
    assert members["bin/alias"].issym() and members["bin/alias"].linkname == "tool"
    assert (members["bin"].uid, members["bin/tool"].uid) == (1000, 0)
    assert all(m.uname == "" for m in members.values())


def test_store_write_is_atomic_and_gc_removes_leftovers(tmp_path):
    store = OCIStore(tmp_path)
    crashed = f".dlenv-tmp-{dead_pid()}-blob-x.part"  # left by a killed process
    running = f".dlenv-tmp-{os.getpid()}-blob-y.part"  # a build still writing
    for name in (crashed, running):
        (store.blobs / name).write_bytes(b"half a layer")
        os.utime(store.blobs / name, (1e9, 1e9))
    cfg = store.put_bytes(b"{}", "application/vnd.oci.image.config.v1+json")
    manifest = store.put_bytes(json.dumps({"config": cfg.to_json(), "layers": []}).encode(),
                               "application/vnd.oci.image.manifest.v1+json")
    orphan = store.put_bytes(b"orphan", "application/octet-stream")
    store.tag("x:1", manifest)
    removed = store.gc()
    assert crashed in removed and orphan.hex in removed and running not in removed
    assert (store.blobs / running).exists()
    assert store.has(cfg.digest) and store.resolve("x:1") is not None


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_tagging_a_manifest_with_a_missing_blob_is_refused(tmp_path):
    store = OCIStore(tmp_path)
    manifest = store.put_bytes(json.dumps({"config": {"digest": "sha256:" + "0" * 64},
                                           "layers": []}).encode(), "m")
    with pytest.raises(Exception, match="missing"):
        store.tag("x:1", manifest)
    assert store.tags() == {}


def flaky(handler_failures: list[str], payload: bytes):
    """A server that fails as listed (500 or a dropped connection), then serves payload."""
    def handler(request: httpx.Request) -> httpx.Response:
        if handler_failures:
            kind = handler_failures.pop(0)
            if kind == "drop":
                raise httpx.RemoteProtocolError("connection dropped", request=request)
            return httpx.Response(500)
        return httpx.Response(200, content=payload)
    return httpx.MockTransport(handler)


def test_download_retries_500_and_dropped_connections(tmp_path):
    payload = b"deb contents"
    sha = hashlib.sha256(payload).hexdigest()
    cache = ContentCache(tmp_path)
    client = httpx.Client(transport=flaky(["500", "drop", "500"], payload))
    path = cache.fetch(client, "http://mirror.test/x.deb", sha, sleep=lambda s: None)
    assert path.read_bytes() == payload


def test_download_gives_up_after_bounded_retries(tmp_path):
    client = httpx.Client(transport=flaky(["500"] * 10, b""))
    with pytest.raises(FetchError, match="failed after"):
        ContentCache(tmp_path).fetch(client, "http://mirror.test/x", "0" * 64,
                                     sleep=lambda s: None)
    assert not list((tmp_path / "sha256").iterdir())  # no partial file left


def test_a_wrong_sha256_is_refused_and_nothing_is_cached(tmp_path):
    client = httpx.Client(transport=flaky([], b"tampered"))
    with pytest.raises(IntegrityError, match="the lock pins"):
        ContentCache(tmp_path).fetch(client, "http://mirror.test/x", "1" * 64)
    assert not list((tmp_path / "sha256").iterdir())


def test_registry_requests_retry_then_succeed_and_then_give_up():
    ref = Reference.parse("127.0.0.1:5000/team/app:1")
    client = RegistryClient(transport=flaky(["500", "drop"], b"{}"), sleep=lambda s: None)
    assert client.request("GET", ref, "team/app/tags/list").status_code == 200
    client = RegistryClient(transport=flaky(["500"] * 9, b""), sleep=lambda s: None)
    with pytest.raises(RegistryError, match="failed after"):
        client.request("GET", ref, "team/app/tags/list")


def test_registry_token_auth_is_negotiated():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, request.headers.get("authorization")))
        if request.url.path == "/token":
            return httpx.Response(200, json={"token": "T"})
        if request.headers.get("authorization") != "Bearer T":
            return httpx.Response(401, headers={"www-authenticate": 'Bearer realm='
                                  '"https://auth.test/token",service="reg"'})
        return httpx.Response(200, json={})
    client = RegistryClient(transport=httpx.MockTransport(handler), credentials=lambda r: None)
    ref = Reference.parse("reg.test/team/app:1")
    assert client.request("GET", ref, "team/app/tags/list").status_code == 200
    assert seen[-1] == ("/v2/team/app/tags/list", "Bearer T")


@pytest.mark.parametrize(("text", "expected"), [
    ("python:3.11-slim", ("docker.io", "library/python", "3.11-slim", None)),
    ("127.0.0.1:5000/team/app@sha256:" + "a" * 64,
     ("127.0.0.1:5000", "team/app", None, "sha256:" + "a" * 64)),
    ("reg.example/ml/base", ("reg.example", "ml/base", "latest", None)),
])
def test_references_parse(text, expected):
    r = Reference.parse(text)
    assert (r.registry, r.repository, r.tag, r.digest) == expected


def test_a_tampered_inrelease_is_refused():
    with pytest.raises(IntegrityError, match="signature does not verify"):
        verify_inrelease(b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nSuite: evil\n"
                         b"-----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----\n",
                         [Path("/usr/share/keyrings/debian-archive-keyring.gpg")])


PACKAGES = """Package: app
Version: 1
Depends: libc6 (>= 2.36), mail-transport-agent | exim4, python3:any
Recommends: big-docs

Package: libc6
Version: 2.36

Package: postfix
Version: 3
Provides: mail-transport-agent

Package: python3
Version: 3.11
Pre-Depends: libc6
Description: a long
 description over lines

Package: big-docs
Version: 1
"""


def test_closure_follows_depends_alternatives_and_provides_but_not_recommends():
    index = SuiteIndex(suite="test", release_sha256="x", packages=parse_packages(PACKAGES))
    names = [s.name for s in closure(index, ["app"])]
    assert names == ["app", "libc6", "postfix", "python3"]
    assert "over lines" in index.packages["python3"].get("Description")


def test_closure_names_missing_packages():
    index = SuiteIndex(suite="test", release_sha256="x", packages=parse_packages(PACKAGES))
    with pytest.raises(Exception, match="has no package nosuch"):
        closure(index, ["app", "nosuch"])


def test_scratch_trees_go_to_memory_only_when_it_has_room(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from dlenv.errors import UsageError
    from dlenv.fsutil import scratch_dir

    disk, shm, meminfo = tmp_path / "disk", tmp_path / "shm", tmp_path / "meminfo"
    disk.mkdir()
    shm.mkdir()
    meminfo.write_text("MemTotal: 8000000 kB\nMemAvailable: 4000000 kB\n")  # ~4 GB
    room = {"shm": 8 << 30}  # what the memory file system has free, whatever this disk has
    statvfs = os.statvfs
    monkeypatch.setattr(os, "statvfs", lambda path: SimpleNamespace(
        f_bavail=room["shm"] // 4096, f_frsize=4096) if Path(path) == shm else statvfs(path))
    assert scratch_dir(disk, 500 << 20, {}, shm, meminfo) == shm
    assert scratch_dir(disk, 2 << 30, {}, shm, meminfo) == disk  # 4x is more than memory
    room["shm"] = 1 << 30
    assert scratch_dir(disk, 500 << 20, {}, shm, meminfo) == disk  # 4x is more than shm has
    assert scratch_dir(disk, 1, {}, tmp_path / "none", meminfo) == disk  # no /dev/shm
    assert scratch_dir(disk, 1, {"DLENV_SCRATCH_DIR": str(disk)}, shm, meminfo) == disk
    with pytest.raises(UsageError, match="DLENV_SCRATCH_DIR"):
        scratch_dir(disk, 1, {"DLENV_SCRATCH_DIR": str(tmp_path / "missing")}, shm, meminfo)


def test_a_wheel_layer_whose_memory_scratch_fills_up_is_built_again_on_disk(tmp_path,
                                                                            monkeypatch):

    from dlenv.cache import ContentCache
    from dlenv.image import layers as layers_mod
    from dlenv.image.plan import LayerPlan
    from dlenv.oci.store import OCIStore
    from tests.unit.test_wheel_layers import wheel_named

    builder = layers_mod.LayerBuilder(OCIStore(tmp_path / "store"), ContentCache(
        tmp_path / "cache" / "blobs"), tmp_path / "rootfs", ca_bundle=None,
        progress=lambda *a: None, sdists=None)
    memory = tmp_path / "memory"
    memory.mkdir()
    monkeypatch.setattr(layers_mod, "scratch_dir", lambda disk, need: memory)
    tried = []

    def build_in(scratch, plan, layer, paths, compression):
        tried.append(scratch)
        if scratch == memory:
            raise OSError(errno.ENOSPC, "No space left on device")
        return "built"

    monkeypatch.setattr(builder, "_build_in", build_in)
    layer = LayerPlan(name="numpy 1", kind="wheels", wheels=(wheel_named("numpy", 1 << 20),))
    plan = SimpleNamespace(compression="gzip")
    assert builder.build(plan, layer, {}) == "built"  # type: ignore[arg-type]
    assert tried == [memory, tmp_path / "cache"]
    chosen = []
    monkeypatch.setattr(builder, "_build_in", lambda *a: chosen.append(a[-1]))
    monkeypatch.setattr(builder.store, "room_for", lambda size: True)  # not this disk's
    builder.build(plan, layer, {}, pack=False)  # an image for an engine here: a plain tar
    monkeypatch.setattr(builder.store, "room_for", lambda size: False)
    builder.build(plan, layer, {}, pack=False)  # unless the disk lacks room for one
    assert chosen == ["none", "gzip"]
    monkeypatch.setattr(builder, "_build_in", lambda *a: (_ for _ in ()).throw(
        OSError(errno.EACCES, "Permission denied")))
    with pytest.raises(PermissionError):  # other errors are not retried
        builder.build(plan, layer, {})  # type: ignore[arg-type]


def _stored_image(tmp_path: Path, compression: str, store: OCIStore | None = None,
                  pack: str = "") -> tuple[OCIStore, Descriptor, list]:
    """An image of two layers built into a store and tagged x:1, as the native builder
    commits layers and writes a manifest (``pack``: what its tag says the layers are due)."""
    store = store or OCIStore(tmp_path / "store")
    blobs = []
    for name in ("a", "b"):
        tree = tmp_path / name
        if not tree.exists():
            (tree / "opt").mkdir(parents=True)
            (tree / "opt" / name).write_bytes(os.urandom(5000) + b"x" * 70000)
        with store.writer() as f:
            blob = write_layer(tree, f, LayerOptions(epoch=0, compression=compression))
            store.commit(f, blob.descriptor.digest, blob.diff_id, blob.diff_size)
        blobs.append(blob)
    config = store.put_bytes(json.dumps({"rootfs": {"type": "layers", "diff_ids": [
        b.diff_id for b in blobs]}}).encode(), "application/vnd.oci.image.config.v1+json")
    manifest = store.put_bytes(manifest_json(config, [b.descriptor for b in blobs],
                                             {"org.example": "kept"}), MT_MANIFEST)
    store.tag("x:1", manifest, pack=pack)
    return store, manifest, blobs


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_a_load_for_this_machine_sends_layers_uncompressed_and_files_keep_them_compressed(
        tmp_path, compression):
    from dlenv.oci.export import write_docker_archive

    store, manifest, blobs = _stored_image(tmp_path, compression)
    for unpacked in (True, False):
        out = io.BytesIO()
        write_docker_archive(store, manifest, out, "x:1", held=1, unpacked=unpacked)
        out.seek(0)
        with tarfile.open(fileobj=out) as tar:
            layers = json.load(tar.extractfile("manifest.json"))[0]["Layers"]
            assert len(layers) == 2 and layers[0] not in tar.getnames()  # held: left out
            data = tar.extractfile(layers[1]).read()
        if unpacked:  # the tar the config's diff id names, not the stored blob
            assert "sha256:" + hashlib.sha256(data).hexdigest() == blobs[1].diff_id
            assert len(data) == blobs[1].diff_size
        else:
            assert "sha256:" + hashlib.sha256(data).hexdigest() == blobs[1].descriptor.digest


def test_an_unpacked_layer_of_another_length_than_recorded_breaks_the_archive(tmp_path):
    from dlenv.oci.export import write_docker_archive

    store, manifest, blobs = _stored_image(tmp_path, "gzip")
    stamp = store.stamps / blobs[1].descriptor.digest.split(":", 1)[1]
    for wrong, error in ((blobs[1].diff_size - 512, IntegrityError),
                         (blobs[1].diff_size + 512, OSError)):
        record = json.loads(stamp.read_bytes())
        stamp.write_text(json.dumps({**record, "diff_size": wrong}))
        with pytest.raises(error):
            write_docker_archive(store, manifest, io.BytesIO(), "x:1", unpacked=True)


def test_a_layer_whose_length_is_not_known_goes_out_as_stored(tmp_path):
    from dlenv.oci.export import write_docker_archive

    store, manifest, blobs = _stored_image(tmp_path, "gzip")
    stamp = store.stamps / blobs[0].descriptor.digest.split(":", 1)[1]
    stamp.write_text(json.dumps({**json.loads(stamp.read_bytes()), "diff_size": 0}))
    out = io.BytesIO()
    write_docker_archive(store, manifest, out, "x:1", unpacked=True)
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        layers = json.load(tar.extractfile("manifest.json"))[0]["Layers"]
        sent = [tar.extractfile(name).read() for name in layers]
    assert "sha256:" + hashlib.sha256(sent[0]).hexdigest() == blobs[0].descriptor.digest
    assert "sha256:" + hashlib.sha256(sent[1]).hexdigest() == blobs[1].diff_id


def _leftovers(store: OCIStore) -> list[str]:
    return [p.name for p in store.blobs.iterdir() if p.name.endswith(".part")]


def _archive_layers(store: OCIStore, manifest: Descriptor) -> list[str]:
    """The layers a load for this machine sends, by the sha256 of what it sends."""
    from dlenv.oci.export import write_docker_archive

    out = io.BytesIO()
    write_docker_archive(store, manifest, out, "x:1", unpacked=True)
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        names = json.load(tar.extractfile("manifest.json"))[0]["Layers"]
        return ["sha256:" + hashlib.sha256(tar.extractfile(n).read()).hexdigest()
                for n in names]


def test_an_image_kept_as_plain_tars_is_packed_to_the_bytes_a_compressed_build_gives(
        tmp_path, monkeypatch):
    from isal import igzip_threaded

    from dlenv.oci import layer as layer_mod
    from dlenv.oci.store import PACK_ANNOTATION

    _, compressed, gz_blobs = _stored_image(tmp_path, "gzip", OCIStore(tmp_path / "gz"))
    store, manifest, tars = _stored_image(tmp_path, "none", pack="gzip")
    diff_ids = [b.diff_id for b in gz_blobs]
    assert [b.descriptor.digest for b in tars] == diff_ids  # a plain tar's digest: its diff id
    assert store.pack(tars[0], "gzip", make=False) is tars[0]  # none made yet, none made now
    assert store.packed_form(diff_ids[0]) is None
    writer = igzip_threaded.open

    def no_inflating(path, mode="rb", **kw):
        assert "w" in mode, "inflated"
        return writer(path, mode, **kw)

    with monkeypatch.context() as m:  # a load sends them as they are: nothing to inflate
        m.setattr(igzip_threaded, "open", no_inflating)
        assert _archive_layers(store, manifest) == diff_ids
        tagged = store.resolve("x:1")
        assert tagged.annotations[PACK_ANNOTATION] == "gzip"
        packed = store.packed_image(tagged)
        # the tags move to it, the layers' tars still serve a load
        assert _archive_layers(store, packed) == diff_ids
    assert (packed.digest, packed.size) == (compressed.digest, compressed.size)
    assert store.blob_path(packed.digest).read_bytes() == \
        (tmp_path / "gz/blobs/sha256" / compressed.hex).read_bytes()
    again = store.resolve("x:1")
    assert again.digest == packed.digest and PACK_ANNOTATION not in again.annotations
    assert store.packed_image(again) == again  # nothing is due any more
    monkeypatch.setattr(layer_mod, "compress_layer", lambda *a, **k: pytest.fail("packed"))
    assert store.pack(tars[0], "gzip").descriptor == gz_blobs[0].descriptor  # made once
    assert store.pack(tars[0], "gzip", make=False).descriptor == gz_blobs[0].descriptor
    # gc: the tars no tag reaches go; the packed blobs stay, a load inflates them
    removed = store.gc()
    assert set(removed) == {manifest.hex, *(d.split(":")[1] for d in diff_ids)}
    assert store.unpacked(diff_ids[0], tars[0].descriptor.size) is None
    assert store.packed_form(diff_ids[0]) == gz_blobs[0].descriptor
    assert _archive_layers(store, packed) == diff_ids and not _leftovers(store)


def test_a_layer_record_of_a_packed_tar_names_the_packed_blob_once_the_tar_is_gone(tmp_path):
    from dlenv.image.records import Built, LayerRecords

    store, _, tars = _stored_image(tmp_path, "none", pack="gzip")
    records = LayerRecords(tmp_path / "layers", store)
    records.put("k", Built(tars[0], files=("/opt/a",)))
    assert records.get("k").blob.descriptor == tars[0].descriptor
    packed = store.packed_image(store.resolve("x:1"))
    store.gc()
    dropped, live = records.prune()
    assert (dropped, live) == ({}, {"k"})  # kept: its layer is packed
    found = records.get("k")
    assert found.files == ("/opt/a",) and found.blob.diff_id == tars[0].diff_id
    assert found.blob.descriptor.to_json() == store.read_json(packed.digest)["layers"][0]
    store.untag({"x:1"})
    store.gc()
    assert records.get("k") is None and records.prune()[1] == set()


def test_a_damaged_tar_is_never_packed_and_is_removed(tmp_path):
    store, _, tars = _stored_image(tmp_path, "none", pack="gzip")
    path = store.blob_path(tars[1].descriptor.digest)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="damaged"):
        store.packed_image(store.resolve("x:1"))
    assert not path.exists() and not _leftovers(store)
    assert store.resolve("x:1").annotations  # still the unpacked image: build again
    with pytest.raises(IntegrityError, match="missing"):
        store.pack(tars[1], "gzip")


def test_a_layers_gzip_bytes_are_those_of_every_earlier_build(tmp_path):
    """Layer digests are part of every lock's image digest: the compressor's input blocks
    (102 tar records) must not move with the tar writer's buffers or Python's tarfile."""
    rng = random.Random(7)
    for i in range(6):
        data = rng.randbytes(200_000) + bytes([i]) * 300_000
        (tmp_path / f"d{i % 2}").mkdir(exist_ok=True)
        (tmp_path / f"d{i % 2}" / f"f{i}").write_bytes(data)
    assert digest_of(tmp_path) == (  # what the first release wrote for this tree
        "sha256:7d17a526de0e81b2062cd943a7753e982508880cbd8f3a5a098b39244d981ab4",
        "sha256:dc0b235082a673a7b1bf2997290a73a45cbea6fb08922c391e6c6843c401e65a")
