"""``run``, ``shell``, ``jupyter``, ``ssh``, ``ps`` and ``stop``: development containers of the
project's image. The request is checked before anything runs; ``prepare_run`` builds and
loads the image and plans the container; ``start`` carries the plan out."""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from dlenv.cache import host_bundle
from dlenv.engine import ENGINES, LABEL, Container, Engine, EngineKind, detect, detect_soon
from dlenv.engine.cli import unasked
from dlenv.errors import EngineError, UsageError
from dlenv.fsutil import location_id, shorten, write_atomic
from dlenv.run import (
    JUPYTER_CONFIG,
    JUPYTER_PORT,
    PIDS_LIMIT,
    SSH_PORT,
    Host,
    Mode,
    Mount,
    RunOptions,
    RunPlan,
    choose_profile,
    container_name,
    decide_gpus,
    files_dir,
    plan_run,
)
from dlenv.run.launch import (
    PortBook,
    default_data_dir,
    has_access,
    host_ids,
    run_foreground,
    start_detached,
)
from dlenv.spec.view import RunView
from dlenv.workflows import inputs
from dlenv.workflows.project import Project, fresh_lock
from dlenv.workflows.report import Reporter, Silent

if TYPE_CHECKING:
    from dlenv.lock import Lock

_SIZE = re.compile(r"\d+(\.\d+)?[bkmgBKMG]?")
_IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRequest:
    """What the user asked for, as typed on the command line (checked by ``prepare_run``)."""

    mode: Mode = "run"
    profile: str | None = None
    image: str | None = None  # run this image instead of building
    engine: EngineKind | None = None  # default: the first that answers
    command: tuple[str, ...] = ()
    memory: str | None = None
    cpus: str | None = None
    shm_size: str | None = None
    pids_limit: int = PIDS_LIMIT
    mounts: tuple[str, ...] = ()  # HOST:CONTAINER[:ro]
    publish: tuple[str, ...] = ()  # [HOST:]CONTAINER
    port: int | None = None  # Jupyter's or SSH's host port
    expose: bool = False
    allow_cpu: bool = False
    host_ca: bool = True
    volumes: bool = True
    tty: bool = False
    key: str | None = None  # SSH public key file
    ssh_config: bool = False
    cache_dir: str | None = None


@dataclass(frozen=True, slots=True)
class PreparedRun:
    plan: RunPlan
    engine: Engine
    view: RunView  # the spec's, as the plan read it
    profile: str | None
    token: str  # Jupyter's
    identity: str | None  # the private key matching the SSH public key, when found
    running: bool = False  # the service runs already: shown again, not started




@dataclass(frozen=True, slots=True)
class Started:
    plan: RunPlan
    ssh_alias: str | None  # the ~/.ssh/config Host written, if asked
    again: bool = False  # it was running already


def parse_mounts(values: Sequence[str]) -> tuple[Mount, ...]:
    out = []
    for value in values:
        parts = value.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
            raise UsageError(f"--mount {shorten(value)} is not HOST:CONTAINER[:ro]",
                             fix="e.g. --mount ~/datasets:/data/datasets:ro")
        target = parts[1]
        if not target.startswith("/") or any(p in (".", "..") for p in target.split("/")) \
                or target.rstrip("/") in ("", "/proc", "/sys", "/dev", "/etc"):
            raise UsageError(f"--mount: {shorten(target)} is not an absolute container path "
                             "outside the system directories", fix="e.g. /data/datasets")
        source = Path(parts[0]).expanduser().resolve()
        if not source.exists():
            raise UsageError(f"--mount: {source} does not exist",
                             fix="create it first, or fix the path")
        out.append(Mount(str(source), target, readonly=len(parts) == 3 and parts[2] == "ro"))
    return tuple(out)


