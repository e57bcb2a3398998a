"""What the host shows, read raw: ``gather`` runs commands and reads files into ``HostFacts``
(recorded verbatim, so tests replay real hosts); the parsers read GPUs and the driver from it.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import ssl
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from dlenv.cache import host_bundle
from dlenv.engine import BUILDX_VERSION, info_command
from dlenv.errors import LockError

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
    # (what, URL, proxy or "", what happened: "HTTP 200" or the error), probed by `doctor`
    reached: tuple[tuple[str, str, str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HostFacts:
        data = dict(data)
        for key in ("toolkit", "cdi_specs", "extra_cas"):
            data[key] = tuple(data.get(key, ()))
        data["reached"] = tuple(tuple(r) for r in data.get("reached", ()))
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


def gather_gpu(docker_info: str | None, run: Runner = run_command) -> HostFacts:
    """Only what decides whether a CUDA container gets the GPUs: the GPUs and driver, the
    container toolkit and CDI specs, and Docker's runtimes (``docker_info``: what the engine
    said when it was detected). ``dlenv run`` asks this before each CUDA container."""
    rc, smi, smi_err = query_gpus(run)
    proc = Path("/proc/driver/nvidia/version")
    return HostFacts(
        nvidia_smi=smi if rc == 0 else None, nvidia_smi_error=smi_err if rc != 0 else None,
        proc_driver=proc.read_text() if proc.exists() else None, docker_info=docker_info,
        toolkit=tuple(b for b in TOOLKIT_BINARIES if shutil.which(b)),
        cdi_specs=tuple(sorted(str(p) for d in CDI_DIRS if Path(d).is_dir()
                               for p in Path(d).glob("*.[yj][as][mo]*"))))


def gather(cache_dir: Path, run: Runner = run_command) -> HostFacts:
    """The host, without the network (``reach`` asks the network, for ``doctor``)."""
    drc, docker, docker_err = run(info_command("docker"))
    served = drc == 0 and "ServerErrors" not in docker
    prc, podman, _ = run(info_command("podman"))
    brc, _, _ = run(BUILDX_VERSION)
    probe = cache_dir if cache_dir.exists() else next(
        (p for p in cache_dir.parents if p.exists()), Path("/"))
    bundle = host_bundle()
    return replace(
        gather_gpu(docker.strip() if served else None, run),
        docker_error=None if served else (docker_err or docker),
        podman_info=podman if prc == 0 else None, buildx=brc == 0,
        cache_dir=str(cache_dir), disk_free=shutil.disk_usage(probe).free,
        ca_bundle=bundle, extra_cas=extra_cas(bundle))


PUBLIC_INDEX = "https://pypi.org/simple/"


def endpoints(environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """What dlenv downloads from, as configured (team file, environment): the Python index,
    the Debian mirror and its security archive, the registry images are pushed to."""
    from dlenv.oci.registry import default_registry
    from dlenv.resolve.debian import find_mirror, find_security_mirror

    found = [("python index", (environ.get("UV_INDEX_URL") or environ.get("PIP_INDEX_URL")
                               or PUBLIC_INDEX).rstrip("/") + "/")]
    with contextlib.suppress(LockError):  # no mirror: a lock that needs one says so
        found += [("debian mirror", find_mirror(environ) + "/"),
                  ("debian security", find_security_mirror(environ) + "/")]
    registry = (environ.get("DLENV_PUSH_TO") or default_registry()).split("/", 1)[0]
    registry = "registry-1.docker.io" if registry == "docker.io" else registry
    local = registry.startswith(("127.", "localhost"))
    found.append(("registry", f"{'http' if local else 'https'}://{registry}/v2/"))
    return found


def reach(environ: Mapping[str, str], ca_bundle: str | None
          ) -> tuple[tuple[str, str, str, str], ...]:
    """Ask each endpoint once, through the proxy the environment names (HTTPS_PROXY,
    NO_PROXY), with the CA bundle dlenv uses; a few seconds each at most."""
    import urllib.parse
    import urllib.request

    import httpx

    from dlenv.cache import describe_transport_error, tls_context

    proxies = {k.lower().removesuffix("_proxy"): v for k, v in environ.items()
               if k.lower() in ("http_proxy", "https_proxy", "no_proxy") and v}
    verify = tls_context(ca_bundle)
    out = []
    for what, url in endpoints(environ):
        parsed = urllib.parse.urlsplit(url)
        bypass = urllib.request.proxy_bypass_environment(  # type: ignore[attr-defined]
            parsed.hostname or "", proxies)  # (NO_PROXY, as curl and pip read it)
        proxy = "" if bypass else proxies.get(parsed.scheme, "")
        try:
            with httpx.Client(verify=verify, timeout=httpx.Timeout(5.0), trust_env=False,
                              proxy=proxy or None) as client:
                said = f"HTTP {client.head(url).status_code}"
        except httpx.TransportError as exc:
            said = describe_transport_error(exc)
        if proxy:  # never a password from the proxy URL in a report
            shown = urllib.parse.urlsplit(proxy)
            proxy = f"{shown.scheme}://{shown.hostname}" + \
                (f":{shown.port}" if shown.port else "")
        out.append((what, url, proxy, said))
    return tuple(out)
