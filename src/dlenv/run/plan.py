"""``plan_run`` (pure): a development container's user, mounts, volumes, ports, limits, GPU,
labels and generated files, decided from the spec's run view (``spec.view.RunView``), the
options and a few host facts.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Literal

from dlenv.checks import FAIL, SKIP, Check
from dlenv.engine.base import (
    CONFINED,
    LABEL,
    PIDS_LIMIT,
    EngineKind,
    gpu_args,
    makes_volumes,
    mount_option,
    volume_mount,
)
from dlenv.errors import EngineError, Problem, SpecError
from dlenv.fsutil import location_id
from dlenv.spec.names import JUPYTER_PORT, SSH_PORT
from dlenv.spec.view import RunProfile, RunView, User

Mode = Literal["run", "shell", "jupyter", "ssh"]
MODES: tuple[Mode, ...] = ("run", "shell", "jupyter", "ssh")
RUN_DIR = "/run/dlenv"  # where generated files are mounted, read-only
CA_PATH = f"{RUN_DIR}/ca-certificates.crt"
SSHD_KEYS = "/var/lib/dlenv/sshd"
GIB = 1 << 30
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# A fork bomb in a notebook stops here, far above what DataLoader workers and their threads
# use; no memory limit is set unless asked: training wants the whole machine.


@dataclass(frozen=True, slots=True)
class Mount:
    source: str  # host path
    target: str
    readonly: bool = False


@dataclass(frozen=True, slots=True)
class Volume:
    """A named volume backed by a host directory that dlenv creates for the run's user."""

    name: str
    device: str  # host directory
    target: str


@dataclass(frozen=True, slots=True)
class Port:
    host_ip: str
    host_port: int
    container_port: int

    def __str__(self) -> str:
        return f"{self.host_ip}:{self.host_port}->{self.container_port}"


@dataclass(frozen=True, slots=True)
class RunFile:
    """A file dlenv writes on the host (owned by the run's user) and mounts read-only."""

    host_path: str
    target: str
    content: str
    mode: int = 0o644


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    mode: Mode = "run"
    command: tuple[str, ...] = ()
    memory: str | None = None
    cpus: str | None = None
    shm_size: str | None = None
    pids_limit: int = PIDS_LIMIT
    publish: tuple[tuple[int | None, int], ...] = ()  # (host port or None = same, container)
    port: int | None = None  # host port for Jupyter or SSH
    expose: bool = False
    gpus: bool = False
    mounts: tuple[Mount, ...] = ()
    volumes: bool = True
    tty: bool = False
    authorized_key: str | None = None  # the public key's text, for ssh


@dataclass(frozen=True, slots=True, kw_only=True)
class Host:
    """The few host facts a plan depends on (gathered by the launcher)."""

    project_dir: str
    uid: int
    gid: int
    data_dir: str  # volumes' host directories and generated files live below it
    memory_bytes: int
    ca_bundle: str | None = None
    nonce: str = ""  # tells apart several shells of one project
    token: str = ""  # Jupyter's token (random, made by the launcher)
    granted: bool = False  # root's project: the image's user has its ACL already


