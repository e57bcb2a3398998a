"""`dlenv upgrade` from the TensorFlow 2.15 CPU example to 2.16, on real PyPI wheels and the
real Docker engine: both images build and verify, the example's test command runs in each,
the verdict lists the changed packages, and --apply makes the candidate the project's."""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib

import pytest

from dlenv.lock import read_lock
from tests.conftest import EXAMPLES, docker_ready, run_dlenv

pytestmark = pytest.mark.integration


def test_tensorflow_2_15_to_2_16_on_the_cpu(tmp_path, shared_cache):
    docker_ready()
    root = tmp_path / "tensorflow-cpu"
    shutil.copytree(EXAMPLES / "tensorflow-cpu", root)
    env = {"DLENV_CACHE_DIR": str(shared_cache)}

    r = run_dlenv("upgrade", str(root), "--framework", "2.16", "--apply", "--json", env=env,
                  timeout=3600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    found = json.loads(r.stdout)
    current, candidate = found["sides"]
    assert current["framework"].startswith("tensorflow 2.15.")
    assert candidate["framework"].startswith("tensorflow 2.16.")
    for side in (current, candidate):
        assert side["verified"], side["checks"]
        assert side["test"]["command"] == ["python", "train.py", "--epochs", "2"]
        assert side["test"]["passed"], side["test"]["tail"]
        assert side["size"] > 1_000_000_000 and side["import_seconds"] > 0
        # the registry size, compressed (the images were loaded from plain layers)
        assert side["compressed"] < 0.6 * side["size"]
    changed = found["diff"]["python_packages"]["changed"]
    assert changed["tensorflow"]["a"].startswith("2.15.")
    assert changed["tensorflow"]["b"].startswith("2.16.")
    assert changed["keras"]["a"].startswith("2.") and changed["keras"]["b"].startswith("3.")
    assert "tensorflow-estimator" in found["diff"]["python_packages"]["removed"]
    assert found["diff"]["layers"]["shared"] >= 1  # the Debian base at least
    assert found["ready"] and found["applied"]

    # Both images are in the engine under their own tags: the candidate replaced nothing.
    assert current["tag"] != candidate["tag"]
    for side in (current, candidate):
        assert subprocess.run(["docker", "image", "inspect", side["tag"]], capture_output=True,
                              check=False).returncode == 0, side["tag"]

    # --apply: the spec asks for 2.16 with its comments kept, its lock is the candidate's,
    # and the lock is fresh for it.
    text = (root / "dlenv.toml").read_text()
    assert tomllib.loads(text)["framework"] == "tensorflow==2.16.*"
    assert "# What tells that the environment works" in text
    assert (root / "dlenv.lock").read_bytes() == (root / ".dlenv/upgrade/dlenv.lock").read_bytes()
    applied = read_lock(root / "dlenv.lock")
    assert {w.name: w.version for w in applied.wheels}["tensorflow"].startswith("2.16.")
    fresh = run_dlenv("lock", str(root), "--check", env=env)
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
