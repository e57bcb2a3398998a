"""dlenv init --from on real files (tests/fixtures/init): the articles' Dockerfile on the
official TensorFlow GPU image, a conda environment.yml with a pip section, a requirements
file with torch and torchvision, a pyproject.toml with JAX. Each spec it writes locks
against the real package index and Debian."""

from __future__ import annotations

import pytest

from dlenv.lock import read_lock
from tests.conftest import ROOT, run_dlenv

pytestmark = pytest.mark.integration
FIXTURES = ROOT / "tests/fixtures/init"


@pytest.mark.parametrize(("source", "framework", "line", "cuda"), [
    ("Dockerfile", "tensorflow", "2.15", "12"),
    ("environment.yml", "pytorch", "2.1", "12"),
    ("requirements-torch.txt", "pytorch", "2.5", None),
    ("pyproject.toml", "jax", None, "12"),
])
def test_each_imported_spec_locks(tmp_path, source, framework, line, cuda):
    root = tmp_path / "project"
    made = run_dlenv("init", str(root), "--from", str(FIXTURES / source))
    assert made.returncode == 0, made.stderr
    env = {"DLENV_CACHE_DIR": str(tmp_path / "cache")}
    locked = run_dlenv("lock", str(root), env=env, timeout=1800)
    assert locked.returncode == 0, locked.stdout[-2000:] + locked.stderr[-2000:]
    lock = read_lock(root / "dlenv.lock")
    assert lock.target.framework == framework
    if line:
        assert lock.target.framework_line == line
    assert (lock.target.cuda or "").split(".")[0] == (cuda or "")
    names = {w.name.lower().replace("_", "-") for w in lock.wheels}
    wanted = {"Dockerfile": {"tensorflow", "scikit-learn", "tensorflow-datasets", "pydot"},
              "environment.yml": {"torch", "torchvision", "timm", "wandb"},
              "requirements-torch.txt": {"torch", "torchvision", "torchaudio", "tqdm"},
              "pyproject.toml": {"jax", "flax", "optax"}}[source]
    assert wanted <= names
    if source == "Dockerfile":
        assert {"git", "graphviz", "libgl1"} <= {d.name for d in lock.debs}
