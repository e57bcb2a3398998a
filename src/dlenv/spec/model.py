"""What a spec says, as frozen data: the framework, Python, accelerator, base, user,
index settings and profiles. ``Spec.digest`` is what a lock records to tell it is stale.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from packaging.specifiers import SpecifierSet

from dlenv.compat import DISTRIBUTION
from dlenv.fsutil import canonical_json
from dlenv.spec.deploy import DeployTable
from dlenv.spec.names import SPEC_FILE
from dlenv.spec.serve import ModelServing
from dlenv.spec.view import RunProfile, RunView, User

PROFILE_NAMES = ("dev", "train", "serve")
IMAGE_RE = re.compile(r"[a-z0-9][a-z0-9._/:@-]{0,254}")
SUITES = ("bullseye", "bookworm", "trixie")


@dataclass(frozen=True, slots=True, kw_only=True)
class FrameworkReq:
    name: str  # tensorflow | pytorch | jax
    specifier: str  # PEP 440 specifier set, "" for any

    @property
    def distribution(self) -> str:
        return DISTRIBUTION[self.name]

    def specifier_set(self) -> SpecifierSet:
        return SpecifierSet(self.specifier)


@dataclass(frozen=True, slots=True, kw_only=True)
class Base:
    kind: Literal["debian", "image"]
    suite: str | None = None  # for kind debian; None means "let resolve choose"
    ref: str | None = None  # for kind image

    def __str__(self) -> str:
        if self.kind == "debian":
            return f"debian:{self.suite}" if self.suite else "debian"
        return self.ref or ""


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexSettings:
    url: str | None = None
    extra_urls: tuple[str, ...] = ()
    ca_bundle: str | None = None
    allow_sdist: bool = False
    pytorch_url: str | None = None  # base of PyTorch's per-variant wheel indexes (…/whl)


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    name: str
    packages: tuple[str, ...] = ()
    apt: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()  # Debian tools for people at work (dev: DEV_TOOLS unless set)
    jupyter: bool = False
    ssh: bool = False
    command: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    serving: ModelServing | None = None  # dlenv's model server (serve profile, TensorFlow)
    test: tuple[str, ...] = ()  # the command that tells this profile's image works (argv)


# What a person expects at a shell in a development container, from Debian (without
# Recommends): the dev profile gets these unless the spec sets ``tools``.
DEV_TOOLS = ("git", "curl", "less", "nano", "vim-tiny", "procps", "findutils", "grep", "sed",
             "gzip", "tar", "xz-utils", "unzip", "debianutils", "openssh-client",
             "ca-certificates")


@dataclass(frozen=True, slots=True, kw_only=True)
class Spec:
    name: str
    framework: FrameworkReq | None = None
    accelerator: Literal["cpu", "cuda"] = "cpu"
    cuda_major: str | None = None
    python: str | None = None
    base: Base = field(default_factory=lambda: Base(kind="debian"))
    packages: tuple[str, ...] = ()
    apt: tuple[str, ...] = ()
    user: User = field(default_factory=User)
    workdir: str = "/workspace"
    env: tuple[tuple[str, str], ...] = ()
    index: IndexSettings = field(default_factory=IndexSettings)
    profiles: tuple[Profile, ...] = ()
    deploy: DeployTable = field(default_factory=DeployTable)  # where profiles run on a cluster
    test: tuple[str, ...] = ()  # the project's test command (argv), run by `dlenv upgrade`
    source: str = field(default=SPEC_FILE, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """What the digest covers: everything that decides the lock and the image (the
        cluster settings under ``deploy`` and the test commands do not)."""
        data = asdict(self)
        data.pop("source")
        data.pop("deploy")
        data.pop("test")
        for profile in data["profiles"]:
            del profile["test"]
            if not profile["tools"]:  # a key added later: specs without it keep their digest
                del profile["tools"]
            if profile["serving"] is None:  # likewise
                del profile["serving"]
        return data

    def digest(self) -> str:
        """Digest of the meaning of the spec: comments and key order do not change it."""
        return "sha256:" + hashlib.sha256(canonical_json(self.to_dict(),
                                                          ascii_only=True)).hexdigest()

    def profile(self, name: str) -> Profile | None:
        return next((p for p in self.profiles if p.name == name), None)

    def run_view(self) -> RunView:
        """What a development container of this spec is made from (``plan_run``'s input)."""
        return RunView(name=self.name, source=self.source, user=self.user,
                       workdir=self.workdir, env=self.env, profiles=tuple(
                           RunProfile(name=p.name, jupyter=p.jupyter, ssh=p.ssh, ports=p.ports)
                           for p in self.profiles))

    def test_command(self, profile: str | None = None) -> tuple[str, ...]:
        """What tells that an image of ``profile`` works: the profile's ``test``, else the
        spec's; () when neither is set."""
        chosen = self.profile(profile) if profile else None
        return (chosen.test if chosen and chosen.test else ()) or self.test
