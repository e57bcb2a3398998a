"""``dlenv scan`` (pure): the locked Debian and Python packages against OSV advisories.

Records are in the OSV schema (what osv.dev serves and what teams mirror for air-gapped
sites: a directory or zip of ``ID.json`` files). Versions are matched with each ecosystem's
own ordering: PEP 440 (``packaging``) for PyPI, dpkg's (python-debian: epochs, ``~`` before
anything) for Debian, whose advisories name the *source* package. Severity comes from the
record's CVSS vector (the ``cvss`` library scores it) or its database's own word. An ignore
file lets a team accept a finding for a while: each entry needs a reason and an expiry date,
and an expired entry fails the scan so that it is looked at again.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from dlenv.errors import Problem, SpecError

SEVERITIES = ("unknown", "low", "medium", "high", "critical")  # ascending
_WORDS = {"moderate": "medium", "important": "high", "negligible": "low", "minor": "low"}
DEBIAN_RELEASES = {"buster": "10", "bullseye": "11", "bookworm": "12", "trixie": "13",
                   "forky": "14"}


@dataclass(frozen=True, slots=True)
class Package:
    ecosystem: str  # PyPI | Debian
    name: str  # canonical (PyPI) or the source package (Debian)
    version: str
    shown: str  # what the user knows it as (the binary .deb's name)


@dataclass(frozen=True, slots=True)
class Finding:
    package: Package
    id: str
    aliases: tuple[str, ...]
    summary: str
    severity: str  # one of SEVERITIES
    score: float | None
    fixed: tuple[str, ...]  # the versions that fix it (empty: none yet)
    ignored: str | None = None  # the ignore entry's reason, when one covers it

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "aliases": list(self.aliases), "ecosystem":
                self.package.ecosystem, "package": self.package.shown,
                "source": self.package.name, "version": self.package.version,
                "severity": self.severity, "score": self.score, "fixed": list(self.fixed),
                "summary": self.summary, "ignored": self.ignored}


# --- versions ----------------------------------------------------------------------------


def _key(ecosystem: str, version: str) -> Any:
    """A sortable version of ``ecosystem``; None when it is not one."""
    if ecosystem == "Debian":
        from debian.debian_support import Version as DebVersion

        try:
            return DebVersion(version)
        except ValueError:
            return None
    try:
        return Version(version)
    except InvalidVersion:
        return None


def in_range(ecosystem: str, version: str, events: Sequence[Mapping[str, str]]) -> bool:
    """Whether ``version`` is inside an OSV ``ECOSYSTEM`` range: the events in version
    order, each ``introduced`` opening an interval that the next ``fixed`` (excluded) or
    ``last_affected`` (included) closes."""
    have = _key(ecosystem, version)
    if have is None:
        return False

    def at(event: Mapping[str, str]) -> Any:
        value = next(iter(event.values()))
        return _key(ecosystem, "0") if value == "0" else _key(ecosystem, value)

    ordered = sorted((e for e in events if at(e) is not None), key=at)
    affected = False
    for event in ordered:
        kind = next(iter(event))
        point = at(event)
        if point > have or (kind == "last_affected" and point == have):
            break  # the events above the version say nothing of it
        affected = kind == "introduced"
    return affected


# --- records -----------------------------------------------------------------------------


def _ecosystem_matches(osv: str, package: Package, debian_release: str | None) -> bool:
    base, _, release = osv.partition(":")
    if base != package.ecosystem:
        return False
    return package.ecosystem != "Debian" or not release or release == debian_release


def _name(ecosystem: str, name: str) -> str:
    return str(canonicalize_name(name)) if ecosystem == "PyPI" else name


def _band(word: str) -> str:
    word = _WORDS.get(word.lower(), word.lower())
    return word if word in SEVERITIES else "unknown"


def severity_of(record: Mapping[str, Any]) -> tuple[str, float | None]:
    """The highest severity a record states: scored from its CVSS vectors, else its
    database's word (GitHub's ``MODERATE`` is medium)."""
    import cvss

    best: tuple[str, float | None] = ("unknown", None)
    for entry in record.get("severity") or ():
        vector, kind = str(entry.get("score", "")), entry.get("type")
        try:
            if kind == "CVSS_V4":
                c4 = cvss.CVSS4(vector)
                found = (_band(str(c4.severity)), float(c4.base_score))
            elif kind in ("CVSS_V3", "CVSS_V2"):
                c = cvss.CVSS3(vector) if kind == "CVSS_V3" else cvss.CVSS2(vector)
                found = (_band(str(c.severities()[0])), float(c.scores()[0]))
            else:
                continue
        except (cvss.CVSSError, ValueError, KeyError, IndexError):
            continue
        if SEVERITIES.index(found[0]) >= SEVERITIES.index(best[0]):
            best = found
    if best[0] == "unknown":
        best = (_band(str((record.get("database_specific") or {}).get("severity", ""))), None)
    return best


def osv_queries(packages: Sequence[Package], debian_release: str | None) -> list[dict[str, Any]]:
    """The OSV API's queries for ``packages`` (``/v1/querybatch``), one each; a .deb is
    asked of its release's ecosystem (``Debian:12``), and not at all without one."""
    out = []
    for p in packages:
        if p.ecosystem == "Debian" and debian_release is None:
            continue
        ecosystem = f"Debian:{debian_release}" if p.ecosystem == "Debian" else p.ecosystem
        out.append({"package": {"ecosystem": ecosystem, "name": p.name}, "version": p.version})
    return out


