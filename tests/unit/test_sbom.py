"""SBOMs from the examples' real locks: purls, hashes, vendored distributions, CUDA libraries,
and documents that pass the CycloneDX 1.6 and SPDX 2.3 validators."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from dlenv.audit.sbom import (
    Subject,
    WheelInfo,
    cyclonedx_json,
    inventory,
    read_wheel,
    spdx_json,
)
from dlenv.lock import read_lock

LOCKS = Path(__file__).resolve().parent.parent / "fixtures/locks"
SUBJECT = Subject(name="tensorflow-cpu", tag="tensorflow-cpu:latest",
                  digest="sha256:" + "ab" * 32, base="debian:bookworm", created=1_700_000_000)


def metadata(name: str, version: str, **more: str) -> str:
    return "".join(f"{k.replace('_', '-')}: {v}\n" for k, v in
                   {"Metadata-Version": "2.4", "Name": name, "Version": version,
                    **more}.items())


def test_a_wheels_license_and_what_it_vendors_come_from_its_own_metadata(tmp_path):
    wheel = tmp_path / "setuptools-80.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("setuptools-80.0.0.dist-info/METADATA",
                   metadata("setuptools", "80.0.0", License_Expression="MIT"))
        z.writestr("setuptools/_vendor/packaging-24.2.dist-info/METADATA",
                   metadata("packaging", "24.2"))
        z.writestr("pkg_resources/tests/data/my_test_package-1.0-py3.7.egg/EGG-INFO/PKG-INFO",
                   metadata("my-test-package", "1.0"))
        z.writestr("setuptools/_vendor/packaging-24.2.dist-info/RECORD", "")
    assert read_wheel(wheel) == WheelInfo(
        license="MIT", bundled=(("my-test-package", "1.0"), ("packaging", "24.2")))
    long_text = tmp_path / "x-1-py3-none-any.whl"
    with zipfile.ZipFile(long_text, "w") as z:  # a License field holding the whole text
        z.writestr("x-1.dist-info/METADATA", metadata("x", "1") + "License: Copyright (c)\n"
                   "        Permission is hereby granted\n")
    assert read_wheel(long_text) == WheelInfo()


def test_debs_and_wheels_become_components_with_purls_and_hashes():
    lock = read_lock(LOCKS / "tensorflow-cpu.lock")
    setuptools = next(w for w in lock.wheels if w.name == "setuptools")
    found = inventory(lock, None, {setuptools.sha256: WheelInfo(
        license="MIT", bundled=(("packaging", "24.2"),))})
    by = {(c.ecosystem, c.name, c.bundled_in != ""): c for c in found}
    libc = by[("deb", "libc6", False)]
    assert libc.purl.startswith(f"pkg:deb/debian/libc6@{libc.version.replace('+', '%2B')}?")
    assert libc.purl.endswith("?arch=amd64&upstream=glibc&distro=debian-12")
    assert libc.source == "glibc" and len(libc.sha256) == 64
    tf = by[("pypi", "tensorflow", False)]
    assert tf.purl == f"pkg:pypi/tensorflow@{tf.version}" and not tf.cuda
    vendored = by[("pypi", "packaging", True)]
    assert vendored.bundled_in == f"pkg:pypi/setuptools@{setuptools.version}"
    assert vendored.sha256 == "" and by[("pypi", "setuptools", False)].license == "MIT"
    assert len([c for c in found if c.ecosystem == "deb"]) == len(lock.debs_for(None))

    gpu = read_lock(LOCKS / "tensorflow-gpu.lock")
    cuda = {c.name for c in inventory(gpu, None, {}) if c.cuda}
    assert "nvidia-cudnn-cu12" in cuda and "tensorflow" not in cuda


def test_both_documents_validate_and_name_the_image_by_digest():
    lock = read_lock(LOCKS / "tensorflow-cpu.lock")
    setuptools = next(w for w in lock.wheels if w.name == "setuptools")
    packaging = next(w for w in lock.wheels if w.name == "packaging")
    # a vendored copy at the very version of a wheel of the image: two components
    found = inventory(lock, None, {setuptools.sha256: WheelInfo(
        license="Apache License, Version 2.0", bundled=(("packaging", packaging.version),))})

    cdx = json.loads(cyclonedx_json(SUBJECT, found))
    assert cdx["specVersion"] == "1.6"
    subject = cdx["metadata"]["component"]
    assert subject["purl"].startswith("pkg:oci/tensorflow-cpu@sha256")
    assert subject["hashes"] == [{"alg": "SHA-256", "content": "ab" * 32}]
    assert len(cdx["components"]) == len(found)
    refs = [c["bom-ref"] for c in cdx["components"]]
    assert len(set(refs)) == len(refs)
    st = next(c for c in cdx["components"] if c["name"] == "setuptools")
    assert st["licenses"] == [{"license": {"name": "Apache License, Version 2.0"}}]
    inside = next(d for d in cdx["dependencies"] if d["ref"] == st["bom-ref"])
    assert inside["dependsOn"] == [
        f"pkg:pypi/packaging@{packaging.version}#bundled-by:{st['purl']}"]

    spdx = json.loads(spdx_json(SUBJECT, found))
    assert spdx["spdxVersion"] == "SPDX-2.3"
    assert {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
            "relatedSpdxElement": "SPDXRef-Image"} in spdx["relationships"]
    assert len(spdx["packages"]) == len(found) + 1
    image = next(p for p in spdx["packages"] if p["SPDXID"] == "SPDXRef-Image")
    assert image["checksums"] == [{"algorithm": "SHA256", "checksumValue": "ab" * 32}]
    st = next(p for p in spdx["packages"] if p["name"] == "setuptools")
    assert st["licenseDeclared"] == "NOASSERTION"  # not an SPDX expression: not asserted
    tf = next(p for p in spdx["packages"] if p["name"] == "tensorflow")
    assert tf["externalRefs"][0]["referenceLocator"] == f"pkg:pypi/tensorflow@{tf['versionInfo']}"
    # the same image gives the same documents
    assert spdx_json(SUBJECT, found) == spdx_json(SUBJECT, found)
    assert cyclonedx_json(SUBJECT, found) == cyclonedx_json(SUBJECT, found)


def test_package_json_files_in_a_wheel_are_npm_components_inside_it(tmp_path):
    import zipfile

    from dlenv.audit.sbom import read_wheel

    wheel = tmp_path / "jl-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("jl-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: jl\nVersion: 1.0\n")
        z.writestr("jl-1.0.data/data/share/jupyter/lab/static/package.json",
                   '{"name": "@jupyterlab/application-top", "version": "4.6.6"}')
        z.writestr("jl/tests/mock/package.json", '{"name": "mock", "version": "0.1.0"}')
        z.writestr("jl/staging/package.json",  # the same package twice: one component
                   '{"name": "@jupyterlab/application-top", "version": "4.6.6"}')
        z.writestr("jl/broken/package.json", "{not json")
        z.writestr("jl/noversion/package.json", '{"name": "x"}')
        z.writestr("jl/list/package.json", "[1, 2]")
    info = read_wheel(wheel)
    assert info.npm == (("@jupyterlab/application-top", "4.6.6"), ("mock", "0.1.0"))
    from dlenv.audit.sbom import _npm

    assert _npm("@jupyterlab/application-top", "4.6.6") == \
        "pkg:npm/%40jupyterlab/application-top@4.6.6"
    assert _npm("mock", "0.1.0") == "pkg:npm/mock@0.1.0"
