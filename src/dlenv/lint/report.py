"""A file's findings (ours and hadolint's, when installed), thresholds, and SARIF output.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from dlenv import __version__
from dlenv.lint.compose import is_compose, lint_compose
from dlenv.lint.dockerfile import lint_dockerfile
from dlenv.lint.rules import _RULES, SEVERITIES, Finding, Severity


def lint_path(path: Path) -> list[Finding]:
    text = path.read_text(encoding="utf-8", errors="replace")
    if is_compose(path, text):
        return lint_compose(text, str(path))
    return lint_dockerfile(text, str(path),
                           has_dockerignore=(path.parent / ".dockerignore").is_file())


def hadolint_binary() -> str | None:
    return shutil.which("hadolint")


def run_hadolint(path: Path, binary: str) -> list[Finding]:
    proc = subprocess.run([binary, "--no-fail", "--format", "json", str(path)],
                          capture_output=True, text=True, timeout=60, check=False)
    try:
        rows = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError:
        return []
    level: dict[str, Severity] = {s: s for s in SEVERITIES}
    return [Finding(r["code"], level.get(r["level"], "info"), str(path), int(r["line"]),
                    r["message"], "", "hadolint") for r in rows]


def at_or_above(findings: Sequence[Finding], threshold: Severity | Literal["none"]
                ) -> list[Finding]:
    if threshold == "none":
        return []
    limit = SEVERITIES.index(threshold)
    return [f for f in findings if SEVERITIES.index(f.severity) <= limit]


def to_sarif(findings: Sequence[Finding]) -> dict[str, Any]:
    level = {"error": "error", "warning": "warning", "info": "note", "style": "note"}
    rules = [{"id": r.id, "name": r.id, "shortDescription": {"text": r.title},
              "fullDescription": {"text": r.why},
              "defaultConfiguration": {"level": level[r.severity]}} for r in _RULES]
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "dlenv lint", "version": __version__,
                                "informationUri": "https://pypi.org/project/dlenv/",
                                "rules": rules}},
            "results": [{
                "ruleId": f.rule, "level": level[f.severity],
                "message": {"text": f.message + (f" — {f.fix}" if f.fix else "")},
                "properties": {"source": f.source},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": f.file},
                    "region": {"startLine": f.line}}}],
            } for f in findings],
        }],
    }