def match(record: Mapping[str, Any], packages: Iterable[Package],
          debian_release: str | None = None) -> list[Finding]:
    """The packages ``record`` affects."""
    if record.get("withdrawn"):
        return []
    found = []
    severity, score = severity_of(record)
    for package in packages:
        for affected in record.get("affected") or ():
            pkg = affected.get("package") or {}
            if not _ecosystem_matches(str(pkg.get("ecosystem", "")), package, debian_release):
                continue
            if _name(package.ecosystem, str(pkg.get("name", ""))) != package.name:
                continue
            ranges = [r for r in affected.get("ranges") or ()
                      if r.get("type") in ("ECOSYSTEM", "SEMVER")]
            hit = package.version in (affected.get("versions") or ()) or any(
                in_range(package.ecosystem, package.version, r.get("events") or ())
                for r in ranges)
            if hit:
                fixed = tuple(dict.fromkeys(e["fixed"] for r in ranges
                                            for e in r.get("events") or () if "fixed" in e))
                found.append(Finding(
                    package=package, id=str(record["id"]),
                    aliases=tuple(dict.fromkeys(str(a) for a in (  # Debian's: "upstream"
                        *(record.get("aliases") or ()), *(record.get("upstream") or ())))),
                    summary=str(record.get("summary") or record.get("details") or "")[:200],
                    severity=severity, score=score, fixed=fixed))
                break
    return found


# --- the ignore file ---------------------------------------------------------------------

IGNORE_FILE = "dlenv.scan-ignore.toml"
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{1,80}")


@dataclass(frozen=True, slots=True)
class Ignore:
    id: str
    reason: str
    expires: dt.date
    package: str | None = None


