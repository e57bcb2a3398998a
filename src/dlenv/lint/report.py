"""A file's findings (ours and hadolint's, when installed), thresholds, and SARIF output.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from dlenv import __version__
from dlenv.lint.compose import is_compose, lint_compose
from dlenv.lint.dockerfile import lint_dockerfile
from dlenv.lint.kubernetes import is_kubernetes, lint_kubernetes
from dlenv.lint.rules import _RULES, SEVERITIES, Finding, Severity


def lint_path(path: Path, context: Path | None = None) -> list[Finding]:
    """``path``'s findings. A missing .dockerignore is a warning in the build ``context``
    the user names; with none named, the Dockerfile's directory is only a guess, so it is
    reported as info."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if is_kubernetes(path, text):
        return lint_kubernetes(text, str(path))
    if is_compose(path, text):
        return lint_compose(text, str(path))
    where = context or path.parent
    # BuildKit also reads NAME.dockerignore beside a Dockerfile called NAME.
    ignored = (where / ".dockerignore").is_file() or \
        path.with_name(path.name + ".dockerignore").is_file()
    found = lint_dockerfile(text, str(path), has_dockerignore=ignored)
    if context is None:
        found = [replace(f, severity="info", message=f"{f.message} ({where} taken as the "
                         "context; name it with --context)") if f.rule == "ML017" else f
                 for f in found]
    return found


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
                    r["message"], _hadolint_fix(r["code"]), "hadolint") for r in rows]


# hadolint runs ShellCheck on each RUN; what its terse messages mean in a Dockerfile.
_SHELLCHECK = {
    "SC2102": "the shell reads [...] as a glob (pip install 'pkg[extra]'): quote the "
              "requirement, 'tensorflow[and-cuda]==2.15.1'",
    "SC2086": "quote the variable (\"$VAR\") so a space or * in it does not split or glob",
    "SC2046": "quote the $(...) so its output is one word",
    "SC2164": "write 'cd DIR || exit', or use WORKDIR",
}


def _hadolint_fix(code: str) -> str:
    if code in _SHELLCHECK:
        return f"ShellCheck, on this RUN: {_SHELLCHECK[code]}"
    if code.startswith("SC"):
        return f"ShellCheck, on this RUN: https://www.shellcheck.net/wiki/{code}"
    return f"https://github.com/hadolint/hadolint/wiki/{code}" if code.startswith("DL") else ""


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
