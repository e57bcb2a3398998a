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


def test_an_image_is_scanned_from_its_layers_like_its_lock(tmp_path_factory):
    """The same project built: its image in dlenv's store, read from its layers (dist-info
    names, dpkg's database with source packages), gives the lock's findings."""
    root, cache = locked_project(tmp_path_factory, {"dlenv.toml": SPEC})
    built = run_dlenv("build", str(root), "--cache-dir", str(cache), "--json", timeout=900)
    assert built.returncode == 0, built.stderr[-2000:]
    tag = json.loads(built.stdout)["tag"]
    r = run_dlenv("scan", tag, "--db", str(OSV), "--format", "json", "--cache-dir",
                  str(cache), timeout=600)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["target"] == tag and report["notes"] == []
    found = {(f["id"], f["package"], f["version"]) for f in report["findings"]}
    assert found == {("GHSA-j8r2-6x86-q33q", "requests", "2.25.1"),
                     ("GHSA-v845-jxx5-vc9f", "urllib3", "1.26.4")}
    locked = json.loads(run_dlenv("scan", str(root), "--db", str(OSV), "--format", "json",
                                  "--no-security-suite", "--cache-dir", str(cache)).stdout)
    # every .deb and wheel of the lock is in the image (the image has pip's own too)
    assert report["packages"] >= locked["packages"] > 50
