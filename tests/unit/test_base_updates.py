"""Security updates in the Debian base: the newest of the suite, -updates and -security
(Debian's version order), recorded per .deb, downloaded from the right archive."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from dlenv.errors import LockError
from dlenv.lock import LockedDeb, dumps, loads
from dlenv.resolve.debian import (
    Stanza,
    SuiteIndex,
    deb_url,
    find_security_mirror,
    newest,
)
from tests.unit.test_lock import SHA, sample_lock


def index(suite: str, **versions: str) -> SuiteIndex:
    return SuiteIndex(suite=suite, release_sha256=SHA, packages={
        name: Stanza((("Package", name), ("Version", version),
                      ("Filename", f"pool/main/{name[0]}/{name}/{name}_{version}_amd64.deb")))
        for name, version in versions.items()})


def test_each_package_comes_from_whichever_suite_has_it_newest():
    main = index("bookworm", libssl3="3.0.15-1~deb12u1", tzdata="2024a-0+deb12u1",
                 python3="3.11.2-1+b1", bash="5.2.15-2+b2")
    updates = index("bookworm-updates", tzdata="2025b-0+deb12u1")
    security = index("bookworm-security", libssl3="3.0.17-1~deb12u2",
                     tzdata="2025a-0+deb12u1",  # older than -updates': not taken
                     bash="5.2.15-2+b1")  # older than the suite's (b2 > b1): not taken
    merged = newest(main, [updates, security])
    versions = {n: s.get("Version") for n, s in merged.packages.items()}
    assert versions == {"libssl3": "3.0.17-1~deb12u2", "tzdata": "2025b-0+deb12u1",
                        "python3": "3.11.2-1+b1", "bash": "5.2.15-2+b2"}
    assert merged.origin == {"libssl3": "bookworm-security", "tzdata": "bookworm-updates"}
    assert merged.suite == "bookworm" and merged.release_sha256 == SHA


def test_debian_version_order_with_epochs_and_tildes():
    main = index("bookworm", a="1:1.0-1", b="2.0~rc1-1", c="1.0-1")
    merged = newest(main, [index("bookworm-security", a="2.0-1", b="2.0-1", c="1.0-1")])
    assert merged.origin == {"b": "bookworm-security"}  # 1:1.0 > 2.0; 2.0 > 2.0~rc1


def test_the_suite_a_deb_came_from_is_locked_and_checked_against_the_base():
    deb = LockedDeb(name="libssl3", version="3.0.17-1~deb12u2", architecture="amd64",
                    filename="pool/updates/main/o/openssl/libssl3_3.0.17-1~deb12u2_amd64.deb",
                    sha256=SHA, size=5, suite="bookworm-security")
    lock = replace(sample_lock(), debs=(*sample_lock().debs, deb))
    text = dumps(lock)
    assert 'suite = "bookworm-security"' in text
    assert loads(text).debs == lock.debs
    assert dumps(sample_lock()).count("suite =") == 1  # the base's only: old locks unchanged
    with pytest.raises(LockError, match="not an update suite of bookworm"):
        loads(text.replace('suite = "bookworm-security"', 'suite = "trixie-security"'))
    with pytest.raises(LockError, match="suite"):
        loads(text.replace('suite = "bookworm-security"', 'suite = "bookworm-backports"'))


def test_security_updates_download_from_the_security_archive(tmp_path: Path):
    sources = tmp_path / "debian.sources"
    sources.write_text("Types: deb\nURIs: http://mirror.test/debian\nSuites: bookworm "
                       "bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: "
                       "http://security.test/debian-security\nSuites: bookworm-security\n"
                       "Components: main\n")
    assert find_security_mirror({}, [sources]) == "http://security.test/debian-security"
    legacy = tmp_path / "sources.list"
    legacy.write_text("deb http://mirror.test/debian bookworm main\n"
                      "deb http://sec.test/debian-security bookworm-security main\n")
    assert find_security_mirror({}, [legacy]) == "http://sec.test/debian-security"
    chosen = {"DLENV_DEBIAN_MIRROR": "http://127.0.0.1:8080/debian/"}
    assert find_security_mirror(chosen, [sources]) == "http://127.0.0.1:8080/debian-security"
    assert find_security_mirror({**chosen, "DLENV_DEBIAN_SECURITY_MIRROR": "http://s.test/"},
                                [sources]) == "http://s.test"
    deb = sample_lock().debs[0]
    assert deb_url(deb, chosen) == f"http://127.0.0.1:8080/debian/{deb.filename}"
    assert deb_url(replace(deb, suite="bookworm-security"), chosen) == \
        f"http://127.0.0.1:8080/debian-security/{deb.filename}"
    assert deb_url(replace(deb, suite="bookworm-updates"), chosen).startswith(
        "http://127.0.0.1:8080/debian/")
