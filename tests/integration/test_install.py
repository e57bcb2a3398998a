"""Installing dlenv the way README.md says (Debian's pipx, into an environment of its own on
Debian's own externally managed Python), from this checkout, and running it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def test_pipx_installs_a_dlenv_that_runs(tmp_path):
    pipx = shutil.which("pipx")
    if pipx is None:
        pytest.fail("pipx is not installed (scripts/setup installs Debian's)")
    env = {**os.environ, "PIPX_HOME": str(tmp_path / "pipx"), "PIPX_BIN_DIR": str(tmp_path / "bin"),
           "PIPX_MAN_DIR": str(tmp_path / "man"), "PIPX_DEFAULT_PYTHON": "/usr/bin/python3"}
    env.pop("PYTHONPATH", None)
    source = tmp_path / "dlenv"  # a clean copy: what a clone holds, not this tree's builds
    subprocess.run(["git", "clone", "-q", str(ROOT), str(source)], check=True)
    done = subprocess.run([pipx, "install", str(source)], capture_output=True, text=True,
                          env=env, timeout=900, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    dlenv = tmp_path / "bin" / "dlenv"
    version = subprocess.run([str(dlenv), "--version"], capture_output=True, text=True,
                             env=env, check=True)
    assert version.stdout.startswith("dlenv ")
    shown = subprocess.run([str(dlenv), "matrix", "tensorflow", "--json"], capture_output=True,
                           text=True, env=env, check=True)
    assert json.loads(shown.stdout)["frameworks"]["tensorflow"]
    doctor = subprocess.run([str(dlenv), "doctor", "--json"], capture_output=True, text=True,
                            env=env, check=False)
    assert doctor.returncode in (0, 1) and {c["id"] for c in json.loads(doctor.stdout)["checks"]}
    python = (tmp_path / "pipx/venvs/dlenv/bin/python").resolve()
    assert str(python).startswith("/usr/bin/python3")  # Debian's own Python, in its own venv
