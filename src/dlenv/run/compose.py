"""``plan_compose`` (pure): a Compose file for the project's dev (JupyterLab) and serve
profiles, and a Prometheus that scrapes the model server, confined as ``dlenv run``
confines its containers: the image's non-root user, every capability dropped,
``no-new-privileges``, a pids limit, shared memory, ports on 127.0.0.1, named volumes, and
the GPUs as a device reservation for CUDA specs.

Secrets are never written: Jupyter's token is interpolated from ``JUPYTER_TOKEN`` (the
shell or an ``.env`` file), and Compose refuses to start without it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dlenv.engine import CAP_DROP, NO_NEW_PRIVILEGES
from dlenv.engine.base import PIDS_LIMIT
from dlenv.image.dockerfile import JUPYTER_COMMAND
from dlenv.spec import JUPYTER_PORT, SERVE_PORT, Spec

PROMETHEUS_PORT = 9090
PROMETHEUS_IMAGE = "prom/prometheus:v2.53.0"  # a team's mirror: --prometheus-image
PROMETHEUS_CONFIG = "prometheus.yml"
SHM = "2g"  # DataLoader workers pass batches through /dev/shm; the engines give 64 MB
Obj = dict[str, Any]
DROPPED: Obj = {"cap_drop": [CAP_DROP], "security_opt": [f"{NO_NEW_PRIVILEGES}:true"]}


@dataclass(frozen=True, slots=True, kw_only=True)
class ComposeRequest:
    """Decided by the caller: the images (by id or tag, already in the engine) and where
    the project and the model are, relative to the Compose file's directory."""

    images: dict[str, str]  # profile -> image
    project: str = "."  # the project's directory, as the file names it
    model: str = ""  # the model's base directory (serve), as the file names it ("./…")
    cuda: bool = False
    serve_port: int = SERVE_PORT  # on the host's loopback
    jupyter_port: int = JUPYTER_PORT
    prometheus_port: int = PROMETHEUS_PORT
    prometheus_image: str = PROMETHEUS_IMAGE


@dataclass(frozen=True, slots=True)
class ComposePlan:
    document: Obj  # compose.yaml
    prometheus: Obj | None  # prometheus.yml, beside it (when the model server runs)
    notes: tuple[str, ...]


def _confined(spec: Spec, image: str, cuda: bool) -> Obj:
    """What every service of dlenv's images shares with ``dlenv run``."""
    service: Obj = {
        "image": image, "init": True, "user": f"{spec.user.uid}:{spec.user.gid}",
        "working_dir": spec.workdir, **DROPPED, "pids_limit": PIDS_LIMIT, "shm_size": SHM,
    }
    if cuda:
        service["deploy"] = {"resources": {"reservations": {"devices": [
            {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]}}}
    return service


def plan_compose(spec: Spec, request: ComposeRequest) -> ComposePlan:
    services: dict[str, Obj] = {}
    volumes: dict[str, Obj] = {}
    notes: list[str] = []
    dev = spec.profile("dev")
    if dev is not None and dev.jupyter and "dev" in request.images:
        home = f"/home/{spec.user.name}"
        services["jupyter"] = {
            **_confined(spec, request.images["dev"], request.cuda),
            "command": list(JUPYTER_COMMAND),
            # jupyter_server reads its token from JUPYTER_TOKEN; compose stops without it
            "environment": {"JUPYTER_TOKEN": "${JUPYTER_TOKEN:?set JUPYTER_TOKEN, e.g. in "
                                             ".env: it is JupyterLab's password}"},
            "ports": [f"127.0.0.1:{request.jupyter_port}:{JUPYTER_PORT}"],
            "volumes": [f"{request.project}:{spec.workdir}", f"home:{home}"],
        }
        volumes["home"] = {}  # the image's home, copied in once: the user's files stay
        notes.append(f"JupyterLab: http://127.0.0.1:{request.jupyter_port}/lab (the token "
                     "is JUPYTER_TOKEN)")
    serve = spec.profile("serve")
    serving = serve.serving if serve is not None else None
    prometheus = None
    if serving is not None and "serve" in request.images and request.model:
        target = f"/models/{serving.name}"
        check = ("import urllib.request; urllib.request.urlopen("
                 f"'http://127.0.0.1:{SERVE_PORT}/readyz', timeout=4)")
        services["serve"] = {
            **_confined(spec, request.images["serve"], request.cuda),
            "environment": {"MODEL_NAME": serving.name},
            "ports": [f"127.0.0.1:{request.serve_port}:{SERVE_PORT}"],
            "volumes": [f"{request.model}:{target}:ro"],
            "healthcheck": {"test": ["CMD", "python3", "-c", check], "interval": "5s",
                            "timeout": "5s", "retries": 3, "start_period": "300s"},
        }
        services["prometheus"] = {
            "image": request.prometheus_image, **DROPPED, "read_only": True,
            "command": [f"--config.file=/etc/prometheus/{PROMETHEUS_CONFIG}",
                        "--storage.tsdb.path=/prometheus"],
            "ports": [f"127.0.0.1:{request.prometheus_port}:{PROMETHEUS_PORT}"],
            "volumes": [f"./{PROMETHEUS_CONFIG}:/etc/prometheus/{PROMETHEUS_CONFIG}:ro",
                        "metrics:/prometheus"],
            "depends_on": ["serve"],
        }
        volumes["metrics"] = {}
        prometheus = {
            "global": {"scrape_interval": "15s"},
            "scrape_configs": [{"job_name": "dlenv-serve", "metrics_path": "/metrics",
                                "static_configs": [{"targets": [f"serve:{SERVE_PORT}"]}]}]}
        notes.append(f"predict: POST http://127.0.0.1:{request.serve_port}/v1/models/"
                     f"{serving.name}:predict; Prometheus: http://127.0.0.1:"
                     f"{request.prometheus_port}")
    # (no top-level name: Debian's docker-compose 1.29 knows none; the directory names it)
    document: Obj = {"services": services}
    if volumes:
        document["volumes"] = volumes
    return ComposePlan(document=document, prometheus=prometheus, notes=tuple(notes))
