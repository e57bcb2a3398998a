"""What dlenv's model server serves: the model keys of a TensorFlow spec's ``serve`` profile.

A ``serve`` profile without its own ``command`` in a TensorFlow spec runs dlenv's model
server (``dlenv.serving``, TensorFlow Serving's REST API), and these keys set it up:

    [profiles.serve]
    model = "models/mnist"   # versions 1/, 2/ … in the project (dlenv serve mounts it)
    model_name = "mnist"     # the NAME in /v1/models/NAME (default: model's last part)
    model_versions = "latest"  # or "all": which version directories are loaded
    batch_size = 32          # predicts that arrive together run as one call (0: off)
    batch_timeout_ms = 2     # how long the first waits for others to join
    threads = 4              # threads one TensorFlow operation may use (0: TensorFlow's choice)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from dlenv.fsutil import shorten
from dlenv.spec.collect import PATH_PART_RE, _Collector

SERVE_KEYS = ("model", "model_name", "model_versions", "batch_size", "batch_timeout_ms",
              "threads")
# What the serve profile's image needs beside TensorFlow to run dlenv's model server.
SERVE_PACKAGES = ("starlette", "uvicorn", "prometheus-client")
SERVE_PORT = 8501  # TensorFlow Serving's REST port
MODEL_BASE_PATH = "/models"  # where served models live in an image, as in TensorFlow Serving's
MODEL_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelServing:
    name: str = "model"
    path: str | None = None  # a directory of the project holding numbered versions
    versions: Literal["latest", "all"] = "latest"
    batch_size: int = 0  # server-side batching: at most this many rows per call (0, 1: off)
    batch_timeout_ms: int = 2
    threads: int = 0  # TensorFlow's intra-op threads (0: its own choice)

    def env(self) -> tuple[tuple[str, str], ...]:
        """How the image's model server is told (the tensorflow/serving image's names
        where it has one)."""
        return (("MODEL_NAME", self.name), ("MODEL_BASE_PATH", MODEL_BASE_PATH),
                ("DLENV_SERVE_VERSIONS", self.versions),
                ("DLENV_SERVE_BATCH_SIZE", str(self.batch_size)),
                ("DLENV_SERVE_BATCH_TIMEOUT_MS", str(self.batch_timeout_ms)),
                ("DLENV_SERVE_THREADS", str(self.threads)))


def parse_serving(c: _Collector, key: str, profile: str, table: dict[str, Any],
                  framework: str | None) -> ModelServing | None:
    """The model server's settings when ``profile`` runs it, else None (and an error for
    model keys where the server does not run)."""
    given = [k for k in SERVE_KEYS if k in table]
    runs = profile == "serve" and "command" not in table and framework == "tensorflow"
    if not runs:
        if given:
            why = ("only the serve profile runs dlenv's model server" if profile != "serve"
                   else "the profile runs its own command" if "command" in table
                   else "dlenv's model server serves TensorFlow SavedModels")
            c.add(f"{key}.{given[0]}", f"{why}, so {given[0]} has no effect",
                  "remove it" + (", or remove command to use dlenv's server"
                                 if "command" in table and profile == "serve" else ""))
        return None
    path = c.string(f"{key}.model", table.get("model"))
    if path is not None:
        parts = path.strip("/").split("/")
        if path.startswith("/") or not all(PATH_PART_RE.fullmatch(p) and p not in (".", "..")
                                           for p in parts):
            c.add(f"{key}.model", f"{shorten(path)} is not a directory inside the project",
                  'write a relative path such as model = "models/mnist"')
            path = None
        else:
            path = "/".join(parts)
    name = c.string(f"{key}.model_name", table.get("model_name"))
    if name is None:
        name = path.rsplit("/", 1)[-1] if path else "model"
        if not MODEL_NAME_RE.fullmatch(name):
            name = "model"
    elif not MODEL_NAME_RE.fullmatch(name):
        c.add(f"{key}.model_name", f"{shorten(name)} is not a model name",
              "use letters, digits and . _ - (at most 63), e.g. model_name = \"mnist\"")
        name = "model"
    versions = c.string(f"{key}.model_versions", table.get("model_versions")) or "latest"
    if versions not in ("latest", "all"):
        c.add(f"{key}.model_versions", f"{shorten(versions)} is not a version policy",
              'write model_versions = "latest" (the newest version) or "all"')
        versions = "latest"
    timeout = c.count(f"{key}.batch_timeout_ms", table.get("batch_timeout_ms"), 0, 10_000)
    return ModelServing(
        name=name, path=path, versions="all" if versions == "all" else "latest",
        batch_size=c.count(f"{key}.batch_size", table.get("batch_size"), 0, 4096) or 0,
        batch_timeout_ms=2 if timeout is None else timeout,
        threads=c.count(f"{key}.threads", table.get("threads"), 0, 1024) or 0)
