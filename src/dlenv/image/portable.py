"""Eject, portable mode: a Dockerfile a team keeps and builds with Docker alone.

``render_portable`` is pure. The base is a registry image of the lock's Debian suite pinned
by digest (``PortableBase``, looked up by the eject workflow); apt installs the lock's root
packages at their versions; Debian's pip, in a stage of its own, installs the wheels with
``--require-hashes`` from ``requirements/locked-*.txt`` in package stages BuildKit builds
side by side (``portable_groups``); the targets copy those trees onto a shared ``env``
stage. The pieces both modes write (config, commands, project copies) are in
``image.dockerfile``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from dlenv import __version__
from dlenv.compat import DISTRIBUTION
from dlenv.errors import BuildError
from dlenv.fsutil import shorten
from dlenv.image.dockerfile import (
    CA_SECRET,
    Rendered,
    _config_lines,
    _cuda_links,
    _dockerignore,
    _image_copies,
    _json_list,
    _ports,
    _workdir,
    profile_commands,
)
from dlenv.image.plan import BIG_WHEEL, plan_build
from dlenv.image.project import ProjectFile
from dlenv.lock import Lock, LockedWheel
from dlenv.resolve.debian import IN_EVERY_IMAGE, base_packages, profile_apt
from dlenv.spec import IMAGE_RE, SSH_PORT, Spec

REQUIREMENTS_DIR = "requirements"  # portable mode's hash-pinned requirement files
REQUIREMENTS_MARK = "# Written by 'dlenv dockerfile' from dlenv.lock"
APT_CA = "/etc/apt/apt.conf.d/99dlenv-ca"  # only while apt runs, then removed
PIP_ROOT = "/opt/layer"  # where a package stage installs; the targets copy it


@dataclass(frozen=True, slots=True)
class PortableBase:
    """What the portable mode builds on, looked up when the Dockerfile is written: a
    registry image of the lock's Debian suite pinned by digest, and the version of Debian's
    pip in the suite (the package stages install the locked wheels with it)."""

    image: str  # name:tag@sha256:…
    pip: str


def _wrap(words: Sequence[str], indent: str = "        ") -> str:
    """Words on continuation lines of about 90 columns."""
    lines, line = [], ""
    for w in words:
        if line and len(line) + len(w) > 80:
            lines.append(line)
            line = ""
        line = f"{line} {w}" if line else w
    lines.append(line)
    return " \\\n".join(indent + x for x in lines)


def _apt_install(pins: Sequence[str]) -> list[str]:
    """Shell steps of a RUN that installs ``pins`` with apt and leaves nothing of apt's."""
    return [f"if [ -f /run/secrets/{CA_SECRET} ]; then echo 'Acquire::https::CAInfo "
            f"\"/run/secrets/{CA_SECRET}\";' > {APT_CA}; fi",
            "apt-get update",
            "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\\n"
            + _wrap(pins),
            f"rm -rf /var/lib/apt/lists/* {APT_CA}"]


def _run(steps: Sequence[str], mounts: Sequence[str] = ()) -> str:
    head = "RUN " + "".join(f"--mount={m} \\\n    " for m in mounts)
    return head + " \\\n    && ".join(steps)


def _pins(lock: Lock, names: Sequence[str], profile: str | None) -> list[str]:
    versions = {d.name: d.version for d in lock.debs_for(profile)}
    return [f"{n}={versions[n]}" for n in dict.fromkeys(names)
            if n in versions and n not in IN_EVERY_IMAGE]


def portable_groups(lock: Lock, profile: str | None = None,
                    ) -> list[tuple[str, str, tuple[LockedWheel, ...]]]:
    """(stage, what it holds, wheels) of the package stages: the framework with the CUDA
    wheels, the other large wheels, the small ones, those built from source; with a
    profile, only that profile's own wheels, in one stage. Each is its own stage, so BuildKit
    builds them side by side and a change in one keeps the others' cache."""
    if profile is not None:
        own = tuple(w for w in lock.wheels if profile in w.profiles)
        return [(f"packages-{profile}", f"the {profile} profile's packages", own)] if own else []
    common = [w for w in lock.wheels if not w.profiles]
    framework = DISTRIBUTION.get(lock.target.framework or "", "")
    groups: dict[str, list[LockedWheel]] = {}
    for w in common:
        key = ("source" if w.sdist else "framework" if w.name == framework or
               w.name.startswith("nvidia-") else "large" if w.size >= BIG_WHEEL else "small")
        groups.setdefault(key, []).append(w)
    cuda = any(w.name.startswith("nvidia-") for w in groups.get("framework", ()))
    what = {"framework": framework + (" and the CUDA libraries' wheels" if cuda else ""),
            "large": "packages of 1 MiB or more", "small": "the smaller packages",
            "source": "packages the index has only as source (pip builds them)"}
    return [(key, what[key], tuple(sorted(groups[key]))) for key in what if key in groups]


