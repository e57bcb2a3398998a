"""Lock every example against the real package index."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dlenv.cli import main
from dlenv.lock import dumps, read_lock
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.integration

# Debian package resolution runs too: the lock covers the whole image.
EXAMPLE_NAMES = sorted(p.name for p in EXAMPLES.iterdir() if (p / "dlenv.toml").exists())


def copy_example(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(EXAMPLES / name, target, ignore=shutil.ignore_patterns("dlenv.lock"))
    return target


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_every_example_locks_and_round_trips(name, tmp_path, capsys):
    directory = copy_example(name, tmp_path)
    assert main(["lock", str(directory), "--json"]) == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out)
    lock = read_lock(directory / "dlenv.lock")
    assert summary["wheels"] == len(lock.wheels) and summary["debs"] == len(lock.debs) > 0
    assert lock.wheels or not (directory / "dlenv.toml").read_text().count("framework")
    assert all(len(w.sha256) == 64 and w.size > 0 and w.url.endswith(w.filename)
               for w in lock.wheels)
    text = (directory / "dlenv.lock").read_text()
    assert dumps(read_lock(directory / "dlenv.lock")) == text
    assert main(["lock", str(directory), "--check"]) == 0


def test_tensorflow_gpu_locks_nvidia_wheels_of_the_matrix_cuda(tmp_path, capsys):
    directory = copy_example("tensorflow-gpu", tmp_path)
    assert main(["resolve", str(directory), "--json"]) == 0
    target = json.loads(capsys.readouterr().out)
    assert main(["lock", str(directory)]) == 0
    lock = read_lock(directory / "dlenv.lock")
    nvidia = {w.name: w.version for w in lock.wheels if w.name.startswith("nvidia-")}
    assert target["cuda"] == "12.3" and target["min_driver"] == "525.60.13"
    cuda_major_minor = target["cuda"]
    assert nvidia["nvidia-cuda-runtime-cu12"].startswith(cuda_major_minor + ".")
    assert nvidia["nvidia-cublas-cu12"].startswith(cuda_major_minor + ".")
    assert nvidia["nvidia-cudnn-cu12"].startswith(target["cudnn"] + ".")


def test_editing_the_spec_makes_the_lock_stale(tmp_path):
    directory = copy_example("jax-cpu", tmp_path)
    assert main(["lock", str(directory)]) == 0
    spec = directory / "dlenv.toml"
    spec.write_text(spec.read_text().replace('["optax"]', '["optax", "einops"]'))
    assert main(["lock", str(directory), "--check"]) == 1


def test_requirements_export_has_a_hash_for_every_line(tmp_path):
    directory = copy_example("jax-cpu", tmp_path)
    out = tmp_path / "requirements.txt"
    assert main(["lock", str(directory), "--requirements", str(out)]) == 0
    lines = [x for x in out.read_text().splitlines() if not x.startswith("#")]
    assert lines and all("--hash=sha256:" in x for x in lines)
    assert any(x.startswith("jax==0.4.") for x in lines)
