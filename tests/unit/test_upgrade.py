"""dlenv upgrade's pure parts: the --framework value, the candidate spec's text, the spec's
test command, the candidate's tags and lock, and the verdict."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from dlenv.audit.upgrade import Side, SuiteRun, judge
from dlenv.checks import Check
from dlenv.errors import SpecError, UsageError
from dlenv.image import plan_build
from dlenv.lock import read_lock
from dlenv.spec import FrameworkReq, load_spec
from dlenv.spec.edit import framework_value, with_framework
from dlenv.workflows.project import open_project
from dlenv.workflows.upgrade import FOLDER, VARIANT, candidate_project
from tests.conftest import EXAMPLES

TF = FrameworkReq(name="tensorflow", specifier="==2.15.*")


@pytest.mark.parametrize(("arg", "value"), [
    ("2.16", "tensorflow==2.16.*"),
    ("2.16.1", "tensorflow==2.16.1"),
    ("2", "tensorflow==2.*"),
    (">=2.16,<2.18", "tensorflow>=2.16,<2.18"),
    ("==2.16.*", "tensorflow==2.16.*"),
    ("tensorflow==2.17.*", "tensorflow==2.17.*"),
    ("pytorch==2.5.*", "pytorch==2.5.*"),
])
def test_framework_values(arg, value):
    assert framework_value(arg, TF) == value


def test_a_bare_version_needs_a_framework_in_the_spec():
    with pytest.raises(UsageError, match="names no framework"):
        framework_value("2.16", None)


def test_the_candidate_text_changes_the_framework_and_keeps_every_comment():
    text = (EXAMPLES / "tensorflow-cpu" / "dlenv.toml").read_text()
    changed = with_framework(text, Path("dlenv.toml"), "tensorflow==2.16.*")
    assert changed.replace('"tensorflow==2.16.*"', '"tensorflow==2.15.*"') == text
    pyproject = '[project]\nname = "x"\n\n[tool.dlenv]\n# ours\nname = "x"\n' \
                'framework = "jax==0.4.*"\n'
    changed = with_framework(pyproject, Path("pyproject.toml"), "jax==0.5.*")
    assert tomllib.loads(changed)["tool"]["dlenv"]["framework"] == "jax==0.5.*"
    assert "# ours" in changed and tomllib.loads(changed)["project"] == {"name": "x"}


def test_the_test_command_is_outside_the_digest_and_a_profile_may_replace_it(write_spec):
    plain = 'name = "t"\nframework = "tensorflow==2.15.*"\n[profiles.train]\n[profiles.dev]\n'
    before = load_spec(write_spec(plain)).digest()
    spec = load_spec(write_spec('name = "t"\nframework = "tensorflow==2.15.*"\n'
                                'test = ["python", "-m", "pytest"]\n[profiles.train]\n'
                                'test = ["python", "train.py"]\n[profiles.dev]\n'))
    assert spec.digest() == before  # adding a test never makes a lock stale
    assert spec.test_command() == ("python", "-m", "pytest")
    assert spec.test_command("train") == ("python", "train.py")
    assert spec.test_command("dev") == ("python", "-m", "pytest")
    with pytest.raises(SpecError, match="test") as bad:
        load_spec(write_spec('name = "t"\ntest = "pytest"\n'))
    assert "dlenv.toml" in str(bad.value) and 'test = ["..."' in str(bad.value)


LOCK = EXAMPLES.parent / "tests/fixtures/locks/tensorflow-cpu.lock"  # examples' are not kept


def copy_example(tmp_path: Path) -> Path:
    root = tmp_path / "tensorflow-cpu"
    root.mkdir()
    for name in ("dlenv.toml", "train.py"):
        (root / name).write_bytes((EXAMPLES / "tensorflow-cpu" / name).read_bytes())
    return root


def test_the_candidate_keeps_its_lock_and_tags_apart_from_the_project(tmp_path):
    project = open_project(copy_example(tmp_path))
    candidate, text = candidate_project(project, "2.16")
    assert candidate.spec.framework == FrameworkReq(name="tensorflow", specifier="==2.16.*")
    assert candidate.lock_path == project.directory / FOLDER / "dlenv.lock"
    assert candidate.directory == project.directory  # the same project files
    assert 'framework = "tensorflow==2.16.*"' in text
    lock = read_lock(LOCK)
    mine = plan_build(project.spec, lock, location="/p")
    theirs = plan_build(candidate.spec, lock, location="/p", variant=VARIANT)
    assert theirs.alias == "tensorflow-cpu:latest-upgrade" != mine.alias
    assert theirs.tag != mine.tag and theirs.tag.startswith(theirs.alias + "-")
    # the project's own files are untouched until --apply
    assert project.file.read_text() == (EXAMPLES / "tensorflow-cpu" / "dlenv.toml").read_text()


def test_a_candidate_the_spec_already_asks_for_or_cannot_parse_is_refused(tmp_path):
    project = open_project(copy_example(tmp_path))
    with pytest.raises(UsageError, match="already asks for"):
        candidate_project(project, "==2.15.*")
    with pytest.raises(SpecError, match="framework") as bad:
        candidate_project(project, "tensorflow[and-cuda]==2.16.*")
    assert str(project.file) in str(bad.value)
    with pytest.raises(SpecError, match="unknown framework"):
        candidate_project(project, "tensorfloww==2.16")


def side(label: str, checks: tuple[Check, ...], code: int | None) -> Side:
    test = None if code is None else SuiteRun(("pytest",), code, 1.0, "")
    return Side(label=label, framework="tensorflow 2.15.1", python="3.11", tag="t", digest="d",
                size=1, compressed=1, checks=checks, import_seconds=1.0, test=test)


OK = (Check("import", "ok", "imports"), Check("train step", "ok", "trains"))


def test_the_verdict_is_ready_only_when_the_candidate_verifies_and_passes_its_tests():
    assert judge(side("current", OK, 0), side("candidate", OK, 0)).ready
    assert judge(side("current", OK, None), side("candidate", OK, None)).ready
    broken = (OK[0], Check("train step", "fail", "one training step failed", "XlaRuntimeError"))
    verdict = judge(side("current", OK, 0), side("candidate", broken, 0))
    assert not verdict.ready
    assert verdict.reasons == ("verify: one training step failed: XlaRuntimeError",)
    verdict = judge(side("current", OK, 0), side("candidate", OK, 2))
    assert verdict.reasons == ("test: pytest exits 2, 0 in the current image",)
    verdict = judge(side("current", broken, 1), side("candidate", broken, 1))
    assert verdict.reasons == (
        "verify: one training step failed: XlaRuntimeError (it fails in the current image too)",
        "test: pytest exits 1 (and in the current image)")


def test_a_new_warning_is_reported_as_worse_without_blocking():
    warned = (*OK, Check("tflite", "warn", "TFLite conversion failed", "signal 11"))
    verdict = judge(side("current", OK, 0), side("candidate", warned, 0))
    assert verdict.ready and verdict.worse == ("verify: TFLite conversion failed: signal 11",)
    assert judge(side("current", warned, 0), side("candidate", warned, 0)).worse == ()
