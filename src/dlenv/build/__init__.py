"""Plan an image from a lock (pure), then build it natively into the OCI store.

``plan_build`` decides layers, config and labels from the lock alone. ``NativeBuilder``
executes a plan: it fetches what the layers need, writes each layer once (a layer whose
plan is unchanged is reused from the store without recompressing), and tags the image.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dlenv.cache import ContentCache, default_cache_dir, http_client
from dlenv.errors import BuildError
from dlenv.lock import Lock, LockedDeb, LockedWheel, dumps
from dlenv.oci import MT_MANIFEST, Descriptor, LayerBlob
from dlenv.oci.image import (
    ImageConfig,
    config_descriptor,
    config_json,
    manifest_json,
    rfc3339,
)
from dlenv.oci.layer import LayerOptions, write_layer
from dlenv.oci.store import OCIStore
from dlenv.spec import Spec, User

# Bump when the bytes a layer plan produces change, so cached layers are not reused.
LAYER_FORMAT = 1
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerPlan:
    name: str
    kind: str  # debian | wheels | files
    debs: tuple[LockedDeb, ...] = ()
    wheels: tuple[LockedWheel, ...] = ()

    def key(self, plan: BuildPlan) -> str:
        """What determines this layer's bytes; equal keys give equal blobs."""
        data = {"format": LAYER_FORMAT, "layer": asdict(self), "epoch": plan.epoch,
                "compression": plan.compression, "user": asdict(plan.user),
                "workdir": plan.workdir, "python": plan.python}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildPlan:
    name: str
    tag: str
    profile: str | None
    python: str
    epoch: int
    compression: str
    workdir: str
    user: User
    layers: tuple[LayerPlan, ...]
    config: ImageConfig
    base_ref: str | None = None  # registry base, pinned: "ref@sha256:..."
    annotations: tuple[tuple[str, str], ...] = field(default=())


def lock_digest(lock: Lock) -> str:
    return "sha256:" + hashlib.sha256(dumps(lock).encode()).hexdigest()


