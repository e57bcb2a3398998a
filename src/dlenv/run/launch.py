"""Carry a ``RunPlan`` out through an engine: check, write files, make volumes, start, wait.

Every check that can fail (image present, ports free) runs before anything is created, and a
start that fails removes the container and the volumes this call made, so bad input leaves
nothing behind.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import platformdirs

from dlenv.engine import Engine
from dlenv.engine.base import makes_volumes
from dlenv.errors import EngineError
from dlenv.fsutil import write_atomic
from dlenv.run import JUPYTER_PORT, RunPlan

READY_TIMEOUT = 90.0


def default_data_dir() -> Path:
    env = os.environ.get("DLENV_DATA_DIR")
    return Path(env) if env else Path(platformdirs.user_data_dir("dlenv"))


def host_ids(project_dir: Path) -> tuple[int, int]:
    """Whose files the container writes: this user's, or for root the project's owner."""
    uid, gid = os.getuid(), os.getgid()
    if uid == 0:
        st = project_dir.stat()
        uid, gid = st.st_uid, st.st_gid
    return uid, gid


def port_free(ip: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As servers bind: a port whose last connections linger in TIME_WAIT (the readiness
        # check's, a stopped service's) is free, so quick restarts keep their port.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((ip, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def free_port(ip: str, preferred: int) -> int:
    """``preferred`` when free, else the next free one above it (within 100)."""
    for port in range(preferred, preferred + 100):
        if port_free(ip, port):
            return port
    raise EngineError(f"no free port on {ip} from {preferred} to {preferred + 99}",
                      fix="pass --port with a free port")


class PortBook:
    """The host ports a project's services got, kept in the data directory so that the next
    start takes the same one (a ~/.ssh/config entry or a bookmarked URL stays right)."""

    def __init__(self, data_dir: Path, location: str) -> None:
        self.path = data_dir / "ports" / f"{location}.json"

    def read(self) -> dict[str, int]:
        try:
            data = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            return {}
        return {k: v for k, v in data.items() if isinstance(v, int) and 0 < v < 65536} \
            if isinstance(data, dict) else {}

    def choose(self, mode: str, ip: str, default: int) -> tuple[int, str | None]:
        """The port ``mode`` had before when it is free, else the first free one from it
        (or from ``default``); and a note when the remembered one had to change."""
        before = self.read().get(mode)
        if before is not None and port_free(ip, before):
            return before, None
        port = free_port(ip, before or default)
        return port, (f"port {before} is taken by another program: {mode} moves to {port}"
                      if before is not None else None)

    def remember(self, mode: str, port: int) -> None:
        data = self.read()
        if data.get(mode) != port:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, json.dumps({**data, mode: port}, sort_keys=True).encode())


def check_ports(plan: RunPlan) -> None:
    for p in plan.ports:
        if not port_free(p.host_ip, p.host_port):
            raise EngineError(f"port {p.host_port} on {p.host_ip} is in use",
                              fix="stop what listens there, or pick another port with --port "
                                  "(Jupyter, SSH) or --publish HOST:CONTAINER")


def has_access(directory: str, uid: int) -> bool:
    """Whether ``uid`` has root's project already, through the ACL ``grant_access`` gives."""
    getfacl = shutil.which("getfacl")
    if getfacl is None:
        return False
    # --numeric: a host that names the uid (a user of its own) shows the name otherwise,
    # and the ACL was given again at every run, touching the ctime of every project file.
    seen = subprocess.run([getfacl, "--omit-header", "--absolute-names", "--numeric", "--",
                           directory], capture_output=True, text=True, check=False).stdout.split()
    return f"user:{uid}:rwx" in seen and f"default:user:{uid}:rwx" in seen


