"""``diff``: read each side (a spec directory's lock, a lock file, an image in dlenv's store or
in the engine, or this machine) into an ``Inventory`` and compare them (``audit.diff``)."""

from __future__ import annotations

import json
import tarfile
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from packaging.utils import canonicalize_name

from dlenv.audit.diff import (
    OS_RELEASE,
    STATUS,
    Diff,
    Inventory,
    LayerFacts,
    compare,
    dpkg_packages,
    dpkg_sources,
    lock_inventory,
    merge_layers,
    note_member,
    os_name,
)
from dlenv.errors import EngineError, UsageError
from dlenv.fsutil import shorten
from dlenv.spec import IMAGE_RE
from dlenv.workflows.report import Reporter, Silent

HOST = "--host"  # the side that is this machine's Python environment and driver
# What `python3` on this machine has: run as a program, so that it is the user's Python and
# its packages, not the environment dlenv itself runs in.
_HOST_PYTHON = """
import json, platform
from importlib import metadata
seen = {}
for d in metadata.distributions():
    name = d.metadata["Name"]
    if name:
        seen[name] = d.version
print(json.dumps({"python": platform.python_version(), "packages": seen}))
"""


def read_layer(stream: IO[bytes], facts: LayerFacts) -> None:
    """Note a layer's members (a tar, gzip or plain) read as a stream, once."""
    with tarfile.open(fileobj=stream, mode="r|*") as tar:
        for member in tar:
            if note_member(facts, member.name) and member.isfile():
                handle = tar.extractfile(member)
                text = handle.read().decode(errors="replace") if handle else ""
                name = member.name.removeprefix("./")
                if name == STATUS:
                    facts.status = text
                elif name in OS_RELEASE:
                    facts.os_release = text
                else:
                    facts.status_parts.append(text)


def _image_inventory(label: str, digest: str, env: list[str], labels: dict[str, str],
                     layers: list[LayerFacts], diff_ids: list[str]) -> Inventory:
    """An image's side from its config's env and labels and its layers' facts."""
    python_packages, status, python = merge_layers(layers)
    release = next((f.os_release for f in reversed(layers) if f.os_release), None)
    pairs = tuple(sorted((k, v) for k, _, v in (e.partition("=") for e in env if "=" in e)))
    return Inventory(
        label=label, kind="image", python=python,
        base=labels.get("org.opencontainers.image.base.name") or os_name(release),
        base_digest=labels.get("org.opencontainers.image.base.digest"),
        image_digest=digest, python_packages=python_packages, debs=dpkg_packages(status),
        deb_sources=dpkg_sources(status), env=pairs,
        layers=tuple(zip(diff_ids, (f.size for f in layers), strict=False)))


def store_image(ref: str, cache_dir: str | None, report: Reporter) -> Inventory | None:
    """An image in dlenv's store, by tag; None when the store has none of that name."""
    from dlenv.oci.store import default_store

    store = default_store(cache_dir)
    found = store.resolve(ref)
    if found is None:
        return None
    manifest = store.read_json(found.digest)
    config = store.read_json(manifest["config"]["digest"])
    layers = []
    for i, blob in enumerate(manifest["layers"], start=1):
        report.step(f"reading {ref}'s layer {i} of {len(manifest['layers'])}")
        facts = LayerFacts(size=blob["size"])
        with store.blob_path(blob["digest"]).open("rb") as f:
            read_layer(f, facts)
        layers.append(facts)
    settings = config.get("config") or {}
    return _image_inventory(ref, found.digest, settings.get("Env") or [],
                            settings.get("Labels") or {}, layers, config["rootfs"]["diff_ids"])


def engine_image(ref: str, report: Reporter) -> Inventory | None:
    """An image the engine (Docker or Podman) has: its layers streamed from ``image save``
    (nothing written to disk), its config from ``image inspect``."""
    from dlenv.engine import detect

    try:
        engine = detect()
    except EngineError:
        return None  # no engine here: the image is in none
    image = engine.image(ref)
    if image is None:
        return None
    report.step(f"reading {ref}'s layers ({engine.kind} image save)")
    by_member: dict[str, LayerFacts] = {}
    manifest: list[dict[str, Any]] = []

    def read(stream: IO[bytes]) -> None:
        with tarfile.open(fileobj=stream, mode="r|") as outer:
            for member in outer:
                handle = outer.extractfile(member) if member.isfile() else None
                if handle is None:
                    continue
                if member.name == "manifest.json":
                    manifest.extend(json.loads(handle.read()))
                elif member.name.endswith(".tar") or member.name.startswith("blobs/"):
                    facts = LayerFacts(size=member.size)
                    try:
                        read_layer(handle, facts)
                    except tarfile.TarError:
                        continue  # a config or manifest blob, not a layer
                    by_member[member.name] = facts

    engine.save(ref, read)
    if not manifest:
        raise EngineError(f"'{engine.exe} image save {ref}' wrote no manifest.json")
    layers = [by_member.get(path, LayerFacts()) for path in manifest[0]["Layers"]]
    return _image_inventory(ref, image.id, list(image.env), dict(image.labels), layers,
                            list(image.diff_ids))


