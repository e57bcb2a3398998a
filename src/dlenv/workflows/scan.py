"""``scan``: the project's locked packages (or a lock file's) against an OSV database that a
team keeps offline (a directory or zip of OSV records), plus Debian's security suite itself:
a newer .deb there is reported with the command that takes it."""

from __future__ import annotations

import datetime as dt
import json
import re
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from dlenv.audit.diff import Inventory
from dlenv.audit.sbom import deb_source
from dlenv.audit.scan import (
    DEBIAN_RELEASES,
    IGNORE_FILE,
    Finding,
    Ignore,
    Package,
    apply_ignores,
    match,
    osv_queries,
    parse_ignores,
)
from dlenv.errors import FetchError, IntegrityError, LockError, UsageError
from dlenv.fsutil import shorten
from dlenv.lock import Lock, read_lock
from dlenv.spec import IMAGE_RE
from dlenv.workflows.report import Reporter, Silent

MAX_RECORD = 4 << 20  # one OSV record; a bigger file is not one


@dataclass(frozen=True, slots=True)
class SecurityUpdate:
    name: str
    locked: str
    newer: str
    suite: str


@dataclass(frozen=True, slots=True)
class ScanReport:
    target: str  # what was scanned (the lock's path)
    packages: int
    records: int
    findings: tuple[Finding, ...]
    expired: tuple[Ignore, ...]
    updates: tuple[SecurityUpdate, ...]  # newer .debs in the -security suite
    notes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "packages": self.packages, "records": self.records,
                "findings": [f.to_json() for f in self.findings],
                "expired_ignores": [{"id": i.id, "expires": i.expires.isoformat(),
                                     "reason": i.reason} for i in self.expired],
                "security_updates": [{"package": u.name, "locked": u.locked,
                                      "newer": u.newer, "suite": u.suite}
                                     for u in self.updates],
                "notes": list(self.notes)}


def lock_packages(lock: Lock, profile: str | None) -> list[Package]:
    """The lock's packages as advisories name them: PyPI by canonical name, Debian by
    source package (the binary's name is what is shown); every profile's unless one is
    named."""
    wheels = lock.wheels if profile is None else lock.wheels_for(profile)
    debs = lock.debs if profile is None else lock.debs_for(profile)
    found = [Package("PyPI", str(canonicalize_name(w.name)), w.version, w.name)
             for w in wheels]
    found += [Package("Debian", deb_source(d) or d.name, d.version, d.name) for d in debs]
    return list(dict.fromkeys(found))


def read_records(db: Path) -> Iterator[dict[str, Any]]:
    """Every OSV record of a directory (``*.json``, at any depth) or a zip of them (the form
    osv.dev's per-ecosystem exports take)."""
    def parse(name: str, data: bytes) -> dict[str, Any]:
        try:
            record = json.loads(data)
        except ValueError as exc:
            raise UsageError(f"{name} in the OSV database {db} is not JSON: {exc}") from None
        if not isinstance(record, dict) or "id" not in record:
            raise UsageError(f"{name} in the OSV database {db} is not an OSV record")
        return record

    if db.is_dir():
        for path in sorted(db.rglob("*.json")):
            if path.stat().st_size <= MAX_RECORD:
                yield parse(str(path.relative_to(db)), path.read_bytes())
    elif zipfile.is_zipfile(db):
        with zipfile.ZipFile(db) as archive:
            for info in archive.infolist():
                if info.filename.endswith(".json") and info.file_size <= MAX_RECORD:
                    yield parse(info.filename, archive.read(info))
    else:
        raise UsageError(f"--db {shorten(str(db))} is neither a directory nor a zip of OSV "
                         "records", fix="download an ecosystem's all.zip from OSV's bucket "
                         "(or mirror it), and pass its path")


def read_ignores(path: Path) -> tuple[Ignore, ...]:
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path} is not TOML: {exc}") from None
    return parse_ignores(data, str(path))


def image_packages(image: Inventory) -> list[Package]:
    """An image's packages as advisories name them, read from its layers (``dlenv diff``'s
    side): any image, not only dlenv's."""
    found = [Package("PyPI", name, version, name) for name, version in image.python_packages]
    sources = {name: (source, version) for name, source, version in image.deb_sources}
    for name, version in image.debs:
        source, source_version = sources.get(name, (name, version))
        found.append(Package("Debian", source, source_version, name))
    return list(dict.fromkeys(found))


OSV_BATCH = 1000  # queries in one /v1/querybatch request (the API's limit)
MAX_ADVISORIES = 5000  # advisories fetched for one scan: an image has hundreds at most
MAX_PAGES = 10  # pages of one query's answer
_ADVISORY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")


