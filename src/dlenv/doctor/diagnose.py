"""``diagnose`` is pure: host facts plus what a lock needs become checks, each with its
evidence and fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from dlenv.checks import FAIL, OK, SKIP, WARN, Check
from dlenv.doctor.facts import Gpu, HostFacts, parse_gpus, parse_proc_driver
from dlenv.lock import LockedTarget

MIN_FREE_BYTES = 20 * 10**9  # a CUDA framework's wheels and layers, twice over


@dataclass(frozen=True, slots=True, kw_only=True)
class Needs:
    """What an environment asks of the host (from its lock's target)."""

    name: str
    cuda: str | None = None
    min_driver: str | None = None
    gpu_archs: tuple[str, ...] = ()
    framework: str | None = None


def needs_from_target(name: str, target: LockedTarget) -> Needs:
    return Needs(name=name, cuda=target.cuda, min_driver=target.min_driver,
                 gpu_archs=target.gpu_archs, framework=target.framework)


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _cap(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split("."))


def diagnose(facts: HostFacts, needs: Needs | None = None) -> list[Check]:
    checks = [*_engine(facts), _disk(facts), _tls(facts), *map(_reached, facts.reached)]
    gpus = parse_gpus(facts.nvidia_smi) if facts.nvidia_smi else []
    driver = gpus[0].driver if gpus else (
        parse_proc_driver(facts.proc_driver) if facts.proc_driver else None)
    checks += _gpu(facts, gpus, driver)
    if needs is not None:
        checks += _fit(facts, needs, gpus, driver)
    return checks


def _engine(facts: HostFacts) -> list[Check]:
    if facts.docker_info is None and facts.podman_info is None:
        if facts.docker_error and "connect" in facts.docker_error.lower():
            return [Check("engine", FAIL, "Docker is installed but its daemon does not answer",
                          facts.docker_error.strip()[:300],
                          "start it: 'systemctl start docker' (or run 'dockerd' as root)")]
        return [Check("engine", FAIL, "no container engine (Docker or Podman) was found",
                      (facts.docker_error or "").strip()[:300],
                      "install Docker ('apt install docker.io') or Podman "
                      "('apt install podman'); dlenv builds without one, but runs need one")]
    if facts.docker_info is None:
        info = json.loads(facts.podman_info or "{}")
        version = info.get("version", {}).get("Version", "?")
        rootless = info.get("host", {}).get("security", {}).get("rootless", False)
        return [Check("engine", OK, f"Podman {version}" + (" (rootless)" if rootless else ""))]
    info = json.loads(facts.docker_info)
    version = str(info.get("ServerVersion", "?"))
    rootless = any("rootless" in str(x) for x in info.get("SecurityOptions", []))
    checks = [Check("engine", OK, f"Docker {version}" + (" (rootless)" if rootless else ""),
                    f"storage driver {info.get('Driver', '?')}, cgroup "
                    f"{info.get('CgroupVersion', '?')}")]
    major = _version(version.split("+")[0].split("-")[0])
    if major is not None and major >= Version("23"):
        checks.append(Check("buildkit", OK, "BuildKit is docker build's default"))
    elif facts.buildx:
        checks.append(Check("buildkit", OK, "BuildKit through 'docker buildx build'"))
    else:
        checks.append(Check("buildkit", WARN,
                            f"Docker {version} uses the legacy builder unless told otherwise",
                            "no buildx plugin",
                            "set DOCKER_BUILDKIT=1 for 'docker build' (dlenv does this for "
                            "'--backend docker'); the native build needs neither"))
    return checks


def _disk(facts: HostFacts) -> Check:
    if facts.disk_free is None:
        return Check("disk", SKIP, f"cannot read free space at {facts.cache_dir}")
    gb = facts.disk_free / 1e9
    if facts.disk_free < MIN_FREE_BYTES:
        return Check("disk", WARN, f"{gb:.1f} GB free for the cache at {facts.cache_dir}",
                     fix="a CUDA framework needs about 10 GB of wheels and layers; free space "
                         "or point DLENV_CACHE_DIR at a larger disk")
    return Check("disk", OK, f"{gb:.0f} GB free for the cache at {facts.cache_dir}")


def _tls(facts: HostFacts) -> Check:
    if not facts.extra_cas:
        return Check("tls", OK, "the host trusts only public CAs; containers verify TLS the same")
    shown = ", ".join(f"sha256:{x[:16]}…" for x in facts.extra_cas[:3])
    return Check(
        "tls", WARN,
        f"the host trusts {len(facts.extra_cas)} CA(s) a fresh container does not "
        "(a TLS-intercepting proxy, usually)",
        f"{facts.ca_bundle}: {shown}",
        "dlenv uses this bundle for its own downloads and mounts it read-only into "
        "containers it runs; it never copies it into an image layer. Set index.ca_bundle "
        "in the spec (or SSL_CERT_FILE) when it lives elsewhere")


def _reached(seen: tuple[str, str, str, str]) -> Check:
    what, url, proxy, said = seen
    how = f"through the proxy {proxy}" if proxy else "directly (no proxy applies)"
    name = "reach " + what
    if said.startswith("HTTP ") and said[5:].isdigit() and int(said[5:]) < 500:
        return Check(name, OK, f"{url} answers {how} ({said})")
    return Check(name, WARN, f"{url} does not answer {how}: {said}", fix=(
        "set HTTPS_PROXY (and NO_PROXY for hosts inside), or name a mirror in the team "
        "configuration ('dlenv config' shows what is used); work that needs it fails until "
        "then"))


def _gpu(facts: HostFacts, gpus: list[Gpu], driver: str | None) -> list[Check]:
    if not gpus and driver is None:
        return [Check("gpu", SKIP, "no NVIDIA GPU or driver on this host",
                      (facts.nvidia_smi_error or "").strip()[:200])]
    checks = []
    if gpus:
        names = "; ".join(f"{g.index}: {g.name}, compute {g.capability}, "
                          f"{g.memory_mib / 1024:.0f} GiB" for g in gpus)
        checks.append(Check("gpu", OK, f"{len(gpus)} NVIDIA GPU(s), driver {driver}", names))
    else:
        checks.append(Check("gpu", WARN, f"driver {driver} is loaded but nvidia-smi gave nothing",
                            (facts.nvidia_smi_error or "").strip()[:200],
                            "install the driver's utilities (nvidia-smi) to list the GPUs"))
    wired = facts.docker_info is not None and "nvidia" in json.loads(facts.docker_info).get(
        "Runtimes", {})
    if facts.cdi_specs:
        checks.append(Check("toolkit", OK, "CDI specs for the GPUs are present",
                            ", ".join(facts.cdi_specs)))
    elif wired:
        checks.append(Check("toolkit", OK, "Docker has the nvidia runtime"))
    elif facts.toolkit:
        checks.append(Check("toolkit", WARN, "the NVIDIA container toolkit is installed but not "
                            "wired into the engine", ", ".join(facts.toolkit),
                            "run 'nvidia-ctk runtime configure --runtime=docker' and restart "
                            "Docker, or 'nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml' "
                            "for Podman"))
    else:
        checks.append(Check("toolkit", FAIL, "containers cannot see the GPUs: the NVIDIA "
                            "container toolkit is missing", "no nvidia-ctk, no CDI specs",
                            "install nvidia-container-toolkit, then 'nvidia-ctk runtime "
                            "configure --runtime=docker' (or generate CDI specs for Podman)"))
    return checks


def _fit(facts: HostFacts, needs: Needs, gpus: list[Gpu], driver: str | None) -> list[Check]:
    if not needs.cuda:
        return [Check("fit", OK, f"{needs.name} is a CPU environment; any host runs it")]
    out = []
    if driver is None:
        return [Check("fit", FAIL, f"{needs.name} needs CUDA {needs.cuda} and this host has no "
                      "NVIDIA driver", fix="run it on a GPU node, or build the cpu variant")]
    have, floor = _version(driver), _version(needs.min_driver or "0")
    if have is not None and floor is not None and have < floor:
        out.append(Check("driver", FAIL, f"driver {driver} is older than CUDA {needs.cuda} "
                         f"needs ({needs.min_driver})", f"{needs.name}: cuda {needs.cuda}",
                         f"upgrade the driver to {needs.min_driver} or newer, or lock a framework "
                         "version built for an older CUDA"))
    else:
        out.append(Check("driver", OK, f"driver {driver} ≥ {needs.min_driver} for CUDA "
                         f"{needs.cuda}"))
    if needs.gpu_archs:
        low, high = min(needs.gpu_archs, key=_cap), max(needs.gpu_archs, key=_cap)
        for g in gpus:
            if g.capability in needs.gpu_archs:
                out.append(Check(f"gpu{g.index}", OK, f"{g.name} (compute {g.capability}) is "
                                 f"supported by this build ({low}–{high})"))
            elif _cap(g.capability) < _cap(low):
                out.append(Check(f"gpu{g.index}", FAIL, f"{g.name} (compute {g.capability}) is "
                                 f"older than this build supports ({low}–{high})",
                                 fix="use a framework version built for an older CUDA, or "
                                     "another GPU"))
            else:
                out.append(Check(f"gpu{g.index}", WARN, f"{g.name} (compute {g.capability}) is "
                                 f"newer than this build's binaries ({low}–{high})",
                                 "only PTX just-in-time compilation can run it: a slow first "
                                 "start, or 'no kernel image' errors",
                                 "use a framework version built for a newer CUDA"))
    return out
