"""An image's software bill of materials, from its lock: every .deb and every Python
distribution (with those a wheel vendors), by hash, and the image's digest as the subject.

``inventory`` is pure: the lock and what the wheels' own metadata says (``read_wheel``)
make the components. ``cyclonedx_json`` (CycloneDX 1.6) and ``spdx_json`` (SPDX 2.3) write
them with the formats' maintained libraries, cyclonedx-python-lib and spdx-tools, which
also validate what they write.
"""

from __future__ import annotations

import uuid
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from packaging.metadata import parse_email
from packaging.utils import canonicalize_name

from dlenv import __version__
from dlenv.audit.scan import DEBIAN_RELEASES
from dlenv.lock import Lock, LockedDeb

METADATA_FILES = (".dist-info/METADATA", ".egg-info/PKG-INFO", "EGG-INFO/PKG-INFO")
Format = Literal["cyclonedx", "spdx"]


@dataclass(frozen=True, slots=True)
class WheelInfo:
    """What a wheel's metadata says beyond the lock."""

    license: str = ""  # License-Expression, or License when it is short
    bundled: tuple[tuple[str, str], ...] = ()  # (name, version) of distributions it vendors
    npm: tuple[tuple[str, str], ...] = ()  # (name, version) of its package.json files


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class Component:
    ecosystem: Literal["deb", "pypi", "npm"]
    name: str
    version: str
    purl: str
    sha256: str = ""  # of the .deb or the wheel ("" for a vendored distribution)
    license: str = ""
    source: str = ""  # a .deb's source package
    cuda: bool = False  # a CUDA library (NVIDIA's wheels and .debs)
    bundled_in: str = ""  # the purl of the wheel that vendors it


@dataclass(frozen=True, slots=True, kw_only=True)
class Subject:
    """The image the components are in."""

    name: str  # the spec's name
    tag: str  # NAME:PROFILE
    digest: str  # the image manifest's digest
    base: str  # the Debian suite, or the base image by digest
    created: int  # the lock's date (seconds), so the same lock gives the same document


def read_wheel(path: Path) -> WheelInfo:
    """A wheel's license and the distributions it vendors, from its ``.dist-info`` files
    (the wheel's own is the shallowest)."""
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        own = sorted((n for n in names if n.endswith(".dist-info/METADATA")),
                     key=lambda n: (n.count("/"), n))
        if not own:
            return WheelInfo()
        raw, _ = parse_email(z.read(own[0]))
        bundled = []
        # what scanners of the image find too: vendored .dist-info, and eggs' PKG-INFO
        for name in [*own[1:], *(n for n in names if n.endswith(METADATA_FILES[1:]))]:
            inner, _ = parse_email(z.read(name))
            if inner.get("name") and inner.get("version"):
                bundled.append((str(inner["name"]), str(inner["version"])))
        # JavaScript packages (JupyterLab's extensions and its built application)
        npm = [found for info in z.infolist() if info.filename.rsplit("/", 1)[-1] ==
               "package.json" and info.file_size <= MAX_PACKAGE_JSON
               for found in [_package_json(z.read(info))] if found]
    expression = raw.get("license_expression") or ""
    text = (raw.get("license") or "").strip()
    if not expression and text and "\n" not in text and len(text) <= 80:
        expression = text  # a short License field names the license; a long one is its text
    return WheelInfo(license=expression, bundled=tuple(sorted(set(bundled))),
                     npm=tuple(sorted(set(npm))))


MAX_PACKAGE_JSON = 1 << 20


def _package_json(data: bytes) -> tuple[str, str] | None:
    """(name, version) of a package.json that states both as strings, else None."""
    import json

    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    name, version = doc.get("name"), doc.get("version")
    if isinstance(name, str) and isinstance(version, str) and name and version and \
            len(name) <= 214 and len(version) <= 64:
        return name, version
    return None


def _npm(name: str, version: str) -> str:
    """The purl of an npm package: a scope is its namespace (``@`` encoded)."""
    scope, _, bare = name.rpartition("/")
    path = f"{_quote(scope)}/{_quote(bare)}" if scope else _quote(bare)
    return f"pkg:npm/{path}@{_quote(version)}"


def _cuda(name: str) -> bool:
    return name.startswith(("nvidia-", "libcudnn", "libnccl", "cuda-", "libcublas",
                            "libcufft", "libcurand", "libcusolver", "libcusparse", "libnv"))


