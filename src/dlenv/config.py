"""The team configuration: where images are pushed and pulled from, the Python index, the
Debian mirror, the CA bundle and the team's policies.

Each place overrides the one before: built-in defaults < the team file (``DLENV_CONFIG``,
else the first ``dlenv-team.toml`` found walking up from the project) < the user's file
(``$XDG_CONFIG_HOME/dlenv/config.toml``) < the environment < the spec (its ``[index]`` keys
win where it has them; that is applied where the spec is read).

Values reach the rest of dlenv as the environment variables each part already reads
(``environment``: the CLI sets those the user has not set), so one mechanism serves uv,
pip, apt mirrors and dlenv's own clients. Files are untrusted input like specs: a team file
arrives with ``git clone``, so every value is checked and unknown keys are refused.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlenv.errors import ConfigError
from dlenv.fsutil import shorten

TEAM_FILE = "dlenv-team.toml"
DEFAULT_REGISTRY = "docker.io"

_HOST = r"[a-z0-9](?:[a-z0-9.-]{0,252}[a-z0-9])?(?::[0-9]{1,5})?"
_REPO = r"[a-z0-9]+(?:[._/-][a-z0-9]+)*"
HOST = re.compile(_HOST)  # a registry's host[:port]
REPOSITORY = re.compile(_REPO)  # a repository path in a registry
_URL = r"https?://[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]{1,2000}"
_NAME = r"[a-z0-9][a-z0-9._-]{0,62}"
_DRIVER = r"[0-9]{3}(?:\.[0-9]{1,3}){0,2}"


def _text(pattern: str, what: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if not isinstance(value, str) or not re.fullmatch(pattern, value):
            raise ValueError(f"must be {what}")
        return value
    return check


def _texts(pattern: str, what: str, limit: int = 32) -> Callable[[Any], Any]:
    one = _text(pattern, what)

    def check(value: Any) -> Any:
        if not isinstance(value, list) or len(value) > limit:
            raise ValueError(f"must be a list of at most {limit} entries, each {what}")
        return tuple(dict.fromkeys(one(v) for v in value))
    return check


def _mirrors(value: Any) -> Any:
    if not isinstance(value, dict) or len(value) > 32:
        raise ValueError("must be a table: registry = [mirror, ...]")
    each = _texts(f"(?:https?://)?{_HOST}", "a registry host[:port], optionally with "
                  "http:// or https://", limit=8)
    out = {}
    for registry, mirrors in value.items():
        _text(_HOST, "a registry host[:port]")(registry)
        out[registry] = each(mirrors)
    return out


def _requirement(value: Any) -> Any:
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        req = Requirement(value) if isinstance(value, str) and len(value) < 200 else None
    except InvalidRequirement:
        req = None
    if req is None or req.name not in ("tensorflow", "pytorch", "jax") or req.marker \
            or req.extras or req.url:
        raise ValueError("must be a framework and versions, like 'tensorflow>=2.15,<2.17' "
                         "(tensorflow, pytorch or jax)")
    return str(req)


def _frameworks(value: Any) -> Any:
    if not isinstance(value, list) or len(value) > 16:
        raise ValueError("must be a list of at most 16 frameworks with versions")
    return tuple(_requirement(v) for v in value)


@dataclass(frozen=True, slots=True)
class Key:
    name: str  # table.key, as written in the files
    check: Callable[[Any], Any]
    default: Any
    env: str | None  # the variable that sets it (and that carries it to the rest of dlenv)
    help: str


KEYS = {k.name: k for k in (
    Key("registry.default", _text(_HOST, "a registry host[:port]"), DEFAULT_REGISTRY,
        "DLENV_DEFAULT_REGISTRY", "where short image names (debian:bookworm-slim) are found"),
    Key("registry.push", _text(f"{_HOST}/{_REPO}|{_HOST}", "REGISTRY[/PREFIX]"), None,
        "DLENV_PUSH_TO", "where 'dlenv push' with no REF sends NAME:PROFILE"),
    Key("registry.mirrors", _mirrors, {}, "DLENV_REGISTRY_MIRRORS",
        "mirrors tried in order before each registry when pulling"),
    Key("python.index-url", _text(_URL, "an http(s) URL"), None, "UV_INDEX_URL",
        "the Python package index"),
    Key("python.extra-index-urls", _texts(_URL, "an http(s) URL"), (), "UV_EXTRA_INDEX_URL",
        "more indexes, searched after it"),
    Key("debian.mirror", _text(_URL, "an http(s) URL"), None, "DLENV_DEBIAN_MIRROR",
        "the Debian mirror (default: the host's apt sources)"),
    Key("debian.suite", _text(r"[a-z]{3,16}", "a Debian suite like bookworm"), None,
        "DLENV_DEBIAN_SUITE", "the base of specs that name none (base = \"debian:SUITE\")"),
    Key("debian.security-mirror", _text(_URL, "an http(s) URL"), None,
        "DLENV_DEBIAN_SECURITY_MIRROR",
        "Debian's security archive (default: the host's apt sources, else MIRROR-security)"),
    Key("tls.ca-bundle", _text(r"[^\x00-\x1f]{1,4096}", "a path"), None, "SSL_CERT_FILE",
        "CA certificates for every download and registry (a TLS-intercepting proxy's CA)"),
    Key("scan.osv-url", _text(_URL, "an http(s) URL"), "https://api.osv.dev",
        "DLENV_OSV_URL", "the OSV API 'dlenv scan' asks when no --db is given (or a mirror)"),
    Key("policy.frameworks", _frameworks, (), None,
        "frameworks and versions the team allows (any, when empty)"),
    Key("policy.required-profiles", _texts(_NAME, "a profile name"), (), None,
        "profiles every spec must define"),
    Key("policy.max-driver", _text(_DRIVER, "a driver version like 535.104"), None, None,
        "the oldest NVIDIA driver the team's GPU machines run: CUDA locks needing a newer "
        "one are refused"),
)}


@dataclass(frozen=True, slots=True)
class Setting:
    value: Any
    source: str  # "default", a file's path, or "$VARIABLE"


@dataclass(frozen=True, slots=True)
class Config:
    settings: Mapping[str, Setting]
    files: tuple[str, ...]  # the files read, lowest first

    @classmethod
    def defaults(cls) -> Config:
        return cls(settings={k.name: Setting(k.default, "default") for k in KEYS.values()},
                   files=())

    def __getitem__(self, key: str) -> Any:
        return self.settings[key].value

    def environment(self, environ: Mapping[str, str]) -> dict[str, str]:
        """The variables to set so every part of dlenv (and uv) sees the files' values:
        those a file set and the environment does not already have."""
        out: dict[str, str] = {}
        for key in KEYS.values():
            setting = self.settings[key.name]
            if key.env is None or setting.source in ("default",) \
                    or setting.source.startswith("$") or environ.get(key.env):
                continue
            out[key.env] = _to_env(key.name, setting.value)
        return out


def _to_env(name: str, value: Any) -> str:
    if name == "registry.mirrors":
        return " ".join(f"{reg}={','.join(ms)}" for reg, ms in sorted(value.items()))
    if isinstance(value, tuple):
        return " ".join(value)
    return str(value)


def parse_mirrors(text: str) -> dict[str, tuple[str, ...]]:
    """``DLENV_REGISTRY_MIRRORS``: 'docker.io=https://m1,m2 ghcr.io=m3'."""
    table: dict[str, list[str]] = {}
    for entry in text.split():
        registry, sep, mirrors = entry.partition("=")
        if not sep:
            raise ValueError("must be REGISTRY=MIRROR[,MIRROR...] entries, space-separated")
        table[registry] = [m for m in mirrors.split(",") if m]
    return _mirrors(table)  # type: ignore[no-any-return]


def _from_env(key: Key, environ: Mapping[str, str]) -> tuple[Any, str] | None:
    names = [key.env] if key.env else []
    if key.name == "python.index-url":
        names.append("PIP_INDEX_URL")
    if key.name == "python.extra-index-urls":
        names.append("PIP_EXTRA_INDEX_URL")
    for var in names:
        raw = environ.get(var or "")
        if not raw:
            continue
        try:
            if key.name == "registry.mirrors":
                return parse_mirrors(raw), f"${var}"
            if key.name == "python.extra-index-urls":
                return key.check(raw.split()), f"${var}"
            return key.check(raw), f"${var}"
        except ValueError as exc:
            raise ConfigError(f"${var}: {shorten(raw)} {exc}",
                              fix=f"correct or unset {var}") from None
    return None


Fetch = Callable[[str], Path]  # a published team file's URL -> its local copy


def team_file(project: Path | None, environ: Mapping[str, str],
              fetch: Fetch | None = None) -> Path | None:
    """The team file: ``DLENV_CONFIG`` (a path, or an https URL the team publishes, which
    ``fetch`` makes a local copy of), else the nearest ``dlenv-team.toml`` at or above the
    project."""
    named = environ.get("DLENV_CONFIG")
    if named:
        if named.startswith(("http://", "https://")):
            if fetch is None:
                raise ConfigError("DLENV_CONFIG names a URL, and this reader takes files only",
                                  fix="download the team's file and name its path")
            return fetch(named)
        path = Path(named).expanduser()
        if not path.is_file():
            raise ConfigError(f"DLENV_CONFIG names {named}, which is not a file",
                              fix="point DLENV_CONFIG at the team's dlenv-team.toml, or unset "
                                  "it")
        return path
    here = (project or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / TEAM_FILE).is_file():
            return directory / TEAM_FILE
    return None


def user_file(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME") or Path.home())
                                                 / ".config")
    return Path(base) / "dlenv" / "config.toml"


def _read(path: Path) -> dict[str, tuple[Any, str]]:
    """A config file's settings, checked; each with its source (the file)."""
    try:
        raw = path.read_bytes()
        if len(raw) > 1 << 20:
            raise ConfigError(f"{path}: larger than 1 MiB", fix="a config file is a few lines")
        data = tomllib.loads(raw.decode())
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}",
                          fix="see the README's 'For teams' section for the format") from None
    out: dict[str, tuple[Any, str]] = {}
    for table, values in data.items():
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: '{table}' must be a table ([{table}])")
        for name, value in values.items():
            key = KEYS.get(f"{table}.{name}")
            if key is None:
                known = ", ".join(sorted(KEYS))
                raise ConfigError(f"{path}: unknown key {table}.{name}",
                                  fix=f"the keys are: {known}")
            try:
                checked = key.check(value)
            except ValueError as exc:
                raise ConfigError(f"{path}: {key.name} = {shorten(value)} {exc}",
                                  fix=f"correct {key.name} in {path}") from None
            if key.name == "tls.ca-bundle":  # relative to the file that names it
                checked = str((path.parent / checked).resolve())
            out[key.name] = (checked, str(path))
    return out


def load_config(project: Path | None = None, environ: Mapping[str, str] | None = None,
                fetch: Fetch | None = None) -> Config:
    """The effective configuration for a project directory (or the current one);
    ``fetch`` reads a team file published at a URL (the workflows' ``published_config``)."""
    env = os.environ if environ is None else environ
    settings = dict(Config.defaults().settings)
    files = []
    for path in (team_file(project, env, fetch), user_file(env)):
        if path is None or not path.is_file():
            continue
        files.append(str(path))
        for name, (value, source) in _read(path).items():
            settings[name] = Setting(value, source)
    for key in KEYS.values():
        found = _from_env(key, env)
        if found is not None:
            settings[key.name] = Setting(*found)
    return Config(settings=settings, files=tuple(files))