@dataclass(frozen=True, slots=True, kw_only=True)
class RunPlan:
    name: str
    image: str
    mode: Mode
    uid: int  # who the container runs as
    gid: int
    workdir: str
    command: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    mounts: tuple[Mount, ...] = ()
    volumes: tuple[Volume, ...] = ()
    files: tuple[RunFile, ...] = ()
    ports: tuple[Port, ...] = ()
    memory: str | None = None
    cpus: str | None = None
    shm_size: str = "1g"
    pids_limit: int = 0  # 0: the engine's default
    gpus: bool = False
    labels: tuple[tuple[str, str], ...] = ()
    detach: bool = False
    tty: bool = False
    extra: dict[str, str] = field(default_factory=dict)  # url, ssh line: what to tell the user
    notes: tuple[str, ...] = ()
    grant: str | None = None  # a root-owned project the container's uid is given access to
    network: str = ""  # a network of dlenv's own (the workers of `dlenv train`)
    hostname: str = ""  # the container's name on that network

    @property
    def volume_labels(self) -> tuple[tuple[str, str], ...]:
        """A volume's labels: the container's, but for the mode (a shell and a run share)."""
        return tuple((k, v) for k, v in self.labels if k != f"{LABEL}.mode")

    def args(self, engine: EngineKind) -> list[str]:
        """The arguments of ``ENGINE run`` for this plan (after the word ``run``)."""
        # --pull never: an image dlenv did not find is an error, never a pull from a registry
        a = ["--name", self.name, "--pull", "never", "--init",
             "--user", f"{self.uid}:{self.gid}", "--workdir", self.workdir, *CONFINED,
             "--shm-size", self.shm_size]
        if not self.detach:  # services are kept for their logs; `dlenv stop` removes them
            a += ["--interactive", "--rm"]
        if self.tty:
            a.append("--tty")
        if self.network:
            a += ["--network", self.network]
        if self.hostname:
            a += ["--hostname", self.hostname, "--network-alias", self.hostname]
        if self.memory:
            a += ["--memory", self.memory]
        if self.cpus:
            a += ["--cpus", self.cpus]
        if self.pids_limit:
            a += ["--pids-limit", str(self.pids_limit)]
        if self.gpus:
            a += gpu_args(engine)
        for key, value in self.labels:
            a += ["--label", f"{key}={value}"]
        for key, value in self.env:
            a += ["--env", f"{key}={value}"]
        binds = [*((m.source, m.target, m.readonly) for m in self.mounts),
                 *((f.host_path, f.target, True) for f in self.files)]
        for source, target, readonly in binds:
            a += ["--mount", mount_option(("type", "bind"), ("source", source),
                                          ("target", target),
                                          *([("readonly", None)] if readonly else []))]
        for v in self.volumes:
            if makes_volumes(engine):
                a += ["--mount", volume_mount(v.name, v.target, v.device,
                                              dict(self.volume_labels))]
                continue
            # nocopy as in volume_mount (--volume: Podman's --mount knows no such option).
            # Names come from the validated spec name, targets are dlenv's own: no colons.
            if ":" in v.name + v.target or "," in v.name + v.target:
                raise ValueError(f"volume {v.name}:{v.target} cannot be written for -v")
            a += ["--volume", f"{v.name}:{v.target}:nocopy"]
        for p in self.ports:
            a += ["--publish", f"{p.host_ip}:{p.host_port}:{p.container_port}"]
        return [*a, self.image, *self.command]

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "image": self.image, "mode": self.mode,
                "user": f"{self.uid}:{self.gid}",
                "command": list(self.command), "ports": [str(p) for p in self.ports],
                "volumes": {v.name: v.target for v in self.volumes}, "notes": list(self.notes),
                **self.extra}


def container_name(spec: RunView, mode: Mode, project_dir: str, nonce: str = "") -> str:
    """One service (Jupyter, SSH) per project directory; shells and runs, one per nonce."""
    suffix = f"-{nonce}" if mode in ("run", "shell") and nonce else ""
    return f"dlenv-{spec.name}-{mode}-{location_id(project_dir)}{suffix}"


def files_dir(data_dir: str, name: str) -> str:
    """Where the files a container mounts (Jupyter's config, sshd's) are written."""
    return str(PurePosixPath(data_dir) / "run" / name)


JUPYTER_CONFIG = "jupyter_server_config.json"


def volume_name(spec: RunView, project_dir: str, what: str) -> str:
    return f"dlenv-{spec.name}-{location_id(project_dir)}-{what}"


def default_shm(memory_bytes: int) -> str:
    """A quarter of the host's memory, between 1 and 16 GiB: PyTorch's DataLoader workers
    pass batches through /dev/shm, and the engines' 64 MB default makes them crash."""
    return f"{max(1, min(16, memory_bytes // 4 // GIB))}g"


def decide_gpus(cuda: bool, checks: Sequence[Check], allow_cpu: bool) -> bool:
    """Whether to give the container the GPUs, from doctor's checks of this host; a CUDA
    environment on a host whose containers cannot use a GPU runs only with ``allow_cpu``."""
    if not cuda:
        return False
    blocking = [c for c in checks if c.id in ("gpu", "toolkit", "driver", "fit")
                and (c.status == FAIL or (c.id == "gpu" and c.status == SKIP))]
    if not blocking:
        return True
    if allow_cpu:
        return False
    fixes = "; ".join(dict.fromkeys(c.fix for c in blocking if c.fix))
    raise EngineError("this is a CUDA environment and containers here cannot use a GPU: "
                      + "; ".join(c.summary for c in blocking),
                      fix=(fixes + "; " if fixes else "") + "or pass --allow-cpu to run it "
                      "on the CPU")


def _bad(spec: RunView, key: str, message: str, fix: str) -> SpecError:
    return SpecError([Problem(file=spec.source, key=key, message=message, fix=fix)])


