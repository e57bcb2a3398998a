"""What the host shows, read raw: ``gather`` runs commands and reads files into ``HostFacts``
(recorded verbatim, so tests replay real hosts); the parsers read GPUs and the driver from it.
"""

from __future__ import annotations

import hashlib
import shutil
import ssl
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dlenv.cache import host_bundle
from dlenv.engine import BUILDX_VERSION, info_command

CDI_DIRS = ("/etc/cdi", "/var/run/cdi")
TOOLKIT_BINARIES = ("nvidia-ctk", "nvidia-container-cli", "nvidia-container-runtime")
DISTRO_CAS = "/usr/share/ca-certificates"
SMI_QUERY = "index,name,driver_version,memory.total,compute_cap"


@dataclass(frozen=True, slots=True)
class Gpu:
    index: int
    name: str
    driver: str
    memory_mib: int
    capability: str  # "9.0"


@dataclass(frozen=True, slots=True, kw_only=True)
class HostFacts:
    """What the host showed, as raw as possible (recorded verbatim for tests)."""

    nvidia_smi: str | None = None  # `nvidia-smi --query-gpu=... --format=csv,noheader,nounits`
    nvidia_smi_error: str | None = None
    proc_driver: str | None = None  # /proc/driver/nvidia/version
    docker_info: str | None = None  # `docker info --format '{{json .}}'`
    docker_error: str | None = None
    podman_info: str | None = None  # `podman info --format json`
    buildx: bool = False
    toolkit: tuple[str, ...] = ()  # toolkit binaries found on PATH
    cdi_specs: tuple[str, ...] = ()
    cache_dir: str = ""
    disk_free: int | None = None
    ca_bundle: str | None = None
    extra_cas: tuple[str, ...] = ()  # sha256 of host-trusted CAs outside the public set

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HostFacts:
        data = dict(data)
        for key in ("toolkit", "cdi_specs", "extra_cas"):
            data[key] = tuple(data.get(key, ()))
        return cls(**data)


def parse_gpus(csv: str) -> list[Gpu]:
    gpus = []
    for line in csv.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 5:
            continue
        index, name, driver, memory, capability = parts
        gpus.append(Gpu(index=int(index), name=name, driver=driver,
                        memory_mib=int(float(memory)) if memory.replace(".", "").isdigit()
                        else 0, capability=capability))
    return gpus


def parse_proc_driver(text: str) -> str | None:
    """'NVRM version: NVIDIA UNIX ... Kernel Module  580.159.04  Release ...' -> '580.159.04'."""
    for line in text.splitlines():
        if line.startswith("NVRM version"):
            for word in line.split():
                if word.count(".") >= 1 and word.replace(".", "").isdigit():
                    return word
    return None


Runner = Callable[[Sequence[str]], "tuple[int, str, str]"]


def run_command(argv: Sequence[str]) -> tuple[int, str, str]:
    if shutil.which(argv[0]) is None:
        return 127, "", f"{argv[0]}: not found"
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=30,
                              check=False)
    except subprocess.TimeoutExpired:
        return 124, "", f"{argv[0]} did not answer within 30 s"
    return proc.returncode, proc.stdout, proc.stderr


def _fingerprints(pem: str) -> set[str]:
    out = set()
    for block in pem.split("-----BEGIN CERTIFICATE-----")[1:]:
        body = block.split("-----END CERTIFICATE-----")[0]
        der = ssl.PEM_cert_to_DER_cert(
            f"-----BEGIN CERTIFICATE-----{body}-----END CERTIFICATE-----\n")
        out.add(hashlib.sha256(der).hexdigest())
    return out


def extra_cas(bundle: str | None) -> tuple[str, ...]:
    """CAs the host trusts beyond the public (Mozilla) set that certifi ships."""
    if bundle is None:
        return ()
    import certifi

    def read(path: Path) -> str:
        return path.read_text(encoding="ascii", errors="replace")

    # What a fresh container trusts: Mozilla's set (certifi) and the distribution's packaged
    # CAs (what ca-certificates installs in a Debian or Ubuntu image).
    public = _fingerprints(read(Path(certifi.where())))
    for crt in Path(DISTRO_CAS).rglob("*.crt"):
        public |= _fingerprints(read(crt))
    host = _fingerprints(read(Path(bundle)))
    return tuple(sorted(host - public))


def query_gpus(run: Runner = run_command) -> tuple[int, str, str]:
    """nvidia-smi's CSV of the GPUs (exit code, output, error)."""
    return run(["nvidia-smi", f"--query-gpu={SMI_QUERY}", "--format=csv,noheader,nounits"])


def gather(cache_dir: Path, run: Runner = run_command) -> HostFacts:
    rc, smi, smi_err = query_gpus(run)
    proc = Path("/proc/driver/nvidia/version")
    drc, docker, docker_err = run(info_command("docker"))
    prc, podman, _ = run(info_command("podman"))
    brc, _, _ = run(BUILDX_VERSION)
    probe = cache_dir if cache_dir.exists() else next(
        (p for p in cache_dir.parents if p.exists()), Path("/"))
    bundle = host_bundle()
    return HostFacts(
        nvidia_smi=smi if rc == 0 else None, nvidia_smi_error=smi_err if rc != 0 else None,
        proc_driver=proc.read_text() if proc.exists() else None,
        docker_info=docker.strip() if drc == 0 and "ServerErrors" not in docker else None,
        docker_error=(docker_err or docker) if drc != 0 or "ServerErrors" in docker else None,
        podman_info=podman if prc == 0 else None, buildx=brc == 0,
        toolkit=tuple(b for b in TOOLKIT_BINARIES if shutil.which(b)),
        cdi_specs=tuple(sorted(str(p) for d in CDI_DIRS if Path(d).is_dir()
                               for p in Path(d).glob("*.[yj][as][mo]*"))),
        cache_dir=str(cache_dir), disk_free=shutil.disk_usage(probe).free,
        ca_bundle=bundle, extra_cas=extra_cas(bundle))
