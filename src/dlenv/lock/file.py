"""``dlenv.lock`` as text: ``dumps`` writes canonical TOML (the same lock gives the same bytes);
``loads`` reads it strictly, because a lock arrives with ``git clone`` like any other input.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import tomli_w
from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from dlenv.errors import LockError, StaleLockError
from dlenv.fsutil import shorten, write_atomic
from dlenv.lock.model import (
    LOCK_VERSION,
    TARGET_FIELDS,
    TARGET_LISTS,
    Lock,
    LockedBase,
    LockedDeb,
    LockedSdist,
    LockedTarget,
    LockedWheel,
)
from dlenv.lock.names import LOCK_FILE
from dlenv.spec import IMAGE_RE, PROFILE_NAMES, SUITES

_HEADER = "# dlenv.lock: written by `dlenv lock`; do not edit. Artefacts are pinned by sha256.\n"
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None and v != () and v != []}


def _sdist_table(sdist: LockedSdist | None) -> dict[str, Any] | None:
    if sdist is None:
        return None
    return {"url": sdist.url, "sha256": sdist.sha256, "size": sdist.size, "epoch": sdist.epoch,
            "build_requires": list(sdist.build_requires)}


def dumps(lock: Lock) -> str:
    """Canonical text of a lock: same lock, same bytes."""
    doc: dict[str, Any] = {
        "version": lock.version,
        "spec_digest": lock.spec_digest,
        "source_date_epoch": lock.source_date_epoch,
        "target": lock.target.to_dict(),
        "base": _drop_none({
            "kind": lock.base.kind, "suite": lock.base.suite, "ref": lock.base.ref,
            "digest": lock.base.digest, "release_sha256": lock.base.release_sha256,
        }),
    }
    if lock.wheels:
        doc["wheels"] = [
            _drop_none({"name": w.name, "version": w.version, "filename": w.filename,
                        "url": w.url if w.sdist is None else None, "sha256": w.sha256,
                        "size": w.size,
                        "profiles": list(w.profiles), "sdist": _sdist_table(w.sdist)})
            for w in sorted(lock.wheels)
        ]
    if lock.debs:
        doc["debs"] = [
            _drop_none({"name": d.name, "version": d.version, "architecture": d.architecture,
                        "filename": d.filename, "sha256": d.sha256, "size": d.size,
                        "profiles": list(d.profiles), "suite": d.suite or None})
            for d in sorted(lock.debs)
        ]
    return _HEADER + tomli_w.dumps(doc, multiline_strings=False)


_NAME_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")  # canonical distribution names
_URL_RE = re.compile(r"https?://[^\s\x00-\x1f\x7f\"'<>\\]{1,2000}")
_UPDATES_RE = re.compile(r"[a-z]{2,16}-(?:updates|security)")  # checked against base.suite too
_DEB_NAME_RE = re.compile(r"[a-z0-9][a-z0-9+.-]{0,127}")
_DEB_VERSION_RE = re.compile(r"[A-Za-z0-9.+~:-]{1,128}")
_DEB_PATH_RE = re.compile(r"pool/(?:[A-Za-z0-9+_~-][A-Za-z0-9+._~-]*/)+[A-Za-z0-9+._~-]+\.deb")
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_PIN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.+!_-]+( --hash=sha256:[0-9a-f]{64})+")
_PURE_TAGS = ("py3-none-any", "py2.py3-none-any")
# Target values: versions, names, requirements, URLs and reasons; one line of printable text.
_TARGET_TEXT_RE = re.compile(r"[^\x00-\x1f\x7f]{1,2000}")
_PYTHON_RE = re.compile(r"3\.\d{1,2}")
MAX_EPOCH = 253402300799  # 9999-12-31T23:59:59Z, the last second RFC 3339 can write
MAX_LOCK_BYTES = 32 << 20
_TOP_KEYS = ("version", "spec_digest", "source_date_epoch", "target", "base", "wheels", "debs")


class _Reader:
    """Reads the untrusted lock document field by field, collecting every problem."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def bad(self, where: str, message: str) -> None:
        self.problems.append(f"{self.source}: {where}: {message}")

    def get(self, table: dict[str, Any], key: str, where: str, kind: type,
            required: bool = True) -> Any:
        if key not in table:
            if required:
                self.bad(f"{where}{key}", "missing")
            return None
        value = table[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.bad(f"{where}{key}", f"expected {kind.__name__}")
            return None
        return value

    def text(self, table: dict[str, Any], key: str, where: str, pattern: re.Pattern[str],
             required: bool = True) -> str:
        value = self.get(table, key, where, str, required) or ""
        if value and not pattern.fullmatch(value):
            self.bad(f"{where}{key}", f"{shorten(value)} is not allowed here")
            return ""
        return value

    def number(self, table: dict[str, Any], key: str, where: str, high: int) -> int:
        value = self.get(table, key, where, int)
        if value is not None and not 0 <= value <= high:
            self.bad(f"{where}{key}", f"{shorten(value)} is out of range (0 to {high})")
            return 0
        return value or 0

    def sha(self, table: dict[str, Any], where: str) -> str:
        return self.text(table, "sha256", where, _SHA_RE)

    def profiles(self, table: dict[str, Any], where: str) -> tuple[str, ...]:
        value = self.get(table, "profiles", where, list, required=False) or []
        if not all(isinstance(p, str) and p in PROFILE_NAMES for p in value) or \
                len(set(value)) != len(value):
            self.bad(f"{where}profiles", f"profiles are {', '.join(PROFILE_NAMES)}, each once")
            return ()
        return tuple(value)

    def entries(self, data: dict[str, Any], key: str) -> list[tuple[str, dict[str, Any]]]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(x, dict) for x in value):
            self.bad(key, "expected an array of tables")
            return []
        return [(f"{key}[{i}].", x) for i, x in enumerate(value)]


