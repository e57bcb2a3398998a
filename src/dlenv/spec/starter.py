"""The commented starter spec ``dlenv init`` writes."""

from __future__ import annotations

import json
from collections.abc import Sequence


def _toml_list(items: Sequence[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def _comment(line: str) -> str:
    """A line of text as a TOML comment (control characters and all, made printable)."""
    return "# " + "".join(c if c.isprintable() else " " for c in line)


def render_starter(name: str, *, framework: str | None, accelerator: str = "cpu",
                   python: str | None, packages: Sequence[str], apt: Sequence[str] = (),
                   env: Sequence[tuple[str, str]] = (("PYTHONDONTWRITEBYTECODE", "1"),),
                   workdir: str | None = None, header: Sequence[str] = ()) -> str:
    """The starter spec; ``dlenv init --from`` fills it from another file and puts what it
    could not translate in the ``header`` (as comments)."""
    fw_line = (f"framework = {json.dumps(framework)}" if framework
               else '# framework = "tensorflow==2.15.*"   # or "pytorch==2.5.*", "jax", none')
    py_line = (f"python = {json.dumps(python)}" if python
               else '# python = "3.11"   # default: the newest the framework and Debian agree on')
    notes = "".join(_comment(line) + "\n" for line in header)
    env_lines = "".join(f"{key} = {json.dumps(value)}\n" for key, value in env)
    return f"""\
# dlenv.toml: one spec for the whole team's environment. Docs: `dlenv --help`.
{notes}name = {json.dumps(name)}
{fw_line}
accelerator = {json.dumps(accelerator)}   # "cpu", "cuda", or a CUDA major: "cuda12"
{py_line}
# base = "debian:bookworm"   # assembled from .deb packages; or any image reference
packages = {_toml_list(packages)}   # extra pip requirements (PEP 508)
apt = {_toml_list(apt)}   # extra Debian packages
workdir = {json.dumps(workdir or "/workspace")}

[user]   # the image runs as this non-root user
name = "dlenv"
uid = 1000
gid = 1000

[env]
{env_lines}
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
