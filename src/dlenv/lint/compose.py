"""Compose-file rules (PyYAML): privileges, host namespaces, images without a version, ports
published on every interface, secrets written in the environment, Jupyter commands.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from dlenv.lint.dockerfile import _SECRET_NAME, _lint_jupyter, unversioned
from dlenv.lint.rules import Finding, _f

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def lint_compose(text: str, file: str = "compose.yaml") -> list[Finding]:
    import yaml

    lines = text.splitlines()

    def where(service: str, key: str) -> int:
        inside = False
        for n, line in enumerate(lines, start=1):
            if re.match(rf"^\s+{re.escape(service)}:\s*$", line):
                inside = True
            elif inside and re.match(rf"^\s+{re.escape(key)}:", line):
                return n
        return 1

    doc = yaml.safe_load(text) or {}
    found = []
    for name, service in (doc.get("services") or {}).items():
        if not isinstance(service, dict):
            continue
        if service.get("privileged") is True:
            found.append(_f("ML101", file, where(name, "privileged"),
                            f"service {name} is privileged",
                            "drop privileged; for GPUs use deploy.resources.reservations."
                            "devices with driver: nvidia"))
        for key in ("ipc", "pid", "network_mode"):
            if service.get(key) == "host":
                found.append(_f("ML102", file, where(name, key),
                                f"service {name} uses {key}: host",
                                "for DataLoader workers set shm_size instead of ipc: host"
                                if key == "ipc" else f"remove {key}: host"))
        if "ALL" in (service.get("cap_add") or []):
            found.append(_f("ML101", file, where(name, "cap_add"),
                            f"service {name} adds every capability", "add only what it needs"))
        image = service.get("image")
        if isinstance(image, str) and "build" not in service and unversioned(image):
            found.append(_f("ML105", file, where(name, "image"),
                            f"service {name} runs {image}: no fixed version",
                            "name a version tag, pinned by digest (image:tag@sha256:…)"))
        for port in _open_ports(service.get("ports") or []):
            found.append(_f("ML103", file, where(name, "ports"),
                            f"service {name} publishes {port} on every interface",
                            f"publish it on the loopback only: \"127.0.0.1:{port}\""))
        for key in _literal_secrets(service.get("environment")):
            found.append(_f("ML104", file, where(name, "environment"),
                            f"service {name} has {key} written in its environment",
                            f"interpolate it (${{{key}}} from the shell or an .env file git "
                            "ignores) or use compose secrets"))
        for key in ("command", "entrypoint"):
            command = service.get(key)
            if isinstance(command, list):
                command = json.dumps([str(c) for c in command])
            if isinstance(command, str):
                _lint_jupyter(command, where(name, key), file, found)
    return found


def _open_ports(ports: list[Any]) -> list[str]:
    """Published ports with no loopback address (short or long syntax)."""
    out = []
    for port in ports:
        if isinstance(port, dict):
            if port.get("published") is not None and \
                    str(port.get("host_ip", "")) not in LOOPBACK:
                out.append(f"{port['published']}:{port.get('target')}")
            continue
        text = str(port)
        host, _, rest = text.rpartition(":") if text.count(":") >= 2 else ("", "", text)
        if text.startswith("["):  # [::1]:8888:8888
            host = text[1:text.index("]")]
            rest = text[text.index("]") + 2:]
        if host.split(":")[0] not in LOOPBACK and host not in LOOPBACK:
            out.append(rest if host else text)
    return out


def _literal_secrets(env: Any) -> list[str]:
    """Secret-named variables given a literal value (``${VAR}`` interpolation is fine)."""
    pairs: list[tuple[str, Any]] = []
    if isinstance(env, dict):
        pairs = list(env.items())
    elif isinstance(env, list):
        for entry in map(str, env):
            key, sep, value = entry.partition("=")
            pairs.append((key, value if sep else None))
    return [str(k) for k, v in pairs if _SECRET_NAME.search(str(k)) and v not in (None, "")
            and not re.fullmatch(r"\$\{?\w+(:?[-?][^}]*)?\}?", str(v))]


def is_compose(path: Path, text: str) -> bool:
    return path.suffix in (".yml", ".yaml") and ("compose" in path.name or "services:" in text)
