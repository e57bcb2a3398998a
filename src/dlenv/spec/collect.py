"""Where each key of a spec file sits (``locate_keys``), and the collector that records every
problem with its line and fix while the parser reads values of the right kind.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from dlenv.errors import Problem
from dlenv.fsutil import shorten

MAX_VALUE = 4096  # longest string value a spec may hold (requirements, env values, paths)
_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
ENV_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
# A path in the image: absolute, normalised, of characters that need no quoting anywhere
# it is written (engine --mount options, Dockerfiles, sshd_config, YAML).
PATH_PART_RE = re.compile(r"[A-Za-z0-9_@+-][A-Za-z0-9._@+-]{0,127}")


SYSTEM_TREES = ("/proc/", "/sys/", "/dev/", "/etc/", "/run/", "/boot/", "/bin/", "/sbin/",
               "/lib/", "/lib64/", "/usr/bin/", "/usr/sbin/", "/usr/lib/", "/var/lib/")



# --- locating keys -------------------------------------------------------------------------
# tomllib (and every maintained TOML reader) drops source positions, so this small scanner
# maps dotted key paths to the line that defines them; it only has to be right for the
# ordinary layouts a spec uses (tables, [[arrays]], dotted keys, inline tables on one line).
_HEADER_RE = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY_RE = re.compile(r"^\s*([A-Za-z0-9_.\"' -]+?)\s*=")


def _key_parts(raw: str) -> list[str]:
    return [p.strip().strip("\"'") for p in raw.split(".")]


def locate_keys(text: str) -> dict[str, int]:
    lines: dict[str, int] = {}
    table: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER_RE.match(line)
        if header:
            table = _key_parts(header.group(1))
            lines.setdefault(".".join(table), number)
            continue
        key = _KEY_RE.match(line)
        if key:
            path = ".".join([*table, *_key_parts(key.group(1))])
            lines.setdefault(path, number)
            # inline tables: `user = { name = "x", uid = 1 }`
            inline = re.search(r"=\s*\{(.*)\}", line)
            if inline:
                for inner in re.finditer(r"([A-Za-z0-9_-]+)\s*=", inline.group(1)):
                    lines.setdefault(f"{path}.{inner.group(1)}", number)
    return lines


class _Collector:
    """Gathers problems while the parser walks the document."""

    def __init__(self, file: str, lines: dict[str, int], prefix: str) -> None:
        self.file, self.lines, self.prefix = file, lines, prefix
        self.problems: list[Problem] = []

    def add(self, key: str, message: str, fix: str | None = None) -> None:
        lookup = key.split("[")[0]
        line = None
        while lookup:
            line = self.lines.get(self.prefix + lookup)
            if line is not None:
                break
            lookup = lookup.rpartition(".")[0]
        self.problems.append(Problem(file=self.file, key=key, message=message, line=line, fix=fix))

    def unknown_keys(self, where: str, table: dict[str, Any], known: tuple[str, ...]) -> None:
        for key in table:
            if key in known:
                continue
            close = difflib.get_close_matches(key, known, n=1) if len(key) < 100 else []
            fix = f"did you mean '{close[0]}'?" if close else "known keys: " + ", ".join(known)
            self.add(f"{where}{key if len(key) < 60 else shorten(key, 60)}", "unknown key", fix)

    def string(self, key: str, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            self.add(key, f"expected a string, got {_kind(value)}", f'write {key} = "..."')
            return None
        if len(value) > MAX_VALUE or "\x00" in value:
            self.add(key, f"{shorten(value)} is too long or holds a NUL character",
                     f"keep values under {MAX_VALUE} characters")
            return None
        return value

    def string_list(self, key: str, value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.add(key, "expected a list of strings", f'write {key} = ["...", "..."]')
            return ()
        if len(value) > 1000 or any(len(v) > MAX_VALUE or "\x00" in v for v in value):
            self.add(key, "too many or too long values, or a NUL character",
                     f"at most 1000 values of {MAX_VALUE} characters")
            return ()
        return tuple(value)

    def line(self, key: str, value: str | None) -> str | None:
        """A string that is written into files line by line: no control characters."""
        if value is not None and _CONTROL_RE.search(value):
            self.add(key, f"{shorten(value)} holds a line break or control character",
                     "write it on one line, without control characters")
            return None
        return value

    def count(self, key: str, value: Any, low: int, high: int) -> int | None:
        """A whole number from ``low`` to ``high``, or None (absent, or an error)."""
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            self.add(key, f"expected a whole number from {low} to {high}",
                     f"write {key.split('.')[-1]} = {max(low, 1)}")
            return None
        return value

    def boolean(self, key: str, value: Any, default: bool = False) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            self.add(key, f"expected true or false, got {_kind(value)}")
            return default
        return value

    def table(self, key: str, value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.add(key, f"expected a table, got {_kind(value)}", f"write [{key}] as a table")
            return {}
        return value


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


def parse_env(c: _Collector, key: str, value: Any) -> tuple[tuple[str, str], ...]:
    table = c.table(key, value)
    out = []
    for name, val in table.items():
        if not ENV_RE.fullmatch(name):
            c.add(f"{key}.{shorten(name, 40)}", "not a valid environment variable name",
                  "use letters, digits and underscores")
        elif not isinstance(val, str | int | float | bool):
            c.add(f"{key}.{name}", f"expected a string, got {_kind(val)}")
        elif c.line(f"{key}.{name}", c.string(f"{key}.{name}", str(val))) is None:
            continue
        else:
            out.append((name, str(val).lower() if isinstance(val, bool) else str(val)))
    return tuple(sorted(out))
