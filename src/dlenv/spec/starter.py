"""The commented starter spec ``dlenv init`` writes."""

from __future__ import annotations

import json
from collections.abc import Sequence


def _toml_list(items: Sequence[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def render_starter(name: str, *, framework: str | None, gpu: bool, python: str | None,
                   packages: Sequence[str]) -> str:
    fw_line = (f"framework = {json.dumps(framework)}" if framework
               else '# framework = "tensorflow==2.15.*"   # or "pytorch==2.5.*", "jax", none')
    py_line = (f"python = {json.dumps(python)}" if python
               else '# python = "3.11"   # default: the newest the framework and Debian agree on')
    return f"""\
# dlenv.toml: one spec for the whole team's environment. Docs: `dlenv --help`.
name = {json.dumps(name)}
{fw_line}
accelerator = "{'cuda' if gpu else 'cpu'}"   # "cpu", "cuda", or a CUDA major: "cuda12"
{py_line}
# base = "debian:bookworm"   # assembled from .deb packages; or any image reference
packages = {_toml_list(packages)}   # extra pip requirements (PEP 508)
apt = []   # extra Debian packages
workdir = "/workspace"

[user]   # the image runs as this non-root user
name = "dlenv"
uid = 1000
gid = 1000

[env]
PYTHONDONTWRITEBYTECODE = "1"

# [index]   # package index settings; PIP_INDEX_URL / UV_INDEX_URL are honoured too
# url = "https://pypi.example.internal/simple"
# extra_urls = []
# ca_bundle = "/etc/ssl/certs/ca-certificates.crt"   # for TLS-intercepting proxies

[profiles.dev]   # `dlenv shell`, `dlenv jupyter`, `dlenv ssh`
jupyter = true
ssh = false
ports = [8888]

[profiles.train]
command = ["python", "train.py"]

# [profiles.serve]
# command = ["python", "serve.py"]
# ports = [8501]
"""
