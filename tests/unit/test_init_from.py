"""dlenv init --from: a requirements.txt, a conda environment.yml, a pyproject.toml and a
Dockerfile of the articles' style become a spec; what has no translation is said."""

from __future__ import annotations

import tomllib
from pathlib import PurePosixPath

import pytest

from dlenv.audit.importing import _conda_spec, from_requirements, kind_of
from dlenv.cli import main
from dlenv.errors import UsageError
from dlenv.spec import load_spec
from dlenv.workflows.project import init_project, read_source
from tests.conftest import ROOT

FIXTURES = ROOT / "tests/fixtures/init"


def test_the_articles_dockerfile(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    found = read_source(FIXTURES / "Dockerfile")
    assert list(tmp_path.iterdir()) == []  # reading a Dockerfile writes nothing anywhere
    assert (found.framework, found.accelerator) == ("tensorflow==2.15.0", "cuda")
    # pip -r reads the requirements file beside the Dockerfile; pip's own args follow
    assert found.packages == ("matplotlib>=3.7", "tensorflow-datasets==4.9.3", "pandas>=2,<3",
                              "scikit-learn==1.3.2", "pydot")
    assert found.apt == ("git", "graphviz", "libgl1")
    assert found.env == (("TF_CPP_MIN_LOG_LEVEL", "2"),)  # DEBIAN_FRONTEND is the build's
    assert found.workdir == "/workspace"
    said = "\n".join(found.notes)
    assert "requirements.txt:3" in said and "extra_urls" in said
    assert "Dockerfile:7: COPY" in said and "JupyterLab" in said and "EXPOSE" in said


def test_a_conda_environment_with_a_pip_section():
    found = read_source(FIXTURES / "environment.yml")
    assert found.name == "vision-research"
    assert (found.framework, found.accelerator, found.python) == (
        "pytorch==2.1.0.*", "cuda12", "3.10")
    assert found.packages == ("torchvision==0.16.0.*", "numpy==1.24.*", "pandas>=2.0",
                              "scikit-learn", "matplotlib", "timm==0.9.12", "wandb>=0.16")
    assert any("mkl" in n for n in found.notes) and any("channels" in n for n in found.notes)


def test_requirements_with_torch_and_a_pyproject_with_jax():
    torch = read_source(FIXTURES / "requirements-torch.txt")
    assert (torch.framework, torch.accelerator) == ("pytorch==2.5.1", "cpu")
    assert torch.packages == ("torchvision==0.20.1", "torchaudio==2.5.1", "tqdm>=4.66")
    jax = read_source(FIXTURES / "pyproject.toml")
    assert (jax.name, jax.framework, jax.accelerator) == ("My_Model", "jax>=0.4.30", "cuda12")
    assert jax.packages == ("flax>=0.8", "optax")
    assert any("requires-python" in n for n in jax.notes)
    assert any("'dev'" in n for n in jax.notes)


@pytest.mark.parametrize(("raw", "want"), [
    ("numpy", ("numpy", "")), ("numpy=1.24", ("numpy", "==1.24.*")),
    ("numpy=1.24.3=py311h64a7726_0", ("numpy", "==1.24.3.*")),
    ("numpy==1.24.3", ("numpy", "==1.24.3")), ("numpy 1.24.*", ("numpy", "==1.24.*")),
    ("conda-forge::scipy>=1.10,<2", ("scipy", ">=1.10,<2")),
    ("numpy=1.24.*", ("numpy", "==1.24.*")),
])
def test_conda_match_specs(raw, want):
    assert _conda_spec(raw) == want


def test_cuda_builds_and_what_dlenv_chooses_itself():
    found = from_requirements("torch==2.1.0+cu118\ntorchvision==0.16.0+cu118\n"
                              "nvidia-cudnn-cu11==8.7.0.84\njaxlib\n"
                              "numpy==1.26.4 --hash=sha256:" + "0" * 64 + "\n"
                              "-e .\nrequests @ https://example.invalid/r.whl\n", "r.txt")
    assert (found.framework, found.accelerator) == ("pytorch==2.1.0", "cuda11")
    assert found.packages == ("torchvision==0.16.0", "numpy==1.26.4")
    said = "\n".join(found.notes)
    for part in ("+cu118 build", "nvidia-cudnn-cu11 is chosen by dlenv", "jaxlib",
                 "r.txt:6", "editable", "requests from a URL"):
        assert part in said
    assert from_requirements("tensorflow[and-cuda]==2.16.1\n", "r").accelerator == "cuda"
    assert from_requirements("tensorflow-gpu==2.10\n", "r").framework == "tensorflow==2.10"


def test_a_dockerfile_reads_only_files_beside_it(tmp_path):
    (tmp_path / "secret.txt").write_text("top-secret-package\n")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "Dockerfile").write_text(
        "FROM python:3.11-slim\nRUN pip install -r ../secret.txt\n"
        "RUN pip install -r /etc/passwd && apt-get install -y 'curl; rm -rf /'\n"
        "RUN make all\n")
    found = read_source(tmp_path / "d" / "Dockerfile")
    assert found.python == "3.11" and found.framework is None
    assert found.packages == () and found.apt == ()
    said = "\n".join(found.notes)
    assert said.count("not found beside the Dockerfile") == 2
    assert "is not a Debian package name" in said and "RUN 'make all'" in said


def test_init_from_writes_a_spec_that_parses_and_keeps_the_options_first(tmp_path):
    path, notes = init_project(tmp_path / "p", source=FIXTURES / "environment.yml",
                               python="3.11", packages=("rich",))
    spec = load_spec(path)
    assert spec.name == "vision-research" and spec.python == "3.11"
    assert spec.accelerator == "cuda" and spec.cuda_major == "12"
    assert spec.packages[-1] == "rich"
    text = path.read_text()
    assert text.startswith("# dlenv.toml") and "#   environment.yml: mkl" in text
    assert tomllib.loads(text)["profiles"]["dev"]["jupyter"] is True
    assert notes and all(isinstance(n, str) for n in notes)
    # without --python, a Python no Debian suite has is left to the resolver, and said
    _, notes = init_project(tmp_path / "q", source=FIXTURES / "environment.yml")
    assert load_spec(tmp_path / "q").python is None
    assert any("python 3.10: no Debian suite has it" in n for n in notes)


def test_init_from_refuses_what_it_cannot_read(tmp_path, capsys):
    (tmp_path / "notes.md").write_text("torch\n")
    with pytest.raises(UsageError, match="cannot tell what this file is"):
        read_source(tmp_path / "notes.md")
    (tmp_path / "environment.yml").write_text("dependencies: [python=3.11\n")
    with pytest.raises(UsageError, match="cannot be read"):
        read_source(tmp_path / "environment.yml")
    assert main(["init", str(tmp_path / "p"), "--from", str(FIXTURES / "Dockerfile")]) == 0
    assert main(["init", str(tmp_path / "p"), "--from", str(FIXTURES / "Dockerfile")]) == 2
    assert "exists" in capsys.readouterr().err
    assert kind_of(PurePosixPath("requirements-dev.in")) == "requirements"
    assert kind_of(PurePosixPath("gpu.Dockerfile")) == "dockerfile"