def plan_build(spec: Spec, lock: Lock, *, profile: str | None = None,
               compression: str = "gzip") -> BuildPlan:
    if lock.base.kind == "image" and not lock.base.digest:
        raise BuildError(f"the lock has no digest for the base {lock.base.ref}",
                         fix="run 'dlenv lock' again")
    if profile is not None and spec.profile(profile) is None:
        have = ", ".join(p.name for p in spec.profiles) or "none"
        raise BuildError(f"{spec.source}: no profile {profile!r} (profiles: {have})",
                         fix="pick one of the spec's profiles")
    wheels = lock.wheels_for(profile)
    if wheels:
        # Installing wheels into layers is the next step of the native build; building
        # without them would hand out an image that silently lacks locked packages.
        raise BuildError(
            f"{spec.source}: the native build does not install Python packages yet, and this "
            f"lock has {len(wheels)} wheels ({', '.join(w.name for w in wheels[:3])}…)",
            fix="build a spec without framework and packages for now")
    python = str(lock.target["python"])
    user = spec.user
    if lock.base.kind == "debian":
        layers = [LayerPlan(name=f"debian {lock.base.suite} base", kind="debian",
                            debs=lock.debs_for(profile))]
    else:
        # The registry image's layers are reused as they are; dlenv adds the user's dirs.
        layers = [LayerPlan(name="user home and workdir", kind="user-dirs")]
    env = [("PATH", DEFAULT_PATH), ("LANG", "C.UTF-8"), ("PYTHONUNBUFFERED", "1"),
           ("HOME", f"/home/{user.name}"),
           ("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")]
    if lock.target.get("cuda"):
        env += [("NVIDIA_VISIBLE_DEVICES", "all"),
                ("NVIDIA_DRIVER_CAPABILITIES", "compute,utility")]
    chosen = spec.profile(profile) if profile else None
    if chosen is not None:
        env += list(chosen.env)
    env += list(spec.env)
    labels = {
        "org.opencontainers.image.title": spec.name,
        "org.opencontainers.image.created": rfc3339(lock.source_date_epoch),
        "dev.dlenv.spec.digest": spec.digest(),
        "dev.dlenv.lock.digest": lock_digest(lock),
        "dev.dlenv.profile": profile or "",
        "dev.dlenv.python": python,
    }
    if lock.target.get("cuda"):
        labels["dev.dlenv.cuda"] = str(lock.target["cuda"])
        labels["dev.dlenv.min-driver"] = str(lock.target.get("min_driver", ""))
    config = ImageConfig(
        user=f"{user.uid}:{user.gid}", env=tuple(dict(env).items()), workdir=spec.workdir,
        cmd=chosen.command if chosen and chosen.command else ("python3",), labels=labels,
        exposed_ports=chosen.ports if chosen else (),
    )
    tag = f"{spec.name}:{profile}" if profile else f"{spec.name}:latest"
    return BuildPlan(
        name=spec.name, tag=tag, profile=profile, python=python,
        epoch=lock.source_date_epoch, compression=compression, workdir=spec.workdir,
        user=user, layers=tuple(layers),
        config=config, annotations=(("org.opencontainers.image.title", spec.name),),
        base_ref=(f"{lock.base.ref.split('@')[0]}@{lock.base.digest}"
                  if lock.base.kind == "image" and lock.base.ref else None),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildResult:
    tag: str
    manifest: Descriptor
    config: Descriptor
    layers: tuple[LayerBlob, ...]
    reused: tuple[bool, ...]

    @property
    def size(self) -> int:
        return self.manifest.size + self.config.size + sum(x.descriptor.size for x in self.layers)

    def to_json(self) -> dict[str, object]:
        return {
            "tag": self.tag, "digest": self.manifest.digest, "size": self.size,
            "layers": [{"digest": x.descriptor.digest, "size": x.descriptor.size,
                        "media_type": x.descriptor.media_type, "diff_id": x.diff_id,
                        "name": x.name, "reused": r}
                       for x, r in zip(self.layers, self.reused, strict=True)],
        }


Progress = Callable[[str, int, int], None]  # (stage, done, total)


class NativeBuilder:
    """Executes build plans without a container engine."""

    def __init__(self, store: OCIStore, cache_dir: Path, *, mirror: str | None = None,
                 ca_bundle: str | None = None, progress: Progress | None = None) -> None:
        self.store = store
        self.cache = ContentCache(cache_dir / "blobs")
        self.layer_index = cache_dir / "layers"
        self.layer_index.mkdir(parents=True, exist_ok=True)
        self.mirror = mirror
        self.ca_bundle = ca_bundle
        self.progress = progress or (lambda stage, done, total: None)

    def _cached_layer(self, key: str) -> LayerBlob | None:
        path = self.layer_index / f"{key}.json"
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        blob = LayerBlob(descriptor=Descriptor.from_json(data["descriptor"]),
                         diff_id=data["diff_id"], name=data["name"])
        return blob if self.store.has(blob.descriptor.digest) else None

    def _remember(self, key: str, blob: LayerBlob) -> None:
        from dlenv.lock import write_atomic

        write_atomic(self.layer_index / f"{key}.json", json.dumps({
            "descriptor": blob.descriptor.to_json(), "diff_id": blob.diff_id,
            "name": blob.name}).encode())

    def _base_image(self, plan: BuildPlan) -> tuple[list[LayerBlob], dict[str, Any]]:
        """Pull a registry base by digest (a no-op when the store has it)."""
        from dlenv.oci.registry import Reference, RegistryClient

        assert plan.base_ref is not None
        ref = Reference.parse(plan.base_ref)
        manifest = self.store.resolve(plan.base_ref)
        if manifest is None or not self.store.has(manifest.digest):
            client = RegistryClient()
            try:
                self.progress(f"pulling {plan.base_ref}", 0, 1)
                manifest = client.pull(ref, self.store, tag=plan.base_ref)
            finally:
                client.close()
        doc = self.store.read_json(manifest.digest)
        config = self.store.read_json(doc["config"]["digest"])
        diff_ids = config["rootfs"]["diff_ids"]
        layers = [LayerBlob(descriptor=Descriptor.from_json(x), diff_id=d, name="base")
                  for x, d in zip(doc["layers"], diff_ids, strict=True)]
        return layers, config

    def build(self, plan: BuildPlan) -> BuildResult:
        blobs: list[LayerBlob] = []
        reused: list[bool] = []
        base_config: dict[str, Any] | None = None
        if plan.base_ref:
            base_layers, base_config = self._base_image(plan)
            blobs += base_layers
            reused += [True] * len(base_layers)
        for layer in plan.layers:
            key = layer.key(plan)
            cached = self._cached_layer(key)
            if cached is not None:
                blobs.append(cached)
                reused.append(True)
                continue
            blob = self._build_layer(plan, layer)
            self._remember(key, blob)
            blobs.append(blob)
            reused.append(False)
        own = blobs[len(blobs) - len(plan.layers):]
        cfg_bytes = config_json(plan.config, own, plan.epoch, base=base_config)
        cfg = self.store.put_bytes(cfg_bytes, config_descriptor(cfg_bytes).media_type)
        manifest_bytes = manifest_json(cfg, [b.descriptor for b in blobs], dict(plan.annotations))
        manifest = self.store.put_bytes(manifest_bytes, MT_MANIFEST)
        self.store.tag(plan.tag, manifest)
        return BuildResult(tag=plan.tag, manifest=manifest, config=cfg, layers=tuple(blobs),
                           reused=tuple(reused))

    def _build_layer(self, plan: BuildPlan, layer: LayerPlan) -> LayerBlob:
        with tempfile.TemporaryDirectory(prefix="dlenv-layer-", dir=self.cache.root.parent) as t:
            root = Path(t, "root")
            root.mkdir()
            owners: dict[str, tuple[int, int]] = {}
            modes: dict[str, int] = {}
            if layer.kind == "debian":
                self._debian(plan, layer, root)
                ids = (plan.user.uid, plan.user.gid)
                owners = {f"home/{plan.user.name}": ids, plan.workdir.lstrip("/"): ids}
                modes = {"tmp": 0o1777, "var/tmp": 0o1777, "root": 0o700, "etc/shadow": 0o640}
            elif layer.kind == "user-dirs":
                ids = (plan.user.uid, plan.user.gid)
                for d in (f"home/{plan.user.name}", plan.workdir.lstrip("/")):
                    (root / d).mkdir(parents=True, exist_ok=True)
                    owners[d] = ids
            else:
                raise BuildError(f"unknown layer kind {layer.kind}")
            options = LayerOptions(epoch=plan.epoch, compression=plan.compression,
                                   owners=owners, modes=modes)
            self.progress(f"writing layer: {layer.name}", 0, 1)
            with self.store.writer() as f:
                blob = write_layer(root, f, options, name=layer.name)
                self.store.commit(f, blob.descriptor.digest)
            self.progress(f"writing layer: {layer.name}", 1, 1)
            return blob

    def _debian(self, plan: BuildPlan, layer: LayerPlan, root: Path) -> None:
        from dlenv.build.debian import fetch_debs, materialize_base
        from dlenv.resolve.debian import find_mirror

        mirror = self.mirror or find_mirror(os.environ)
        total = sum(d.size for d in layer.debs)
        done = 0

        def advance(n: int) -> None:
            nonlocal done
            done += n
            self.progress("downloading .debs", done, total)

        with http_client(self.ca_bundle) as client:
            paths = fetch_debs(layer.debs, self.cache, client, mirror, advance)
        self.progress("unpacking .debs", 0, 1)
        materialize_base(paths, layer.debs, root, plan.user, plan.workdir)
        self.progress("unpacking .debs", 1, 1)


def default_store(cache_dir: Path) -> OCIStore:
    return OCIStore(cache_dir / "store")


def builder_for(spec: Spec, cache_dir: str | None,
                progress: Progress | None = None) -> tuple[NativeBuilder, Path]:
    root = default_cache_dir(cache_dir)
    return NativeBuilder(default_store(root), root, ca_bundle=spec.index.ca_bundle,
                         progress=progress), root
