"""The rendered Dockerfile of every example, pinned by golden files. Locks come from
tests/fixtures/locks (the examples' real locks, download URLs left out: the Dockerfile names
packages by version and hash, pip finds them in the index); both modes, portable as
NAME.Dockerfile and exact as NAME.exact.Dockerfile. Set DLENV_UPDATE_GOLDEN=1 to rewrite the
golden files after an intended change, and review the diff."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from dlenv.image import lock_digest
from dlenv.image.dockerfile import MODES, render_dockerfile
from dlenv.image.portable import PortableBase
from dlenv.image.project import collect_project, user_ignores
from dlenv.lint import lint_dockerfile
from dlenv.lock import read_lock
from dlenv.spec import load_spec
from tests.conftest import EXAMPLES

HERE = Path(__file__).resolve().parent.parent
NAMES = sorted(p.name for p in EXAMPLES.iterdir() if (p / "dlenv.toml").exists())


# A fixed registry base for the portable renderings (eject asks the registry for it).
PORTABLE = PortableBase(image="debian:bookworm-slim@sha256:" + "5" * 64, pip="23.0.1+dfsg-1")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", NAMES)
def test_rendered_dockerfile_matches_its_golden_file(name, mode):
    spec = load_spec(EXAMPLES / name / "dlenv.toml")
    lock = read_lock(HERE / "fixtures/locks" / f"{name}.lock")
    lock.check_fresh(spec.digest())  # the fixture follows the example's spec
    project = EXAMPLES / name
    rendered = render_dockerfile(spec, lock, lock_digest(lock), collect_project(project),
                                 user_ignores(project),
                                 portable=PORTABLE if mode == "portable" else None)
    golden = HERE / "golden" / (f"{name}.Dockerfile" if mode == "portable"
                                else f"{name}.exact.Dockerfile")
    if os.environ.get("DLENV_UPDATE_GOLDEN"):
        golden.write_text(rendered.dockerfile)
    assert rendered.dockerfile == golden.read_text()
    # what every rendered Dockerfile keeps, whatever the example
    text = rendered.dockerfile
    assert rendered.mode == mode and f"{mode} mode" in text.splitlines()[0]
    finals = [t for t in rendered.targets if not t.endswith("-ssh")]
    assert text.count("USER 1000:1000") == len(finals)
    assert "--require-hashes" in text and "COPY . " not in text
    assert not re.search(r"^(COPY|ADD) .*ca-certificates", text, re.M)  # never copied
    assert lint_dockerfile(text, has_dockerignore=True) == []
    prefix = "requirements/locked-" if mode == "portable" else ".dlenv/requirements-"
    for rel, body in rendered.files:
        if rel.endswith("/dlenv-launch.py"):  # the train target's launcher, as natively
            assert "COPY --chmod=644 " + f'["{rel}", "/usr/local/lib/dlenv/launch.py"]' in text
            continue
        assert rel.startswith(prefix) and "--hash=sha256:" in body
    if mode == "portable":
        # nothing only dlenv can produce: no tarball, no .dlenv/, the base pinned by digest
        assert ".dlenv/" not in text and "ADD " not in text and not rendered.bases
        assert f"ARG BASE={PORTABLE.image}" in text
        locked = {w.requirement_line() for w in lock.wheels if w.sdist is None}
        written = {line for _, body in rendered.files for line in body.splitlines()[1:]}
        assert locked <= written  # every locked wheel, by its hash


def test_every_example_has_a_fixture_lock():
    assert NAMES and all((HERE / "fixtures/locks" / f"{n}.lock").exists() for n in NAMES)