def _profile_for(spec: RunView, mode: Mode, profile: str | None) -> RunProfile | None:
    if profile is None and mode in ("jupyter", "ssh", "shell"):
        profile = "dev" if spec.profile("dev") else None
    if profile is None:
        return None
    chosen = spec.profile(profile)
    if chosen is None:
        have = ", ".join(p.name for p in spec.profiles) or "none"
        raise _bad(spec, f"profiles.{profile}", f"no profile {profile!r} (profiles: {have})",
                   "pick one of the spec's profiles with --profile, or add it to the spec")
    return chosen


def choose_profile(spec: RunView, mode: Mode, profile: str | None) -> str | None:
    """The profile a mode runs: the named one, else ``dev`` for shell/jupyter/ssh, and one
    that has what the mode needs (Jupyter or SSH) — or a SpecError saying what to add."""
    chosen = _profile_for(spec, mode, profile)
    for needed in ("jupyter", "ssh"):
        if mode != needed:
            continue
        name = chosen.name if chosen else "dev"
        if chosen is None or not getattr(chosen, needed):
            raise _bad(spec, f"profiles.{name}.{needed}", f"the {name} profile has no "
                       f"{'JupyterLab' if needed == 'jupyter' else 'SSH server'}",
                       f"set {needed} = true under [profiles.{name}] and run 'dlenv lock'")
    return chosen.name if chosen else None


def _sshd_config(user: User, env: Sequence[tuple[str, str]], source: str) -> str:
    lines = [
        "# Written by dlenv for one container; mounted read-only.",
        f"Port {SSH_PORT}",
        f"HostKey {SSHD_KEYS}/ssh_host_ed25519_key",
        f"AuthorizedKeysFile {RUN_DIR}/authorized_keys",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin no",
        "PermitEmptyPasswords no",
        f"AllowUsers {user.name}",
        "UsePAM no",
        "PidFile /tmp/sshd.pid",
        "X11Forwarding no",
        "AllowTcpForwarding local",  # VS Code Remote-SSH forwards to its server
        "PrintMotd no",
        "Subsystem sftp internal-sftp",
    ]
    if any(_CONTROL.search(k + v) for k, v in env):
        raise SpecError([Problem(file=source, key="env", message="a value holds a line "
                                 "break, which would end sshd_config's line",
                                 fix="write env values on one line")])
    if env:
        lines.append("SetEnv " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env))
    return "\n".join(lines) + "\n"


