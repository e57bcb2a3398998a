"""The environment spec, ``dlenv.toml`` (or ``[tool.dlenv]`` in pyproject.toml).

``load_spec`` parses strictly and raises one ``SpecError`` listing every problem as
``file:line: key: problem — fix``. The names of ``names.py`` and ``view.py`` load at once;
the model and the parser (and ``packaging`` below them) on first use (PEP 562): a run whose
record answers finds its spec and plans its container without them."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dlenv.spec.names import (
    JUPYTER_PORT,
    PYPROJECT,
    SPEC_FILE,
    SPEC_FILES,
    SSH_PORT,
    find_spec_file,
)
from dlenv.spec.view import RunProfile, RunView, User

if TYPE_CHECKING:
    from dlenv.spec.deploy import Deploy
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
    from dlenv.spec.parse import TOP_KEYS, load_spec, parse_spec
    from dlenv.spec.serve import MODEL_NAME_RE, SERVE_PACKAGES, SERVE_PORT, ModelServing

_WHERE = {
    "Deploy": "dlenv.spec.deploy",
    **dict.fromkeys(("DEV_TOOLS", "IMAGE_RE", "PROFILE_NAMES", "SUITES", "Base",
                     "FrameworkReq", "IndexSettings", "Profile", "Spec"), "dlenv.spec.model"),
    **dict.fromkeys(("TOP_KEYS", "load_spec", "parse_spec"), "dlenv.spec.parse"),
    **dict.fromkeys(("MODEL_NAME_RE", "SERVE_PACKAGES", "SERVE_PORT", "ModelServing"),
                    "dlenv.spec.serve"),
}
__all__ = [
    "DEV_TOOLS", "IMAGE_RE", "JUPYTER_PORT", "MODEL_NAME_RE", "PROFILE_NAMES", "PYPROJECT",
    "SERVE_PACKAGES", "SERVE_PORT", "SPEC_FILE", "SPEC_FILES", "SSH_PORT", "SUITES", "TOP_KEYS",
    "Base", "Deploy", "FrameworkReq", "IndexSettings", "ModelServing", "Profile", "RunProfile",
    "RunView", "Spec", "User", "find_spec_file", "load_spec", "parse_spec",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