def parse_publish(values: Sequence[str]) -> tuple[tuple[int | None, int], ...]:
    out: list[tuple[int | None, int]] = []
    for value in values:
        host, _, container = value.rpartition(":")
        try:
            ports = (int(host) if host else None, int(container))
        except ValueError:
            ports = (0, 0)
        if not all(p is None or 0 < p < 65536 for p in ports):
            raise UsageError(f"--publish {shorten(value)} is not [HOST:]CONTAINER with ports "
                             "1-65535", fix="e.g. --publish 6006 or --publish 16006:6006")
        out.append(ports)
    return tuple(out)


def check_limits(request: RunRequest) -> None:
    """Resource limits are passed to the engine as they are: check their form first."""
    for flag, value, pattern, example in (
            ("--memory", request.memory, _SIZE, "16g"),
            ("--shm-size", request.shm_size, _SIZE, "8g"),
            ("--cpus", request.cpus, re.compile(r"\d+(\.\d+)?"), "4")):
        if value is not None and not pattern.fullmatch(value):
            raise UsageError(f"{flag} {shorten(value)} is not a size or number",
                             fix=f"e.g. {flag} {example}")
    if request.pids_limit < 0:
        raise UsageError("--pids-limit must be 0 (the engine's default) or more")
    if request.image is not None and not _IMAGE.fullmatch(request.image):
        raise UsageError(f"--image {shorten(request.image)} is not an image name or id",
                         fix="e.g. --image team/env:1 or --image sha256:…")


def public_key(path: str | None) -> tuple[str | None, str | None]:
    """The public key's text and the matching private key's path (for ~/.ssh/config)."""
    candidates = [Path(path).expanduser()] if path else [
        Path.home() / ".ssh" / f"id_{k}.pub" for k in ("ed25519", "ecdsa", "rsa")]
    for pub in candidates:
        if pub.is_file():
            text = pub.read_text().strip()
            if not text.startswith(("ssh-", "ecdsa-", "sk-")):
                raise EngineError(f"{pub} is not an SSH public key",
                                  fix="pass the .pub file made by ssh-keygen with --key")
            private = pub.with_suffix("") if pub.suffix == ".pub" else None
            return text, str(private) if private and private.exists() else None
    if path:
        raise EngineError(f"no public key at {path}", fix="make one with 'ssh-keygen -t "
                          "ed25519' or pass another with --key")
    return None, None


def write_ssh_config_entry(alias: str, port: int, user: str, identity: str | None) -> None:
    """Add or replace this environment's block in ~/.ssh/config (atomically)."""
    path = Path.home() / ".ssh" / "config"
    begin, end = f"# >>> dlenv {alias}", f"# <<< dlenv {alias}"
    old = path.read_text() if path.exists() else ""
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        old = head + rest.split(end, 1)[1].lstrip("\n")
    lines = [begin, f"Host {alias}", "    HostName 127.0.0.1", f"    Port {port}",
             f"    User {user}", *([f"    IdentityFile {identity}"] if identity else []),
             "    IdentitiesOnly yes", end]
    path.parent.mkdir(mode=0o700, exist_ok=True)
    write_atomic(path, ("\n".join(lines) + "\n\n" + old).encode())
    path.chmod(0o600)


def _wants_gpus(name: str, lock: Lock, request: RunRequest, engine: Engine) -> bool:
    if not lock.target.cuda:
        return False
    from dlenv.doctor import diagnose, gather_gpu, needs_from_target  # a CUDA image's run

    said = getattr(engine, "info", "") if engine.kind == "docker" else ""
    facts = gather_gpu(said or None)  # (Docker's info: asked once, when it was detected)
    checks = diagnose(facts, needs_from_target(name, lock.target))
    return decide_gpus(True, checks, request.allow_cpu)