def parse_ignores(data: Mapping[str, Any], source: str) -> tuple[Ignore, ...]:
    """``[[ignore]]`` entries: ``id``, ``reason`` and ``expires`` (a date) required,
    ``package`` optional; anything else is an error naming the entry."""
    problems = []
    found = []
    entries = data.get("ignore", [])
    unknown = set(data) - {"ignore"}
    if unknown or not isinstance(entries, list):
        problems.append(Problem(file=source, key=", ".join(sorted(unknown)) or "ignore",
                                message="the file holds [[ignore]] entries only",
                                fix='write [[ignore]] tables with id, reason and expires'))
        entries = []
    for i, entry in enumerate(entries):
        key = f"ignore[{i}]"
        if not isinstance(entry, dict):
            problems.append(Problem(file=source, key=key, message="not a table"))
            continue
        extra = set(entry) - {"id", "reason", "expires", "package"}
        ident, reason, expires = entry.get("id"), entry.get("reason"), entry.get("expires")
        if extra:
            problems.append(Problem(file=source, key=f"{key}.{sorted(extra)[0]}",
                                    message="unknown key",
                                    fix="use id, reason, expires and package"))
        if not isinstance(ident, str) or not _ID.fullmatch(ident):
            problems.append(Problem(file=source, key=f"{key}.id",
                                    message="an advisory id is required (GHSA-…, CVE-…, DSA-…)"))
        if not isinstance(reason, str) or len(reason.strip()) < 10:
            problems.append(Problem(file=source, key=f"{key}.reason",
                                    message="say why the finding does not apply (10 characters "
                                            "or more)", fix='reason = "the vulnerable function is '
                                                            'not used: …"'))
        if not isinstance(expires, dt.date) or isinstance(expires, dt.datetime):
            problems.append(Problem(file=source, key=f"{key}.expires",
                                    message="an expiry date is required, so that it is looked "
                                            "at again", fix="expires = 2027-03-31 (a TOML date)"))
        package = entry.get("package")
        if package is not None and not isinstance(package, str):
            problems.append(Problem(file=source, key=f"{key}.package", message="a name"))
        if not problems and isinstance(expires, dt.date):
            found.append(Ignore(id=str(ident), reason=str(reason), expires=expires,
                                package=package))
    if problems:
        raise SpecError(problems)
    return tuple(found)


def apply_ignores(findings: Iterable[Finding], ignores: Sequence[Ignore], today: dt.date
                  ) -> tuple[list[Finding], list[Ignore]]:
    """The findings with those an unexpired entry covers marked ignored, and the expired
    entries (each fails the scan)."""
    expired = [i for i in ignores if i.expires < today]
    live = [i for i in ignores if i.expires >= today]
    marked = []
    for f in findings:
        names = {f.id, *f.aliases}
        entry = next((i for i in live if i.id in names and
                      (i.package is None or i.package in (f.package.shown, f.package.name))),
                     None)
        marked.append(replace(f, ignored=entry.reason) if entry else f)
    return marked, expired


def failing(findings: Iterable[Finding], threshold: str | None) -> list[Finding]:
    """The findings, not ignored, at or above ``threshold``."""
    if threshold is None:
        return []
    floor = SEVERITIES.index(threshold)
    return [f for f in findings if f.ignored is None and SEVERITIES.index(f.severity) >= floor]


# --- SARIF -------------------------------------------------------------------------------

_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note",
          "unknown": "warning"}


def sarif(findings: Sequence[Finding], lock_uri: str, tool_version: str) -> dict[str, Any]:
    """A SARIF 2.1.0 log: one rule per advisory, one result per affected package, located
    in the lock (written by hand: SARIF's Python object models add nothing over a dict)."""
    rules: dict[str, dict[str, Any]] = {}
    results = []
    for f in findings:
        rules.setdefault(f.id, {
            "id": f.id, "shortDescription": {"text": f.summary or f.id},
            "helpUri": f"https://osv.dev/vulnerability/{f.id}",
            "properties": {"security-severity": str(f.score) if f.score is not None else "",
                           "tags": ["security", f.package.ecosystem]}})
        fix = f"fixed in {', '.join(f.fixed)}" if f.fixed else "no fixed version yet"
        result: dict[str, Any] = {
            "ruleId": f.id, "level": _LEVEL[f.severity],
            "message": {"text": f"{f.package.shown} {f.package.version} ({f.package.ecosystem}):"
                                f" {f.severity}, {fix}"},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": lock_uri}}}]}
        if f.ignored:
            result["suppressions"] = [{"kind": "external", "justification": f.ignored}]
        results.append(result)
    return {"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
            "runs": [{"tool": {"driver": {"name": "dlenv", "version": tool_version,
                                          "informationUri": "https://pypi.org/project/dlenv/",
                                          "rules": list(rules.values())}},
                      "results": results}]}
