"""Compose-file rules (PyYAML): GPU reservations, shared memory, ports, restart policy.
"""

from __future__ import annotations

import re
from pathlib import Path

from dlenv.lint.rules import Finding, _f


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
    return found


def is_compose(path: Path, text: str) -> bool:
    return path.suffix in (".yml", ".yaml") and ("compose" in path.name or "services:" in text)