def osv_api_records(url: str, packages: list[Package], release: str | None,
                    report: Reporter) -> Iterator[dict[str, Any]]:
    """The OSV records that affect ``packages``, from the OSV API at ``url``: the ids from
    ``/v1/querybatch``, then each record whole from ``/v1/vulns/ID`` (matched here like an
    offline record, so both paths judge versions the same way)."""
    import httpx

    from dlenv.cache import describe_transport_error, host_bundle, http_client

    queries = osv_queries(packages, release)
    ids: list[str] = []
    try:
        with http_client(host_bundle()) as client:
            report.step(f"asking {url} about {len(queries)} packages")
            for start in range(0, len(queries), OSV_BATCH):
                pending: list[tuple[dict[str, Any], str | None]] = [
                    (q, None) for q in queries[start:start + OSV_BATCH]]
                for _ in range(MAX_PAGES):
                    r = client.post(f"{url}/v1/querybatch", json={"queries": [
                        {**q, "page_token": token} if token else q for q, token in pending]})
                    r.raise_for_status()
                    results = r.json().get("results") or []
                    again: list[tuple[dict[str, Any], str | None]] = []
                    for (query, _), result in zip(pending, results, strict=False):
                        result = result if isinstance(result, dict) else {}
                        ids += [str(v.get("id")) for v in result.get("vulns") or ()
                                if isinstance(v, dict)]
                        if result.get("next_page_token"):
                            again.append((query, str(result["next_page_token"])))
                    if not again:
                        break
                    pending = again
            wanted = [i for i in dict.fromkeys(ids) if _ADVISORY_ID.fullmatch(i)]
            report.step(f"reading {min(len(wanted), MAX_ADVISORIES)} advisories from {url}")
            for ident in wanted[:MAX_ADVISORIES]:
                r = client.get(f"{url}/v1/vulns/{ident}")
                r.raise_for_status()
                record = r.json()
                if isinstance(record, dict) and "id" in record:
                    yield record
    except httpx.TransportError as exc:
        raise FetchError(f"the OSV API at {url} cannot be reached "
                         f"({describe_transport_error(exc)})",
                         fix="pass --db PATH: a directory or zip of OSV records kept offline "
                             "(osv.dev's per-ecosystem all.zip), or set scan.osv-url to a "
                             "mirror") from None
    except (httpx.HTTPStatusError, ValueError) as exc:
        raise FetchError(f"the OSV API at {url} answered badly ({exc})",
                         fix="pass --db PATH: an offline copy of the records") from None


def scan(target: str, *, db: Path | None, profile: str | None = None,
         ignore: Path | None = None, security_suite: bool = True,
         cache_dir: str | None = None, osv_url: str | None = None,
         today: dt.date | None = None, reporter: Reporter | None = None) -> ScanReport:
    """Scan a spec directory's lock (as it is), a lock file, or an image (in dlenv's store,
    the engine or a registry: its packages read from its layers), against the OSV records
    in ``db`` (a directory or zip), else those the OSV API at ``osv_url`` returns."""
    report = reporter or Silent()
    path = Path(target)
    lock_file = path / "dlenv.lock" if path.is_dir() else path
    lock = None
    if lock_file.is_file():
        lock = read_lock(lock_file)
        packages = lock_packages(lock, profile)
        release = DEBIAN_RELEASES.get(lock.base.suite or "")
        where = lock_file.parent
    elif not path.exists() and IMAGE_RE.fullmatch(target):
        from dlenv.workflows.diff import read_side

        image = read_side(target, cache_dir=cache_dir, reporter=report)
        packages = image_packages(image)
        suite = (image.base or "").removeprefix("debian ")
        release = DEBIAN_RELEASES.get(suite)
        where = Path.cwd()
    else:
        raise UsageError(f"no lock at {shorten(str(lock_file))}",
                         fix="run 'dlenv lock' first, or name a dlenv.lock or an image")
    if ignore is None and (where / IGNORE_FILE).is_file():
        ignore = where / IGNORE_FILE
    ignores = read_ignores(ignore) if ignore is not None else ()
    if db is None and osv_url is None:
        raise UsageError("no OSV records to scan against", fix="pass --db PATH, or set "
                         "scan.osv-url in the team configuration")
    report.step(f"matching {len(packages)} packages against {db or osv_url}")
    findings: list[Finding] = []
    records = 0
    source = read_records(db) if db is not None else \
        osv_api_records(str(osv_url).rstrip("/"), packages, release, report)
    for record in source:
        records += 1
        findings += match(record, packages, release)
    findings.sort(key=lambda f: (f.package.ecosystem, f.package.shown, f.id))
    marked, expired = apply_ignores(findings, ignores, today or dt.date.today())
    notes: list[str] = []
    updates: tuple[SecurityUpdate, ...] = ()
    if security_suite and lock is not None and lock.base.kind == "debian" and path.is_dir():
        updates, note = _security_updates(path, lock, cache_dir, report)
        notes += [note] if note else []
    elif lock is None and release is None and any(p.ecosystem == "Debian" for p in packages):
        notes.append("the image's Debian release is unknown (no os-release): its .debs were "
                     "matched against no Debian advisory")
    return ScanReport(target=str(lock_file) if lock else target, packages=len(packages),
                      records=records,
                      findings=tuple(marked), expired=tuple(expired), updates=updates,
                      notes=tuple(notes))


def _security_updates(directory: Path, lock: Lock, cache_dir: str | None, report: Reporter
                      ) -> tuple[tuple[SecurityUpdate, ...], str | None]:
    """The .debs of the lock that Debian's -security suite has newer (what ``dlenv lock
    --update-base`` would take), read from the mirror; a note when it cannot be reached."""
    from dlenv.resolve.debian import lock_debs
    from dlenv.workflows.project import open_project

    report.step(f"reading Debian {lock.base.suite}-security")
    project = open_project(str(directory))
    try:
        newest = lock_debs(lock, project.spec, cache_dir=cache_dir)
    except (FetchError, LockError, IntegrityError) as exc:
        return (), f"Debian's security suite was not read: {exc.message}"
    old = {d.name: d.version for d in lock.debs}
    return tuple(SecurityUpdate(d.name, old[d.name], d.version, d.suite)
                 for d in newest.debs
                 if d.name in old and old[d.name] != d.version and d.security), None