def _engine_and_record(project: Project, request: RunRequest, profile: str | None,
                       engine: Engine | None) -> tuple[Callable[[], Engine],
                                                       inputs.Current | None]:
    """How to have the engine, and the image the run's record answers with (None: the
    image is readied). The record is asked first through the engine's CLI unasked: the
    image question's answer shows the engine works, and a run of an unchanged project asks
    nothing else before it starts (Docker's ``info`` costs as much as the question, on CPU
    the imports want). A miss detects the engine as any run does; when another engine
    answers, its record is asked too."""
    def recorded(where: Engine) -> inputs.Current | None:
        return inputs.run_image(project.file, project.config, where, profile=profile,
                                cache_dir=request.cache_dir)

    wanted = not (request.image or project.variant)
    if engine is not None:
        return (lambda: engine), recorded(engine) if wanted else None
    quick = unasked(request.engine or ENGINES[0]) if wanted else None
    current = recorded(quick) if quick is not None else None
    if quick is not None and current is not None:
        return (lambda: quick), current
    finding = detect_soon(request.engine)
    if wanted and finding().exe != getattr(quick, "exe", None):  # another engine answered
        return finding, recorded(finding())
    return finding, None


def prepare_run(project: Project, request: RunRequest, reporter: Reporter | None = None, *,
                engine: Engine | None = None) -> PreparedRun:
    """Check the request, pick the engine (unless given), lock, build and load the image, and
    plan the container. Nothing is started. A run of an unchanged project plans from its
    records: the spec is not parsed, nor the lock read (but for a CUDA image's GPU checks)."""
    report = reporter or Silent()
    mode = request.mode
    directory = project.directory.resolve()
    view = None if request.image or project.variant else inputs.run_view(
        project.file, project.config, cache_dir=request.cache_dir)
    view = view or project.spec.run_view()
    profile = choose_profile(view, mode, request.profile)
    key, identity = public_key(request.key) if mode == "ssh" else (None, None)
    mounts, publish = parse_mounts(request.mounts), parse_publish(request.publish)
    check_limits(request)
    finding, current = _engine_and_record(project, request, profile, engine)
    lock: Lock | None
    if request.image:
        lock = fresh_lock(project, cache_dir=request.cache_dir, reporter=report)
        image = request.image
    elif current is not None:  # nothing changed since the last run: no lock or plan read
        image, lock = current.image_id, None
        if current.cuda:  # the GPU checks read the lock's target
            from dlenv.lock import read_lock

            lock = read_lock(project.lock_path)
    else:
        from dlenv.workflows.build import ready_image

        ready = ready_image(project, profile=profile, for_run=True, engine=finding,
                            cache_dir=request.cache_dir, reporter=report)
        lock, image = ready.lock, ready.image_id
    engine = finding()
    gpus = lock is not None and _wants_gpus(view.name, lock, request, engine)
    data_dir = default_data_dir().resolve()
    running = _running(engine, container_name(view, mode, str(directory))) \
        if mode in ("jupyter", "ssh") else None
    port, notes = request.port, []
    token = secrets.token_urlsafe(32) if mode == "jupyter" else ""
    if running is not None:  # the same service again: its port and token, nothing started
        port = _int(running.get(f"{LABEL}.port")) or port
        token = _running_token(data_dir, container_name(view, mode, str(directory))) or token
    elif mode in ("jupyter", "ssh") and port is None:
        port, moved = PortBook(data_dir, location_id(str(directory))).choose(
            mode, "0.0.0.0" if request.expose else "127.0.0.1",
            JUPYTER_PORT if mode == "jupyter" else SSH_PORT)
        notes += [moved] if moved else []
    uid, gid = host_ids(directory)
    granted = uid == 0 and has_access(str(directory), view.user.uid)
    host = Host(project_dir=str(directory), uid=uid, gid=gid, data_dir=str(data_dir),
                granted=granted,
                memory_bytes=os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
                ca_bundle=host_bundle() if request.host_ca else None,
                nonce=secrets.token_hex(2), token=token)
    options = RunOptions(
        mode=mode, command=request.command, memory=request.memory, cpus=request.cpus,
        shm_size=request.shm_size, pids_limit=request.pids_limit, publish=publish, port=port,
        expose=request.expose, gpus=gpus, mounts=mounts, volumes=request.volumes,
        tty=request.tty, authorized_key=key)
    plan = plan_run(view, image, profile, options, host)
    plan = replace(plan, notes=(*notes, *plan.notes))
    return PreparedRun(plan=plan, engine=engine, view=view, profile=profile, token=token,
                       identity=identity, running=running is not None)