def host_inventory(report: Reporter) -> Inventory:
    """This machine: ``python3`` on PATH and its packages, dpkg's packages, the OS, the
    NVIDIA driver when there is one."""
    from dlenv.doctor.facts import parse_proc_driver, run_command

    report.step("reading this machine's Python packages")
    notes = []
    code, out, err = run_command(["python3", "-c", _HOST_PYTHON])
    data = json.loads(out) if code == 0 else {"python": None, "packages": {}}
    if code != 0:
        notes.append(f"python3 did not answer: {err.strip()[-200:]}")
    packages = tuple(sorted((str(canonicalize_name(n)), v)
                            for n, v in data["packages"].items()))
    code, out, _ = run_command(["dpkg-query", "-W", "-f",
                                "Package: ${Package}\nVersion: ${Version}\n"
                                "Status: ${Status}\n\n"])
    debs = dpkg_packages(out) if code == 0 else ()
    if code != 0:
        notes.append("no dpkg here: no .debs to compare")
    os_release = next((p for p in map(Path, ("/etc/os-release", "/usr/lib/os-release"))
                       if p.is_file()), None)
    pretty = os_name(os_release.read_text()) if os_release else None
    proc = Path("/proc/driver/nvidia/version")
    driver = parse_proc_driver(proc.read_text()) if proc.exists() else None
    return Inventory(label="this machine", kind="host", python=data["python"], base=pretty,
                     python_packages=packages, debs=debs, driver=driver, notes=tuple(notes))


def read_side(arg: str, *, profile: str | None = None, cache_dir: str | None = None,
              reporter: Reporter | None = None) -> Inventory:
    """One side of a diff, as named on the command line."""
    from dlenv.image import plan_build
    from dlenv.lock import read_lock
    from dlenv.workflows.project import open_project

    report = reporter or Silent()
    if arg == HOST:
        return host_inventory(report)
    path = Path(arg)
    if path.is_dir() or path.name == "dlenv.toml":
        project = open_project(str(path))
        lock_file = project.directory / "dlenv.lock"
        if not lock_file.is_file():
            raise UsageError(f"{project.directory} has no dlenv.lock",
                             fix=f"run 'dlenv lock {shorten(arg)}' first")
        lock = read_lock(lock_file)
        notes = () if lock.spec_digest == project.spec.digest() else (
            "the lock is older than dlenv.toml: 'dlenv lock' would change it",)
        if profile is not None and project.spec.profile(profile) is None:
            raise UsageError(f"{project.file}: no profile {profile!r}",
                             fix="pick one of the spec's profiles")
        env = plan_build(project.spec, lock, profile=profile).config.env
        return replace(lock_inventory(lock, arg, profile=profile, env=env, kind="project"),
                       notes=notes)
    if path.is_file():
        return lock_inventory(read_lock(path), arg, profile=profile)
    if not IMAGE_RE.fullmatch(arg):
        raise UsageError(f"{shorten(arg)} is neither a directory, a lock file nor an image",
                         fix="name a spec directory, a dlenv.lock, an image tag or --host")
    found = store_image(arg, cache_dir, report) or engine_image(arg, report)
    if found is None and _names_registry(arg):
        found = registry_image(arg, cache_dir, report)
    if found is None:
        raise UsageError(f"no image {shorten(arg)} in dlenv's store or the engine",
                         fix="build it ('dlenv build'), pull it, or name a directory")
    return found


def _names_registry(ref: str) -> bool:
    """Whether ``ref`` names its registry (``host[:port]/…``), as Docker tells them apart."""
    first, slash, _ = ref.partition("/")
    return bool(slash) and ("." in first or ":" in first or first == "localhost")


def registry_image(ref: str, cache_dir: str | None, report: Reporter) -> Inventory:
    """An image in a registry: pulled into dlenv's store (layers checked by digest, those
    the store has not sent again), then read there."""
    from dlenv.oci.registry import Reference, RegistryClient
    from dlenv.oci.store import default_store

    client = RegistryClient()
    try:
        report.step(f"pulling {ref}")
        client.pull(Reference.parse(ref), default_store(cache_dir), tag=ref)
    finally:
        client.close()
    found = store_image(ref, cache_dir, report)
    assert found is not None  # just tagged
    return found


def diff(a: str, b: str, *, profile: str | None = None, cache_dir: str | None = None,
         reporter: Reporter | None = None) -> Diff:
    return compare(read_side(a, profile=profile, cache_dir=cache_dir, reporter=reporter),
                   read_side(b, profile=profile, cache_dir=cache_dir, reporter=reporter))
