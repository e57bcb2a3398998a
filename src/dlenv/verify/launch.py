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


def _observed(code: int, stdout: str, stderr: str, where: str) -> dict[str, Any]:
    """The probe's JSON report, or an EngineError saying why it did not run."""
    text = stdout.strip()
    start = text.find("{")
    if code != 0 or start < 0:
        raise EngineError(f"the probe did not run (exit {code}): "
                          f"{(stderr or stdout).strip()[-600:]}",
                          fix=f"check that {where} starts Python: python3 -V")
    data: dict[str, Any] = json.loads(text[start:])
    return data


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
