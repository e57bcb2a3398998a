"""Eject: the same lock and layer plan as the native build, rendered as a Dockerfile.

``render_dockerfile`` is pure: it returns the Dockerfile's text, the ``.dockerignore`` and the
small context files (requirements with hashes), and names the two files only the executor
can provide: the Debian base's root file system (the native build's base layer, for a
``FROM scratch`` stage, as Debian's own images are made) and the locked pip wheel that
bootstraps the builder. Every stage is reproducible from the lock:

- ``base`` (and ``base-PROFILE`` when a profile adds .debs): the locked .debs, or the registry
  base pinned by digest;
- ``builder``: wheels installed with ``--require-hashes`` from the lock, one group per layer
  of the native plan (big wheels alone, framework first), BuildKit caching pip's downloads,
  the host's CA bundle as a secret mount (never copied);
- ``runtime`` and one target per profile: only what runs, copied from the builder, the
  project's files last, a non-root ``USER``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from dlenv import __version__
from dlenv.compat.matrix import DISTRIBUTION
from dlenv.errors import BuildError
from dlenv.fsutil import shorten
from dlenv.image import DEFAULT_PATH, SYSTEM_LIBS, BuildPlan, LayerPlan, plan_build
from dlenv.image.plan import BIG_WHEEL
from dlenv.image.project import ALWAYS_IGNORED, RENDERED_MARK, SECRET_PATTERNS, ProjectFile
from dlenv.lock import Lock, LockedWheel
from dlenv.resolve.debian import IN_EVERY_IMAGE, base_packages, profile_apt
from dlenv.spec import IMAGE_RE, JUPYTER_PORT, SSH_PORT, Profile, Spec

SEAL = "# dlenv-rendered: sha256:"


def seal(body: str) -> str:
    """``body`` with a last line holding its own digest, which lint's ML018 checks."""
    return f"{body}{SEAL}{hashlib.sha256(body.encode()).hexdigest()}\n"


CONTEXT_DIR = ".dlenv"  # generated context files, next to the Dockerfile
CA_SECRET = "ca"


Mode = Literal["portable", "exact"]
MODES: tuple[Mode, ...] = ("portable", "exact")
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


@dataclass(frozen=True, slots=True)
class Rendered:
    dockerfile: str
    dockerignore: str
    files: tuple[tuple[str, str], ...]  # (path in the context, text)
    bases: tuple[tuple[str, str | None], ...]  # (context path of a base tarball, profile)
    pip_wheel: tuple[str, LockedWheel] | None  # (context path, the locked pip wheel)
    targets: tuple[str, ...]
    # Wheels dlenv built from sdists (the index has none): (context path, locked wheel).
    built_wheels: tuple[tuple[str, LockedWheel], ...] = ()
    mode: Mode = "exact"


_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


def _quote(value: str) -> str:
    """A double-quoted Dockerfile word. A Dockerfile has no escape for a line break: a
    value holding one would end the instruction and start another, so it is refused."""
    if _UNSAFE.search(value):
        raise BuildError(f"{shorten(value)} cannot be written into a Dockerfile (a line "
                         "break or control character)", fix="remove it from dlenv.toml")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _json_list(items: Sequence[str]) -> str:
    """An exec-form list: Docker reads it as JSON, whose escapes cover any character."""
    return json.dumps(list(items))


def base_key(plan: BuildPlan) -> str:
    """Names the base tarball: the native base layer's key (the locked .debs, user, workdir)."""
    return plan.layers[0].key(plan)[:16]


def _pip_group(group: LayerPlan, index: int, python: str, pip: str, stage_note: str) -> str:
    root = f"/opt/layers/{index}"
    req = f"/tmp/dlenv/requirements-{index}.txt"
    return (
        f"# {group.name}{stage_note}\n"
        "RUN --mount=type=bind,source=.dlenv,target=/tmp/dlenv \\\n"
        "    --mount=type=cache,target=/root/.cache/pip \\\n"
        f"    --mount=type=secret,id={CA_SECRET} \\\n"
        f"    if [ -f /run/secrets/{CA_SECRET} ]; then export PIP_CERT=/run/secrets/{CA_SECRET};"
        " fi \\\n"
        f"    && python3 /tmp/dlenv/{pip}/pip install --require-hashes --no-deps "
        "--only-binary=:all: "
        + ("--find-links /tmp/dlenv/wheels " if any(w.sdist for w in group.wheels) else "")
        + "\\\n"
        f"       --root {root} --prefix /usr/local --root-user-action=ignore -r {req} \\\n"
        # pip from PyPI installs into site-packages; Debian's python3 reads dist-packages.
        f"    && mv {root}/usr/local/lib/python{python}/site-packages "
        f"{root}/usr/local/lib/python{python}/dist-packages\n")