def _package_stage(name: str, what: str, wheels: Sequence[LockedWheel]) -> tuple[str, str]:
    """(requirement file, stage text) of one package stage."""
    req = f"{REQUIREMENTS_DIR}/locked-{name.removeprefix('packages-')}.txt"
    binary = not any(w.sdist for w in wheels)
    stage = "\n".join([
        f"# {what}: {len(wheels)} package{'s' if len(wheels) > 1 else ''}, pinned with "
        f"hashes in {req}",
        f"FROM pip AS {name}",
        _run([f"if [ -f /run/secrets/{CA_SECRET} ]; then export PIP_CERT=/run/secrets/"
              f"{CA_SECRET}; fi",
              "python3 -m pip install --require-hashes --no-deps "
              + ("--only-binary=:all: " if binary else "")
              + f"--root {PIP_ROOT} -r /tmp/requirements.txt"],
             [f"type=bind,source={req},target=/tmp/requirements.txt",
              "type=cache,target=/root/.cache/pip", f"type=secret,id={CA_SECRET}"]),
        ""])
    return req, stage


def _requirements(wheels: Sequence[LockedWheel]) -> str:
    lines = [REQUIREMENTS_MARK + "; pip install --require-hashes -r THIS"]
    for w in wheels:
        if w.sdist is not None:  # the source pip builds, by the sdist's hash
            lines.append(f"{w.name}=={w.version} --hash=sha256:{w.sdist.sha256}")
        else:
            lines.append(w.requirement_line())
    return "\n".join(lines) + "\n"


def portable_suite(spec: Spec, lock: Lock) -> str:
    """The Debian suite a portable Dockerfile builds on; refused for an image base."""
    if lock.base.kind != "debian" or not lock.base.suite:
        raise BuildError(f"{spec.source}: the portable Dockerfile builds on a Debian suite, "
                         f"and this spec's base is the image {lock.base.ref}",
                         fix="use 'dlenv dockerfile --mode exact'")
    return lock.base.suite


