"""The environment spec, ``dlenv.toml`` (or ``[tool.dlenv]`` in pyproject.toml).

``load_spec`` parses strictly and raises one ``SpecError`` listing every problem as
``file:line: key: problem — fix``."""

from __future__ import annotations

from dlenv.spec.collect import MAX_VALUE, locate_keys
from dlenv.spec.deploy import DEPLOY_KEYS, ClusterVolume, Deploy, DeployTable, Toleration
from dlenv.spec.model import (
    DEV_TOOLS,
    IMAGE_RE,
    JUPYTER_PORT,
    PROFILE_NAMES,
    PYPROJECT,
    SPEC_FILE,
    SPEC_FILES,
    SSH_PORT,
    SUITES,
    Base,
    FrameworkReq,
    IndexSettings,
    Profile,
    Spec,
    User,
)
from dlenv.spec.parse import (
    INDEX_KEYS,
    MAX_REQUIREMENT,
    MAX_SPEC_BYTES,
    PROFILE_KEYS,
    RESERVED_USERS,
    TOP_KEYS,
    USER_KEYS,
    find_spec_file,
    image_dir_problem,
    load_spec,
    parse_spec,
)
from dlenv.spec.serve import MODEL_NAME_RE, SERVE_KEYS, SERVE_PACKAGES, SERVE_PORT, ModelServing

__all__ = [
    "DEPLOY_KEYS", "DEV_TOOLS", "ClusterVolume", "Deploy", "DeployTable", "Toleration",
    "Base", "FrameworkReq", "IMAGE_RE", "INDEX_KEYS", "JUPYTER_PORT", "IndexSettings",
    "MAX_REQUIREMENT", "MAX_SPEC_BYTES", "MAX_VALUE", "PROFILE_KEYS", "PROFILE_NAMES",
    "PYPROJECT", "Profile", "RESERVED_USERS", "SPEC_FILE", "SPEC_FILES", "SSH_PORT", "SUITES",
    "Spec", "TOP_KEYS", "USER_KEYS", "User",
    "MODEL_NAME_RE", "SERVE_KEYS", "SERVE_PACKAGES", "SERVE_PORT", "ModelServing",
    "find_spec_file", "image_dir_problem", "load_spec", "locate_keys", "parse_spec",
]
