"""The rendered Dockerfile of every example, pinned by golden files. Locks come from
tests/fixtures/locks (the examples' real locks, download URLs left out: the Dockerfile names
packages by version and hash, pip finds them in the index). Set DLENV_UPDATE_GOLDEN=1 to
rewrite the golden files after an intended change, and review the diff."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from dlenv.image import lock_digest
from dlenv.image.dockerfile import render_dockerfile
from dlenv.image.project import collect_project, user_ignores
from dlenv.lint import lint_dockerfile
from dlenv.lock import read_lock
from dlenv.spec import load_spec
from tests.conftest import EXAMPLES

HERE = Path(__file__).resolve().parent.parent
NAMES = sorted(p.name for p in EXAMPLES.iterdir() if (p / "dlenv.toml").exists())


@pytest.mark.parametrize("name", NAMES)
def test_rendered_dockerfile_matches_its_golden_file(name):
    spec = load_spec(EXAMPLES / name / "dlenv.toml")
    lock = read_lock(HERE / "fixtures/locks" / f"{name}.lock")
    lock.check_fresh(spec.digest())  # the fixture follows the example's spec
    project = EXAMPLES / name
    rendered = render_dockerfile(spec, lock, lock_digest(lock), collect_project(project),
                                 user_ignores(project))
    golden = HERE / "golden" / f"{name}.Dockerfile"
    if os.environ.get("DLENV_UPDATE_GOLDEN"):
        golden.write_text(rendered.dockerfile)
    assert rendered.dockerfile == golden.read_text()
    # what every rendered Dockerfile keeps, whatever the example
    text = rendered.dockerfile
    assert text.count("USER 1000:1000") == len(rendered.targets)
    assert "--require-hashes" in text and "COPY . " not in text
    assert not re.search(r"^(COPY|ADD) .*ca-certificates", text, re.M)  # never copied
    assert lint_dockerfile(text, has_dockerignore=True) == []
    for rel, body in rendered.files:
        assert rel.startswith(".dlenv/requirements-") and "--hash=sha256:" in body


def test_every_example_has_a_fixture_lock():
    assert NAMES and all((HERE / "fixtures/locks" / f"{n}.lock").exists() for n in NAMES)