def plan_run(spec: RunView, image: str, profile: str | None, options: RunOptions,
             host: Host) -> RunPlan:
    """Decide the container for ``options.mode`` (run | shell | jupyter | ssh) from the
    spec's run view (``Spec.run_view()``, or a run record's)."""
    mode = options.mode
    if mode not in MODES:
        raise EngineError(f"unknown mode {mode!r}", fix=f"use one of {', '.join(MODES)}")
    chosen = spec.profile(profile) if profile else None
    pid = location_id(host.project_dir)
    name = container_name(spec, mode, host.project_dir, host.nonce)
    run_dir = files_dir(host.data_dir, name)
    home = f"/home/{spec.user.name}"
    uid, gid = host.uid, host.gid
    notes = []
    grant = None
    if uid == 0:  # never root: the image's user, given access to root's project
        uid, gid = spec.user.uid, spec.user.gid
        if not host.granted:  # given (and said) once; later runs find the ACL there
            grant = host.project_dir
            notes.append(f"{host.project_dir} belongs to root and containers never run as "
                         f"root: uid {uid} (the image's user) has read and write access to "
                         f"it through an ACL ('getfacl {host.project_dir}' shows it; "
                         f"'setfacl -R -x u:{uid} {host.project_dir}' takes it back)")
    files: list[RunFile] = []
    if (uid, gid) != (spec.user.uid, spec.user.gid):
        # The host user's ids for the image's user, so files in mounts belong to them.
        remapped = User(name=spec.user.name, uid=uid, gid=gid)
        for fname, text in remapped.account_files().items():
            if fname != "shadow":
                files.append(RunFile(f"{run_dir}/{fname}", f"/etc/{fname}", text))
    mounts = [Mount(host.project_dir, spec.workdir), *options.mounts]
    # git refuses a repository another uid owns (root's project, or a remapped owner).
    env: list[tuple[str, str]] = [("GIT_CONFIG_COUNT", "1"), ("GIT_CONFIG_KEY_0",
                                   "safe.directory"), ("GIT_CONFIG_VALUE_0", spec.workdir)]
    if host.ca_bundle:
        # The host's trust (a corporate proxy's CA) for pip and friends, never in a layer.
        mounts.append(Mount(host.ca_bundle, CA_PATH, readonly=True))
        env += [("SSL_CERT_FILE", CA_PATH), ("PIP_CERT", CA_PATH),
                ("REQUESTS_CA_BUNDLE", CA_PATH)]
    volumes = []
    if options.volumes:
        for what, target in (("home", home), ("data", "/data"), ("models", "/models")):
            vname = volume_name(spec, host.project_dir, what)
            volumes.append(Volume(vname, f"{host.data_dir}/volumes/{vname}", target))
    ip = "0.0.0.0" if options.expose else "127.0.0.1"
    ports = [Port(ip, h if h is not None else c, c) for h, c in options.publish]
    if mode == "run" and not options.publish and chosen is not None:
        ports += [Port(ip, p, p) for p in chosen.ports]
    extra: dict[str, str] = {}
    detach = mode in ("jupyter", "ssh")
    if mode == "jupyter":
        host_port = options.port or JUPYTER_PORT
        ports = [Port(ip, host_port, JUPYTER_PORT)]
        config = {"IdentityProvider": {"token": host.token},
                  "ServerApp": {"open_browser": False, "root_dir": spec.workdir}}
        files.append(RunFile(f"{run_dir}/{JUPYTER_CONFIG}", f"{RUN_DIR}/{JUPYTER_CONFIG}",
                             json.dumps(config, indent=2) + "\n", 0o600))
        command: tuple[str, ...] = (
            "jupyter", "lab", "--no-browser", "--ip=0.0.0.0", f"--port={JUPYTER_PORT}",
            f"--config={RUN_DIR}/{JUPYTER_CONFIG}")
        shown = "127.0.0.1" if not options.expose else "HOST"
        extra["url"] = f"http://{shown}:{host_port}/lab?token={host.token}"
        extra["port"] = str(host_port)
    elif mode == "ssh":
        if not options.authorized_key:
            raise EngineError("no public key to log in with",
                              fix="pass --key ~/.ssh/id_ed25519.pub (make one with "
                                  "'ssh-keygen -t ed25519')")
        host_port = options.port or SSH_PORT
        ports = [Port(ip, host_port, SSH_PORT)]
        files.append(RunFile(f"{run_dir}/authorized_keys", f"{RUN_DIR}/authorized_keys",
                             options.authorized_key.strip() + "\n", 0o600))
        session_env = [(k, v) for k, v in spec.env if k not in ("HOME", "PATH")] + env
        files.append(RunFile(f"{run_dir}/sshd_config", f"{RUN_DIR}/sshd_config",
                             _sshd_config(spec.user, session_env, spec.source)))
        sname = volume_name(spec, host.project_dir, "sshd")
        volumes.append(Volume(sname, f"{host.data_dir}/volumes/{sname}", SSHD_KEYS))
        key = f"{SSHD_KEYS}/ssh_host_ed25519_key"
        # Host keys are made at the first start, inside the volume: never in the image.
        command = ("/bin/sh", "-c", f"[ -f {key} ] || ssh-keygen -q -t ed25519 -N '' -f {key}"
                   f" && exec /usr/sbin/sshd -D -e -f {RUN_DIR}/sshd_config")
        extra["ssh"] = f"ssh -p {host_port} {spec.user.name}@127.0.0.1"
        extra["port"] = str(host_port)
    elif mode == "shell":
        command = options.command or ("/bin/bash",)
    else:
        command = options.command  # empty: the image's CMD (the profile's command)
    labels = (
        (f"{LABEL}.env", spec.name), (f"{LABEL}.mode", mode),
        (f"{LABEL}.profile", profile or ""), (f"{LABEL}.project", host.project_dir),
        (f"{LABEL}.project-id", pid),
        *(((f"{LABEL}.port", extra["port"]), (f"{LABEL}.user", spec.user.name))
          if "port" in extra else ()),
    )
    return RunPlan(
        name=name, image=image, mode=mode, uid=uid, gid=gid, workdir=spec.workdir,
        command=command, env=tuple(env), mounts=tuple(mounts), volumes=tuple(volumes),
        files=tuple(files), ports=tuple(ports), memory=options.memory, cpus=options.cpus,
        shm_size=options.shm_size or default_shm(host.memory_bytes),
        pids_limit=options.pids_limit, gpus=options.gpus,
        labels=labels, detach=detach, tty=options.tty and not detach,
        extra=extra, notes=tuple(notes), grant=grant)
