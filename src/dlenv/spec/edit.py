"""Changes to a spec's text that keep what people wrote around them (comments, order, blank
lines): ``dlenv upgrade`` writes its candidate this way, and ``--apply`` puts the same text
in place of the spec, so that the candidate's lock is fresh for it."""

from __future__ import annotations

import re
from pathlib import Path

from dlenv.errors import UsageError
from dlenv.fsutil import shorten
from dlenv.spec.model import FrameworkReq
from dlenv.spec.names import PYPROJECT

_VERSION = re.compile(r"\d+(\.\d+){0,2}")


def framework_value(arg: str, current: FrameworkReq | None) -> str:
    """What ``--framework`` asks for, as a spec's ``framework`` value: a whole requirement
    (``tensorflow==2.16.*``), or a version or specifier of the spec's framework (``2.16``
    means its newest 2.16.x, ``2.16.1`` exactly that, ``>=2.16,<2.18`` a range)."""
    arg = arg.strip()
    if arg[:1].isalpha():
        return arg
    if current is None:
        raise UsageError(f"--framework {shorten(arg)} names no framework, and the spec has none",
                         fix="write the whole requirement, e.g. --framework 'tensorflow==2.16.*'")
    if _VERSION.fullmatch(arg):
        arg = f"=={arg}.*" if arg.count(".") < 2 else f"=={arg}"
    return f"{current.name}{arg}"


def with_framework(text: str, file: Path, value: str) -> str:
    """``text`` (the spec ``file`` holds: dlenv.toml, or pyproject.toml's [tool.dlenv]) with
    ``framework = value``; everything else as it was. The caller parses the result, which
    validates ``value`` like any spec value."""
    import tomlkit  # the one TOML library that keeps comments and layout when it writes

    doc = tomlkit.parse(text)
    table = doc["tool"]["dlenv"] if file.name == PYPROJECT else doc
    table["framework"] = value
    return tomlkit.dumps(doc)
