"""What ``dlenv upgrade`` found, as data: each side's image, checks and test run, and the
verdict that says whether the candidate may replace the lock (``--apply``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from packaging.utils import canonicalize_name

from dlenv.audit.diff import Diff
from dlenv.checks import FAIL, WARN, Check, worst
from dlenv.compat import DISTRIBUTION
from dlenv.lock import Lock


def framework_of(lock: Lock) -> str | None:
    """``NAME VERSION`` of the framework the lock pins (``tensorflow 2.16.2``)."""
    name = lock.target.framework
    if name is None:
        return None
    wanted = canonicalize_name(DISTRIBUTION.get(name, name))
    version = next((w.version for w in lock.wheels if canonicalize_name(w.name) == wanted), None)
    return f"{name} {version}" if version else name


@dataclass(frozen=True, slots=True)
class SuiteRun:
    """The spec's test command, run in a fresh container of one side's image."""

    command: tuple[str, ...]
    code: int
    seconds: float
    tail: str  # the last lines it wrote (stdout and stderr)

    @property
    def passed(self) -> bool:
        return self.code == 0


@dataclass(frozen=True, slots=True)
class Side:
    label: str  # "current" | "candidate"
    framework: str | None  # NAME VERSION
    python: str
    tag: str
    digest: str  # the image's manifest digest in dlenv's store
    size: int  # bytes, as the engine counts them
    compressed: int  # bytes of its layers as a registry stores them
    checks: tuple[Check, ...]  # what `dlenv verify` found
    import_seconds: float | None  # importing the framework in the image
    test: SuiteRun | None  # None: the spec names no test command

    @property
    def verified(self) -> bool:
        return worst(self.checks) != FAIL

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label, "framework": self.framework, "python": self.python,
            "tag": self.tag, "digest": self.digest, "size": self.size,
            "compressed": self.compressed, "verified": self.verified,
            "checks": [{"id": c.id, "status": c.status, "summary": c.summary,
                        "evidence": c.evidence} for c in self.checks],
            "import_seconds": self.import_seconds,
            "test": None if self.test is None else {
                "command": list(self.test.command), "code": self.test.code,
                "passed": self.test.passed, "seconds": self.test.seconds,
                "tail": self.test.tail},
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    ready: bool  # the candidate verifies and passes the tests: --apply may replace the lock
    reasons: tuple[str, ...]  # why not, one line each
    worse: tuple[str, ...]  # warnings the current image does not have (they do not block)


def _said(check: Check) -> str:
    evidence = " ".join(check.evidence.split())
    return check.summary + (f": {evidence[:300]}" if evidence else "")


def judge(current: Side, candidate: Side) -> Verdict:
    """The candidate is ready when no check of ``dlenv verify`` fails in its image and the
    test command (when the spec names one) exits 0 there. Each failure says whether the
    current image has it too, since that is the difference between a regression and a
    problem the upgrade did not cause."""
    before = {c.id: c.status for c in current.checks}
    reasons, worse = [], []
    for check in candidate.checks:
        if check.status == FAIL:
            also = " (it fails in the current image too)" if before.get(check.id) == FAIL \
                else ""
            reasons.append(f"verify: {_said(check)}{also}")
        elif check.status == WARN and before.get(check.id) != WARN:
            worse.append(f"verify: {_said(check)}")
    test = candidate.test
    if test is not None and not test.passed:
        also = (" (and in the current image)" if current.test and not current.test.passed
                else ", 0 in the current image" if current.test else "")
        reasons.append(f"test: {' '.join(test.command)} exits {test.code}{also}")
    return Verdict(ready=not reasons, reasons=tuple(reasons), worse=tuple(worse))


@dataclass(frozen=True, slots=True)
class Upgrade:
    spec_file: str
    before: str  # the spec's framework value
    after: str  # the candidate's
    candidate_spec: str  # where the candidate's spec text and lock are kept
    candidate_lock: str
    changes: Diff  # the two locks compared, with the images' layers
    current: Side
    candidate: Side
    verdict: Verdict
    applied: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "spec": self.spec_file, "framework": {"before": self.before, "after": self.after},
            "candidate": {"spec": self.candidate_spec, "lock": self.candidate_lock},
            "ready": self.verdict.ready, "reasons": list(self.verdict.reasons),
            "worse": list(self.verdict.worse),
            "applied": self.applied, "diff": self.changes.to_json(),
            "sides": [self.current.to_json(), self.candidate.to_json()],
        }
