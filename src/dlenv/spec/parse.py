"""The strict parser of ``dlenv.toml`` (or ``[tool.dlenv]`` in pyproject.toml): every value
checked and bounded, every problem located ``file:line: key: problem — fix``, all at once.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from dlenv.compat import DISTRIBUTION, FRAMEWORKS
from dlenv.errors import Problem, SpecError
from dlenv.fsutil import shorten
from dlenv.spec.collect import (
    _CONTROL_RE,
    PATH_PART_RE,
    SYSTEM_TREES,
    _Collector,
    locate_keys,
    parse_env,
)
from dlenv.spec.deploy import parse_deploy
from dlenv.spec.model import (
    DEV_TOOLS,
    IMAGE_RE,
    PROFILE_NAMES,
    SUITES,
    Base,
    FrameworkReq,
    IndexSettings,
    Profile,
    Spec,
)
from dlenv.spec.names import PYPROJECT, SPEC_FILE, find_spec_file
from dlenv.spec.serve import SERVE_KEYS, SERVE_PORT, parse_serving
from dlenv.spec.view import User

# Every pattern is used with fullmatch: `$` alone would accept a trailing newline.
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
_APT_RE = re.compile(r"[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:-]+)?")
_USER_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_URL_RE = re.compile(r"(https?|file)://[^\s\x00-\x1f\x7f]{1,2000}")


# Where a project mounted at the workdir would hide or break the system or dlenv's own mounts.
_SYSTEM_DIRS = frozenset({
    "/", "/bin", "/boot", "/data", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64",
    "/libx32", "/models", "/proc", "/root", "/run", "/sbin",
    "/sys", "/tmp", "/usr", "/usr/bin", "/usr/lib", "/usr/lib64", "/usr/local",
    "/usr/local/bin", "/usr/local/lib", "/usr/sbin", "/usr/share", "/var", "/var/lib"})


RESERVED_USERS = frozenset({"root", "nobody", "nogroup", "daemon", "bin", "sys"})
MAX_REQUIREMENT = 1000
MAX_SPEC_BYTES = 1 << 20
TOP_KEYS = (
    "name", "framework", "accelerator", "python", "base", "packages", "apt", "user",
    "workdir", "env", "index", "profiles", "deploy", "test",
)


PROFILE_KEYS = ("packages", "apt", "tools", "jupyter", "ssh", "command", "ports", "env",
                "test")
INDEX_KEYS = ("url", "extra_urls", "ca_bundle", "allow_sdist", "pytorch_url")
USER_KEYS = ("name", "uid", "gid")


def _parse_framework(c: _Collector, value: Any) -> FrameworkReq | None:
    raw = c.line("framework", c.string("framework", value))
    if raw is None or raw.strip().lower() in ("", "none"):
        return None
    try:
        req = Requirement(raw.replace("pytorch", "torch", 1) if raw.startswith("pytorch") else raw)
    except InvalidRequirement as exc:
        c.add("framework", f"cannot parse {shorten(raw)}: {str(exc).splitlines()[0]}",
              'write e.g. framework = "tensorflow==2.15.*"')
        return None
    if any(s.operator == "===" for s in req.specifier):
        c.add("framework", "=== (arbitrary equality) is not supported for the framework",
              f'write {req.name}=={req.specifier and next(iter(req.specifier)).version}')
        return None
    by_dist = {dist: name for name, dist in DISTRIBUTION.items()}
    name = by_dist.get(req.name.lower())
    if name is None:
        close = difflib.get_close_matches(req.name.lower(), [*FRAMEWORKS, "torch"], n=1)
        hint = f"did you mean '{close[0]}'?" if close else "use tensorflow, pytorch, jax or none"
        c.add("framework", f"unknown framework {req.name!r}", hint)
        return None
    if req.extras:
        c.add("framework", f"extras [{','.join(sorted(req.extras))}] are chosen by dlenv",
              'set accelerator = "cuda" instead, and write the framework without extras')
        return None
    if req.url or req.marker:
        c.add("framework", "URLs and markers are not allowed here",
              "put such requirements in packages")
        return None
    if req.specifier and not _satisfiable(req.specifier):
        c.add("framework", f"version specifier {shorten(str(req.specifier))} admits no version",
              "loosen it, e.g. '==2.15.*'")
        return None
    return FrameworkReq(name=name, specifier=str(req.specifier))


def _satisfiable(spec: SpecifierSet) -> bool:
    """Whether some version satisfies ``spec`` (catches '>=3,<2' and friends).

    Probes each version the specifiers name and its neighbours: a satisfiable set always
    admits one of them or a version past them all.
    """
    probes = {"0", "9999"}
    for s in spec:
        try:
            v = Version(s.version.removesuffix(".*"))
        except InvalidVersion:
            return False
        parts = [*v.release, 0, 0][:3]
        probes |= {str(v), f"{v.base_version}.post{(v.post or 0) + 1}",
                   f"{parts[0]}.{parts[1]}.{parts[2] + 1}",
                   f"{parts[0]}.{parts[1] + 1}", f"{parts[0] + 1}"}
        if parts[2] > 0:
            probes.add(f"{parts[0]}.{parts[1]}.{parts[2] - 1}")
        if parts[1] > 0:
            probes.add(f"{parts[0]}.{parts[1] - 1}.99")
    return any(spec.contains(Version(p), prereleases=True) for p in probes)


def _parse_requirements(c: _Collector, key: str, values: tuple[str, ...]) -> tuple[str, ...]:
    good = []
    for i, raw in enumerate(values):
        if len(raw) > MAX_REQUIREMENT or _CONTROL_RE.search(raw):
            c.add(f"{key}[{i}]", f"{shorten(raw)} is not a requirement (too long, or a "
                  "line break)", 'write e.g. "pandas>=2.1"')
            continue
        try:
            req = Requirement(raw)
        except InvalidRequirement as exc:
            c.add(f"{key}[{i}]", f"{shorten(raw)} is not a PEP 508 requirement "
                  f"({str(exc).splitlines()[0]})", 'write e.g. "pandas>=2.1"')
            continue
        if req.name.lower() == "tensorflow-gpu":
            c.add(f"{key}[{i}]", "tensorflow-gpu is a stub from TensorFlow 2.12 on",
                  'set framework = "tensorflow..." and accelerator = "cuda" instead')
            continue
        if req.name.lower() in DISTRIBUTION.values():
            c.add(f"{key}[{i}]", f"{req.name} is a framework",
                  f'set framework = "{raw}" instead of listing it in {key}')
            continue
        good.append(raw)
    return tuple(good)


def _parse_apt(c: _Collector, key: str, values: tuple[str, ...]) -> tuple[str, ...]:
    for i, raw in enumerate(values):
        if not _APT_RE.fullmatch(raw):
            c.add(f"{key}[{i}]", f"{shorten(raw)} is not a Debian package name",
                  "use lowercase names such as 'git' or 'libgl1'")
    return values


def _parse_profile(c: _Collector, name: str, value: Any,
                   framework: FrameworkReq | None) -> Profile | None:
    key = f"profiles.{name}"
    table = c.table(key, value)
    if name not in PROFILE_NAMES:
        close = difflib.get_close_matches(name, PROFILE_NAMES, n=1) if len(name) < 100 else []
        shown = name if len(name) <= 40 else shorten(name, 40)
        c.add(f"profiles.{shown}", f"unknown profile {shorten(name, 40)}",
              f"did you mean '{close[0]}'?" if close else "profiles are dev, train and serve")
        return None
    c.unknown_keys(f"{key}.", table, PROFILE_KEYS + SERVE_KEYS)
    serving = parse_serving(c, key, name, table, framework.name if framework else None)
    ports = table.get("ports", [SERVE_PORT] if serving else [])
    if not isinstance(ports, list) or not all(
        isinstance(p, int) and not isinstance(p, bool) and 0 < p < 65536 for p in ports
    ):
        c.add(f"{key}.ports", "expected a list of port numbers (1-65535)", "write ports = [8888]")
        ports = []
    return Profile(
        name=name,
        packages=_parse_requirements(c, f"{key}.packages",
                                     c.string_list(f"{key}.packages", table.get("packages"))),
        apt=_parse_apt(c, f"{key}.apt", c.string_list(f"{key}.apt", table.get("apt"))),
        tools=DEV_TOOLS if name == "dev" and "tools" not in table else
        _parse_apt(c, f"{key}.tools", c.string_list(f"{key}.tools", table.get("tools"))),
        jupyter=c.boolean(f"{key}.jupyter", table.get("jupyter")),
        ssh=c.boolean(f"{key}.ssh", table.get("ssh")),
        command=c.string_list(f"{key}.command", table.get("command")),  # argv: no shell
        test=c.string_list(f"{key}.test", table.get("test")),
        ports=tuple(ports),
        env=parse_env(c, f"{key}.env", table.get("env")),
        serving=serving,
    )


def _parse_base(c: _Collector, value: Any) -> Base:
    raw = c.string("base", value)
    if raw is None or raw == "debian":
        return Base(kind="debian")
    if raw.startswith("debian:"):
        suite = raw.split(":", 1)[1]
        if suite not in SUITES:
            close = difflib.get_close_matches(suite, SUITES, n=1)
            c.add("base", f"Debian suite {suite!r} is not supported",
                  f"did you mean 'debian:{close[0]}'?" if close
                  else "use debian:bullseye, debian:bookworm or debian:trixie")
            return Base(kind="debian")
        return Base(kind="debian", suite=suite)
    if not IMAGE_RE.fullmatch(raw):
        c.add("base", f"{shorten(raw)} is not an image reference",
              'write e.g. base = "debian:bookworm" or "registry.example/team/python:3.11"')
        return Base(kind="debian")
    return Base(kind="image", ref=raw)


def _parse_user(c: _Collector, value: Any) -> User:
    table = c.table("user", value)
    c.unknown_keys("user.", table, USER_KEYS)
    name = c.string("user.name", table.get("name")) or "dlenv"
    if not _USER_RE.fullmatch(name):
        c.add("user.name", f"{shorten(name)} is not a valid user name", "use lowercase letters")
    elif name in RESERVED_USERS:
        c.add("user.name", f"{name!r} is a system account; images run as a user of their own",
              'pick another name, e.g. user.name = "dlenv"')
    ids = {}
    for key in ("uid", "gid"):
        raw = table.get(key, 1000)
        if not isinstance(raw, int) or isinstance(raw, bool) or not 0 <= raw < 2**31:
            c.add(f"user.{key}", "expected a number", f"write user.{key} = 1000")
            raw = 1000
        elif raw == 0:
            c.add(f"user.{key}", "images run as a non-root user",
                  f"pick a {key} other than 0, e.g. 1000")
        ids[key] = raw
    return User(name=name, uid=ids["uid"], gid=ids["gid"])


def _parse_index(c: _Collector, value: Any) -> IndexSettings:
    table = c.table("index", value)
    c.unknown_keys("index.", table, INDEX_KEYS)
    url = c.string("index.url", table.get("url"))
    extra = c.string_list("index.extra_urls", table.get("extra_urls"))
    pytorch_url = c.string("index.pytorch_url", table.get("pytorch_url"))
    checked = [("index.url", url), ("index.pytorch_url", pytorch_url),
               *(("index.extra_urls", e) for e in extra)]
    for key, u in checked:
        if u is not None and not _URL_RE.fullmatch(u):
            c.add(key, f"{shorten(u)} is not an http(s) or file URL",
                  "write e.g. https://pypi.example.internal/simple")
    ca_bundle = c.line("index.ca_bundle", c.string("index.ca_bundle", table.get("ca_bundle")))
    return IndexSettings(
        url=url, extra_urls=extra, ca_bundle=ca_bundle,
        allow_sdist=c.boolean("index.allow_sdist", table.get("allow_sdist")),
        pytorch_url=pytorch_url.rstrip("/") if pytorch_url else None,
    )


def _parse_accelerator(c: _Collector, value: Any) -> tuple[Literal["cpu", "cuda"], str | None]:
    raw = c.string("accelerator", value)
    if raw is None or raw == "cpu":
        return "cpu", None
    m = re.fullmatch(r"cuda(1[1-3])?", raw)
    if not m:
        c.add("accelerator", f"unknown accelerator {shorten(raw)}",
              'use "cpu", "cuda", or a CUDA major such as "cuda12"')
        return "cpu", None
    return "cuda", m.group(1)


def image_dir_problem(path: str) -> str | None:
    """Why ``path`` cannot be a working directory in the image (None when it can be)."""
    if not path.startswith("/"):
        return "is not absolute"
    parts = path[1:].split("/")
    if not all(PATH_PART_RE.fullmatch(p) for p in parts):
        return ("is not a plain normalised path (no '..', '.', '//', trailing '/', spaces, "
                "commas, quotes or control characters)")
    if path in _SYSTEM_DIRS or path.startswith(SYSTEM_TREES):
        return "is a system directory: the project mounted there would hide it"
    return None


def parse_spec(data: dict[str, Any], *, file: str = SPEC_FILE, text: str = "",
               prefix: str = "") -> Spec:
    """Build a Spec from parsed TOML; raise SpecError with every problem found."""
    c = _Collector(file, locate_keys(text), prefix)
    c.unknown_keys("", data, TOP_KEYS)
    name = c.string("name", data.get("name"))
    if name is None and "name" not in data:
        c.add("name", "missing", 'add name = "my-env" (lowercase, digits, . _ -)')
    elif name is not None and not _NAME_RE.fullmatch(name):
        c.add("name", f"{shorten(name)} is not a valid name",
              "use lowercase letters, digits, . _ -")
    python = c.string("python", data.get("python"))
    if python is not None and not re.fullmatch(r"3\.\d{1,2}", python):
        c.add("python", f"{shorten(python)} is not a Python version", 'write python = "3.11"')
        python = None
    workdir = c.string("workdir", data.get("workdir")) or "/workspace"
    problem = image_dir_problem(workdir)
    if problem:
        c.add("workdir", f"{shorten(workdir)} {problem}",
              'write an absolute path of letters, digits and . _ - @ +, e.g. '
              'workdir = "/workspace"')
    accelerator, cuda_major = _parse_accelerator(c, data.get("accelerator"))
    profiles_table = c.table("profiles", data.get("profiles"))
    framework = _parse_framework(c, data.get("framework"))
    profiles = [_parse_profile(c, n, v, framework) for n, v in profiles_table.items()]
    spec = Spec(
        name=name or "",
        framework=framework,
        accelerator=accelerator,
        cuda_major=cuda_major,
        python=python,
        base=_parse_base(c, data.get("base")),
        packages=_parse_requirements(c, "packages",
                                     c.string_list("packages", data.get("packages"))),
        apt=_parse_apt(c, "apt", c.string_list("apt", data.get("apt"))),
        user=_parse_user(c, data.get("user")),
        workdir=workdir,
        env=parse_env(c, "env", data.get("env")),
        index=_parse_index(c, data.get("index")),
        profiles=tuple(p for p in profiles if p is not None),
        deploy=parse_deploy(c, data.get("deploy")),
        test=c.string_list("test", data.get("test")),  # argv: no shell
        source=file,
    )
    if c.problems:
        raise SpecError(c.problems)
    return spec


def load_spec(path: Path) -> Spec:
    """Read and parse a spec file or project directory."""
    file = find_spec_file(path)
    raw = file.read_bytes()
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError([Problem(file=str(file), key="", message=f"{len(raw)} bytes is too "
                                 "large for a spec", fix=f"keep it under {MAX_SPEC_BYTES} bytes")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise SpecError([Problem(file=str(file), key="", line=line,
                                 message=f"not UTF-8 text (byte {exc.start})",
                                 fix="save the file as UTF-8")]) from None
    return parse_spec_text(text, file)


def parse_spec_text(text: str, file: Path) -> Spec:
    """A spec from ``text``, as though it were ``file``'s (dlenv.toml or pyproject.toml)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise SpecError([Problem(
            file=str(file), key="", line=int(m.group(1)) if m else None,
            message=f"not valid TOML: {exc}", fix="fix the syntax at that line",
        )]) from None
    except RecursionError:
        raise SpecError([Problem(file=str(file), key="", message="values nested too deeply",
                                 fix="a spec needs no nesting deeper than a table of "
                                     "lists")]) from None
    prefix = ""
    if file.name == PYPROJECT:
        tool = data.get("tool", {})
        if not isinstance(tool, dict) or not isinstance(tool.get("dlenv"), dict):
            raise SpecError([Problem(file=str(file), key="tool.dlenv",
                                     message="no [tool.dlenv] table",
                                     fix="add [tool.dlenv] or write a dlenv.toml")])
        data, prefix = tool["dlenv"], "tool.dlenv."
    return parse_spec(data, file=str(file), text=text, prefix=prefix)