def deb_source(deb: LockedDeb) -> str:
    """The .deb's source package: pool/main/<prefix>/<source>/<file> names it ("" when the
    path is not a pool path)."""
    parts = deb.filename.split("/")
    return parts[3] if len(parts) > 4 and parts[0] == "pool" else ""


def _deb(deb: LockedDeb, distro: str) -> Component:
    source = deb_source(deb)
    query = f"arch={deb.architecture}" + (f"&upstream={source}" if source and source != deb.name
                                          else "") + f"&distro={distro}"
    return Component(ecosystem="deb", name=deb.name, version=deb.version,
                     purl=f"pkg:deb/debian/{deb.name}@{_quote(deb.version)}?{query}",
                     sha256=deb.sha256, source=source, cuda=_cuda(deb.name))


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe=".-_~")


def _pypi(name: str, version: str) -> str:
    return f"pkg:pypi/{canonicalize_name(name)}@{_quote(version)}"


def inventory(lock: Lock, profile: str | None,
              wheels: Mapping[str, WheelInfo]) -> tuple[Component, ...]:
    """The components of the image of ``lock``'s ``profile``: its .debs (none for a registry
    base, whose packages the base image's own SBOM lists), its wheels (``wheels`` by sha256:
    what each one's metadata says) and what those vendor."""
    suite = lock.base.suite or lock.target.suite or ""
    distro = f"debian-{DEBIAN_RELEASES.get(suite, suite)}"
    out = [_deb(d, distro) for d in lock.debs_for(profile)] if lock.base.kind == "debian" \
        else []
    for w in lock.wheels_for(profile):
        info = wheels.get(w.sha256, WheelInfo())
        purl = _pypi(w.name, w.version)
        out.append(Component(ecosystem="pypi", name=str(canonicalize_name(w.name)),
                             version=w.version, purl=purl, sha256=w.sha256,
                             license=info.license, cuda=_cuda(w.name)))
        out += [Component(ecosystem="pypi", name=str(canonicalize_name(n)), version=v,
                          purl=_pypi(n, v), bundled_in=purl) for n, v in info.bundled]
        out += [Component(ecosystem="npm", name=n, version=v, purl=_npm(n, v),
                          bundled_in=purl) for n, v in info.npm]
    return tuple(sorted(set(out)))


def base_of(lock: Lock) -> str:
    if lock.base.kind == "image":
        return f"{(lock.base.ref or '').split('@')[0]}@{lock.base.digest}"
    return f"debian:{lock.base.suite}"


def _image_purl(subject: Subject) -> str:
    return f"pkg:oci/{_quote(subject.name)}@{_quote(subject.digest)}"


def _when(subject: Subject) -> datetime:
    return datetime.fromtimestamp(subject.created, UTC)


def cyclonedx_json(subject: Subject, components: Sequence[Component]) -> str:
    """CycloneDX 1.6 JSON, validated against the schema before it is returned."""
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component as CdxComponent
    from cyclonedx.model.component import ComponentType
    from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression
    from cyclonedx.output.json import JsonV1Dot6
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
    from packageurl import PackageURL

    image = CdxComponent(
        type=ComponentType.CONTAINER, name=subject.tag, version=subject.digest,
        bom_ref=_image_purl(subject), purl=PackageURL.from_string(_image_purl(subject)),
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=subject.digest.split(":")[-1])],
        properties=[Property(name="dlenv:base", value=subject.base)])
    # the serial number follows the subject, so the same image gives the same document
    bom = Bom(serial_number=uuid.uuid5(uuid.NAMESPACE_URL, _image_purl(subject)))
    bom.metadata.component = image
    bom.metadata.timestamp = _when(subject)
    made: dict[Component, Any] = {}
    owner = {c.purl: c for c in components if not c.bundled_in}
    for c in components:
        licenses: list[Any] = []
        if c.license:
            licenses = [LicenseExpression(c.license) if _is_spdx(c.license)
                        else DisjunctiveLicense(name=c.license)]
        props = [Property(name="dlenv:cuda", value="true")] if c.cuda else []
        if c.source:
            props.append(Property(name="dlenv:deb-source", value=c.source))
        # a vendored copy may have the purl of a wheel of the image: its ref says where it is
        ref = f"{c.purl}#bundled-by:{c.bundled_in}" if c.bundled_in else c.purl
        made[c] = CdxComponent(
            type=ComponentType.LIBRARY, name=c.name, version=c.version, bom_ref=ref,
            purl=PackageURL.from_string(c.purl), licenses=licenses, properties=props,
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=c.sha256)] if c.sha256
            else [])
        bom.components.add(made[c])
    bom.register_dependency(image, [made[c] for c in components if not c.bundled_in])
    for wheel in owner.values():
        inside = [made[c] for c in components if c.bundled_in == wheel.purl]
        if inside:
            bom.register_dependency(made[wheel], inside)
    text: str = JsonV1Dot6(bom).output_as_string(indent=2)
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:  # a defect of dlenv's, never of the user's input
        raise AssertionError(f"the CycloneDX document does not validate: {error}")
    return text