def grant_access(directory: str, uid: int) -> None:
    """Let ``uid`` read and write root's project, and what is made in it later (a default
    ACL), without changing an owner or a mode: POSIX ACLs through setfacl (the acl package;
    no maintained Python library writes them). Nothing is done when it has that already."""
    setfacl, getfacl = shutil.which("setfacl"), shutil.which("getfacl")
    if setfacl is None or getfacl is None:
        raise EngineError(f"{directory} belongs to root and the container's user (uid {uid}) "
                          "needs write access, which dlenv gives with setfacl: it is missing",
                          fix=f"install the acl package (apt-get install acl), or give the "
                              f"project to a user: chown -R {uid} {directory}")
    if has_access(directory, uid):
        return
    done = subprocess.run([setfacl, "-R", "-P", "-m", f"u:{uid}:rwX,d:u:{uid}:rwX", "--",
                           directory], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise EngineError(f"could not give uid {uid} access to root's project {directory}: "
                          f"{done.stderr.strip()}",
                          fix=f"give the project to a user (chown -R {uid} {directory}), or "
                              "move it to a file system with ACLs")


def _own(path: Path, plan: RunPlan) -> None:
    if os.getuid() == 0 and (path.stat().st_uid, path.stat().st_gid) != (plan.uid, plan.gid):
        os.chown(path, plan.uid, plan.gid)


def prepare(plan: RunPlan, engine: Engine) -> list[str]:
    """Check the image and ports, write the plan's files, make missing volumes; return the
    names of volumes made now (for cleanup when the start fails)."""
    if engine.image_id(plan.image) is None:
        raise EngineError(f"the image {plan.image} is not in {engine.kind}",
                          fix="build it with 'dlenv build --load', or pull it with 'dlenv pull'")
    check_ports(plan)
    if plan.grant is not None:
        grant_access(plan.grant, plan.uid)
    for f in plan.files:
        path = Path(f.host_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, f.content.encode(), f.mode)
        _own(path, plan)
    made = []
    # Docker makes a missing volume at the start from the run's own --mount (nothing asked
    # first); one whose directory is new counts as made now. Podman's are made here.
    engine_makes = makes_volumes(engine.kind)
    existing = set() if engine_makes else engine.existing_volumes(
        [v.name for v in plan.volumes])
    try:
        for v in plan.volumes:
            device = Path(v.device)
            if not device.is_dir():
                device.mkdir(parents=True, mode=0o700)
                made += [v.name] if engine_makes else []
            # Each start, not only the first: Podman gives a volume the image's owner when it
            # first mounts it, which would leave another uid's home unwritable.
            _own(device, plan)
            if not engine_makes and v.name not in existing:
                engine.create_volume(v.name, str(device), dict(plan.volume_labels))
                made.append(v.name)
    except BaseException:
        for name in made:
            engine.remove_volume(name)
        raise
    return made


def run_foreground(plan: RunPlan, engine: Engine) -> int:
    """Run attached; the command's exit code. Ctrl-C stops the container."""
    made = prepare(plan, engine)
    code = engine.run(plan.args(engine.kind), plan.name)
    if code == 125 and engine.inspect(plan.name) is None:
        # The engine refused to start it (its own error, already shown): undo what we made.
        for name in made:
            engine.remove_volume(name)
    return code


def _ready_jupyter(plan: RunPlan, token: str) -> bool:
    import httpx

    port = next(p.host_port for p in plan.ports if p.container_port == JUPYTER_PORT)
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/api/status",
                      headers={"Authorization": f"token {token}"}, timeout=2)
    except httpx.HTTPError:
        return False
    return r.status_code == 200


def _ready_ssh(plan: RunPlan) -> bool:
    port = plan.ports[0].host_port
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            return s.recv(8).startswith(b"SSH-2.0")
    except OSError:
        return False


def start_detached(plan: RunPlan, engine: Engine, token: str = "",
                   timeout: float = READY_TIMEOUT,
                   answers: Callable[[], bool] | None = None) -> str:
    """Start a service container (Jupyter, SSH, or one whose readiness ``answers`` tells)
    and wait until it answers; its id."""
    existing = engine.inspect(plan.name)
    if existing is not None:
        raise EngineError(f"{plan.name} already exists",
                          fix="'dlenv ps' shows it; 'dlenv stop' ends it")
    made = prepare(plan, engine)
    try:
        cid = engine.start(plan.args(engine.kind))
        ready: Callable[[], bool] = answers or ((lambda: _ready_jupyter(plan, token))
                                                if plan.mode == "jupyter"
                                                else (lambda: _ready_ssh(plan)))
        deadline = time.monotonic() + timeout
        while not ready():
            state = (engine.inspect(plan.name) or {}).get("State")
            if not (isinstance(state, dict) and state.get("Running")):
                raise EngineError(f"{plan.name} stopped while starting:\n"
                                  f"{engine.logs(plan.name).strip()}")
            if time.monotonic() > deadline:
                raise EngineError(f"{plan.name} did not answer within {timeout:.0f} s:\n"
                                  f"{engine.logs(plan.name).strip()}")
            time.sleep(0.5)
        return cid
    except BaseException:
        engine.remove(plan.name)
        for name in made:
            engine.remove_volume(name)
        raise
