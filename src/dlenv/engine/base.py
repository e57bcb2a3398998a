"""What every engine offers dlenv (the ``Engine`` protocol), and the argument forms every
container dlenv starts shares: typed ``--mount`` records, the confinement flags, GPU requests.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal, Protocol

from dlenv.errors import UsageError

EngineKind = Literal["docker", "podman"]
ENGINES: tuple[EngineKind, ...] = ("docker", "podman")
# Every container dlenv starts: no capabilities, no privilege gained through setuid binaries.
CAP_DROP = "ALL"  # what every container of dlenv's loses, in every form dlenv writes
NO_NEW_PRIVILEGES = "no-new-privileges"
CONFINED = ("--cap-drop", CAP_DROP, "--security-opt", NO_NEW_PRIVILEGES)
LABEL = "dev.dlenv"  # prefix of every label on what dlenv starts
PIDS_LIMIT = 16384  # processes and threads a container of dlenv's may have by default


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


def info_command(kind: EngineKind, exe: str | None = None) -> list[str]:
    """``info`` as JSON: whether the engine answers and how it is set up (doctor records it)."""
    return [exe or kind, "info", "--format", "{{json .}}" if kind == "docker" else "json"]


BUILDX_VERSION = ["docker", "buildx", "version"]  # BuildKit's client plugin, for doctor


def gpu_args(kind: EngineKind) -> list[str]:
    """Every GPU for a container: Docker asks the NVIDIA runtime hook; Podman takes the GPUs as
    CDI devices (the NVIDIA toolkit's generated spec)."""
    return ["--gpus", "all"] if kind == "docker" else ["--device", "nvidia.com/gpu=all"]


def volume_options(device: str) -> tuple[tuple[str, str], ...]:
    """The local driver's options of a named volume whose data sits in ``device``, a host
    directory dlenv made for the run's user: it survives the container, ``volume ls`` shows
    it, and its owner is right from the start (an engine-made volume would belong to root)."""
    return (("type", "none"), ("o", "bind"), ("device", device))


def makes_volumes(kind: EngineKind) -> bool:
    """Whether the engine makes a missing named volume from ``--mount``'s own options at the
    start (Docker), so that a run asks nothing about its volumes first; Podman's
    ``--mount`` takes no volume options, so dlenv makes Podman's volumes itself."""
    return kind == "docker"


def volume_mount(name: str, target: str, device: str, labels: Mapping[str, str]) -> str:
    """Docker's ``--mount`` of a named volume (made, when missing, as ``volume_options``
    says, with ``labels``). nocopy: the engine would otherwise copy the image's directory
    (and its owner, the image's uid) into a new volume, over the owner dlenv chose."""
    return mount_option(("type", "volume"), ("source", name), ("target", target),
                        ("volume-nocopy", None), ("volume-driver", "local"),
                        *(("volume-opt", f"{k}={v}") for k, v in volume_options(device)),
                        *(("volume-label", f"{k}={v}") for k, v in labels.items()))


@dataclass(frozen=True, slots=True)
class EngineImage:
    id: str  # sha256:… (the config digest)
    tags: tuple[str, ...]  # none: dangling
    size: int  # bytes, as the engine counts them
    labels: Mapping[str, str]
    env: tuple[str, ...] = ()  # NAME=VALUE, the image's config
    diff_ids: tuple[str, ...] = ()  # its layers' digests, uncompressed, bottom first


class Engine(Protocol):
    kind: EngineKind
    exe: str

    def image_id(self, ref: str) -> str | None: ...
    def image(self, ref: str) -> EngineImage | None: ...
    def images(self, label: str) -> list[EngineImage]: ...
    def remove_image(self, ref: str) -> bool: ...
    def load(self, write: Callable[[IO[bytes]], None]) -> None: ...
    def save(self, ref: str, read: Callable[[IO[bytes]], None]) -> None: ...
    def omits_held_layers(self) -> bool: ...
    def held_layers(self, label: str) -> frozenset[str]: ...
    def existing_volumes(self, names: Sequence[str]) -> set[str]: ...
    def create_volume(self, name: str, device: str, labels: Mapping[str, str]) -> None: ...
    def remove_volume(self, name: str) -> None: ...
    def run(self, args: Sequence[str], name: str) -> int: ...
    def start(self, args: Sequence[str]) -> str: ...
    def containers(self, label: str) -> list[Container]: ...
    def inspect(self, name: str) -> dict[str, object] | None: ...
    def logs(self, name: str, tail: int = 40) -> str: ...
    def remove(self, name: str) -> None: ...
    def create_network(self, name: str, labels: Mapping[str, str]) -> None: ...
    def remove_network(self, name: str) -> bool: ...
    def networks(self, label: str) -> list[str]: ...
    def wait(self, name: str) -> int: ...
    def follow(self, name: str) -> Iterator[str]: ...
    def run_captured(self, args: Sequence[str], input_: str = "",
                     timeout: float = 900) -> tuple[int, str, str]: ...
    def build(self, context: Path, dockerfile: Path, target: str, tag: str,
              secrets: Mapping[str, str], log: Callable[[str], None] | None = None) -> str: ...
