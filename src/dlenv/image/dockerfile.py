"""Eject: the lock rendered as a Dockerfile, in two modes, and the pieces both write.

``render_dockerfile`` is pure. Given a ``PortableBase`` it hands over to
``image.portable`` (a registry base, apt and pip from the network). Otherwise it renders the
exact mode here: the Dockerfile's text, the ``.dockerignore`` and the small context files
(requirements with hashes), naming the two files only the executor can provide: the Debian
base's root file system (the native build's base layer, for a ``FROM scratch`` stage, as
Debian's own images are made) and the locked pip wheel that bootstraps the builder. Every
stage is reproducible from the lock:

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
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from dlenv import __version__
from dlenv.errors import BuildError
from dlenv.fsutil import shorten
from dlenv.image import DEFAULT_PATH, SYSTEM_LIBS, BuildPlan, LayerPlan, plan_build
from dlenv.image.plan import SHIPPED, shipped_file
from dlenv.image.project import ALWAYS_IGNORED, RENDERED_MARK, SECRET_PATTERNS, ProjectFile
from dlenv.lock import Lock, LockedWheel

if TYPE_CHECKING:
    from dlenv.image.portable import PortableBase
from dlenv.spec import JUPYTER_PORT, SSH_PORT, Profile, Spec

SEAL = "# dlenv-rendered: sha256:"
SHIPPED_MARK = "# Written by 'dlenv dockerfile'"  # the first line of a shipped program's copy


def seal(body: str) -> str:
    """``body`` with a last line holding its own digest, which lint's ML018 checks."""
    return f"{body}{SEAL}{hashlib.sha256(body.encode()).hexdigest()}\n"


CONTEXT_DIR = ".dlenv"  # generated context files, next to the Dockerfile
CA_SECRET = "ca"


Mode = Literal["portable", "exact"]
MODES: tuple[Mode, ...] = ("portable", "exact")


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


def _copy_word(name: str) -> str:
    if _UNSAFE.search(name) or re.search(r"[*?\[\]\\]", name):
        raise BuildError(f"the project file {shorten(name)} cannot be named in a "
                         "Dockerfile COPY (a control or wildcard character)",
                         fix="rename it, or list it in .dlenvignore")
    return name


def _project_copies(files: Sequence[ProjectFile], workdir: str, owner: str,
                    every: Sequence[ProjectFile] | None = None, under: str = "") -> list[str]:
    """The COPY lines that put ``files`` in ``workdir``: one per directory and one for the
    loose files (COPY of a directory copies its contents, so each keeps its name in the
    target), in JSON form so that no file name is read as more words or instructions. A
    directory holding files of ``every`` (the whole context) that are not to be copied (a
    served model's versions, which go to /models) is copied a level deeper instead."""
    every = files if every is None else every
    chosen = {f.path for f in files}
    tops: dict[str, bool] = {}
    whole: dict[str, bool] = {}
    for f in every:
        head, sep, _ = f.path.removeprefix(under).partition("/")
        tops[head] = tops.get(head, False) or bool(sep)
        whole[head] = whole.get(head, True) and f.path in chosen
    singles = [under + _copy_word(name) for name, is_dir in tops.items()
               if not is_dir and whole[name]]
    lines = []
    if singles:
        lines.append(f"COPY --chown={owner} {_json_list([*singles, f'{workdir}/{under}'])}")
    for name, is_dir in tops.items():
        path = under + _copy_word(name)
        if not is_dir:
            continue
        if whole[name]:
            lines.append(f"COPY --chown={owner} {_json_list([path, f'{workdir}/{path}'])}")
        elif any(f.path.startswith(path + "/") for f in files):
            inner = [f for f in every if f.path.startswith(path + "/")]
            lines += _project_copies([f for f in files if f.path.startswith(path + "/")],
                                     workdir, owner, inner, path + "/")
    return lines


def _image_copies(plan: BuildPlan, profile: Profile | None, context_dir: str
                  ) -> tuple[list[str], list[tuple[str, str]]]:
    """What the image holds beyond the packages and the project's files, as the native
    build lays it: dlenv's shipped programs (written into ``context_dir``, a first line
    saying who wrote them) and a served model's versions at /models/NAME/N, root's, as
    COPY lines and the context files they read."""
    lines, files = [], []
    for layer in plan.layers:
        if layer.kind == "launcher" or layer.kind == "server":
            target = SHIPPED[layer.kind][1]
            rel = f"{context_dir}/dlenv-{Path(target).name}"
            text = shipped_file(layer.kind)[0].decode()
            files.append((rel, f"{SHIPPED_MARK} (dlenv's {layer.kind})\n{text}"))
            lines.append(f"COPY --chmod=644 {_json_list([rel, target])}")
        elif layer.kind == "model" and profile and profile.serving and profile.serving.path:
            version = layer.dest.rsplit("/", 1)[1]  # the same number in the project
            rel = _copy_word(f"{profile.serving.path}/{version}")
            lines.append(f"COPY {_json_list([rel, layer.dest])}")
    return lines, files