def _is_spdx(expression: str) -> bool:
    from license_expression import get_spdx_licensing

    try:  # some texts (a comma, say) make the validator itself fail instead of listing errors
        info = get_spdx_licensing().validate(expression, strict=True)
    except Exception:  # ExpressionError, or its own AttributeError while reporting one
        return False
    return not info.errors


def spdx_json(subject: Subject, components: Sequence[Component]) -> str:
    """SPDX 2.3 JSON, validated with spdx-tools before it is returned."""
    import io

    from license_expression import get_spdx_licensing
    from spdx_tools.spdx.model import (
        Actor,
        ActorType,
        Checksum,
        ChecksumAlgorithm,
        CreationInfo,
        Document,
        ExternalPackageRef,
        ExternalPackageRefCategory,
        Package,
        Relationship,
        RelationshipType,
        SpdxNoAssertion,
    )
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document
    from spdx_tools.spdx.writer.json.json_writer import write_document_to_stream

    def ident(i: int) -> str:
        return f"SPDXRef-Package-{i}"

    def purl_ref(purl: str) -> ExternalPackageRef:
        return ExternalPackageRef(ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", purl)

    digest = subject.digest.split(":")[-1]
    doc = Document(CreationInfo(
        spdx_version="SPDX-2.3", spdx_id="SPDXRef-DOCUMENT", name=subject.tag,
        document_namespace=f"https://dlenv.dev/spdx/{_quote(subject.name)}/{digest}",
        creators=[Actor(ActorType.TOOL, f"dlenv-{__version__}")], created=_when(subject)))
    image = Package(spdx_id="SPDXRef-Image", name=subject.tag, version=subject.digest,
                    download_location=SpdxNoAssertion(), files_analyzed=False,
                    checksums=[Checksum(ChecksumAlgorithm.SHA256, digest)],
                    external_references=[purl_ref(_image_purl(subject))],
                    comment=f"base: {subject.base}")
    doc.packages.append(image)
    doc.relationships.append(Relationship("SPDXRef-DOCUMENT", RelationshipType.DESCRIBES,
                                          image.spdx_id))
    ids = {c: ident(i) for i, c in enumerate(components, 1)}
    owner = {c.purl: c for c in components if not c.bundled_in}
    licensing = get_spdx_licensing()
    for c in components:
        notes = [x for x in ("CUDA library" if c.cuda else "",
                             f"Debian source package {c.source}" if c.source else "") if x]
        doc.packages.append(Package(
            spdx_id=ids[c], name=c.name, version=c.version,
            download_location=SpdxNoAssertion(), files_analyzed=False,
            checksums=[Checksum(ChecksumAlgorithm.SHA256, c.sha256)] if c.sha256 else [],
            license_declared=licensing.parse(c.license) if c.license and _is_spdx(c.license)
            else SpdxNoAssertion(),
            external_references=[purl_ref(c.purl)], comment="; ".join(notes) or None))
        parent = ids[owner[c.bundled_in]] if c.bundled_in else image.spdx_id
        doc.relationships.append(Relationship(parent, RelationshipType.CONTAINS, ids[c]))
    problems = validate_full_spdx_document(doc)
    if problems:  # a defect of dlenv's, never of the user's input
        raise AssertionError(f"the SPDX document does not validate: {problems[0]}")
    out = io.StringIO()
    write_document_to_stream(doc, out, validate=False)
    return out.getvalue()
