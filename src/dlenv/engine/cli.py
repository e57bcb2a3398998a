"""Docker and Podman through their command lines: one class serves both, since they take the
same words for what dlenv does; ``detect`` picks the engine that answers.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

from dlenv.engine.base import (
    ENGINES,
    Container,
    EngineImage,
    EngineKind,
    info_command,
    volume_options,
)
from dlenv.errors import BuildError, EngineError

if TYPE_CHECKING:  # an unchanged build's one question needs neither (start-up)
    from concurrent.futures import Future

_INSTALL = {
    "docker": "install Docker (Debian: apt-get install docker.io) and start it "
              "(systemctl start docker, or run dockerd)",
    "podman": "install Podman (Debian: apt-get install podman)",
}


# Debian's engine gives BuildKit only through its own client with DOCKER_BUILDKIT=1; a newer
# client on PATH may lack buildx and refuse.
BUILDKIT_DOCKER = "/usr/bin/docker"


class CliEngine:
    """Docker or Podman through its CLI (``exe``)."""

    def __init__(self, kind: EngineKind, exe: str, info: str = "") -> None:
        self.kind = kind
        self.exe = exe
        self.info = info  # what `info` said when detect asked (JSON), else ""
        # Ids this process saw the engine hold: asking again about one costs a CLI start
        # (~15 ms) for nothing. (A run names the image by id, with --pull never.)
        self._held: set[str] = set()
        self._omits: bool | None = None  # omits_held_layers, once asked

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
        if ref in self._held:
            return ref
        proc = self._call("image", "inspect", "--format", "{{.Id}}", ref, check=False)
        if proc.returncode != 0:
            return None
        found = proc.stdout.decode().strip()
        return found if found.startswith("sha256:") else f"sha256:{found}"

    def image(self, ref: str) -> EngineImage | None:
        """The image ``ref`` names (tag or id): its id, tags, size and labels."""
        proc = self._call("image", "inspect", ref, check=False)
        if proc.returncode != 0:
            return None
        found = json.loads(proc.stdout or b"[]")
        if not found:
            return None
        row = found[0]
        image_id = str(row.get("Id", ""))
        image_id = image_id if image_id.startswith("sha256:") else f"sha256:{image_id}"
        labels = (row.get("Config") or {}).get("Labels") or {}
        tags = tuple(t for t in row.get("RepoTags") or () if "<none>" not in t)
        self._held.add(image_id)
        return EngineImage(id=image_id, tags=tags, size=int(row.get("Size") or 0),
                           labels=labels, env=tuple((row.get("Config") or {}).get("Env") or ()),
                           diff_ids=tuple((row.get("RootFS") or {}).get("Layers") or ()))

    def images(self, label: str) -> list[EngineImage]:
        """Every image carrying ``label``, dangling ones included."""
        proc = self._call("images", "--all", "--quiet", "--no-trunc", "--filter",
                          f"label={label}")
        ids = dict.fromkeys(line.strip() for line in proc.stdout.decode().splitlines()
                            if line.strip())
        return [found for i in ids if (found := self.image(i)) is not None]

    def remove_image(self, ref: str) -> bool:
        """Remove one image (never forced: one a container uses stays); True when gone."""
        gone = self._call("rmi", ref, check=False, timeout=120).returncode == 0
        if gone:
            self._held.discard(ref)
        return gone

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

    def save(self, ref: str, read: Callable[[IO[bytes]], None]) -> None:
        """``image save`` ``ref`` as a stream that ``read`` consumes (no temp copy)."""
        with tempfile.TemporaryFile() as errors:
            proc = subprocess.Popen([self.exe, "image", "save", ref], stdout=subprocess.PIPE,
                                    stderr=errors)
            assert proc.stdout is not None
            try:
                with proc.stdout:
                    read(proc.stdout)
                    while proc.stdout.read(1 << 20):  # what ``read`` left (a tar's padding)
                        pass
            except BaseException:
                proc.kill()  # ``read`` failed: end the engine's side
                raise
            finally:
                proc.wait()
            errors.seek(0)
            message = errors.read().decode(errors="replace").strip()
        if proc.returncode != 0:
            raise EngineError(f"{self.kind} image save {ref} failed: {message}")

    def omits_held_layers(self) -> bool:
        """Whether a loaded archive may leave out the layers the engine holds: Docker's own
        image store reads a layer's file only when it lacks that layer's chain. Podman and
        Docker's containerd store want every layer in the archive."""
        if self.kind != "docker":
            return False
        if self._omits is None:
            try:
                said = json.loads(self.info) if self.info else None
                status = said.get("DriverStatus") if isinstance(said, dict) else json.loads(
                    self._call("info", "--format", "{{json .DriverStatus}}",
                               check=False).stdout)
            except ValueError:
                status = None
            self._omits = isinstance(status, list) and \
                "io.containerd.snapshotter" not in json.dumps(status)
        return self._omits

    def held_layers(self, label: str) -> frozenset[str]:
        """The chain ids of the layers under the images carrying ``label``, when the engine
        loads an archive that leaves out the layers it holds (``omits_held_layers``); else
        empty."""
        if not self.omits_held_layers():
            return frozenset()
        ids = self._call("images", "--all", "--quiet", "--no-trunc", "--filter",
                         f"label={label}", check=False).stdout.decode().split()
        if not ids:
            return frozenset()
        from dlenv.oci.image import chain_ids  # a load's question: not at every start

        proc = self._call("image", "inspect", "--format", "{{json .RootFS.Layers}}",
                          *dict.fromkeys(ids), check=False)
        chains: set[str] = set()
        for line in proc.stdout.decode().splitlines():
            with contextlib.suppress(ValueError, TypeError):
                chains.update(chain_ids([str(x) for x in json.loads(line) or ()]))
        return frozenset(chains)

    def existing_volumes(self, names: Sequence[str]) -> set[str]:
        """Which of ``names`` are volumes already (one call for all)."""
        if not names:
            return set()
        filters = [a for n in names for a in ("--filter", f"name={n}")]
        proc = self._call("volume", "ls", "--quiet", *filters)
        return set(proc.stdout.decode().split()) & set(names)

    def create_volume(self, name: str, device: str, labels: Mapping[str, str]) -> None:
        label_args = [a for k, v in labels.items() for a in ("--label", f"{k}={v}")]
        opt_args = [a for k, v in volume_options(device) for a in ("--opt", f"{k}={v}")]
        self._call("volume", "create", "--driver", "local", *opt_args, *label_args, name)

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

    def create_network(self, name: str, labels: Mapping[str, str]) -> None:
        """A bridge network of its own, where containers find each other by name."""
        label_args = [a for k, v in labels.items() for a in ("--label", f"{k}={v}")]
        proc = self._call("network", "create", *label_args, name, check=False)
        if proc.returncode != 0:
            raise EngineError(f"{self.kind} could not create the network {name}: "
                              f"{proc.stderr.decode(errors='replace').strip()}")

    def remove_network(self, name: str) -> bool:
        """Remove it (the engine refuses while a container is attached); True when gone."""
        return self._call("network", "rm", name, check=False, timeout=60).returncode == 0

    def networks(self, label: str) -> list[str]:
        """The names of the networks carrying ``label``."""
        proc = self._call("network", "ls", "--filter", f"label={label}", "--format",
                          "{{.Name}}")
        return [n for n in proc.stdout.decode().split() if n]

    def wait(self, name: str) -> int:
        """Block until the container ``name`` exits; its exit code (-1: it is gone)."""
        proc = subprocess.run([self.exe, "wait", name], capture_output=True, check=False)
        text = proc.stdout.decode().strip().splitlines()
        return int(text[-1]) if proc.returncode == 0 and text and \
            text[-1].lstrip("-").isdigit() else -1

    def follow(self, name: str) -> Iterator[str]:
        """The container's output (stdout and stderr), line by line, until it exits."""
        proc = subprocess.Popen([self.exe, "logs", "--follow", name], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace")
        assert proc.stdout is not None
        try:
            yield from (line.rstrip("\n") for line in proc.stdout)
        finally:
            proc.kill()
            proc.wait()

    def run_captured(self, args: Sequence[str], input_: str = "",
                     timeout: float = 900) -> tuple[int, str, str]:
        """``run ARGS`` with ``input_`` on stdin; (exit code, stdout, stderr)."""
        try:
            proc = subprocess.run([self.exe, "run", *args], input=input_, capture_output=True,
                                  text=True, check=False, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise EngineError(f"the container did not finish within {timeout:.0f} s",
                              fix="run it by hand to see where it hangs") from exc
        return proc.returncode, proc.stdout, proc.stderr

    def build(self, context: Path, dockerfile: Path, target: str, tag: str,
              secrets: Mapping[str, str], log: Callable[[str], None] | None = None) -> str:
        """Build ``target`` of ``dockerfile`` (BuildKit for Docker) as ``tag``; the image id.
        ``secrets`` (id → host file) are mounted for the build only, never in a layer."""
        exe, env = self.exe, dict(os.environ)
        if self.kind == "docker":
            if not Path(BUILDKIT_DOCKER).exists():
                raise EngineError(f"{BUILDKIT_DOCKER} is missing: BuildKit builds need "
                                  "Debian's docker client", fix="apt-get install docker.io")
            exe, env["DOCKER_BUILDKIT"] = BUILDKIT_DOCKER, "1"
        argv = [exe, "build", "--progress", "plain", "-f", str(dockerfile), "--target", target,
                "-t", tag, *(a for key, src in secrets.items()
                             for a in ("--secret", f"id={key},src={src}"))]
        proc = subprocess.Popen([*argv, str(context)], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        tail: list[str] = []
        for line in proc.stdout:
            tail = [*tail[-30:], line.rstrip()]
            if log:
                log(line.rstrip())
        if proc.wait() != 0:
            raise BuildError(f"{self.kind} build failed:\n" + "\n".join(tail),
                             fix="read the build log above; 'dlenv lint' checks the Dockerfile")
        found = self.image_id(tag)
        if found is None:
            raise EngineError(f"{self.kind} built {tag} but does not show it")
        return found


def _answers(kind: EngineKind, exe: str) -> tuple[bool, str]:
    """Whether the engine answers ``info``; what it said (JSON), or why it did not."""
    try:
        proc = subprocess.run(info_command(kind, exe), capture_output=True,
                              text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        return False, "the engine did not answer within 30 s"
    if proc.returncode != 0 or "ServerErrors" in proc.stdout:
        return False, (proc.stderr or proc.stdout).strip().splitlines()[-1:][0] \
            if (proc.stderr or proc.stdout).strip() else f"exit {proc.returncode}"
    return True, proc.stdout


_EARLY: dict[str | None, Future[CliEngine]] = {}  # asked before the command's imports


def ask_early(choice: str | None) -> None:
    """Start ``detect`` now, for the next ``detect_soon(choice)`` to take: the command line
    asks as soon as it has parsed the arguments, so the engine answers while the rest of
    dlenv is imported (the engine's ``info`` takes about as long as those imports here)."""
    _EARLY[choice] = _in_thread(choice)


def forget_early() -> None:
    """Drop what no command took (one process may run several commands: tests, scripts)."""
    _EARLY.clear()


def _in_thread(choice: str | None) -> Future[CliEngine]:
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(detect, choice)
    pool.shutdown(wait=False)
    return future


def detect_soon(choice: str | None = None) -> Callable[[], CliEngine]:
    """``detect`` in a thread, so the engine answers while the caller reads the spec and the
    lock; calling what this returns waits for the engine (and raises what ``detect`` did)."""
    future = _EARLY.pop(choice, None) or _in_thread(choice)
    return future.result


def unasked(kind: EngineKind) -> CliEngine | None:
    """``kind``'s CLI without asking its ``info`` first (None when not installed): for one
    question whose own answer shows the engine works, as an unchanged build's ``image``."""
    exe = shutil.which(kind)
    return CliEngine(kind, exe) if exe else None


def detect(choice: str | None = None) -> CliEngine:
    """The engine to use: ``choice`` (docker|podman), else the first that answers."""
    if choice is not None and choice not in ENGINES:
        raise EngineError(f"unknown engine {choice!r}", fix="use --engine docker or podman")
    kinds = [k for k in ENGINES if choice in (None, k)]
    problems = []
    for kind in kinds:
        exe = shutil.which(kind)
        if exe is None:
            problems.append(f"{kind}: not installed")
            continue
        ok, said = _answers(kind, exe)
        if ok:
            return CliEngine(kind, exe, info=said)
        problems.append(f"{kind}: {said}")
    fix = "; or ".join(_INSTALL[k] for k in kinds)
    raise EngineError("no container engine answers (" + "; ".join(problems) + ")", fix=fix)
