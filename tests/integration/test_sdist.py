"""Source-only packages against the real index: pure-Python sdists (a .tar.gz and a .zip) are
built at lock time, rebuilt byte for byte by a build with an empty cache, and import in the
image; an sdist that needs a compiler is refused, naming the package."""

from __future__ import annotations

import json
import subprocess

import pytest

from dlenv.lock import read_lock
from tests.conftest import docker_ready, run_dlenv

pytestmark = pytest.mark.integration
SPEC = 'name = "sdists"\npython = "3.11"\npackages = ["promise==2.3", "wget==3.2"]\n'


def test_pure_python_sdists_lock_build_again_from_source_and_import(tmp_path_factory):
    docker_ready()
    root = tmp_path_factory.mktemp("sdists")
    (root / "dlenv.toml").write_text(SPEC)
    lock_cache, build_cache = tmp_path_factory.mktemp("lc"), tmp_path_factory.mktemp("bc")
    r = run_dlenv("lock", str(root), "--cache-dir", str(lock_cache))
    assert r.returncode == 0, r.stderr
    built = {w.name: w for w in read_lock(root / "dlenv.lock").wheels if w.sdist}
    assert set(built) == {"promise", "wget"}
    assert built["wget"].sdist.url.endswith(".zip") and built["promise"].url == ""
    assert all(w.filename.endswith("-none-any.whl") and w.sdist.build_requires
               for w in built.values())
    # Another machine: an empty cache, so each wheel is built again and its hash checked.
    r = run_dlenv("build", str(root), "--cache-dir", str(build_cache), "--load", "--tag",
                  "sdists:test", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["image_id"].startswith("sha256:")
    run = subprocess.run(["docker", "run", "--rm", "sdists:test", "python3", "-c",
                          "import promise, wget; print(promise.Promise.resolve(6).get() * 7, "
                          "wget.__version__)"], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["42", "3.2"]


def test_an_sdist_that_needs_a_compiler_is_refused_naming_it(tmp_path):
    # pyyaml 5.3.1 shipped no Linux wheels: only an sdist with a C extension.
    (tmp_path / "dlenv.toml").write_text('name = "x"\npython = "3.11"\n'
                                         'packages = ["pyyaml==5.3.1"]\n')
    r = run_dlenv("lock", str(tmp_path), "--cache-dir", str(tmp_path / "cache"))
    assert r.returncode == 2, r.stderr
    assert "pyyaml 5.3.1 is published only as source" in r.stderr.lower()
    assert "cp311-manylinux_2_36_x86_64" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "dlenv.lock").exists()
