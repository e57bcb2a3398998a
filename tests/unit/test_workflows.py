"""The orchestration every verb starts from, called as a library would call it: the lock is
made when missing or stale, refused when damaged, and never rewritten behind the user's back;
progress reaches the caller's Reporter, and nothing is printed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

import dlenv.workflows.project as flow
from dlenv.errors import LockError, StaleLockError
from dlenv.lock import LOCK_FILE, dumps, read_lock
from dlenv.spec import load_spec
from tests.conftest import EXAMPLES

HERE = Path(__file__).resolve().parent.parent
SPEC = (EXAMPLES / "python-base/dlenv.toml").read_text()
LOCK = read_lock(HERE / "fixtures/locks/python-base.lock")


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def step(self, text: str) -> None:
        self.seen.append(("step", text))

    def progress(self, stage: str, done: int, total: int) -> None:
        self.seen.append(("progress", stage))

    def note(self, text: str) -> None:
        self.seen.append(("note", text))

    def warn(self, text: str) -> None:
        self.seen.append(("warn", text))


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "dlenv.toml").write_text(SPEC)
    calls: list[str] = []

    def fake_lock_project(spec, *, cache_dir=None):
        calls.append(spec.name)
        return replace(LOCK, spec_digest=spec.digest())

    monkeypatch.setattr(flow, "lock_project", fake_lock_project)
    return flow.open_project(tmp_path), calls


def test_a_missing_lock_is_made_written_and_reported(project, capsys):
    proj, calls = project
    reporter = Recorder()
    lock = flow.fresh_lock(proj, reporter=reporter)
    assert calls == ["python-base"]
    assert read_lock(proj.lock_path) == lock
    assert reporter.seen == [("step", "locking python-base (the lock was missing or stale)")]
    assert capsys.readouterr() == ("", "")  # a workflow never prints


def test_frozen_never_locks(project):
    proj, calls = project
    with pytest.raises(LockError, match="no lock file"):
        flow.fresh_lock(proj, frozen=True)
    (proj.directory / LOCK_FILE).write_text(dumps(LOCK))
    proj = flow.open_project(proj.directory)
    proj.file.write_text(SPEC.replace("[env]\n", '[env]\nEDITED = "1"\n'))
    with pytest.raises(StaleLockError):
        flow.fresh_lock(flow.open_project(proj.directory), frozen=True)
    assert calls == []


def test_a_stale_lock_is_made_again(project):
    proj, calls = project
    proj.lock_path.write_text(dumps(replace(LOCK, spec_digest="sha256:" + "1" * 64)))
    lock = flow.fresh_lock(proj)
    assert calls == ["python-base"] and lock.spec_digest == proj.spec.digest()


def test_a_lock_that_does_not_match_its_spec_is_refused_and_left_alone(project):
    proj, calls = project
    bad = dumps(replace(LOCK, spec_digest=load_spec(proj.file).digest(),
                        target=replace(LOCK.target, python="3.12")))
    proj.lock_path.write_text(bad)
    with pytest.raises(LockError, match="does not match"):
        flow.fresh_lock(proj)
    assert proj.lock_path.read_text() == bad and calls == []


def test_resolve_reads_the_choice_a_fresh_lock_recorded(project):
    proj, _ = project
    proj.lock_path.write_text(dumps(LOCK))
    assert flow.resolve_project(proj).locked() == LOCK.target
