"""Runs the probe (``probe.py``, standard library only) in a container of the image, through
the engine, or in this host's Python; only JSON goes in and out.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from dlenv.engine import CONFINED, Engine, gpu_args, mount_option
from dlenv.errors import EngineError
from dlenv.verify.evaluate import Request

PROBE = Path(__file__).with_name("probe.py")
SNAPSHOT = "@dlenv-probe-step "  # the probe's mark before each step (probe.py says why)


def _tail(line: str, limit: int = 200) -> str:
    """The end of a line a crash printed (its reason is last; MLIR's call sites come first)."""
    return line if len(line) <= limit else "…" + line[-limit:]


def _died(snapshot: str, code: int, said: list[str]) -> dict[str, Any]:
    """The report of a probe that died in a step: what it had seen, with the running step
    marked failed and what the process said last as the reason."""
    data: dict[str, Any] = json.loads(snapshot)
    why = f"the process died in this step (exit {code}" + (
        f", signal {-code if code < 0 else code - 128}" if code > 128 or code < 0 else "") \
        + (f"): {' / '.join(_tail(x) for x in said[-2:])}" if said else ")")

    def mark(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, dict) and value.get("running"):
                    node[key] = {"ok": False, "error": why}
                mark(node[key])
        elif isinstance(node, list):
            for item in node:
                mark(item)

    step = data.pop("running", None)
    mark(data)
    framework = data.get("framework")
    if isinstance(framework, dict):
        framework["died_in"] = step or "its last step"
    return data


def _observed(code: int, stdout: str, stderr: str, where: str) -> dict[str, Any]:
    """The probe's JSON report; when it died in a step, what it saw until then; else an
    EngineError saying why it did not run."""
    text = stdout.strip()
    start = text.find("{")
    if code == 0 and start >= 0:
        data: dict[str, Any] = json.loads(text[start:])
        return data
    lines = stderr.splitlines()
    snapshots = [i for i, line in enumerate(lines) if line.startswith(SNAPSHOT)]
    if snapshots:
        last = snapshots[-1]
        said = [x.strip() for x in lines[last + 1:] if x.strip()]
        return _died(lines[last][len(SNAPSHOT):], code, said)
    shown = "\n".join(x for x in stderr.splitlines() if not x.startswith(SNAPSHOT))
    raise EngineError(f"the probe did not run (exit {code}): "
                      f"{(shown or stdout).strip()[-600:]}",
                      fix=f"check that {where} starts Python: python3 -V")


def probe_host(request: Request) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, str(PROBE)], input=request.to_json(),
                          capture_output=True, text=True, check=False, timeout=900)
    return _observed(proc.returncode, proc.stdout, proc.stderr, sys.executable)


def probe_image(image: str, request: Request, *, engine: Engine, gpus: bool = False,
                workdir: str = "/workspace") -> dict[str, Any]:
    """Run the probe in a fresh container of ``image``, confined the way 'dlenv run' does
    it, with a scratch directory mounted at the workdir."""
    with tempfile.TemporaryDirectory(prefix="dlenv-verify-") as scratch:
        Path(scratch).chmod(0o777)
        args = ["--rm", "--interactive", *CONFINED,
                "--mount", mount_option(("type", "bind"), ("source", str(PROBE)),
                                        ("target", "/opt/dlenv-probe.py"), ("readonly", None)),
                "--mount", mount_option(("type", "bind"), ("source", scratch),
                                        ("target", workdir)),
                "--env", "TF_CPP_MIN_LOG_LEVEL=3", *(gpu_args(engine.kind) if gpus else []),
                image, "python3", "/opt/dlenv-probe.py"]
        return _observed(*engine.run_captured(args, request.to_json()), f"the image {image}")