def _project_copies(files: Sequence[ProjectFile], workdir: str, owner: str) -> list[str]:
    """One COPY per top-level directory and one for the top-level files (COPY of a
    directory copies its contents, so each keeps its name in the target), in JSON form so
    that no file name is read as more words or instructions."""
    tops: dict[str, bool] = {}
    for f in files:
        head, sep, _ = f.path.partition("/")
        if _UNSAFE.search(head) or re.search(r"[*?\[\]\\]", head):
            raise BuildError(f"the project file {shorten(head)} cannot be named in a "
                             "Dockerfile COPY (a control or wildcard character)",
                             fix="rename it, or list it in .dlenvignore")
        tops[head] = tops.get(head, False) or bool(sep)
    singles = [name for name, is_dir in tops.items() if not is_dir]
    lines = []
    if singles:
        lines.append(f"COPY --chown={owner} {_json_list([*singles, workdir + '/'])}")
    lines += [f"COPY --chown={owner} {_json_list([name, f'{workdir}/{name}'])}"
              for name, is_dir in tops.items() if is_dir]
    return lines


JUPYTER_COMMAND = ("jupyter", "lab", "--no-browser", "--ip=0.0.0.0", f"--port={JUPYTER_PORT}")
# sshd as the image's user, key-only: a host key made at the first start in ~/.sshd (never in
# the image; a home volume keeps it), the keys mounted at ~/.ssh/authorized_keys.
SSHD_COMMAND = (
    "/bin/sh", "-c",
    'k="$HOME/.sshd/host_ed25519_key"; mkdir -p "$HOME/.sshd" && { [ -f "$k" ] || '
    'ssh-keygen -q -t ed25519 -N "" -f "$k"; } && exec /usr/sbin/sshd -D -e '
    f'-p {SSH_PORT} -h "$k" -o PidFile=/tmp/sshd.pid -o UsePAM=no '
    "-o PasswordAuthentication=no -o KbdInteractiveAuthentication=no "
    "-o PermitRootLogin=no -o AuthorizedKeysFile=.ssh/authorized_keys")


def profile_commands(profile: Profile | None,
                     default: Sequence[str]) -> list[tuple[str, tuple[str, ...]]]:
    """(target suffix, CMD) of a profile's targets: its own command, else JupyterLab when it
    has it (and a ``-ssh`` target for sshd when it has both), else sshd, else ``default``."""
    if profile is None or profile.command:
        return [("", tuple(profile.command if profile else default))]
    if profile.jupyter:
        return [("", JUPYTER_COMMAND), *([("-ssh", SSHD_COMMAND)] if profile.ssh else [])]
    return [("", SSHD_COMMAND if profile.ssh else tuple(default))]


def _config_lines(plan: BuildPlan, project: Sequence[ProjectFile], owner: str,
                  cmd: Sequence[str], extra_ports: Sequence[int] = ()) -> list[str]:
    """ENV, LABEL, EXPOSE, WORKDIR, USER, the project's files and CMD of a target."""
    cfg = plan.config
    out = []
    env = [(k, v) for k, v in cfg.env if not (k == "PATH" and v == DEFAULT_PATH)]
    if env:
        out.append("ENV " + " \\\n    ".join(f"{k}={_quote(v)}" for k, v in env))
    labels = sorted(cfg.labels.items())
    out.append("LABEL " + " \\\n      ".join(f"{k}={_quote(v)}" for k, v in labels))
    for port in dict.fromkeys([*cfg.exposed_ports, *extra_ports]):
        out.append(f"EXPOSE {port}")
    out.append(f"WORKDIR {_workdir(cfg.workdir)}")
    out.append(f"USER {cfg.user}")
    out.extend(_project_copies(project, cfg.workdir, owner))
    out.append(f"CMD {_json_list(cmd)}")
    return out


