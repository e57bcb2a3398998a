"""Source-only packages: which sdists dlenv builds (pure Python) and which it refuses, how a
lock records them, and how locking finds them. The integration tests build real ones."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from dlenv.errors import LockError, NoWheelError
from dlenv.lock import Lock, LockedBase, LockedSdist, LockedTarget, LockedWheel, dumps, loads
from dlenv.resolve import resolve_target
from dlenv.resolve.locking import lock_python
from dlenv.resolve.python import IndexConfig
from dlenv.resolve.sdist import inspect_sdist, sdist_filename
from dlenv.spec import parse_spec

SHA = "cd" * 32
PIN = f"setuptools==75.1.0 --hash=sha256:{SHA}"


def sdist(tmp_path: Path, files: dict[str, str], name: str = "pkg-1.0.tar.gz") -> Path:
    path = tmp_path / name
    with tarfile.open(path, "w:gz") as tar:
        for rel, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"pkg-1.0/{rel}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_a_plain_setup_py_builds_with_setuptools_and_wheel(tmp_path):
    path = sdist(tmp_path, {"setup.py": "from setuptools import setup\nsetup()\n",
                            "pkg/__init__.py": ""})
    facts = inspect_sdist(path, path.name)
    assert facts.native is None and facts.requires == ("setuptools>=40.8.0", "wheel")


def test_a_declared_backend_brings_its_own_requirements(tmp_path):
    path = sdist(tmp_path, {"pyproject.toml": '[build-system]\nrequires = ["flit_core>=3.2"]\n'
                                              'build-backend = "flit_core.buildapi"\n'})
    facts = inspect_sdist(path, path.name)
    assert facts.native is None and facts.requires == ("flit_core>=3.2",)


@pytest.mark.parametrize(("files", "why"), [
    ({"src/fast.c": "int x;"}, "fast.c"),
    ({"Cargo.toml": "[package]"}, "Cargo.toml"),
    ({"pyproject.toml": '[build-system]\nrequires = ["maturin>=1"]\n'
                        'build-backend = "maturin"\n'}, "maturin"),
    ({"setup.py": "from setuptools import Extension, setup\n"
                  "setup(ext_modules=[Extension('x', ['x.pyx'])])\n"}, "extension"),
])
def test_an_sdist_that_needs_a_compiler_is_named_as_such(tmp_path, files, why):
    path = sdist(tmp_path, files)
    assert why in inspect_sdist(path, path.name).native


def test_sdist_file_names_come_from_the_url_and_must_be_archives():
    assert sdist_filename("https://f.example/p/promise-2.3.tar.gz") == "promise-2.3.tar.gz"
    assert sdist_filename("https://f.example/p/a%2Bb-1.zip") == "a+b-1.zip"
    with pytest.raises(Exception, match="does not name an sdist"):
        sdist_filename("https://f.example/p/evil.sh")


def built_wheel(**kw) -> LockedWheel:
    base = dict(name="promise", version="2.3", filename="promise-2.3-py3-none-any.whl", url="",
                sha256=SHA, size=21581,
                sdist=LockedSdist(url="https://f.example/promise-2.3.tar.gz", sha256=SHA,
                                  size=19534, epoch=1576654303, build_requires=(PIN,)))
    base.update(kw)
    return LockedWheel(**base)


def test_a_built_wheel_round_trips_through_the_lock_file():
    lock = Lock(spec_digest="sha256:" + "0" * 64, source_date_epoch=1,
                target=LockedTarget(python="3.11"),
                base=LockedBase(kind="debian", suite="bookworm"), wheels=(built_wheel(),))
    text = dumps(lock)
    assert "[wheels.sdist]" in text and 'url = ""' not in text
    assert loads(text).wheels == lock.wheels


def test_a_built_wheel_with_a_download_url_too_is_refused():
    lock = Lock(spec_digest="sha256:" + "0" * 64, source_date_epoch=1,
                target=LockedTarget(python="3.11"),
                base=LockedBase(kind="debian", suite="bookworm"), wheels=(built_wheel(),))
    text = dumps(lock).replace('filename = "promise-2.3-py3-none-any.whl"\n',
                               'filename = "promise-2.3-py3-none-any.whl"\n'
                               'url = "https://f.example/promise-2.3-py3-none-any.whl"\n')
    with pytest.raises(LockError, match="no url"):
        loads(text)


@pytest.mark.parametrize("wheel", [
    built_wheel(filename="promise-2.3-cp311-cp311-linux_x86_64.whl"),  # not pure
    built_wheel(sdist=LockedSdist(url="https://f.example/promise-2.3.tar.gz", sha256=SHA,
                                  size=1, epoch=1, build_requires=("setuptools",))),  # no hash
    built_wheel(sdist=LockedSdist(url="https://f.example/promise.sh", sha256=SHA, size=1,
                                  epoch=1, build_requires=(PIN,))),
])
def test_a_tampered_built_wheel_entry_is_refused(wheel):
    lock = Lock(spec_digest="sha256:" + "0" * 64, source_date_epoch=1,
                target=LockedTarget(python="3.11"),
                base=LockedBase(kind="debian", suite="bookworm"), wheels=(wheel,))
    with pytest.raises(LockError):
        loads(dumps(lock))


class SdistOnlyResolver:
    """Stands in for uv: 'promise' has no wheel unless it may come from its sdist."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def compile(self, requirements, target, index, constraints=(), no_binary=()):
        self.calls.append(tuple(no_binary))
        if "promise" not in no_binary:
            raise NoWheelError("Because all versions of promise have no usable wheels …",
                               package="promise")
        return {"packages": [
            {"name": "promise", "version": "2.3",
             "sdist": {"url": "https://f.example/promise-2.3.tar.gz",
                       "hashes": {"sha256": SHA}, "size": 19534}},
            {"name": "pip", "version": "25.0", "wheels": [
                {"url": "https://f.example/pip-25.0-py3-none-any.whl",
                 "hashes": {"sha256": SHA}, "size": 9}]}]}


def test_locking_lets_a_source_only_package_come_from_its_sdist():
    spec = parse_spec({"name": "x", "python": "3.11", "packages": ["promise"]})
    resolver = SdistOnlyResolver()
    built: list[tuple] = []

    def build(name, version, entry, tag):
        built.append((name, version, entry["url"], tag))
        return built_wheel()

    index = IndexConfig(url=None, extra_urls=(), ca_bundle=None, allow_sdist=False)
    wheels, _ = lock_python(spec, resolve_target(spec), resolver, index,
                            sizes=lambda urls: {}, sdists=build)
    assert resolver.calls == [(), ("promise",)]
    assert built == [("promise", "2.3", "https://f.example/promise-2.3.tar.gz",
                      "cp311-manylinux_2_36_x86_64")]
    assert {w.name: w.sdist is not None for w in wheels} == {"pip": False, "promise": True}


def test_without_a_builder_the_missing_wheel_is_the_error():
    spec = parse_spec({"name": "x", "python": "3.11", "packages": ["promise"]})
    index = IndexConfig(url=None, extra_urls=(), ca_bundle=None, allow_sdist=False)
    with pytest.raises(NoWheelError, match="promise"):
        lock_python(spec, resolve_target(spec), SdistOnlyResolver(), index,
                    sizes=lambda urls: {})
