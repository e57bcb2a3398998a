from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
# Debian's docker CLI builds with BuildKit when DOCKER_BUILDKIT=1 (a newer CLI on PATH may
# want the buildx plugin instead).
DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"


def pytest_report_header(config) -> str:
    """Free disk where the tests write, in the header: when a run fails everywhere at once, a
    full disk is the first thing to rule out."""
    import shutil
    import tempfile

    where = tempfile.gettempdir()
    return f"free disk at {where}: {shutil.disk_usage(where).free / 2**30:.1f} GiB"


@pytest.fixture
def write_spec(tmp_path: Path):
    """Write a dlenv.toml into a fresh directory and return that directory."""

    def write(text: str, name: str = "dlenv.toml") -> Path:
        (tmp_path / name).write_text(text)
        return tmp_path

    return write


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_registry(root: Path):
    """Debian's docker-registry on 127.0.0.1, storing under ``root`` and logging to
    ``root/log``; a generator that yields ``host:port`` and stops it by PID."""
    import shutil
    import subprocess
    import time
    import urllib.request

    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.fail("docker-registry is not installed (scripts/setup installs it)")
    port = free_port()
    config = root / "config.yml"
    config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root}/data\n"
                      f"http:\n  addr: 127.0.0.1:{port}\n")
    log = (root / "log").open("w")
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log)
    try:
        for _ in range(50):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory):
    """One download cache for the tests that build TensorFlow: its wheels come once."""
    return tmp_path_factory.mktemp("shared-cache")


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    """The tests' registry (the origin, in tests that have two)."""
    yield from serve_registry(tmp_path_factory.mktemp("registry"))


@pytest.fixture(scope="session")
def second_registry(tmp_path_factory):
    """Another registry: a team's mirror or second site. (host:port, its directory)."""
    root = tmp_path_factory.mktemp("registry2")
    for host in serve_registry(root):
        yield host, root


def docker_ready() -> None:
    import subprocess

    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        pytest.fail("no Docker engine answers (scripts/setup starts dockerd)")


def run_dlenv(*args: str, env: dict[str, str] | None = None, **kw):
    """Run the dlenv command as a user would, in a child process."""
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "dlenv", *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, check=False, **kw)


def locked_project(tmp_path_factory, files: dict[str, str]) -> tuple[Path, Path]:
    """A project directory with ``files`` (dlenv.toml among them), locked with its own cache."""
    root = tmp_path_factory.mktemp("project")
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    cache = tmp_path_factory.mktemp("cache")
    r = run_dlenv("lock", str(root), "--cache-dir", str(cache))
    assert r.returncode == 0, r.stderr
    return root, cache


# What stands in for Debian's slim image, which no registry here serves: dlenv's own Debian
# base with apt, its keyring and the Essential packages such an image has, pushed to the test
# registry under the name the Dockerfile expects.
STANDIN = """name = "debian-standin"
base = "debian:bookworm"
apt = ["apt", "debian-archive-keyring", "diffutils", "findutils", "grep", "sed", "gzip", "tar",
       "util-linux", "perl-base", "debconf", "mawk", "hostname", "login", "passwd",
       "debianutils", "sysvinit-utils", "init-system-helpers", "ncurses-base", "ncurses-bin",
       "bsdutils"]
"""
# dlenv unpacks .debs without their maintainer scripts; mawk's makes /usr/bin/awk, which
# openssh-server's needs.
STANDIN_DOCKERFILE = """FROM scratch
ADD base.tar.gz /
RUN ["/usr/bin/ln", "-s", "mawk", "/usr/bin/awk"]
"""


def standin_base(registry: str, tmp_path: Path) -> str:
    """Build the stand-in for debian:bookworm-slim and push it to ``registry``; its name."""
    import os
    import shutil
    import subprocess

    standin = tmp_path / "standin"
    standin.mkdir()
    (standin / "dlenv.toml").write_text(STANDIN)
    r = run_dlenv("dockerfile", str(standin), "--mode", "exact", "--json", timeout=900)
    assert r.returncode == 0, r.stderr
    shutil.copy(next((standin / ".dlenv").glob("base-*.tar.gz")), standin / "base.tar.gz")
    (standin / "Dockerfile").write_text(STANDIN_DOCKERFILE)
    (standin / ".dockerignore").unlink()
    ref = f"{registry}/debian:bookworm-slim"
    subprocess.run([DOCKER, "build", "-q", "-t", ref, str(standin)], capture_output=True,
                   check=True, env={**os.environ, "DOCKER_BUILDKIT": "1"}, timeout=300)
    subprocess.run([DOCKER, "push", ref], capture_output=True, check=True, timeout=300)
    return ref