def _cuda_links(python: str) -> str:
    """As the native build's "CUDA library links" layer: the nvidia-* wheels' libraries
    where the system's linker finds them, and their CUDA tree at /usr/local/cuda."""
    nvidia = f"/usr/local/lib/python{python}/dist-packages/nvidia"
    return (f'RUN for f in {nvidia}/*/lib/lib*.so*; do ln -s "$f" {SYSTEM_LIBS}/; done \\\n'
            f"    && ln -s {nvidia}/cuda_nvcc /usr/local/cuda")


def _workdir(path: str) -> str:
    if not re.fullmatch(r"/[A-Za-z0-9._@+/-]*", path):
        raise BuildError(f"workdir {shorten(path)} cannot be written into a Dockerfile",
                         fix="use a plain absolute path such as /workspace")
    return path


def _ports(profile: Profile | None) -> list[int]:
    if profile is None or profile.command:
        return []
    return [*([JUPYTER_PORT] if profile.jupyter else []), *([SSH_PORT] if profile.ssh else [])]


def render_dockerfile(spec: Spec, lock: Lock, lock_digest: str,
                      project: Sequence[ProjectFile] = (), ignores: Sequence[str] = (),
                      *, portable: PortableBase | None = None) -> Rendered:
    """The Dockerfile for ``spec``'s runtime and one build target per profile: portable
    (a registry base, apt and pip from the network) when ``portable`` is given, else exact
    (the native build's Debian base as a tarball in ``.dlenv/``)."""
    if portable is not None:
        return _render_portable(spec, lock, lock_digest, project, ignores, portable)
    return _render_exact(spec, lock, lock_digest, project, ignores)


def _dockerignore(ignores: Sequence[str], note: str) -> str:
    return "\n".join([f"{RENDERED_MARK}: what the image never gets{note}.", *ALWAYS_IGNORED,
                      *SECRET_PATTERNS, *ignores]) + "\n"


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


