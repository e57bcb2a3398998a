"""Air-gapped bundles: made on a machine with a network, imported on one without, built
there in a network namespace with no network to the same image digest; a tampered or
truncated bundle is refused with the member named; a bundle seeds a registry."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile

import pytest

from tests.conftest import locked_project, run_dlenv

pytestmark = pytest.mark.integration
SPEC = 'name = "airgap"\npython = "3.11"\npackages = ["six==1.16.0"]\napt = ["libgomp1"]\n'


def test_a_bundle_builds_offline_to_the_same_digest_and_is_checked_member_by_member(
        tmp_path_factory, registry):
    root, cache = locked_project(tmp_path_factory, {"dlenv.toml": SPEC})
    work = tmp_path_factory.mktemp("airgap")
    r = run_dlenv("build", str(root), "--cache-dir", str(cache), "--json")
    assert r.returncode == 0, r.stderr
    online = json.loads(r.stdout)["digest"]
    bundle = work / "airgap.tar"
    elsewhere = work / "default-cache"  # --cache-dir, not the default cache, is used
    r = run_dlenv("bundle", "create", str(root), "-o", str(bundle), "--cache-dir", str(cache),
                  "--json", env={"DLENV_CACHE_DIR": str(elsewhere)})
    assert r.returncode == 0, r.stderr
    assert not (elsewhere / "store").exists()
    made = json.loads(r.stdout)
    assert made["images"] == [{"tag": "airgap:latest", "manifest": online}]

    offline, projects = work / "offline-cache", work / "projects"
    r = run_dlenv("bundle", "import", str(bundle), "--cache-dir", str(offline), "--projects",
                  str(projects), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["members"] == made["members"]
    no_network = subprocess.run(
        ["unshare", "--net", sys.executable, "-m", "dlenv", "build", str(projects / "airgap"),
         "--cache-dir", str(offline), "--json"], capture_output=True, text=True, check=False)
    assert no_network.returncode == 0, no_network.stderr
    rebuilt = json.loads(no_network.stdout)
    assert rebuilt["digest"] == online
    assert not any(layer["reused"] for layer in rebuilt["layers"])  # built from the bundle

    with tarfile.open(bundle) as tar:
        member = max((m for m in tar.getmembers() if m.name.startswith("files/")),
                     key=lambda m: m.size)
    data = bytearray(bundle.read_bytes())
    data[member.offset_data + member.size // 2] ^= 0xFF
    tampered = work / "tampered.tar"
    tampered.write_bytes(bytes(data))
    r = run_dlenv("bundle", "import", str(tampered), "--cache-dir", str(work / "c2"))
    assert r.returncode == 3 and member.name in r.stderr, r.stderr
    truncated = work / "truncated.tar"
    truncated.write_bytes(bundle.read_bytes()[:member.offset_data + member.size // 2])
    r = run_dlenv("bundle", "import", str(truncated), "--cache-dir", str(work / "c3"))
    assert r.returncode == 3 and "truncated" in r.stderr, r.stderr

    r = run_dlenv("bundle", "push", str(bundle), f"{registry}/seed", "--cache-dir",
                  str(work / "c4"), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["pushed"][0]["ref"] == f"{registry}/seed/airgap:latest"
    r = run_dlenv("pull", f"{registry}/seed/airgap@{online}", "--cache-dir", str(work / "c5"))
    assert r.returncode == 0, r.stderr
