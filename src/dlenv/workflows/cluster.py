"""``k8s``: the Kubernetes manifests of a profile, naming the image by digest (the one the
last ``dlenv push`` of this project's profile sent, or ``--image``), as YAML text or one file
per object."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from dlenv.cluster import Manifests, Workload, plan_manifests
from dlenv.errors import UsageError
from dlenv.fsutil import inside, shorten, write_atomic
from dlenv.image import lock_digest
from dlenv.workflows.project import Project, fresh_lock
from dlenv.workflows.registry import LastPush
from dlenv.workflows.report import Reporter, Silent

BY_DIGEST = re.compile(r"[a-z0-9][a-z0-9._:/-]{0,254}@sha256:[0-9a-f]{64}")
PROFILES = ("train", "dev", "serve")


@dataclass(frozen=True, slots=True)
class RenderedManifests:
    manifests: Manifests
    text: str  # every object, as one YAML stream
    image: str
    written: tuple[Path, ...] = ()


def yaml_text(*documents: object) -> str:
    """The one way dlenv writes YAML (manifests, Compose files): keys in the order built,
    block style, documents separated by ``---``, and every value written out where it is
    used (no ``&anchor``/``*alias`` where two containers share a mount)."""
    import yaml

    class Plain(yaml.SafeDumper):  # type: ignore[misc]  # PyYAML ships no types here
        def ignore_aliases(self, data: object) -> bool:
            return True

    text: str = yaml.dump_all(documents, Dumper=Plain, sort_keys=False,
                              default_flow_style=False, width=100)
    return text


def to_yaml(manifests: Manifests) -> str:
    return yaml_text(*manifests.objects)


def _image(project: Project, profile: str | None, image: str | None, lock: str,
           cache_dir: str | None) -> str:
    if image is not None:
        if not BY_DIGEST.fullmatch(image):
            raise UsageError(f"--image {shorten(image)} is not REPOSITORY@sha256:DIGEST",
                             fix="name the image by digest, as 'dlenv push' prints it")
        return image
    last = LastPush(cache_dir).find(project, profile)
    push = f"dlenv push{' --profile ' + profile if profile else ''}"
    if last is None:
        raise UsageError("this profile's image was never pushed from here, and a cluster "
                         "pulls it from a registry", fix=f"run '{push} REF' first, or pass "
                         "--image REPOSITORY@sha256:…")
    if last[1] != lock:
        raise UsageError(f"the last push ({last[0]}) was built from another lock than the "
                         "current one", fix=f"run '{push}' again, or pass --image")
    return last[0]


def render_k8s(project: Project, profile: str, *, workers: int | None = None,
               kind: str = "job", image: str | None = None, output: Path | None = None,
               cache_dir: str | None = None, reporter: Reporter | None = None
               ) -> RenderedManifests:
    if profile not in PROFILES:
        raise UsageError(f"--profile {shorten(profile)}: a workload is train, dev or serve")
    if kind != "job" and profile != "train":
        raise UsageError(f"--kind {shorten(kind)} is a training job's kind",
                         fix="use it with --profile train")
    lock = fresh_lock(project, cache_dir=cache_dir, reporter=reporter or Silent())
    built = profile if project.spec.profile(profile) else None  # else the plain image
    digest = lock_digest(lock)
    ref = _image(project, built, image, digest, cache_dir)
    manifests = plan_manifests(project.spec, Workload(
        profile=profile, image=ref, spec_digest=project.spec.digest(), lock_digest=digest,
        cuda=bool(lock.target.cuda), workers=workers, kind=kind))
    text = to_yaml(manifests)
    written: list[Path] = []
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
        for i, obj in enumerate(manifests.objects, start=1):
            path = inside(output, f"{i:02d}-{obj['kind'].lower()}-{obj['metadata']['name']}"
                                  ".yaml")
            write_atomic(path, yaml_text(obj).encode())
            written.append(path)
    return RenderedManifests(manifests=manifests, text=text, image=ref,
                             written=tuple(written))
