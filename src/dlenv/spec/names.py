"""The names a spec's readers need before (or instead of) parsing it: where a directory's
spec is, and the ports a development container's servers listen on. Light at import, like
``lock.names``: a run whose record answers finds its spec file with this alone."""

from __future__ import annotations

from pathlib import Path

from dlenv.errors import Problem, SpecError
from dlenv.fsutil import first_file

SPEC_FILE = "dlenv.toml"
PYPROJECT = "pyproject.toml"
SPEC_FILES = (SPEC_FILE, PYPROJECT)  # where a directory's spec is, the first found

# The ports a development container's servers listen on inside it (``dlenv jupyter`` and
# ``dlenv ssh``, and the dev targets of an ejected Dockerfile).
JUPYTER_PORT = 8888
SSH_PORT = 2222


def find_spec_file(directory: Path) -> Path:
    """The spec file of a project directory: dlenv.toml, else pyproject.toml [tool.dlenv]."""
    found = first_file(directory, SPEC_FILES)
    if found is None:
        raise SpecError([Problem(
            file=str(directory / SPEC_FILE), key="", message="no dlenv.toml here",
            fix=f"run 'dlenv init {directory}' to write one",
        )])
    return found
