"""Real teams' environments: every requirement set in tests/corpus (each from a public ML
project or tutorial, source named in its header, translations explained there) locks against
the real package index, and one (TensorFlow on the CPU with a source-only package) builds,
imports and passes `dlenv verify`. The issue's own rows carry their expected decisions.

The locks run a few at a time (``LOCKS_AT_ONCE``): each waits mostly on the index, and one
after the other they took 12 of CI's minutes. Lock times (wall time, with the others
running) and the chosen Python/CUDA are written to $DLENV_CORPUS_REPORT when it is set."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from dlenv.lock import read_lock
from tests.conftest import ROOT, docker_ready, run_dlenv

pytestmark = pytest.mark.integration
CORPUS = ROOT / "tests/corpus"
NAMES = sorted(p.stem for p in CORPUS.glob("*.toml"))

# What the rows must come out as (beyond locking at all).
EXPECTED = {
    "pt-mnist": {"framework_line": "2.6", "chosen_by": "torchvision==0.21.0 depends on torch"},
    "hf-transformers-444": {"python": "3.11", "chosen_by": "tokenizers has no wheel"},
    "tf-215-gpu-article": {"cuda": "12.2", "requirement": "==2.15.0.post1",
                           "sdists": {"pathtools"}},
    "tf-29-lts-cpu": {"python": "3.9",
                      "constraints": ["numpy<2", "protobuf<3.20", "setuptools<82"]},
    "tf-29-lts-gpu": {"python": "3.9", "cuda": "11.2", "cuda_source": "cu11-wheels",
                      "wheels": {"nvidia-cudnn-cu11", "nvidia-cublas-cu11",
                                 "nvidia-cuda-nvcc-cu11"}},
    "tf-cli-helpers": {"sdists": {"wget"}},
    "tf-models-official": {"sdists": {"promise"}},
}


@pytest.fixture(scope="module")
def cache(shared_cache):
    return shared_cache  # uv's cache, suites, sdists; TensorFlow's wheels for test_train too


def test_the_corpus_is_large_enough_and_names_its_sources():
    assert len(NAMES) >= 25
    for name in NAMES:
        head = (CORPUS / f"{name}.toml").read_text().split("\nname = ")[0]
        assert head.startswith("# ") and ("/" in head or "issue" in head), name


LOCKS_AT_ONCE = 4


@dataclass(frozen=True)
class Locked:
    project: Path
    returncode: int
    stderr: str
    seconds: float


def _lock(name: str, root: Path, cache: Path) -> Locked:
    project = root / name
    project.mkdir()
    shutil.copy(CORPUS / f"{name}.toml", project / "dlenv.toml")
    started = time.monotonic()
    r = run_dlenv("lock", str(project), "--cache-dir", str(cache), "--json", timeout=900)
    return Locked(project, r.returncode, r.stderr, time.monotonic() - started)


@pytest.fixture(scope="module")
def corpus_locks(tmp_path_factory, cache) -> dict[str, Locked]:
    """Every corpus environment locked, a few at a time, in one shared cache (as a team's
    machine locks several projects)."""
    root = tmp_path_factory.mktemp("corpus")
    with ThreadPoolExecutor(LOCKS_AT_ONCE) as pool:
        done = pool.map(lambda name: _lock(name, root, cache), NAMES)
        return dict(zip(NAMES, done, strict=True))


@pytest.mark.parametrize("name", NAMES)
def test_every_corpus_environment_locks(name, corpus_locks):
    locked = corpus_locks[name]
    project, seconds = locked.project, locked.seconds
    assert locked.returncode == 0, locked.stderr
    lock = read_lock(project / "dlenv.lock")
    assert run_dlenv("lock", str(project), "--check").returncode == 0
    target = lock.target.to_dict()
    sdists = {w.name for w in lock.wheels if w.sdist is not None}
    for key, want in EXPECTED.get(name, {}).items():
        if key == "sdists":
            assert want <= sdists, sdists
        elif key == "wheels":
            assert want <= {w.name for w in lock.wheels}
        elif key in ("chosen_by", "requirement"):
            assert want in str(target.get(key)), target
        else:
            assert target.get(key) == want, target
    report = os.environ.get("DLENV_CORPUS_REPORT")
    if report:
        with open(report, "a") as f:
            f.write(json.dumps({"name": name, "seconds": round(seconds, 1),
                                "python": target.get("python"), "cuda": target.get("cuda"),
                                "cudnn": target.get("cudnn"),
                                "framework": f"{target.get('framework')} "
                                             f"{target.get('framework_line')}",
                                "chosen_by": target.get("chosen_by"), "sdists": sorted(sdists),
                                "wheels": len(lock.wheels)}) + "\n")


def test_tensorflow_with_a_source_only_package_builds_imports_and_verifies(tmp_path, cache):
    docker_ready()
    project = tmp_path / "tf-cli-helpers"
    project.mkdir()
    shutil.copy(CORPUS / "tf-cli-helpers.toml", project / "dlenv.toml")
    (project / "train.py").write_text(
        "import tensorflow as tf, fire, wget\n"
        "print(tf.__version__, int(tf.reduce_sum(tf.constant([1, 2, 3]))))\n")
    r = run_dlenv("build", str(project), "--cache-dir", str(cache), "--load", timeout=1800)
    assert r.returncode == 0, r.stderr
    run = subprocess.run(["docker", "run", "--rm", "tf-cli-helpers:latest", "python3",
                          "train.py"], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    version, total = run.stdout.split()[-2:]
    assert version.startswith("2.15.") and total == "6"
    board = subprocess.run(["docker", "run", "--rm", "tf-cli-helpers:latest", "tensorboard",
                            "--version"], capture_output=True, text=True, check=False)
    assert board.returncode == 0 and board.stdout.startswith("2.15"), board.stderr[-1000:]
    r = run_dlenv("verify", str(project), "--cache-dir", str(cache), "--json", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    checks = {c["id"]: c for c in json.loads(r.stdout)["checks"]}
    assert checks["imports"]["status"] == "ok" and checks["import"]["status"] == "ok"
    assert checks["train step"]["status"] == "ok"


# What TensorFlow 2.9's loader opens (tensorflow/stream_executor's dso_loader), and what
# cuDNN 8 and cuSOLVER open in turn. libcuda.so.1 is the driver's: the container toolkit
# mounts it at run time, so it is not part of the image.
TF29_SONAMES = ("libcudart.so.11.0", "libcublas.so.11", "libcublasLt.so.11", "libcufft.so.10",
                "libcurand.so.10", "libcusolver.so.11", "libcusparse.so.11", "libcudnn.so.8",
                "libcudnn_ops_infer.so.8", "libcudnn_cnn_infer.so.8", "libnvrtc.so.11.2")


def test_the_tf_29_gpu_image_opens_every_cuda_library_without_a_cuda_base(tmp_path, cache):
    docker_ready()
    project = tmp_path / "tf-29-lts-gpu"
    project.mkdir()
    shutil.copy(CORPUS / "tf-29-lts-gpu.toml", project / "dlenv.toml")
    r = run_dlenv("build", str(project), "--cache-dir", str(cache), "--load", "--json",
                  timeout=1800)
    assert r.returncode == 0, r.stderr
    built = json.loads(r.stdout)
    assert built["layers"][-1]["name"] == "CUDA library links"
    script = ("import ctypes, os, tensorflow as tf\n"
              f"for name in {TF29_SONAMES!r}:\n"
              "    ctypes.CDLL(name)\n"
              "print(tf.__version__, tf.test.is_built_with_cuda(),\n"
              "      os.path.exists('/usr/local/cuda/bin/ptxas'))\n")
    try:
        run = subprocess.run(["docker", "run", "--rm", "--env", "TF_CPP_MIN_LOG_LEVEL=0",
                              "tf-29-lts-gpu:latest", "python3", "-c", script],
                             capture_output=True, text=True, check=False)
    finally:
        # by id: every tag the load gave it goes, and its 5 GB with them
        subprocess.run(["docker", "rmi", "-f", built["image_id"]], capture_output=True,
                       check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["2.9.0", "True", "True"]
    assert "Could not load dynamic library 'libcudart" not in run.stderr