def _running(engine: Engine, name: str) -> dict[str, str] | None:
    """The labels of the service container ``name`` when it runs; one that has stopped is
    removed (its volumes stay), so the service starts afresh."""
    info = engine.inspect(name)
    if info is None:
        return None
    state, config = info.get("State"), info.get("Config")
    if isinstance(state, dict) and state.get("Running") and isinstance(config, dict):
        labels = config.get("Labels") or {}
        return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}
    engine.remove(name)
    return None


def _running_token(data_dir: Path, name: str) -> str | None:
    """The token of a running JupyterLab, from the config file dlenv wrote for it."""
    try:
        config = json.loads((Path(files_dir(str(data_dir), name)) / JUPYTER_CONFIG).read_text())
        token = config["IdentityProvider"]["token"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return token if isinstance(token, str) else None


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def run_attached(prepared: PreparedRun, reporter: Reporter | None = None) -> int:
    """Run in this terminal; the command's exit code."""
    for note in prepared.plan.notes:
        (reporter or Silent()).note(note)
    return run_foreground(prepared.plan, prepared.engine)


def start_service(project: Project, prepared: PreparedRun, *, ssh_config: bool = False,
                  reporter: Reporter | None = None) -> Started:
    """Start Jupyter or sshd detached and wait until it answers."""
    report = reporter or Silent()
    if not prepared.running:  # a running one was told its notes when it started
        for note in prepared.plan.notes:
            report.note(note)
        report.step(f"starting {prepared.plan.name}")
        start_detached(prepared.plan, prepared.engine, token=prepared.token)
    port = int(prepared.plan.extra["port"])
    PortBook(default_data_dir().resolve(), location_id(str(project.directory.resolve()))
             ).remember(prepared.plan.mode, port)
    alias = None
    if prepared.plan.mode == "ssh" and ssh_config:
        alias = f"dlenv-{prepared.view.name}"
        write_ssh_config_entry(alias, port, prepared.view.user.name, prepared.identity)
    return Started(plan=prepared.plan, ssh_alias=alias, again=prepared.running)


def containers(engine_kind: EngineKind | None = None, project: Project | None = None
               ) -> tuple[Engine, list[Container]]:
    """The containers dlenv started (all, or ``project``'s) and the engine that holds them."""
    engine = detect(engine_kind)
    found = engine.containers(f"{LABEL}.env")
    if project is not None:
        where = str(project.directory.resolve())
        found = [c for c in found if c.labels.get(f"{LABEL}.project") == where]
    return engine, found


def endpoint(container: Container) -> str:
    """How to reach a service container: JupyterLab's URL with its token, or the ssh line
    (empty for runs and shells)."""
    labels = container.labels
    mode, port = labels.get(f"{LABEL}.mode"), _int(labels.get(f"{LABEL}.port"))
    if port is None or container.state != "running":
        return ""
    if mode == "jupyter":
        token = _running_token(default_data_dir().resolve(), container.name)
        return f"http://127.0.0.1:{port}/lab" + (f"?token={token}" if token else "")
    if mode == "ssh":
        return f"ssh -p {port} {labels.get(f'{LABEL}.user', 'dlenv')}@127.0.0.1"
    return ""


def stop(project: Project | None, names: Sequence[str] = (),
         engine_kind: EngineKind | None = None) -> list[str]:
    """Stop and remove ``names`` (each one dlenv started), or all of ``project``'s."""
    engine, found = containers(engine_kind, project)
    if names:
        known = {c.name for c in found}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise EngineError(f"not started by dlenv: {', '.join(unknown)}",
                              fix="'dlenv ps' lists the containers dlenv started")
    chosen = list(names) if names else [c.name for c in found]
    for name in chosen:
        engine.remove(name)
    return chosen
