"""`dlenv scan` on a lock made from real PyPI and Debian with versions that have published
advisories (requests 2.25.1, urllib3 1.26.4), against the advisories' facts in
tests/fixtures/osv, with Debian's real -security suite asked for newer .debs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import locked_project, run_dlenv

pytestmark = pytest.mark.integration

OSV = Path(__file__).resolve().parent.parent / "fixtures/osv"
SPEC = """name = "old-requests"
python = "3.11"
packages = ["requests==2.25.1", "urllib3==1.26.4"]
"""


def test_a_real_lock_with_old_pins_gets_their_advisories_and_the_security_suite(
        tmp_path_factory):
    root, cache = locked_project(tmp_path_factory, {"dlenv.toml": SPEC})
    r = run_dlenv("scan", str(root), "--db", str(OSV), "--format", "json", "--fail-on",
                  "medium", "--cache-dir", str(cache), timeout=600)
    assert r.returncode == 1, r.stderr  # two medium findings
    report = json.loads(r.stdout)
    found = {(f["id"], f["package"], f["version"], f["severity"]) for f in report["findings"]}
    assert found == {("GHSA-j8r2-6x86-q33q", "requests", "2.25.1", "medium"),
                     ("GHSA-v845-jxx5-vc9f", "urllib3", "1.26.4", "medium")}
    # the lock's glibc is today's bookworm: DSA-5514-1 (fixed in 2.36-9+deb12u3) is not found
    assert all(f["source"] != "glibc" for f in report["findings"])
    # Debian's security suite was read (no note says otherwise); what it has newer is
    # from -security, and newer than the lock's by dpkg's ordering
    assert report["notes"] == [], report["notes"]
    from debian.debian_support import Version

    for update in report["security_updates"]:
        assert update["suite"].endswith("-security")
        assert Version(update["newer"]) > Version(update["locked"])
    text = run_dlenv("scan", str(root), "--db", str(OSV), "--cache-dir", str(cache),
                     timeout=600)
    assert text.returncode == 0 and "GHSA-j8r2-6x86-q33q" in text.stdout
