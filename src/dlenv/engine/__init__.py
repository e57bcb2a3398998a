"""Container engines behind one interface: Docker and Podman, through their command lines.

Both CLIs take the same words for what dlenv does (load, run, volume, ps, stop, rm), so one
class serves both; only the GPU request differs, and ``dlenv.run`` decides that from
``Engine.kind``. The Docker SDK would add a dependency without covering Podman's CLI-only
features (CDI devices), so the CLIs are the interface.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Protocol

from dlenv.errors import EngineError, UsageError

ENGINES = ("docker", "podman")
LABEL = "dev.dlenv"  # prefix of every label on what dlenv starts

_INSTALL = {
    "docker": "install Docker (Debian: apt-get install docker.io) and start it "
              "(systemctl start docker, or run dockerd)",
    "podman": "install Podman (Debian: apt-get install podman)",
}


@dataclass(frozen=True, slots=True)
class Container:
    name: str
    state: str  # running | exited | created …
    status: str  # the engine's words ("Up 3 minutes")
    image: str
    labels: Mapping[str, str]
    ports: str

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "state": self.state, "status": self.status,
                "image": self.image, "ports": self.ports, "labels": dict(self.labels)}


def mount_option(*fields: tuple[str, str | None]) -> str:
    """The value of ``--mount`` from typed fields, never by pasting user values together.

    Docker and Podman read it as one CSV record of ``key=value`` fields, so a field holding
    a comma or a quote is quoted the CSV way (the csv module does exactly that); a value
    with a line break or NUL has no safe spelling there and is refused."""
    row = []
    for key, value in fields:
        if not re.fullmatch(r"[a-z-]+", key):
            raise ValueError(f"bad mount option name {key!r}")
        if value is not None and re.search(r"[\x00-\x1f\x7f]", value):
            raise UsageError(f"{key} {value!r} holds a control character",
                             fix="rename the path, or mount another one")
        row.append(key if value is None else f"{key}={value}")
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(row)
    return buffer.getvalue()


class Engine(Protocol):
    kind: str

    def image_id(self, ref: str) -> str | None: ...
    def load(self, write: Callable[[IO[bytes]], None]) -> None: ...
    def volume_exists(self, name: str) -> bool: ...
    def create_volume(self, name: str, device: str, labels: Mapping[str, str]) -> None: ...
    def remove_volume(self, name: str) -> None: ...
    def run(self, args: Sequence[str], name: str) -> int: ...
    def start(self, args: Sequence[str]) -> str: ...
    def containers(self, label: str) -> list[Container]: ...
    def inspect(self, name: str) -> dict[str, object] | None: ...
    def logs(self, name: str, tail: int = 40) -> str: ...
    def remove(self, name: str) -> None: ...


class CliEngine:
    """Docker or Podman through its CLI (``exe``)."""

    def __init__(self, kind: str, exe: str) -> None:
        self.kind = kind
        self.exe = exe

    def _call(self, *args: str, check: bool = True, timeout: float = 120,
              input_: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        try:
            proc = subprocess.run([self.exe, *args], capture_output=True, timeout=timeout,
                                  input=input_, check=False)
        except subprocess.TimeoutExpired as exc:
            raise EngineError(f"{self.kind} {args[0]} did not answer within {timeout:.0f} s",
                              fix=f"check that the {self.kind} engine runs ({self.kind} info)"
                              ) from exc
        if check and proc.returncode != 0:
            raise EngineError(f"{self.kind} {' '.join(args[:2])} failed: "
                              f"{proc.stderr.decode(errors='replace').strip()}")
        return proc

    def image_id(self, ref: str) -> str | None:
        proc = self._call("image", "inspect", "--format", "{{.Id}}", ref, check=False)
        if proc.returncode != 0:
            return None
        found = proc.stdout.decode().strip()
        return found if found.startswith("sha256:") else f"sha256:{found}"

    def load(self, write: Callable[[IO[bytes]], None]) -> None:
        """``load`` an image archive that ``write`` streams into the engine (no temp copy)."""
        with tempfile.TemporaryFile() as errors:
            proc = subprocess.Popen([self.exe, "load"], stdin=subprocess.PIPE,
                                    stdout=subprocess.DEVNULL, stderr=errors)
            assert proc.stdin is not None
            try:
                with proc.stdin:
                    write(proc.stdin)
            except BrokenPipeError:
                pass  # the engine gave up; its message says why
            proc.wait()
            errors.seek(0)
            message = errors.read().decode(errors="replace").strip()
        if proc.returncode != 0:
            raise EngineError(f"{self.kind} load failed: {message}",
                              fix=f"check that the {self.kind} engine runs ({self.kind} info)")

    def volume_exists(self, name: str) -> bool:
        return self._call("volume", "inspect", name, check=False).returncode == 0

    def create_volume(self, name: str, device: str, labels: Mapping[str, str]) -> None:
        # A named volume whose data sits in a host directory dlenv made for the run's user:
        # it survives the container, `volume ls` shows it, and its owner is right from the
        # start (an engine-made volume would belong to root).
        label_args = [a for k, v in labels.items() for a in ("--label", f"{k}={v}")]
        self._call("volume", "create", "--driver", "local", "--opt", "type=none",
                   "--opt", "o=bind", "--opt", f"device={device}", *label_args, name)

    def remove_volume(self, name: str) -> None:
        self._call("volume", "rm", "--force", name, check=False)

    def run(self, args: Sequence[str], name: str) -> int:
        """``run ARGS`` attached to this terminal; the command's exit code. On Ctrl-C the
        container ``name`` is stopped (TERM, then KILL after 10 s) before this returns."""
        proc = subprocess.Popen([self.exe, "run", *args])
        try:
            return proc.wait()
        except KeyboardInterrupt:
            # The terminal sent SIGINT to the CLI too, but a signal to dlenv alone (kill -INT)
            # would leave the container running: stop it explicitly either way.
            subprocess.run([self.exe, "stop", "--time", "10", name], capture_output=True,
                           timeout=60, check=False)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise

    def start(self, args: Sequence[str]) -> str:
        proc = self._call("run", "--detach", *args, check=False)
        if proc.returncode != 0:
            raise EngineError(f"{self.kind} could not start the container: "
                              f"{proc.stderr.decode(errors='replace').strip()}")
        return proc.stdout.decode().strip()

    def containers(self, label: str) -> list[Container]:
        proc = self._call("ps", "--all", "--no-trunc", "--filter", f"label={label}",
                          "--format", "{{json .}}")
        out = []
        for line in proc.stdout.decode().splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            labels = row.get("Labels") or {}
            if isinstance(labels, str):  # Docker: "k=v,k=v"
                labels = dict(p.split("=", 1) for p in labels.split(",") if "=" in p)
            names = row.get("Names")
            name = names[0] if isinstance(names, list) else str(names)
            ports = row.get("Ports") or ""
            out.append(Container(name=name, state=str(row.get("State", "")).lower(),
                                 status=str(row.get("Status", "")), image=str(row.get("Image")),
                                 labels=labels, ports=ports if isinstance(ports, str) else
                                 json.dumps(ports)))
        return out

    def inspect(self, name: str) -> dict[str, object] | None:
        proc = self._call("container", "inspect", name, check=False)
        if proc.returncode != 0:
            return None
        data = json.loads(proc.stdout)
        return data[0] if data else None

    def logs(self, name: str, tail: int = 40) -> str:
        proc = self._call("logs", "--tail", str(tail), name, check=False)
        return (proc.stdout + proc.stderr).decode(errors="replace")

    def remove(self, name: str) -> None:
        self._call("rm", "--force", name, check=False, timeout=60)


def _answers(exe: str) -> tuple[bool, str]:
    try:
        proc = subprocess.run([exe, "info", "--format", "{{json .}}"], capture_output=True,
                              text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        return False, "the engine did not answer within 30 s"
    if proc.returncode != 0 or "ServerErrors" in proc.stdout:
        return False, (proc.stderr or proc.stdout).strip().splitlines()[-1:][0] \
            if (proc.stderr or proc.stdout).strip() else f"exit {proc.returncode}"
    return True, ""


def detect(choice: str | None = None) -> CliEngine:
    """The engine to use: ``choice`` (docker|podman), else the first that answers."""
    kinds = [choice] if choice else list(ENGINES)
    problems = []
    for kind in kinds:
        if kind not in ENGINES:
            raise EngineError(f"unknown engine {kind!r}", fix="use --engine docker or podman")
        exe = shutil.which(kind)
        if exe is None:
            problems.append(f"{kind}: not installed")
            continue
        ok, why = _answers(exe)
        if ok:
            return CliEngine(kind, exe)
        problems.append(f"{kind}: {why}")
    fix = "; or ".join(_INSTALL[k] for k in kinds)
    raise EngineError("no container engine answers (" + "; ".join(problems) + ")", fix=fix)