def render_portable(spec: Spec, lock: Lock, lock_digest: str,
                     project: Sequence[ProjectFile], ignores: Sequence[str],
                     portable: PortableBase) -> Rendered:
    suite = portable_suite(spec, lock)
    # Both values are written into the file: a reference and a Debian version, nothing else.
    if not IMAGE_RE.fullmatch(portable.image) or not re.search(r"@sha256:[0-9a-f]{64}$",
                                                               portable.image):
        raise BuildError(f"{shorten(portable.image)} is not an image reference pinned by "
                         "digest", fix="pass --base REGISTRY/NAME:TAG (dlenv pins it) or "
                                       "NAME:TAG@sha256:DIGEST")
    if not re.fullmatch(r"[A-Za-z0-9.+~:-]{1,128}", portable.pip):
        raise BuildError(f"{shorten(portable.pip)} is not a Debian version")
    plain = plan_build(spec, lock, project=project)
    owner = f"{spec.user.uid}:{spec.user.gid}"
    user = spec.user
    order = base_packages(spec, lock.target.python)
    base_roots = set(order)
    files: list[tuple[str, str]] = []
    targets: list[str] = []
    out = [
        f"# Rendered by dlenv {__version__} from dlenv.lock ({lock_digest}), portable mode:",
        f"# Debian {suite} from a registry, pinned by digest; apt installs the .debs and pip the",
        "# wheels at the versions and hashes the lock pins. It builds with Docker alone and is",
        "# yours to change ('dlenv dockerfile' writes it again from the lock).",
        f"# Build: DOCKER_BUILDKIT=1 docker build --secret id={CA_SECRET},"
        "src=/etc/ssl/certs/ca-certificates.crt \\",
        f"#     --target runtime -t {spec.name} .",
        "# The secret is optional: the CA bundle of a proxy that inspects HTTPS, read by apt",
        "# and pip while they download and never copied into a layer.",
        "# Targets: TARGETS.",
        "",
        "# Another registry or a mirror of the base: --build-arg BASE=REF@sha256:...",
        f"ARG BASE={portable.image}",
        "# Another Debian mirror for apt: --build-arg DEBIAN_MIRROR=http://HOST/debian",
        "# (security updates from DEBIAN_SECURITY_MIRROR, default: DEBIAN_MIRROR-security)",
        "ARG DEBIAN_MIRROR=",
        "ARG DEBIAN_SECURITY_MIRROR=",
        "",
        "FROM ${BASE} AS base",
        "ARG DEBIAN_MIRROR",
        "ARG DEBIAN_SECURITY_MIRROR",
        "# Debian's Python and the spec's packages at the lock's versions (apt takes their",
        f"# dependencies from {suite}); the image's user, key-only for sshd (no password);",
        "# pip of that user installs into ~/.local.",
        _run(['if [ -n "$DEBIAN_MIRROR" ]; then rm -f /etc/apt/sources.list.d/debian.sources'
              " \\\n        && key=/usr/share/keyrings/debian-archive-keyring.gpg"
              " \\\n        && security=${DEBIAN_SECURITY_MIRROR:-$DEBIAN_MIRROR-security}"
              " \\\n        && printf 'deb [signed-by=%s] %s %s main\\n' \"$key\" "
              f"\"$DEBIAN_MIRROR\" {suite} \\\n            \"$key\" \"$DEBIAN_MIRROR\" "
              f"{suite}-updates \"$key\" \"$security\" {suite}-security \\\n"
              "        > /etc/apt/sources.list; fi",
              *_apt_install(_pins(lock, sorted(base_roots, key=order.index), None)),
              f"(getent group {user.gid} >/dev/null || groupadd --gid {user.gid} {user.name})",
              f"(getent passwd {user.uid} >/dev/null || useradd --no-log-init \\\n        "
              f"--uid {user.uid} --gid {user.gid} --create-home --shell /bin/bash "
              f"{user.name})",
              f"usermod -p '*' {user.name}",
              f"mkdir -p {_workdir(spec.workdir)}",
              "printf '[global]\\nbreak-system-packages = true\\n' > /etc/pip.conf"],
             [f"type=secret,id={CA_SECRET}"]),
        "",
        "# Debian's pip, to install the locked wheels; only the package stages have it",
        "FROM base AS pip",
        _run(_apt_install([f"python3-pip={portable.pip}"]), [f"type=secret,id={CA_SECRET}"]),
        "ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_ROOT_USER_ACTION=ignore",
        "",
    ]
    common = portable_groups(lock)
    for name, what, wheels in common:
        req, stage = _package_stage(name, what, wheels)
        files.append((req, _requirements(wheels)))
        out.append(stage)
    out += ["# What every target shares: the base and the locked packages",
            "FROM base AS env",
            *[f"COPY --from={name} {PIP_ROOT}/ /" for name, _, _ in common],
            *([_cuda_links(plain.python)] if plain.cuda_links else []), ""]
    for profile in (None, *spec.profiles):
        pname = profile.name if profile else None
        plan = plan_build(spec, lock, profile=pname, project=project) if profile else plain
        own = portable_groups(lock, pname) if pname else []
        for name, what, wheels in own:
            req, stage = _package_stage(name, what, wheels)
            files.append((req, _requirements(wheels)))
            out.append(stage)
        target = pname or "runtime"
        out.append(f"FROM env AS {target}")
        extra = profile_apt(spec).get(pname, ()) if pname else ()
        pins = _pins(lock, [n for n in extra if n not in base_roots], pname)
        if pins:
            out.append(f"# Debian packages of the {pname} profile, at the lock's versions")
            out.append(_run(_apt_install(pins), [f"type=secret,id={CA_SECRET}"]))
        out += [f"COPY --from={name} {PIP_ROOT}/ /" for name, _, _ in own]
        commands = profile_commands(profile, plan.config.cmd)
        copies, programs = _image_copies(plan, profile, REQUIREMENTS_DIR)
        files.extend(f for f in programs if f not in files)
        out += _config_lines(plan, project, owner, commands[0][1], _ports(profile), copies)
        out.append("")
        targets.append(target)
        for suffix, cmd in commands[1:]:
            out += [f"# The {target} target with sshd on {SSH_PORT} instead of JupyterLab: "
                    "docker run -p 127.0.0.1:2222:2222",
                    f"#   -v ~/.ssh/id_ed25519.pub:/home/{user.name}/.ssh/authorized_keys:ro "
                    "IMAGE, then ssh -p 2222 "
                    f"{user.name}@127.0.0.1",
                    f"FROM {target} AS {target}{suffix}", f"CMD {_json_list(cmd)}", ""]
            targets.append(target + suffix)
    text = "\n".join(out).rstrip("\n") + "\n"
    return Rendered(
        dockerfile=text.replace("# Targets: TARGETS.", f"# Targets: {', '.join(targets)}."),
        dockerignore=_dockerignore(ignores, ""), files=tuple(files), bases=(),
        pip_wheel=None, targets=tuple(targets), mode="portable")
