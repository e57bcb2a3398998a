"""Python packages as layers, end to end: real PyPI wheels (numpy with its C extension and
bundled OpenBLAS, plus small pure ones) locked, built natively, and run in Docker."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from dlenv.lock import read_lock
from tests.conftest import docker_ready, locked_project, run_dlenv

pytestmark = pytest.mark.integration
SPEC = """name = "pylayers"
python = "3.11"
packages = ["numpy==1.26.4", "six==1.16.0", "idna==3.7"]

[profiles.train]
command = ["python3", "train.py"]
"""
TRAIN = "import numpy as np\nprint('sum', int(np.arange(10).sum()))\n"


dlenv = run_dlenv


def build(root: Path, cache: Path, *extra: str) -> dict:
    r = dlenv("build", str(root), "--cache-dir", str(cache), "--json", *extra)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return locked_project(tmp_path_factory, {
        "dlenv.toml": SPEC, "train.py": TRAIN, "data/cache.bin": "x" * 1000,
        ".dlenvignore": "data/\n"})


@pytest.fixture(scope="module")
def built(project):
    root, cache = project
    return build(root, cache, "--profile", "train", "--load")


def run(tag: str, *cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/usr/bin/docker", "run", "--rm", tag, *cmd], capture_output=True,
                          text=True, check=False, timeout=300)


def test_layers_follow_the_plan(project, built):
    root, _ = project
    names = [x["name"] for x in built["layers"]]
    assert names[0].startswith("debian") and names[-1] == "project files"
    assert names[-2] == "dlenv launcher"  # a train image's multi-worker launcher
    assert names[1] == "numpy 1.26.4"  # the largest wheel has a layer of its own, lowest
    wheels = {f"{w.name} {w.version}": w.size for w in read_lock(root / "dlenv.lock").wheels}
    sizes = [wheels[n] for n in names[1:-2] if not n.startswith("python packages")]
    assert sizes == sorted(sizes, reverse=True)  # big wheels: largest lowest, then buckets
    tail = [n for n in names[1:-2] if n.startswith("python packages")]
    assert tail and names[-2 - len(tail):-2] == tail
    assert built["notes"] == []  # bytecode was compiled


def test_image_runs_the_project_and_pip_sees_every_locked_package(project, built):
    docker_ready()
    root, _ = project
    out = run("pylayers:train")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "sum 45"
    listed = run("pylayers:train", "python3", "-m", "pip", "list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    have = {p["name"].lower(): p["version"] for p in json.loads(listed.stdout)}
    lock = read_lock(root / "dlenv.lock")
    assert {w.name: w.version for w in lock.wheels_for("train")}.items() <= have.items()
    check = run("pylayers:train", "sh", "-c",
                "id -u; ls -n /workspace; pip check; pip show numpy")
    assert check.returncode == 0, check.stdout + check.stderr
    lines = check.stdout.splitlines()
    assert lines[0] == "1000"
    assert any(line.endswith("train.py") and " 1000 1000 " in line for line in lines)
    assert not any("data" in line for line in lines[1:3])  # ignored by .dlenvignore
    assert "Location: /usr/local/lib/python3.11/dist-packages" in check.stdout


def test_imports_use_the_image_bytecode_and_write_nothing(built):
    docker_ready()
    code = ("import sys, numpy, importlib.util; "
            "print(importlib.util.cache_from_source(numpy.__file__)); "
            "print(numpy.__cached__)")
    out = run("pylayers:train", "python3", "-c", code)
    assert out.returncode == 0, out.stderr
    expected, cached = out.stdout.split()
    assert expected == cached  # numpy was loaded from the precompiled .pyc
    changed = subprocess.run(
        ["/usr/bin/docker", "run", "--name", "pylayers-diff", "pylayers:train", "python3",
         "-c", "import numpy, six, idna, json, email.mime.text"],
        capture_output=True, text=True, check=False)
    try:
        assert changed.returncode == 0, changed.stderr
        diff = subprocess.run(["/usr/bin/docker", "diff", "pylayers-diff"],
                              capture_output=True, text=True, check=True).stdout
    finally:
        subprocess.run(["/usr/bin/docker", "rm", "-f", "pylayers-diff"], capture_output=True,
                       check=False)
    assert "__pycache__" not in diff  # nothing had to be compiled at start


def test_adding_one_small_package_changes_exactly_one_small_layer(project, built, tmp_path):
    root, cache = project
    copy = tmp_path / "p"
    copy.mkdir()
    for name in ("train.py", ".dlenvignore", "dlenv.lock"):
        (copy / name).write_bytes((root / name).read_bytes())
    (copy / "dlenv.toml").write_text(SPEC.replace('"idna==3.7"', '"idna==3.7", "tomli==2.0.1"'))
    r = dlenv("lock", str(copy), "--cache-dir", str(cache))
    assert r.returncode == 0, r.stderr
    after = build(copy, cache, "--profile", "train")
    # by diff id: the loaded image's layers are plain tars, this build's compressed
    old = {x["diff_id"] for x in built["layers"]}
    new = [x for x in after["layers"] if x["diff_id"] not in old]
    assert len(new) == 1 and new[0]["name"].startswith("python packages")
    assert new[0]["size"] < 2_000_000
    assert len(old - {x["diff_id"] for x in after["layers"]}) <= 1
    assert [x["reused"] for x in after["layers"]].count(False) == 1


def test_another_cache_gives_the_same_digest(project, built, tmp_path):
    root, _ = project
    again = build(root, tmp_path / "cache2", "--profile", "train")
    assert not any(x["reused"] for x in again["layers"])
    # the loaded image (plain tars, no registry digest yet) is the same image, and packed it
    # is the same bytes
    assert built["digest"] is None and again["image_id"] == built["image_id"]
    packed = build(root, project[1], "--profile", "train")
    assert packed["digest"] == again["digest"] and all(x["reused"] for x in packed["layers"])


def test_skopeo_and_umoci_accept_the_image(project, built, tmp_path):
    root, cache = project
    out = tmp_path / "oci"
    r = dlenv("build", str(root), "--cache-dir", str(cache), "--profile", "train",
              "--output", f"oci:{out}")
    assert r.returncode == 0, r.stderr
    inspect = subprocess.run(["skopeo", "inspect", f"oci:{out}:pylayers:train"],
                             capture_output=True, text=True, check=False)
    assert inspect.returncode == 0, inspect.stderr
    assert len(json.loads(inspect.stdout)["Layers"]) == len(built["layers"])
    bundle = tmp_path / "bundle"
    unpack = subprocess.run(["umoci", "unpack", "--rootless", "--image",
                             f"{out}:pylayers:train", str(bundle)],
                            capture_output=True, text=True, check=False,
                            env={**os.environ, "HOME": str(tmp_path)})
    assert unpack.returncode == 0, unpack.stderr
    site = bundle / "rootfs/usr/local/lib/python3.11/dist-packages"
    assert (site / "numpy/__init__.py").is_file()
    assert (site / "numpy/__pycache__/__init__.cpython-311.pyc").is_file()


def test_verify_passes_in_the_image_and_fails_when_a_locked_package_is_removed(project, built):
    docker_ready()
    root, cache = project
    r = dlenv("verify", str(root), "--profile", "train", "--cache-dir", str(cache), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    checks = {c["id"]: c for c in json.loads(r.stdout)["checks"]}
    assert checks["user"]["status"] == "ok" and checks["user"]["summary"] == "runs as uid 1000"
    assert checks["packages"]["status"] == "ok"
    assert checks["dir /workspace"]["status"] == "ok"
    site = "/usr/local/lib/python3.11/dist-packages"
    subprocess.run(["/usr/bin/docker", "rm", "-f", "pylayers-broken"], capture_output=True,
                   check=False)
    try:
        subprocess.run(["/usr/bin/docker", "run", "--user", "0", "--name", "pylayers-broken",
                        "pylayers:train", "sh", "-c",
                        f"rm -r {site}/six.py {site}/six-1.16.0.dist-info"], check=True,
                       capture_output=True)
        subprocess.run(["/usr/bin/docker", "commit", "pylayers-broken", "pylayers:broken"],
                       check=True, capture_output=True)
    finally:
        subprocess.run(["/usr/bin/docker", "rm", "-f", "pylayers-broken"], capture_output=True,
                       check=False)
    r = dlenv("verify", str(root), "--profile", "train", "--cache-dir", str(cache),
              "--image", "pylayers:broken", "--json")
    assert r.returncode == 1, r.stdout + r.stderr
    checks = {c["id"]: c for c in json.loads(r.stdout)["checks"]}
    assert checks["packages"]["status"] == "fail"
    assert checks["packages"]["evidence"] == "missing: six"