def _render_portable(spec: Spec, lock: Lock, lock_digest: str,
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
        "ARG DEBIAN_MIRROR=",
        "",
        "FROM ${BASE} AS base",
        "ARG DEBIAN_MIRROR",
        "# Debian's Python and the spec's packages at the lock's versions (apt takes their",
        f"# dependencies from {suite}); the image's user, key-only for sshd (no password);",
        "# pip of that user installs into ~/.local.",
        _run(['if [ -n "$DEBIAN_MIRROR" ]; then rm -f /etc/apt/sources.list.d/debian.sources'
              " \\\n        && echo \"deb [signed-by=/usr/share/keyrings/debian-archive-"
              f"keyring.gpg] $DEBIAN_MIRROR {suite} main\" \\\n        > /etc/apt/sources.list;"
              " fi",
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
        out += _config_lines(plan, project, owner, commands[0][1], _ports(profile))
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


def _render_exact(spec: Spec, lock: Lock, lock_digest: str,
                  project: Sequence[ProjectFile], ignores: Sequence[str]) -> Rendered:
    plain = plan_build(spec, lock, project=project)
    python = plain.python
    pip = next((w for w in lock.wheels if w.name == "pip"), None)
    pip_path = f"pip/{pip.filename}" if pip else None
    owner = f"{spec.user.uid}:{spec.user.gid}"
    files: list[tuple[str, str]] = []
    bases: list[tuple[str, str | None]] = []
    out = [
        f"# Rendered by dlenv {__version__} from dlenv.lock ({lock_digest}), exact mode:",
        "# the native build's Debian base (the very .debs of the lock) as a tarball in",
        f"# {CONTEXT_DIR}/, which 'dlenv dockerfile --mode exact' writes and git does not keep.",
        "# Do not edit: change dlenv.toml, run 'dlenv lock', then 'dlenv dockerfile' again.",
        f"# Build (BuildKit): DOCKER_BUILDKIT=1 docker build --secret id={CA_SECRET},"
        "src=/etc/ssl/certs/ca-certificates.crt \\",
        f"#     --target runtime -t {spec.name} .",
        "# Targets: TARGETS.",
        "",
    ]

    def base_stage(plan: BuildPlan, profile: str | None) -> str:
        stage = f"base-{profile}" if profile else "base"
        if lock.base.kind == "image":
            out.append(f"FROM {plan.base_ref} AS {stage}")
            out.append("")
            return stage
        path = f"{CONTEXT_DIR}/base-{base_key(plan)}.tar.gz"
        if any(p == path for p, _ in bases):  # same .debs as another stage's base
            return next(f"base-{q}" if q else "base" for p, q in bases if p == path)
        bases.append((path, profile))
        debs = plan.layers[0].debs
        out.append(f"FROM scratch AS {stage}")
        out.append(f"# Debian {lock.base.suite}: {len(debs)} packages pinned in dlenv.lock "
                   "(InRelease checked with gpgv, each .deb by sha256), assembled by dlenv")
        out.append(f"ADD {path} /")
        out.append("")
        return stage

    def builder_stage(groups: list[LayerPlan], start: int, parent: str, name: str,
                      note: str) -> list[int]:
        out.append(f"FROM {parent} AS {name}")
        out.append("ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1")
        indexes = []
        for i, group in enumerate(groups, start=start):
            files.append((f"{CONTEXT_DIR}/requirements-{i}.txt",
                          "# generated by dlenv from dlenv.lock\n"
                          + "".join(w.requirement_line() + "\n" for w in group.wheels)))
            out.append(_pip_group(group, i, python, pip_path or "pip", note))
            indexes.append(i)
        return indexes

    def final_stage(plan: BuildPlan, base: str, copies: list[tuple[str, int]],
                    name: str) -> None:
        out.append(f"FROM {base} AS {name}")
        for stage, i in copies:
            out.append(f"COPY --from={stage} /opt/layers/{i}/ /")
        if plan.cuda_links:
            out.append(_cuda_links(python))
        profile = spec.profile(plan.profile) if plan.profile else None
        commands = profile_commands(profile, plan.config.cmd)
        out.extend(_config_lines(plan, project, owner, commands[0][1], _ports(profile)))
        out.append("")
        targets.append(name)
        for suffix, cmd in commands[1:]:
            out.extend([f"FROM {name} AS {name}{suffix}", f"CMD {_json_list(cmd)}", ""])
            targets.append(name + suffix)

    wheel_groups = [layer for layer in plain.layers if layer.kind == "wheels"]
    base = base_stage(plain, None)
    common = builder_stage(wheel_groups, 1, base, "builder", "") if wheel_groups else []
    targets: list[str] = []
    final_stage(plain, base, [("builder", i) for i in common], "runtime")
    next_index = len(wheel_groups) + 1
    for profile in spec.profiles:
        plan = plan_build(spec, lock, profile=profile.name, project=project)
        pbase = base_stage(plan, profile.name)
        own = [layer for layer in plan.layers if layer.kind == "wheels"
               and all(w.profiles for w in layer.wheels)]
        copies = [("builder", i) for i in common]
        if own:
            stage = f"builder-{profile.name}"
            parent = "builder" if wheel_groups else pbase
            indexes = builder_stage(own, next_index, parent, stage,
                                    f" (profile {profile.name})")
            next_index += len(own)
            copies += [(stage, i) for i in indexes]
        final_stage(plan, pbase, copies, profile.name)
    text = "\n".join(out).rstrip("\n") + "\n"
    return Rendered(
        dockerfile=seal(text.replace("# Targets: TARGETS.",
                                     f"# Targets: {', '.join(targets)}.")),
        dockerignore=_dockerignore(ignores, f" ({CONTEXT_DIR}/ stays: the build reads the "
                                   "base and the requirements from it)"),
        files=tuple(files), bases=tuple(bases),
        pip_wheel=(f"{CONTEXT_DIR}/{pip_path}", pip) if pip and pip_path else None,
        built_wheels=tuple((f"{CONTEXT_DIR}/wheels/{w.filename}", w)
                           for w in sorted(lock.wheels) if w.sdist is not None),
        targets=tuple(targets), mode="exact")
