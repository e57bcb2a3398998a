"""``dlenv compose``: build and load the dev and serve images, then write a Compose file
(``run.compose.plan_compose``) that runs them, with a Prometheus scraping the model server,
so ``docker compose up`` starts what ``dlenv jupyter`` and ``dlenv serve`` start."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dlenv.engine import EngineKind, detect_soon
from dlenv.errors import UsageError
from dlenv.fsutil import write_atomic
from dlenv.image.model import model_versions
from dlenv.run.compose import (
    PROMETHEUS_CONFIG,
    PROMETHEUS_IMAGE,
    ComposePlan,
    ComposeRequest,
    plan_compose,
)
from dlenv.spec import JUPYTER_PORT, SERVE_PORT
from dlenv.workflows.build import ready_image
from dlenv.workflows.cluster import yaml_text
from dlenv.workflows.project import Project
from dlenv.workflows.report import Reporter, Silent


@dataclass(frozen=True, slots=True, kw_only=True)
class ComposeOptions:
    output: Path | None = None  # default: compose.yaml in the project
    engine: EngineKind | None = None
    serve_port: int = SERVE_PORT
    jupyter_port: int = JUPYTER_PORT
    prometheus_image: str = PROMETHEUS_IMAGE
    cache_dir: str | None = None


@dataclass(frozen=True, slots=True)
class Composed:
    plan: ComposePlan
    path: Path
    prometheus: Path | None
    text: str


def _relative(path: Path, start: Path) -> str:
    """``path`` as a Compose file in ``start`` names a bind mount ("./…" or "../…")."""
    rel = os.path.relpath(path, start)
    return rel if rel.startswith("..") else "./" + rel if rel != "." else "."


def write_compose(project: Project, options: ComposeOptions,
                  reporter: Reporter | None = None) -> Composed:
    report = reporter or Silent()
    spec = project.spec
    directory = project.directory.resolve()
    path = (options.output or directory / "compose.yaml").resolve()
    if path.is_dir():
        raise UsageError(f"-o {path} is a directory", fix="name the file, e.g. compose.yaml")
    where = path.parent
    dev, serve = spec.profile("dev"), spec.profile("serve")
    serving = serve.serving if serve is not None else None
    wanted = [p for p, use in (("dev", dev is not None and dev.jupyter),
                               ("serve", serving is not None)) if use]
    if not wanted:
        raise UsageError(f"{spec.name} has no JupyterLab (profiles.dev) and no dlenv model "
                         "server (profiles.serve with a model): nothing to compose",
                         fix="set jupyter = true under [profiles.dev], or add "
                             '[profiles.serve] with model = "models/NAME"')
    model = ""
    if serving is not None:
        if not serving.path:
            raise UsageError(f"{spec.source}: the serve profile names no model directory, "
                             "and the Compose file mounts the model from the project",
                             fix='set model = "models/NAME" under [profiles.serve]')
        found = (directory / serving.path).resolve()
        model_versions(found)
        model = _relative(found, where)
    engine = detect_soon(options.engine)
    images = {}
    for profile in wanted:
        ready = ready_image(project, profile=profile, for_run=True, engine=engine,
                            cache_dir=options.cache_dir, reporter=report)
        images[profile] = ready.tag
    plan = plan_compose(spec, ComposeRequest(
        images=images, project=_relative(directory, where), model=model,
        cuda=bool(ready.lock.target.cuda), serve_port=options.serve_port,
        jupyter_port=options.jupyter_port, prometheus_image=options.prometheus_image))
    text = yaml_text(plan.document)
    written = None
    if plan.prometheus is not None:
        written = where / PROMETHEUS_CONFIG
        write_atomic(written, yaml_text(plan.prometheus).encode())
    write_atomic(path, text.encode())
    return Composed(plan=plan, path=path, prometheus=written, text=text)
