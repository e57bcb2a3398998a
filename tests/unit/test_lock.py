"""The lock: canonical text, strict reading, staleness, and wheel choice for a target."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import pytest

from dlenv.cli import main
from dlenv.errors import LockError, NoWheelError, StaleLockError
from dlenv.lock import (
    Lock,
    LockedBase,
    LockedDeb,
    LockedTarget,
    LockedWheel,
    dumps,
    loads,
    read_lock,
)
from dlenv.resolve import resolve_target
from dlenv.resolve.locking import lock_python
from dlenv.resolve.python import (
    IndexConfig,
    best_wheel,
    explain_uv_failure,
    index_config,
    target_tags,
    wheels_from_pylock,
)
from dlenv.spec import IndexSettings, load_spec, parse_spec

SHA = "ab" * 32


def wheel(name: str, version: str = "1.0", profiles: tuple[str, ...] = ()) -> LockedWheel:
    fn = f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    return LockedWheel(name=name, version=version, filename=fn, url=f"https://idx.example/{fn}",
                       sha256=SHA, size=10, profiles=profiles)


def sample_lock() -> Lock:
    return Lock(
        spec_digest="sha256:" + "0" * 64, source_date_epoch=1700000000,
        target=LockedTarget(python="3.11", gpu_archs=("8.0", "9.0")),
        base=LockedBase(kind="debian", suite="bookworm"),
        wheels=(wheel("zlib-ng"), wheel("absl-py", profiles=("dev",))),
        debs=(LockedDeb(name="libc6", version="2.36-9", architecture="amd64",
                        filename="pool/main/g/glibc/libc6_2.36-9_amd64.deb", sha256=SHA,
                        size=99),),
    )


def test_lock_round_trip_is_byte_identical():
    text = dumps(sample_lock())
    assert dumps(loads(text)) == text
    assert loads(text).wheels[0].name == "absl-py"  # sorted, whatever the input order


def test_every_fixture_lock_reads_into_a_typed_target_and_writes_the_same_bytes():
    for path in sorted((Path(__file__).parent.parent / "fixtures/locks").glob("*.lock")):
        text = path.read_text()
        lock = loads(text)
        assert isinstance(lock.target, LockedTarget) and lock.target.python.startswith("3.")
        assert dumps(lock) == text, path.name


@pytest.mark.parametrize("line, problem", [
    ('colour = "blue"', "target.'colour': unknown key"),
    ("cuda = 12", "target.cuda: 12 is not allowed here"),
    ('extra_index_urls = "x"', "target.extra_index_urls: expected a short list of strings"),
    ('chosen_by = "a\\nb"', "target.chosen_by"),
])
def test_a_target_with_unknown_or_mistyped_fields_is_refused(line, problem):
    text = dumps(sample_lock()).replace("[target]\n", f"[target]\n{line}\n")
    with pytest.raises(LockError) as caught:
        loads(text)
    assert problem in str(caught.value)


def test_profile_only_wheels_are_marked_and_filtered():
    lock = loads(dumps(sample_lock()))
    assert [w.name for w in lock.wheels_for(None)] == ["zlib-ng"]
    assert [w.name for w in lock.wheels_for("dev")] == ["absl-py", "zlib-ng"]


def test_requirements_txt_carries_hashes():
    text = sample_lock().requirements_txt("dev")
    assert f"absl-py==1.0 --hash=sha256:{SHA}" in text and "zlib-ng==1.0" in text


def test_a_stale_lock_is_detected():
    with pytest.raises(StaleLockError):
        sample_lock().check_fresh("sha256:" + "1" * 64)
    sample_lock().check_fresh("sha256:" + "0" * 64)


def test_a_damaged_lock_names_entry_and_field():
    text = dumps(sample_lock()).replace(f'sha256 = "{SHA}"', 'sha256 = "xyz"', 1)
    with pytest.raises(LockError, match=r"debs\[0\]\.sha256: not a sha256|wheels\[0\]\.sha256"):
        loads(text)
    with pytest.raises(LockError, match="missing"):
        loads('version = 2\nspec_digest = "x"\n')


def test_a_lock_from_an_older_dlenv_is_stale_and_one_from_a_newer_is_refused():
    text = dumps(sample_lock())
    with pytest.raises(StaleLockError, match="older dlenv"):
        loads(text.replace("version = 2", "version = 1"))
    with pytest.raises(LockError, match="version 3 is not 2"):
        loads(text.replace("version = 2", "version = 3"))


def test_lock_check_exit_codes(tmp_path: Path, capsys):
    (tmp_path / "dlenv.toml").write_text('name = "x"\n')
    assert main(["lock", str(tmp_path), "--check"]) == 2  # no lock at all
    spec = parse_spec({"name": "x"})
    target = resolve_target(spec).locked()
    stale = Lock(spec_digest="sha256:" + "1" * 64, source_date_epoch=1, target=target,
                 base=LockedBase(kind="debian", suite="trixie"))
    (tmp_path / "dlenv.lock").write_text(dumps(stale))
    assert main(["lock", str(tmp_path), "--check"]) == 1
    fresh = Lock(spec_digest=spec.digest(), source_date_epoch=1, target=target,
                 base=LockedBase(kind="debian", suite="trixie"), wheels=(wheel("pip"),),
                 debs=sample_lock().debs)
    (tmp_path / "dlenv.lock").write_text(dumps(fresh))
    assert main(["lock", str(tmp_path), "--check"]) == 0
    assert read_lock(tmp_path / "dlenv.lock").base.suite == "trixie"


def test_best_wheel_prefers_the_most_specific_compatible_tag():
    t = resolve_target(parse_spec({"name": "x", "python": "3.11", "base": "debian:bookworm"}))
    names = [
        "pkg-1-cp311-cp311-manylinux_2_39_x86_64.whl",   # needs a newer glibc than bookworm
        "pkg-1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "pkg-1-cp311-cp311-manylinux_2_28_x86_64.whl",
        "pkg-1-py3-none-any.whl",
        "pkg-1-cp312-cp312-manylinux_2_28_x86_64.whl",
        "pkg-1-cp311-cp311-macosx_11_0_arm64.whl",
    ]
    assert best_wheel(names, target_tags(t)) == "pkg-1-cp311-cp311-manylinux_2_28_x86_64.whl"
    assert best_wheel(names[-2:], target_tags(t)) is None


def test_a_package_with_no_wheel_for_the_target_is_a_clear_error():
    t = resolve_target(parse_spec({"name": "x", "python": "3.9"}))
    doc = {"packages": [{"name": "fastpkg", "version": "2.0", "wheels": [
        {"url": "https://idx.example/fastpkg-2.0-cp311-cp311-manylinux_2_17_x86_64.whl",
         "hashes": {"sha256": SHA}, "size": 1}]}]}
    with pytest.raises(LockError) as info:
        wheels_from_pylock(doc, t, sizes=lambda urls: {})
    assert "fastpkg 2.0 has no wheel for the target cp39-manylinux_2_31_x86_64" in str(info.value)
    assert "pin a version of fastpkg that ships a wheel" in str(info.value)


def test_uv_no_wheel_report_becomes_an_error_naming_package_and_tag():
    t = resolve_target(parse_spec({"name": "x", "python": "3.11"}))
    stderr = ("  × No solution found when resolving dependencies:\n  ╰─▶ Because oldpkg==0.1 "
              "has no wheels with a matching platform tag (e.g., `manylinux_2_36_x86_64`) and "
              "you require oldpkg==0.1, we can conclude that your requirements are "
              "unsatisfiable.")
    err = explain_uv_failure(stderr, t)
    assert str(err).startswith("oldpkg has no wheel for the target cp311-manylinux_2_36_x86_64")
    assert "pin a version of oldpkg that ships a cp311-manylinux_2_36_x86_64 wheel" in str(err)
    assert isinstance(err, NoWheelError) and err.package == "oldpkg"


def test_index_settings_spec_beats_environment():
    t = resolve_target(parse_spec({"name": "x"}))
    env = {"PIP_INDEX_URL": "https://pip.example/simple", "UV_INDEX_URL": "https://uv.example/s",
           "SSL_CERT_FILE": "/ca.pem"}
    assert index_config(IndexSettings(), t, env).url == "https://uv.example/s"
    assert index_config(IndexSettings(), t, {"PIP_INDEX_URL": "https://p/s"}).url == "https://p/s"
    cfg = index_config(IndexSettings(url="https://spec.example/s", ca_bundle="/corp.pem"), t, env)
    assert (cfg.url, cfg.ca_bundle) == ("https://spec.example/s", "/corp.pem")
    assert index_config(IndexSettings(), t, env).ca_bundle == "/ca.pem"


class FakeResolver:
    """Stands in for uv: a fixed dependency graph, resolved by walking it."""

    graph: ClassVar[dict[str, list[str]]] = {
        "jax": ["numpy"], "numpy": [], "jupyterlab": ["tornado"], "tornado": [], "pip": [],
    }

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[str, ...], tuple[str, ...]]] = []

    def compile(self, requirements, target, index, constraints=(), no_binary=()):
        self.calls.append((tuple(requirements), tuple(constraints)))
        seen: list[str] = []
        todo = [r.split("=")[0].split("[")[0] for r in requirements]
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.append(name)
                todo += self.graph[name]
        when = datetime(2024, 1, 1, tzinfo=UTC)
        return {"packages": [{"name": n, "version": "1.0", "wheels": [
            {"url": f"https://idx.example/{n}-1.0-py3-none-any.whl", "hashes": {"sha256": SHA},
             "size": 5, "upload-time": when}]} for n in sorted(seen)]}


def test_profile_packages_are_locked_with_the_base_and_marked_as_theirs():
    spec = parse_spec({"name": "x", "framework": "jax==0.4.*", "python": "3.11",
                       "profiles": {"dev": {"jupyter": True}}})
    t = resolve_target(spec)
    resolver = FakeResolver()
    index = IndexConfig(url=None, extra_urls=(), ca_bundle=None, allow_sdist=False)
    wheels, epoch = lock_python(spec, t, resolver, index, sizes=lambda urls: {})
    marks = {w.name: w.profiles for w in wheels}
    assert marks == {"jax": (), "numpy": (), "pip": (), "jupyterlab": ("dev",),
                     "tornado": ("dev",)}
    assert epoch == int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())
    # the per-profile resolutions are pinned to the union's versions
    assert all(c for _, c in resolver.calls[1:])


def test_runtime_constraints_reach_every_resolution_and_the_lock_check():
    spec = parse_spec({"name": "x", "framework": "pytorch==2.2.*", "python": "3.11",
                       "profiles": {"dev": {"jupyter": True}}})
    t = resolve_target(spec)
    resolver = FakeResolver()
    resolver.graph = {**FakeResolver.graph, "torch": ["numpy"]}
    index = IndexConfig(url=None, extra_urls=(), ca_bundle=None, allow_sdist=False)
    lock_python(spec, t, resolver, index, sizes=lambda urls: {})
    assert all("numpy<2" in constraints for _, constraints in resolver.calls)


def test_a_lock_breaking_a_runtime_need_is_refused():
    from dataclasses import replace

    from dlenv.resolve.locking import check_lock
    from tests.conftest import EXAMPLES

    spec = load_spec(EXAMPLES / "tensorflow-2.9")
    lock = read_lock(Path(__file__).parent.parent / "fixtures/locks/tensorflow-2.9.lock")
    check_lock(spec, lock)
    numpy2 = replace(lock, wheels=tuple(replace(w, version="2.2.6") if w.name == "numpy" else w
                                        for w in lock.wheels))
    with pytest.raises(LockError, match=r"tensorflow 2\.9 needs numpy<2"):
        check_lock(spec, numpy2)


def test_every_fixture_lock_matches_its_example_spec():
    from dlenv.resolve.locking import check_lock
    from tests.conftest import EXAMPLES

    here = Path(__file__).parent.parent / "fixtures/locks"
    for example in sorted(p for p in EXAMPLES.iterdir() if (p / "dlenv.toml").exists()):
        check_lock(load_spec(example), read_lock(here / f"{example.name}.lock"))


def _choosing(spec_data: dict, failures: dict):
    """lock_choosing with a stand-in resolver that fails for the (line, python) listed."""
    from dlenv.resolve.locking import lock_choosing

    spec = parse_spec({"name": "x", **spec_data})
    seen = []

    def lock_with(t):
        seen.append((t.framework_line, t.python))
        failure = failures.get((t.framework_line, t.python))
        if failure:
            raise failure
        return (wheel("pip"),), 1

    target, _, _ = lock_choosing(spec, resolve_target(spec), lock_with)
    return spec, target, seen


def test_a_package_pinning_the_framework_chooses_its_line():
    from dlenv.resolve.locking import check_lock

    conflict = LockError("Because torchvision==0.21.0 depends on torch==2.6.0 and you require "
                         "torch==2.15.*, we can conclude that your requirements are "
                         "unsatisfiable.")
    spec, t, seen = _choosing({"framework": "pytorch", "packages": ["torchvision==0.21.0"]},
                              {("2.15", "3.13"): conflict})
    assert seen == [("2.15", "3.13"), ("2.6", "3.13")]
    assert t.framework_line == "2.6" and t.requirement == "torch==2.6.*" and t.cuda is None
    assert t.chosen_by == "torchvision==0.21.0 depends on torch==2.6.0"
    framework = next(d for d in t.decisions if d.key == "framework")
    assert framework.reason == t.chosen_by
    lock = Lock(spec_digest=spec.digest(), source_date_epoch=1, target=t.locked(),
                base=LockedBase(kind="debian", suite=t.suite), debs=sample_lock().debs,
                wheels=(wheel("pip"), wheel("torch", "2.6.0"), wheel("torchvision", "0.21.0")))
    check_lock(spec, lock)  # the recorded choice gives the same target again
    widened = replace(lock, target=replace(lock.target, framework_line="2.1",
                                                 python="3.11"))
    with pytest.raises(LockError):
        check_lock(spec, widened)


def test_a_package_without_a_wheel_for_the_newest_python_chooses_an_older_one():
    from dlenv.errors import NoWheelError

    missing = NoWheelError("tokenizers has no wheel for the target cp313", package="tokenizers")
    _, t, seen = _choosing({"framework": "pytorch", "packages": ["transformers==4.44.2"]},
                           {("2.15", "3.13"): missing})
    assert seen == [("2.15", "3.13"), ("2.15", "3.11")]
    assert (t.python, t.suite) == ("3.11", "bookworm")
    assert t.chosen_by == "tokenizers has no wheel for Python 3.13"
    assert next(d for d in t.decisions if d.key == "python").reason == t.chosen_by


def test_a_python_the_spec_fixes_is_never_changed():
    from dlenv.errors import NoWheelError

    missing = NoWheelError("tokenizers has no wheel", package="tokenizers")
    with pytest.raises(NoWheelError):
        _choosing({"python": "3.13", "packages": ["tokenizers==0.19.1"]},
                  {(None, "3.13"): missing})


def test_when_no_choice_works_the_first_error_is_raised_with_what_was_tried():
    conflict = LockError("Because torchvision==0.21.0 depends on torch==2.6.0 and you require "
                         "torch==2.15.*, we can conclude that your requirements are unsatisfiable.")
    with pytest.raises(LockError) as info:
        _choosing({"framework": "pytorch", "packages": ["torchvision==0.21.0"]},
                  {("2.15", "3.13"): conflict, ("2.6", "3.13"): LockError("still no")})
    assert "torchvision==0.21.0 depends on torch==2.6.0" in str(info.value)
    assert "also tried 2.6 on Python 3.13" in str(info.value)


def test_a_python_chosen_before_is_kept_when_a_line_is_chosen_after():
    from dlenv.errors import NoWheelError

    missing = NoWheelError("torchvision has no wheel", package="torchvision")
    conflict = LockError("Because torchvision==0.20.0 depends on torch==2.5.0 and you require "
                         "torch==2.15.*, we can conclude that your requirements are unsatisfiable.")
    _, t, seen = _choosing({"framework": "pytorch", "packages": ["torchvision==0.20.0"]},
                           {("2.15", "3.13"): missing, ("2.15", "3.11"): conflict})
    assert seen == [("2.15", "3.13"), ("2.15", "3.11"), ("2.5", "3.11")]
    assert t.chosen_by == ("torchvision has no wheel for Python 3.13; "
                           "torchvision==0.20.0 depends on torch==2.5.0")
