"""`dlenv export`: the lock's Python packages as requirements.txt, pylock.toml and a conda
environment, from the examples' real locks (tests/fixtures/locks: their URLs left out)."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
import tomli_w
import yaml
from packaging.pylock import Pylock

from dlenv.audit.export import conda_environment, pylock, requirements_txt
from dlenv.errors import LockError
from dlenv.lock import LockedSdist, read_lock

LOCKS = Path(__file__).resolve().parent.parent / "fixtures/locks"


def with_urls(lock):
    return replace(lock, wheels=tuple(replace(w, url=f"https://files.example.invalid/{w.filename}")
                                      for w in lock.wheels))


def test_requirements_pin_every_wheel_by_hash_and_a_built_one_by_its_sdist():
    lock = read_lock(LOCKS / "tensorflow-cpu.lock")
    lines = requirements_txt(lock, None, "tensorflow-cpu").splitlines()
    pins = [x for x in lines if not x.startswith("#")]
    assert pins == [f"{w.name}=={w.version} --hash=sha256:{w.sha256}" for w in lock.wheels]
    sdist = LockedSdist(url="https://example.invalid/x-1.0.tar.gz", sha256="cd" * 32, size=9,
                        epoch=0, build_requires=())
    built = replace(lock, wheels=(replace(lock.wheels[0], url="", sdist=sdist),))
    assert requirements_txt(built, None, "x").splitlines()[-1].endswith("sha256:" + "cd" * 32)


def test_pylock_is_valid_pep_751_with_each_wheels_url_size_and_hash():
    lock = with_urls(read_lock(LOCKS / "jupyter-dev.lock"))
    data = tomllib.loads(tomli_w.dumps(pylock(lock, "dev")))
    parsed = Pylock.from_dict(data)  # packaging's own reader validates it
    assert len(parsed.packages) == len(lock.wheels_for("dev")) > len(lock.wheels_for(None))
    jupyterlab = next(p for p in parsed.packages if p.name == "jupyterlab")
    (wheel,) = jupyterlab.wheels or ()
    locked = next(w for w in lock.wheels if w.name == "jupyterlab")
    assert (wheel.url, wheel.size, wheel.hashes) == (locked.url, locked.size,
                                                     {"sha256": locked.sha256})
    assert 'python_version == "3.11"' in str(parsed.environments[0])
    with pytest.raises(LockError, match="no URL for"):  # the fixtures' locks carry none
        pylock(read_lock(LOCKS / "jupyter-dev.lock"), None)


def test_a_conda_environment_takes_python_from_conda_forge_and_the_pins_through_pip():
    lock = read_lock(LOCKS / "tensorflow-cpu.lock")
    env = yaml.safe_load(yaml.safe_dump(conda_environment(lock, None, "tf")))
    assert env["channels"] == ["conda-forge"]
    assert env["dependencies"][:2] == ["python=3.11", "pip"]
    assert f"tensorflow=={next(w.version for w in lock.wheels if w.name == 'tensorflow')}" in \
        env["dependencies"][2]["pip"]
