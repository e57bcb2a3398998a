"""Images out of the store: an OCI layout directory or a docker-archive.

The docker-archive is written as a stream (``write_docker_archive``), so an engine's ``load``
reads it without a temporary copy of the image.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from pathlib import Path
from typing import IO

from dlenv.errors import IntegrityError, UsageError
from dlenv.fsutil import canonical_json, write_atomic
from dlenv.oci import MT_INDEX, Descriptor
from dlenv.oci.layer import tar_stream
from dlenv.oci.store import REF_ANNOTATION, OCIStore


def export_oci(store: OCIStore, manifest: Descriptor, dest: Path, ref: str) -> None:
    """Write a standalone OCI layout holding this one image, tagged ``ref``. Every blob is
    hashed first: a hard link to a damaged store file would carry the damage out."""
    digests = store.verified_blobs(manifest)
    blobs = dest / "blobs" / "sha256"
    try:
        blobs.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UsageError(f"--output oci:{dest}: a file is in the way of that directory",
                         fix="name a directory that is new or holds an OCI layout") from None
    for digest in digests:
        target = blobs / digest.split(":", 1)[1]
        if target.exists():
            continue
        source = store.blob_path(digest)
        try:
            os.link(source, target)  # same file system: no copy
        except OSError:
            shutil.copyfile(source, target)
    write_atomic(dest / "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    entry = Descriptor(media_type=manifest.media_type, digest=manifest.digest,
                       size=manifest.size, annotations={REF_ANNOTATION: ref})
    write_atomic(dest / "index.json", canonical_json(
        {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [entry.to_json()]}))


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _unpacked(store: OCIStore, layer: dict[str, str], diff_id: str
              ) -> tuple[IO[bytes], int] | None:
    """A reader of the layer's uncompressed tar and its length, when the store knows the
    length (layers it built) and the blob is compressed; else None (the blob goes as it
    is). The layer's tar itself when the store holds it (a deferred build kept it until the
    image was packed): nothing to inflate."""
    size = store.diff_size(layer["digest"])
    if not size or layer["digest"] == diff_id:
        return None
    tar = store.unpacked(diff_id, size)
    if tar is not None:
        return tar.open("rb"), size
    path = store.blob_path(layer["digest"])
    if layer["mediaType"].endswith("gzip"):
        from isal import igzip_threaded  # decompresses in a thread of its own

        return igzip_threaded.open(path, "rb", threads=1), size  # type: ignore[no-untyped-call]
    if layer["mediaType"].endswith("zstd"):
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(path.open("rb"), closefd=True), size
    return None


def _add_unpacked(tar: tarfile.TarFile, name: str, reader: IO[bytes], size: int) -> None:
    """Add ``size`` bytes of ``reader`` as ``name``; the stream must end there (a wrong
    length breaks the archive here, not in the engine)."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    with reader:
        tar.addfile(info, reader)  # tarfile raises when the stream ends early
        if reader.read(1):
            raise IntegrityError(f"layer {name} is longer than its store record says",
                                 fix="run 'dlenv gc' and build again")


def write_docker_archive(store: OCIStore, manifest: Descriptor, out: IO[bytes],
                         repo_tag: str, *aliases: str, held: int = 0,
                         unpacked: bool = False) -> None:
    """Stream a `docker load`-able archive; every blob is hashed before the first byte goes
    out. ``held``: the first layers the engine holds already (with every layer below them),
    whose files are left out; Docker reads a layer's file only when it lacks that layer's
    chain. ``unpacked``: layers go out uncompressed where the store knows their length, for
    an engine on this machine. It saves the engine's own decompression, which is slower
    than this process's and in line with its layer application: a cold load of
    examples/tensorflow-cpu took 18-20 s so, against 29-31 s with gzip layers. The engine
    checks each layer against the config's diff ids whichever way it comes."""
    store.verified_blobs(manifest, held=held)
    doc = store.read_json(manifest.digest)
    config = doc["config"]
    layers = doc["layers"]
    assert isinstance(config, dict) and isinstance(layers, list)
    names = [f"blobs/sha256/{x['digest'].split(':', 1)[1]}" for x in layers]
    cfg_name = f"blobs/sha256/{config['digest'].split(':', 1)[1]}"
    diff_ids = store.read_json(config["digest"]).get("rootfs", {}).get("diff_ids", [])
    if len(diff_ids) != len(layers):
        diff_ids = [""] * len(layers)  # not an image the engine would take: it says so
    with tar_stream(out) as tar:
        tar.add(store.blob_path(config["digest"]), arcname=cfg_name)
        seen = {cfg_name}
        for layer, name, diff_id in zip(layers[held:], names[held:], diff_ids[held:],
                                        strict=True):
            if name in seen:
                continue
            seen.add(name)
            raw = _unpacked(store, layer, diff_id) if unpacked else None
            if raw is None:
                tar.add(store.blob_path(layer["digest"]), arcname=name)
            else:
                _add_unpacked(tar, name, *raw)
        _add_bytes(tar, "manifest.json", json.dumps(
            [{"Config": cfg_name, "RepoTags": [repo_tag, *aliases], "Layers": names}]).encode())


def save_docker_archive(store: OCIStore, manifest: Descriptor, path: Path,
                        repo_tag: str) -> None:
    """Write a docker-archive file atomically (temp name, fsync, rename)."""
    if not path.parent.is_dir() or path.is_dir():
        raise UsageError(f"--output docker-archive:{path}: "
                         + ("it is a directory" if path.is_dir() else
                            f"the directory {path.parent} does not exist"),
                         fix="name a file in an existing directory")
    tmp = path.with_name(f".{path.name}.part")
    try:
        with tmp.open("wb") as f:
            write_docker_archive(store, manifest, f, repo_tag)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def parse_output(value: str) -> tuple[str, Path]:
    kind, _, where = value.partition(":")
    if kind not in ("oci", "docker-archive") or not where:
        raise UsageError(f"unknown output {value!r}",
                         fix="use --output oci:DIR or --output docker-archive:FILE")
    return kind, Path(where)