def _wheel(r: _Reader, where: str, w: dict[str, Any]) -> LockedWheel:
    sdist = _sdist(r, where, w["sdist"]) if isinstance(w.get("sdist"), dict) else None
    if "sdist" in w and sdist is None:
        r.bad(f"{where}sdist", "expected a table")
    wheel = LockedWheel(
        name=r.text(w, "name", where, _NAME_RE), version=r.get(w, "version", where, str) or "",
        filename=r.get(w, "filename", where, str) or "",
        url=r.text(w, "url", where, _URL_RE, required="sdist" not in w),
        sha256=r.sha(w, where), size=r.number(w, "size", where, 1 << 40),
        profiles=r.profiles(w, where), sdist=sdist)
    if sdist is not None and (wheel.url or not wheel.filename.endswith(
            tuple(f"-{t}.whl" for t in _PURE_TAGS))):
        r.bad(f"{where}sdist", "a wheel built from an sdist is pure Python and has no url")
    try:
        name, version, _, _ = parse_wheel_filename(wheel.filename)
        if name != wheel.name or version != Version(wheel.version):
            r.bad(f"{where}filename", f"{shorten(wheel.filename)} is not {wheel.name} "
                  f"{shorten(wheel.version)}")
    except (InvalidWheelFilename, InvalidVersion):
        r.bad(f"{where}filename", f"{shorten(wheel.filename)} is not a wheel's file name")
    if wheel.url and unquote(urlsplit(wheel.url).path).rsplit("/", 1)[-1] != wheel.filename:
        r.bad(f"{where}url", f"{shorten(wheel.url)} does not name {shorten(wheel.filename)}")
    return wheel


def _sdist(r: _Reader, where: str, d: dict[str, Any]) -> LockedSdist:
    where += "sdist."
    sdist = LockedSdist(
        url=r.text(d, "url", where, _URL_RE), sha256=r.sha(d, where),
        size=r.number(d, "size", where, 1 << 36), epoch=r.number(d, "epoch", where, MAX_EPOCH),
        build_requires=tuple(r.get(d, "build_requires", where, list) or ()))
    if not all(isinstance(x, str) and _PIN_RE.fullmatch(x) for x in sdist.build_requires):
        r.bad(f"{where}build_requires", "expected pins like 'name==1.0 --hash=sha256:…'")
    if sdist.url and not sdist.url.endswith((".tar.gz", ".zip")):
        r.bad(f"{where}url", f"{shorten(sdist.url)} is not an sdist")
    return sdist


def _target(r: _Reader, t: dict[str, Any]) -> LockedTarget:
    """The ``[target]`` table: known fields only, strings and lists of strings, bounded."""
    values: dict[str, Any] = {}
    for key, value in t.items():
        where = f"target.{key}"
        if key not in TARGET_FIELDS:
            r.bad(f"target.{shorten(key, 40)}", "unknown key")
        elif key in TARGET_LISTS:
            if not isinstance(value, list) or len(value) > 64 or not all(
                    isinstance(x, str) and _TARGET_TEXT_RE.fullmatch(x) for x in value):
                r.bad(where, "expected a short list of strings")
            else:
                values[key] = tuple(value)
        elif not isinstance(value, str) or not _TARGET_TEXT_RE.fullmatch(value):
            r.bad(where, f"{shorten(value)} is not allowed here")
        else:
            values[key] = value
    python = values.pop("python", "")
    if not _PYTHON_RE.fullmatch(python):
        r.bad("target.python", f"{shorten(t.get('python'))} is not a Python version")
    return LockedTarget(python=python, **values)


