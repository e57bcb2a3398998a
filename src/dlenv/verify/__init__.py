"""``dlenv verify``: run the probe in an image (or on the host) and judge what it saw.

``probe.py`` observes; ``evaluate`` (pure) turns observations into checks with the likely
fix; the runners only move JSON in and out of a container or a host Python.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from dlenv.checks import FAIL, OK, WARN, Check, Status
from dlenv.errors import EngineError
from dlenv.lock import Lock

PROBE = Path(__file__).with_name("probe.py")
GPU_TOLERANCE = 1e-2  # TF32 and reduced-precision accumulation on GPUs
CPU_TOLERANCE = 1e-4


@dataclass(frozen=True, slots=True)
class Request:
    framework: str | None
    packages: tuple[tuple[str, str], ...]  # (canonical name, version)
    dirs: tuple[str, ...] = ()
    imports: tuple[str, ...] = ()  # distributions whose modules must import (the spec's own)

    def to_json(self) -> str:
        return json.dumps({"framework": self.framework, "packages": dict(self.packages),
                           "dirs": list(self.dirs), "imports": list(self.imports)})


def request_for(lock: Lock, profile: str | None, dirs: Sequence[str] = (),
                imports: Sequence[str] = ()) -> Request:
    framework = lock.target.framework
    locked = {w.name for w in lock.wheels_for(profile)}
    return Request(framework=None if framework in (None, "none") else str(framework),
                   packages=tuple((str(canonicalize_name(w.name)), w.version)
                                  for w in lock.wheels_for(profile)),
                   dirs=tuple(dirs),
                   imports=tuple(n for n in dict.fromkeys(
                       str(canonicalize_name(i)) for i in imports) if n in locked))


def _import_fix(error: str) -> str:
    if "libcuda" in error or "libnvidia" in error:
        return ("the driver's libraries are not visible in the container: run with GPUs "
                "(dlenv does this when the NVIDIA container toolkit is set up; see "
                "'dlenv doctor')")
    if "undefined symbol" in error or "version `" in error:
        return "a library was built for another CUDA or glibc: re-lock and rebuild"
    if ".so" in error:
        return "a system library is missing from the image: add its Debian package to 'apt'"
    return "reinstall it: re-lock and rebuild the image"


def evaluate(seen: dict[str, Any], *, expect_gpu: bool, in_image: bool) -> list[Check]:
    checks: list[Check] = []
    if in_image:
        uid = seen.get("uid")
        checks.append(Check("user", FAIL if uid == 0 else OK,
                            "runs as root" if uid == 0 else f"runs as uid {uid}",
                            fix="set a non-root USER (dlenv images have one)" if uid == 0 else ""))
    pk = seen.get("packages", {})
    if pk.get("missing") or pk.get("mismatched"):
        parts = [f"missing: {', '.join(pk['missing'])}"] if pk.get("missing") else []
        parts += [f"{n} is {have}, the lock has {want}" for n, want, have in
                  pk.get("mismatched", [])]
        checks.append(Check("packages", FAIL, "installed packages differ from the lock",
                            "; ".join(parts), "rebuild the image from the lock"))
    else:
        checks.append(Check("packages", OK, f"every locked package is installed at its version "
                            f"({pk.get('count', 0)} distributions)"))
    if "imports" in seen:
        im = seen["imports"]
        failed = im.get("failed", {})
        checks.append(Check(
            "imports", FAIL if failed else OK,
            f"{len(failed)} of the spec's packages do not import" if failed else
            f"every package the spec names imports ({len(im.get('imported', []))} modules)",
            "; ".join(f"{k}: {v}" for k, v in list(failed.items())[:5]),
            _import_fix(" ".join(failed.values())) if failed else ""))
    for d, ok in seen.get("dirs", {}).items():
        checks.append(Check(f"dir {d}", OK if ok is True else FAIL,
                            f"{d} is writable" if ok is True else f"{d} is not writable",
                            "" if ok is True else str(ok),
                            "" if ok is True else "mount it writable for the image's user"))
    fw = seen.get("framework")
    if fw is None:
        return checks
    name = fw.get("name", "framework")
    if "import_error" in fw:
        checks.append(Check("import", FAIL, f"import {name} failed", fw["import_error"],
                            _import_fix(fw["import_error"])))
        return checks
    checks.append(Check("import", OK, f"{name} {fw.get('version', '?')} imports in "
                        f"{fw.get('import_seconds', 0):.2f} s"))
    if "error" in fw:
        checks.append(Check("probe", FAIL, f"the {name} probe stopped", fw["error"]))
    gpus = [d for d in fw.get("devices", []) if d.get("kind") == "gpu"]
    if gpus:
        checks.append(Check("devices", OK, f"{len(gpus)} GPU(s) visible", "; ".join(
            f"{d['id']}: {d.get('name')} (compute {d.get('capability')})" for d in gpus)))
    elif expect_gpu:
        cpu_build = name == "torch" and not fw.get("cuda_build")
        checks.append(Check("devices", FAIL, f"{name} sees no GPU",
                            f"{name} built for CUDA {fw.get('cuda_build')}",
                            "this is a CPU build of torch: lock the CUDA variant" if cpu_build
                            else "check the driver and the container toolkit with "
                                 "'dlenv doctor', and that the container was given the GPUs"))
    else:
        checks.append(Check("devices", OK, "CPU only (no GPU expected)"))
    for mm in fw.get("matmul", []):
        result = mm.get("result", {})
        gpu = any(d["id"] == mm["device"] for d in gpus)
        limit = GPU_TOLERANCE if gpu else CPU_TOLERANCE
        if not result.get("ok"):
            checks.append(Check(f"matmul {mm['device']}", FAIL, "matrix multiply failed",
                                result.get("error", ""), "see 'dlenv doctor' for the device"))
        elif result["max_rel_error"] > limit:
            checks.append(Check(f"matmul {mm['device']}", FAIL, "matrix multiply gave wrong "
                                f"results (relative error {result['max_rel_error']:.2e})",
                                fix="a broken driver/library pairing; update the driver"))
        else:
            checks.append(Check(f"matmul {mm['device']}", OK, "512×512 matmul correct "
                                f"(relative error {result['max_rel_error']:.1e}, "
                                f"{result['seconds']:.3f} s)"))
    step = fw.get("train_step")
    if step is not None:
        if not step.get("ok"):
            checks.append(Check("train step", FAIL, "one training step failed", step["error"]))
        else:
            down = step["loss_after"] < step["loss_before"]
            checks.append(Check("train step", OK if down else WARN,
                                f"one training step on {step['device']}: loss "
                                f"{step['loss_before']:.4f} → {step['loss_after']:.4f}",
                                fix="" if down else "the loss did not go down"))
    optional: tuple[tuple[str, str, Status], ...] = (
        ("compile", "XLA / compiled function", FAIL), ("mixed_precision", "mixed precision", WARN))
    for key, label, status in optional:
        part = fw.get(key)
        if part is None:
            continue
        if part.get("ok"):
            detail = part.get("dtype") or f"{part.get('seconds', 0):.2f} s"
            checks.append(Check(key, OK, f"{label} works ({detail})"))
        else:
            checks.append(Check(key, status, f"{label} failed", part.get("error", "")))
    return checks


def run_probe(argv: Sequence[str], request: Request) -> dict[str, Any]:
    proc = subprocess.run(list(argv), input=request.to_json(), capture_output=True, text=True,
                          check=False, timeout=900)
    text = proc.stdout.strip()
    start = text.find("{")
    if proc.returncode != 0 or start < 0:
        raise EngineError(f"the probe did not run (exit {proc.returncode}): "
                          f"{(proc.stderr or proc.stdout).strip()[-600:]}",
                          fix="check that the image starts: 'docker run --rm IMAGE python3 -V'")
    data: dict[str, Any] = json.loads(text[start:])
    return data


def probe_host(request: Request) -> dict[str, Any]:
    return run_probe([sys.executable, str(PROBE)], request)


def probe_image(image: str, request: Request, *, engine: str = "docker", gpus: bool = False,
                workdir: str = "/workspace") -> dict[str, Any]:
    """Run the probe in a fresh container of ``image``, the way 'dlenv run' would: no
    capabilities, no new privileges, a scratch directory mounted at the workdir."""
    with tempfile.TemporaryDirectory(prefix="dlenv-verify-") as scratch:
        Path(scratch).chmod(0o777)
        argv = [engine, "run", "--rm", "-i", "--cap-drop", "ALL",
                "--security-opt", "no-new-privileges",
                "-v", f"{PROBE}:/opt/dlenv-probe.py:ro", "-v", f"{scratch}:{workdir}",
                "-e", "TF_CPP_MIN_LOG_LEVEL=3"]
        if gpus:
            argv += ["--gpus", "all"]
        return run_probe([*argv, image, "python3", "/opt/dlenv-probe.py"], request)
