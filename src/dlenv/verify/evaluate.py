"""What the probe is asked (``Request``, from the lock) and how its report is judged:
``evaluate`` is pure and turns observations into checks with the likely fix.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from packaging.utils import canonicalize_name

from dlenv.checks import FAIL, OK, SKIP, WARN, Check, Status
from dlenv.lock import Lock
from dlenv.serving import PATH as SERVER
from dlenv.spec.serve import MODEL_BASE_PATH as MODELS

GPU_TOLERANCE = 1e-2  # TF32 and reduced-precision accumulation on GPUs
CPU_TOLERANCE = 1e-4


@dataclass(frozen=True, slots=True)
class Request:
    framework: str | None
    packages: tuple[tuple[str, str], ...]  # (canonical name, version)
    dirs: tuple[str, ...] = ()
    imports: tuple[str, ...] = ()  # distributions whose modules must import (the spec's own)
    serve: str | None = None  # the model the image's server serves: one predict through it

    def to_json(self) -> str:
        return json.dumps({"framework": self.framework, "packages": dict(self.packages),
                           "dirs": list(self.dirs), "imports": list(self.imports),
                           "serve": self.serve and {"name": self.serve, "base": MODELS,
                                                    "server": SERVER}})


def request_for(lock: Lock, profile: str | None, dirs: Sequence[str] = (),
                imports: Sequence[str] = (), serve: str | None = None) -> Request:
    framework = lock.target.framework
    locked = {w.name for w in lock.wheels_for(profile)}
    return Request(framework=None if framework in (None, "none") else str(framework),
                   packages=tuple((str(canonicalize_name(w.name)), w.version)
                                  for w in lock.wheels_for(profile)),
                   dirs=tuple(dirs),
                   imports=tuple(n for n in dict.fromkeys(
                       str(canonicalize_name(i)) for i in imports) if n in locked),
                   serve=serve)


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


def served(seen: dict[str, Any]) -> Check:
    """What one predict through the image's model server showed."""
    if not seen.get("baked"):
        return Check("serve", SKIP, "the image holds no model (it is mounted at run time), "
                     "so no predict was tried", fix="'dlenv serve' checks a mounted model")
    where = f"version {', '.join(seen.get('versions', [])) or '?'}"
    if "error" in seen:
        return Check("serve", FAIL, f"the model server did not answer ({seen['error']})",
                     seen.get("log", ""), "run 'dlenv serve' to see the server's log")
    predict = seen.get("predict", {})
    if predict.get("status") != 200:
        return Check("serve", FAIL, f"a predict on {where} answered {predict.get('status')}",
                     predict.get("error", ""), "check the model's serving_default signature")
    shapes = ", ".join(f"{k} {'×'.join(map(str, v)) or 'scalar'}"
                       for k, v in predict.get("outputs", {}).items())
    return Check("serve", OK, f"the model server loaded {where} in "
                 f"{seen.get('load_seconds', 0):.1f} s; a predict of zeros answered in "
                 f"{predict.get('seconds', 0):.2f} s ({shapes})")


def evaluate(seen: dict[str, Any], *, expect_gpu: bool, in_image: bool) -> list[Check]:
    checks = _environment(seen, expect_gpu=expect_gpu, in_image=in_image)
    return [*checks, served(seen["serve"])] if "serve" in seen else checks


def _environment(seen: dict[str, Any], *, expect_gpu: bool, in_image: bool) -> list[Check]:
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
    if "died_in" in fw:  # that step's own check says how much it matters
        checks.append(Check("probe", WARN, f"the process died in the {fw['died_in']} step; "
                            "the steps after it did not run", fix="run it by hand in the "
                            "image to see the crash (dlenv run)"))
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
        ("compile", "XLA / compiled function", FAIL), ("mixed_precision", "mixed precision", WARN),
        ("tflite", "TFLite conversion of a small Keras model", WARN))
    for key, label, status in optional:
        part = fw.get(key)
        if part is None:
            continue
        if part.get("ok") and part.get("max_abs_error", 0) > CPU_TOLERANCE:
            checks.append(Check(key, status, f"{label} gives other results than Keras "
                                f"(error {part['max_abs_error']:.1e})"))
        elif part.get("ok"):
            detail = part.get("dtype") or f"{part.get('seconds', 0):.2f} s"
            checks.append(Check(key, OK, f"{label} works ({detail})"))
        else:
            checks.append(Check(key, status, f"{label} failed", part.get("error", "")))
    return checks