JUPYTER_COMMAND = ("jupyter", "lab", "--no-browser", "--ip=0.0.0.0", f"--port={JUPYTER_PORT}")
# sshd as the image's user, key-only: a host key made at the first start in ~/.sshd (never in
# the image; a home volume keeps it), the keys mounted at ~/.ssh/authorized_keys. Every
# setting is on the command line and no config file is read (-f /dev/null): a native image
# has no /etc/ssh/sshd_config, which openssh-server's maintainer script would have written.
# StrictModes is off because a Kubernetes home volume is group-writable (fsGroup, the
# user's own group) and sshd would refuse every key; the pod has one user.
SSHD_COMMAND = (
    "/bin/sh", "-c",
    'k="$HOME/.sshd/host_ed25519_key"; mkdir -p "$HOME/.sshd" && { [ -f "$k" ] || '
    'ssh-keygen -q -t ed25519 -N "" -f "$k"; } && exec /usr/sbin/sshd -D -e -f /dev/null '
    f'-p {SSH_PORT} -h "$k" -o PidFile=/tmp/sshd.pid -o UsePAM=no '
    "-o PasswordAuthentication=no -o KbdInteractiveAuthentication=no "
    "-o PermitRootLogin=no -o AuthorizedKeysFile=.ssh/authorized_keys -o StrictModes=no "
    "-o AllowTcpForwarding=local -o 'Subsystem sftp internal-sftp'")


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
                  cmd: Sequence[str], extra_ports: Sequence[int] = (),
                  copies: Sequence[str] = ()) -> list[str]:
    """ENV, LABEL, EXPOSE, WORKDIR, USER, ``copies`` (dlenv's programs, a served model),
    the project's files (those of the plan: a served model's versions are not) and CMD of
    a target."""
    cfg = plan.config
    out = []
    env = [(k, v) for k, v in cfg.env if not (k == "PATH" and v == DEFAULT_PATH)]
    if env:
        out.append("ENV " + " \\\n    ".join(f"{k}={_quote(v)}" for k, v in env))
    # The copies of dlenv's programs start with a line of their own: not the hashes the
    # native image's labels give, so an ejected image does not claim them.
    labels = sorted((k, v) for k, v in cfg.labels.items()
                    if k.removeprefix("dev.dlenv.") not in SHIPPED)
    out.append("LABEL " + " \\\n      ".join(f"{k}={_quote(v)}" for k, v in labels))
    for port in dict.fromkeys([*cfg.exposed_ports, *extra_ports]):
        out.append(f"EXPOSE {port}")
    out.append(f"WORKDIR {_workdir(cfg.workdir)}")
    out.extend(copies)
    out.append(f"USER {cfg.user}")
    kept = next((layer.files for layer in plan.layers if layer.kind == "files"), ())
    out.extend(_project_copies(kept, cfg.workdir, owner, project))
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
        # here, not at the top: the portable renderer builds on this module's pieces
        from dlenv.image.portable import render_portable

        return render_portable(spec, lock, lock_digest, project, ignores, portable)
    return _render_exact(spec, lock, lock_digest, project, ignores)


def _dockerignore(ignores: Sequence[str], note: str) -> str:
    return "\n".join([f"{RENDERED_MARK}: what the image never gets{note}.", *ALWAYS_IGNORED,
                      *SECRET_PATTERNS, *ignores]) + "\n"


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
        extra, programs = _image_copies(plan, profile, CONTEXT_DIR)
        files.extend(f for f in programs if f not in files)
        out.extend(_config_lines(plan, project, owner, commands[0][1], _ports(profile),
                                 extra))
        out.append("")
        targets.append(name)
        for suffix, cmd in commands[1:]:
            out.extend([f"FROM {name} AS {name}{suffix}", f"CMD {_json_list(cmd)}", ""])
            targets.append(name + suffix)

    wheel_groups = [layer for layer in plain.layers if layer.installs]
    base = base_stage(plain, None)
    common = builder_stage(wheel_groups, 1, base, "builder", "") if wheel_groups else []
    targets: list[str] = []
    final_stage(plain, base, [("builder", i) for i in common], "runtime")
    next_index = len(wheel_groups) + 1
    for profile in spec.profiles:
        plan = plan_build(spec, lock, profile=profile.name, project=project)
        pbase = base_stage(plan, profile.name)
        own = [layer for layer in plan.layers if layer.installs
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
