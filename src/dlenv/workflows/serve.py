"""``dlenv serve``: the serve profile's image running dlenv's model server (TensorFlow
Serving's REST API) on 127.0.0.1, with the model's version directories mounted read-only at
``/models/NAME`` (TensorFlow Serving's layout), in the foreground or detached."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from dlenv.engine import EngineKind
from dlenv.errors import Problem, SpecError, UsageError
from dlenv.image.model import model_versions
from dlenv.run.launch import start_detached
from dlenv.spec import MODEL_NAME_RE, SERVE_PORT, ModelServing
from dlenv.workflows.project import Project
from dlenv.workflows.report import Reporter, Silent
from dlenv.workflows.run import PreparedRun, RunRequest, prepare_run

READY_TIMEOUT = 180.0  # loading TensorFlow and a SavedModel, on a slow machine


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeRequest:
    model: str | None = None  # a directory of numbered versions; default: the spec's model
    name: str | None = None  # the NAME in /v1/models/NAME; default: the spec's model_name
    port: int | None = None  # on 127.0.0.1; default 8501
    engine: EngineKind | None = None
    cache_dir: str | None = None


@dataclass(frozen=True, slots=True)
class Serving:
    prepared: PreparedRun
    name: str
    url: str  # the predict URL
    model: str | None  # the host directory mounted, None when the models volume holds it


def serving_of(project: Project) -> ModelServing:
    profile = project.spec.profile("serve")
    if profile is None or profile.serving is None:
        why = ("has no [profiles.serve]" if profile is None else
               "runs its own command in the serve profile" if profile.command else
               "is not a TensorFlow spec")
        raise SpecError([Problem(
            file=project.spec.source, key="profiles.serve",
            message=f"{project.spec.name} {why}, so dlenv's model server does not run",
            fix='add [profiles.serve] with model = "models/NAME" (and no command) to a '
                "TensorFlow spec, then run 'dlenv lock'")])
    return profile.serving


def prepare_serve(project: Project, request: ServeRequest,
                  reporter: Reporter | None = None) -> Serving:
    """Check the model, build and load the serve image, and plan the container."""
    serving = serving_of(project)
    name = request.name or serving.name
    if not MODEL_NAME_RE.fullmatch(name):
        raise UsageError(f"--name {name!r} is not a model name",
                         fix="use letters, digits and . _ - (at most 63)")
    given = request.model or (str(project.directory / serving.path) if serving.path else None)
    model = Path(given).expanduser().resolve() if given else None
    if model is not None:
        model_versions(model)
    port = request.port or SERVE_PORT
    mounts = (f"{model}:/models/{name}:ro",) if model else ()
    prepared = prepare_run(project, RunRequest(
        mode="run", profile="serve", engine=request.engine, mounts=mounts,
        publish=(f"{port}:{SERVE_PORT}",), cache_dir=request.cache_dir), reporter)
    plan = replace(prepared.plan, env=(*prepared.plan.env, ("MODEL_NAME", name)))
    return Serving(prepared=replace(prepared, plan=plan), name=name,
                   url=f"http://127.0.0.1:{port}/v1/models/{name}:predict",
                   model=str(model) if model else None)


def start_serving(serving: Serving, reporter: Reporter | None = None,
                  timeout: float = READY_TIMEOUT) -> str:
    """Start the server detached and wait until it is ready (a version loaded); its id."""
    import httpx

    plan = replace(serving.prepared.plan, detach=True)
    (reporter or Silent()).step(f"starting {plan.name}")
    ready_url = serving.url.split("/v1/")[0] + "/readyz"

    def ready() -> bool:
        try:
            return httpx.get(ready_url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    return start_detached(plan, serving.prepared.engine, timeout=timeout, answers=ready)
