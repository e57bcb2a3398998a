"""Security updates in the Debian base, against the real Debian archive: a lock made before
a security update, brought up to date by ``dlenv lock --update-base``, moves only .debs, and
the image's Python layers keep their digests."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest

from dlenv.cache import ContentCache, host_bundle, http_client
from dlenv.lock import LockedDeb, read_lock, write_lock
from dlenv.resolve.debian import fetch_suite, find_mirror
from tests.conftest import locked_project, run_dlenv

pytestmark = pytest.mark.integration
SPEC = 'name = "patched"\npython = "3.11"\npackages = ["six==1.16.0"]\n'


def build(root, cache) -> dict[str, str]:
    r = run_dlenv("build", str(root), "--cache-dir", str(cache), "--json", timeout=900)
    assert r.returncode == 0, r.stderr
    return {layer["name"]: layer["digest"] for layer in json.loads(r.stdout)["layers"]}


def test_update_base_moves_only_the_debs_and_python_layers_keep_their_digests(
        tmp_path_factory):
    root, cache = locked_project(tmp_path_factory, {"dlenv.toml": SPEC})
    current = read_lock(root / "dlenv.lock")
    assert {d.suite for d in current.debs} <= {"", "bookworm-updates", "bookworm-security"}
    # The lock as it was before those updates: each updated .deb at the suite's own version.
    with http_client(host_bundle()) as client:
        suite = fetch_suite(client, find_mirror(os.environ), "bookworm",
                            ContentCache(cache / "blobs"))
    aged = []
    for deb in current.debs:
        if deb.suite and deb.name in suite.packages:
            s = suite.packages[deb.name]
            deb = LockedDeb(name=deb.name, version=s.get("Version"), architecture=deb.architecture,
                            filename=s.get("Filename"), sha256=s.get("SHA256"),
                            size=int(s.get("Size")), profiles=deb.profiles)
        aged.append(deb)
    write_lock(root / "dlenv.lock", current.with_debs(tuple(aged), current.base))
    before = build(root, cache)

    r = run_dlenv("lock", str(root), "--update-base", "--cache-dir", str(cache), "--json")
    assert r.returncode == 0, r.stderr
    moved = {m["name"]: m for m in json.loads(r.stdout)["moved"]}
    changed = {d.name: d for d in current.debs if d.suite and d.name in suite.packages}
    assert set(moved) == set(changed)
    for name, m in moved.items():
        assert (m["after"], m["suite"]) == (changed[name].version, changed[name].suite)
    updated = read_lock(root / "dlenv.lock")
    assert updated.debs == current.debs
    assert (updated.wheels, updated.source_date_epoch, updated.spec_digest) == \
        (current.wheels, current.source_date_epoch, current.spec_digest)

    after = build(root, cache)  # the security .debs download from the security archive
    base = "debian bookworm base"
    assert (before[base] != after[base]) == bool(moved)
    assert {k: v for k, v in after.items() if k != base} == \
        {k: v for k, v in before.items() if k != base}  # every Python layer, byte for byte

    again = run_dlenv("lock", str(root), "--update-base", "--cache-dir", str(cache), "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["moved"] == []
    assert run_dlenv("lock", str(root), "--check").returncode == 0
    assert replace(updated, source="") == replace(read_lock(root / "dlenv.lock"), source="")