def _deb(r: _Reader, where: str, d: dict[str, Any]) -> LockedDeb:
    return LockedDeb(
        name=r.text(d, "name", where, _DEB_NAME_RE),
        version=r.text(d, "version", where, _DEB_VERSION_RE),
        architecture=r.text(d, "architecture", where, re.compile(r"[a-z0-9]{1,16}")),
        filename=r.text(d, "filename", where, _DEB_PATH_RE), sha256=r.sha(d, where),
        size=r.number(d, "size", where, 1 << 40), profiles=r.profiles(d, where),
        suite=r.text(d, "suite", where, _UPDATES_RE, required=False) or "")


def _base(r: _Reader, data: dict[str, Any]) -> LockedBase:
    table = r.get(data, "base", "", dict) or {}
    kind = r.get(table, "kind", "base.", str) or ""
    if kind == "debian":
        suite = r.get(table, "suite", "base.", str) or ""
        if suite not in SUITES:
            r.bad("base.suite", f"{shorten(suite)} is not one of {', '.join(SUITES)}")
        release = r.text(table, "release_sha256", "base.", _SHA_RE, required=False) or None
        if "ref" in table or "digest" in table:
            r.bad("base", "a Debian base has no ref or digest")
        return LockedBase(kind=kind, suite=suite, release_sha256=release)
    if kind == "image":
        return LockedBase(kind=kind, ref=r.text(table, "ref", "base.", IMAGE_RE),
                          digest=r.text(table, "digest", "base.", _DIGEST_RE))
    if kind:
        r.bad("base.kind", f"{shorten(kind)} is not debian or image")
    return LockedBase(kind=kind)


def _duplicates(r: _Reader, what: str, keys: list[tuple[str, ...]]) -> None:
    seen: set[tuple[str, ...]] = set()
    for key in keys:
        if key in seen:
            r.bad(what, f"{' '.join(key)} is listed twice")
        seen.add(key)


def loads(text: str, source: str = LOCK_FILE) -> Lock:
    """Parse a lock strictly: every field's type, range and form is checked, because a lock
    arrives with ``git clone`` like any other input (``LockError`` lists each problem)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LockError(f"{source}: not valid TOML: {exc}", fix="run 'dlenv lock' again") from None
    except RecursionError:
        raise LockError(f"{source}: values nested too deeply", fix="run 'dlenv lock' again"
                        ) from None
    r = _Reader(source)
    version = r.get(data, "version", "", int)
    if version is not None and version < LOCK_VERSION:
        raise StaleLockError(f"{source} was made by an older dlenv (lock version {version})",
                             fix="run 'dlenv lock' to update it")
    if version is not None and version != LOCK_VERSION:
        raise LockError(f"{source}: lock version {shorten(version)} is not {LOCK_VERSION}",
                        fix="run 'dlenv lock' with this dlenv")
    for key in data:
        if key not in _TOP_KEYS:
            r.bad(shorten(key, 40), "unknown key")
    wheels = [_wheel(r, where, w) for where, w in r.entries(data, "wheels")]
    debs = [_deb(r, where, d) for where, d in r.entries(data, "debs")]
    _duplicates(r, "wheels", [(w.name,) for w in wheels])
    _duplicates(r, "debs", [(d.name, d.architecture) for d in debs])
    target = _target(r, r.get(data, "target", "", dict) or {})
    base = _base(r, data)
    for d in debs:
        if d.suite and d.suite.rsplit("-", 1)[0] != base.suite:
            r.bad(f"debs.{d.name}.suite", f"{d.suite} is not an update suite of {base.suite}")
    lock = Lock(
        spec_digest=r.text(data, "spec_digest", "", _DIGEST_RE),
        source_date_epoch=r.number(data, "source_date_epoch", "", MAX_EPOCH),
        target=target, base=base, wheels=tuple(wheels), debs=tuple(debs),
        source=source,
    )
    if r.problems:
        shown = r.problems[:20] + ([f"… and {len(r.problems) - 20} more"]
                                   if len(r.problems) > 20 else [])
        raise LockError("\n".join(shown), fix="run 'dlenv lock' to rewrite the lock")
    return lock


def read_lock(path: Path) -> Lock:
    if not path.is_file():
        raise LockError(f"{path}: no lock file", fix=f"run 'dlenv lock {path.parent}'")
    raw = path.read_bytes()
    if len(raw) > MAX_LOCK_BYTES:
        raise LockError(f"{path}: {len(raw)} bytes is too large for a lock",
                        fix="run 'dlenv lock' to rewrite it")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise LockError(f"{path}: not UTF-8 text", fix="run 'dlenv lock' to rewrite it"
                        ) from None
    return loads(text, source=str(path))


def write_lock(path: Path, lock: Lock) -> None:
    write_atomic(path, dumps(lock).encode())
