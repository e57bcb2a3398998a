"""Wheels into layers: installing, bytecode, layer planning, and the builder's decisions,
with small wheels made here (no network): a local HTTP server on 127.0.0.1 serves them."""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.server
import io
import re
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path

import pytest

from dlenv.errors import BuildError, IntegrityError
from dlenv.image import (
    BIG_WHEEL,
    BUCKETS,
    MAX_OWN_LAYERS,
    plan_build,
    plan_wheel_layers,
)
from dlenv.image.builder import NativeBuilder, ReadyFirst
from dlenv.image.install import install_wheels
from dlenv.image.plan import LARGE_FILE, MAX_SPLIT, SPLIT_WHEEL, LayerPlan, WheelPart
from dlenv.image.project import collect_project
from dlenv.image.wheels import compile_tree, host_interpreter, record_bytecode
from dlenv.lock import Lock, LockedBase, LockedTarget, LockedWheel
from dlenv.oci.store import OCIStore
from dlenv.spec import parse_spec

PY = "3.11"
SITE = "usr/local/lib/python3.11/dist-packages"


def make_wheel(directory: Path, name: str, files: dict[str, bytes],
               scripts: dict[str, str] | None = None, version: str = "1.0") -> Path:
    """A valid pure-Python wheel with RECORD and optional console scripts."""
    dist = f"{name}-{version}.dist-info"
    members = dict(files)
    members[f"{dist}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"\
        .encode()
    members[f"{dist}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n" \
        b"Tag: py3-none-any\n"
    if scripts:
        members[f"{dist}/entry_points.txt"] = ("[console_scripts]\n" + "".join(
            f"{k} = {v}\n" for k, v in scripts.items())).encode()
    record = []
    for path, data in members.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    members[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for member, data in members.items():
            z.writestr(member, data)
    return path


def locked(path: Path, url: str = "", size: int | None = None,
           profiles: tuple[str, ...] = ()) -> LockedWheel:
    name, version = path.name.split("-")[:2]
    data = path.read_bytes()
    return LockedWheel(name=name, version=version, filename=path.name, url=url or path.name,
                       sha256=hashlib.sha256(data).hexdigest(),
                       size=len(data) if size is None else size, profiles=profiles)


@pytest.fixture
def wheels(tmp_path: Path) -> dict[str, Path]:
    d = tmp_path / "wheels"
    d.mkdir()
    return {
        "alpha": make_wheel(d, "alpha", {"alpha/__init__.py": b"VALUE = 1\n",
                                         "alpha/core.py": b"def f():\n    return 2\n"},
                            scripts={"shared-tool": "alpha:main"}),
        "beta": make_wheel(d, "beta", {"beta/__init__.py": b"print('x')\n",
                                       "beta/py2only.py": b"print 'old'\n"},
                           scripts={"shared-tool": "beta:main"}),
    }


def test_wheels_install_where_debian_python_looks_with_scripts_and_record(tmp_path, wheels):
    root = tmp_path / "root"
    overlaps = install_wheels([(locked(p), p) for p in wheels.values()], root, PY)
    site = root / SITE
    assert (site / "alpha/core.py").read_text().startswith("def f")
    script = root / "usr/local/bin/shared-tool"
    assert script.read_text().startswith("#!/usr/bin/python3\n")
    assert script.stat().st_mode & 0o111
    # both wheels ship bin/shared-tool: the later one in name order (beta) wins, reported
    assert overlaps == ["/usr/local/bin/shared-tool"]
    assert "from beta import main" in script.read_text()
    record = (site / "alpha-1.0.dist-info/RECORD").read_text()
    assert "../../../bin/shared-tool," in record and "alpha/core.py,sha256=" in record
    assert (site / "alpha-1.0.dist-info/INSTALLER").read_text() == "dlenv\n"


def test_bytecode_a_wheel_ships_is_skipped_without_a_warning_on_the_terminal(tmp_path):
    import warnings

    wheel = make_wheel(tmp_path, "shipsbytecode", {
        "shipsbytecode/__init__.py": b"x = 1\n",
        "shipsbytecode/__pycache__/__init__.cpython-311.pyc": b"stale"})
    with warnings.catch_warnings(record=True) as seen:
        install_wheels([(locked(wheel), wheel)], tmp_path / "root", PY)
    assert not [w for w in seen if "__pycache__" in str(w.message)]
    assert not list((tmp_path / "root").rglob("__pycache__/*.pyc"))


def test_a_wheels_own_scripts_get_the_image_python(tmp_path):
    # A script under .data/scripts (jsonpointer ships one): installer reads its first line,
    # then seeks back to rewrite the shebang, through the isal inflater.
    body = b"#!python\nimport sys\n" + b"# padding\n" * 20000
    wheel = make_wheel(tmp_path, "tool", {"tool/__init__.py": b"",
                                          "tool-1.0.data/scripts/tool-cli": body})
    root = tmp_path / "root"
    install_wheels([(locked(wheel), wheel)], root, PY)
    script = (root / "usr/local/bin/tool-cli").read_bytes()
    assert script == b"#!/usr/bin/python3\n" + body.split(b"\n", 1)[1]


def _lying_about_libfw(wheel: Path, directory: Path) -> Path:
    """A copy of ``wheel`` in ``directory`` whose RECORD gives fw/libfw.so another hash."""
    lying = directory / wheel.name
    directory.mkdir()
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(lying, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("/RECORD"):
                data = re.sub(rb"fw/libfw.so,sha256=[^,]+", b"fw/libfw.so,sha256=" + b"A" * 43,
                              data)
            dst.writestr(info, data)
    return lying


def test_a_split_wheel_installs_its_large_files_and_the_rest_as_one_install_does(tmp_path):
    big = bytes(range(256)) * (LARGE_FILE // 256)
    wheel = make_wheel(tmp_path, "fw", {"fw/__init__.py": b"x = 1\n", "fw/libfw.so": big,
                                        "fw/small.so": b"\x7fELF"}, scripts={"fw-tool": "fw:a"})

    def installed(part: WheelPart, path: Path = wheel) -> dict[str, tuple[bytes, int]]:
        root = tmp_path / (part or "whole")
        install_wheels([(locked(path), path)], root, PY, part)
        return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mode)
                for p in root.rglob("*") if p.is_file()}

    whole, large, rest = installed(""), installed("large"), installed("rest")
    assert list(large) == [f"{SITE}/fw/libfw.so"]  # no metadata, no script
    # together the same files, RECORD (which lists the large one) and the script included
    assert not large.keys() & rest.keys() and {**large, **rest} == whole
    assert "usr/local/bin/fw-tool" in rest

    # the rest's RECORD lists the large file from the wheel's RECORD: it must tell the truth
    lying = _lying_about_libfw(wheel, tmp_path / "lying")
    with pytest.raises(BuildError, match=r"fw/libfw\.so does not match the wheel's RECORD"):
        installed("large", lying)


def test_a_split_wheels_large_files_go_from_the_wheel_into_the_tar_checked_on_the_way(
        tmp_path):
    from dlenv.oci.layer import LayerOptions, write_tar

    big = bytes(range(256)) * (LARGE_FILE // 256) + b"tail"
    files = {"fw/__init__.py": b"x = 1\n", "fw/libfw.so": big, "fw/bin/fwrun": big[::-1]}
    wheel = make_wheel(tmp_path, "fw", files)

    def tar_of(path: Path, defer: bool) -> tuple[bytes, dict]:
        root = tmp_path / f"{path.parent.name}-{defer}"
        deferred: dict = {}
        install_wheels([(locked(path), path)], root, PY, "large", deferred if defer else None)
        out = io.BytesIO()
        write_tar(root, out, LayerOptions(epoch=0, sources=deferred))
        return out.getvalue(), deferred

    copied, _ = tar_of(wheel, False)
    streamed, deferred = tar_of(wheel, True)
    assert sorted(deferred) == [f"{SITE}/fw/bin/fwrun", f"{SITE}/fw/libfw.so"]
    # the tree holds placeholders of the right size, none of the bytes
    placeholder = tmp_path / f"{wheel.parent.name}-True" / SITE / "fw/libfw.so"
    assert placeholder.stat().st_size == len(big) and placeholder.read_bytes() == bytes(len(big))
    assert streamed == copied  # the same tar, byte for byte
    with tarfile.open(fileobj=io.BytesIO(streamed)) as tar:
        assert tar.extractfile(f"{SITE}/fw/libfw.so").read() == big

    # a member whose bytes are not what the wheel's RECORD says fails the layer, by name
    lying = _lying_about_libfw(wheel, tmp_path / "lying")
    root, deferred = tmp_path / "lying-root", {}
    install_wheels([(locked(lying), lying)], root, PY, "large", deferred)  # none read yet
    with pytest.raises(BuildError, match=r"fw-1\.0-py3-none-any\.whl: fw/libfw\.so does not "
                                         r"match the wheel's RECORD"):
        write_tar(root, io.BytesIO(), LayerOptions(epoch=0, sources=deferred))


def test_bytecode_is_unchecked_hash_reproducible_and_recorded(tmp_path, wheels):
    interpreter = host_interpreter(PY)
    if interpreter is None:
        pytest.skip("needs a Python 3.11 on the host to compile for a 3.11 image")
    outputs = []
    for workers in (1, 2):
        root = tmp_path / f"root{workers}"
        install_wheels([(locked(p), p) for p in wheels.values()], root, PY)
        report = compile_tree(interpreter, root, ["/" + SITE], workers=workers)
        record_bytecode(root, PY)
        assert (report.compiled, report.failed) == (3, 1)  # py2only.py does not compile
        pyc = root / SITE / "alpha/__pycache__/core.cpython-311.pyc"
        data = pyc.read_bytes()
        assert int.from_bytes(data[4:8], "little") == 0b01  # hash-based, unchecked
        assert b"/usr/local/lib/python3.11/dist-packages/alpha/core.py" in data
        assert str(tmp_path).encode() not in data
        outputs.append({p.relative_to(root): p.read_bytes() for p in root.rglob("*.pyc")})
        record = (root / SITE / "alpha-1.0.dist-info/RECORD").read_text()
        assert "alpha/__pycache__/core.cpython-311.pyc,," in record
    assert outputs[0] == outputs[1]


def test_cached_bytecode_gives_the_same_layer_and_a_damaged_entry_is_compiled_again(
        tmp_path, wheels):
    from dlenv.image.wheels import BytecodeCache
    from dlenv.oci.layer import LayerOptions, write_layer

    interpreter = host_interpreter(PY)
    if interpreter is None:
        pytest.skip("needs a Python 3.11 on the host to compile for a 3.11 image")
    cache = BytecodeCache(tmp_path / "pyc", PY)
    layers, pycs = [], []
    for run in ("cold", "warm"):
        root = tmp_path / run
        install_wheels([(locked(p), p) for p in wheels.values()], root, PY)
        report = compile_tree(interpreter, root, ["/" + SITE], cache=cache)
        assert (report.compiled, report.failed) == (3, 1)  # py2only.py fails both times
        pycs.append({p.relative_to(root): p.read_bytes() for p in root.rglob("*.pyc")})
        layers.append(write_layer(root, io.BytesIO(), LayerOptions(epoch=0)).diff_id)
    assert pycs[0] == pycs[1] and len(pycs[0]) == 3 and layers[0] == layers[1]
    entries = sorted(p for p in (tmp_path / "pyc").rglob("*") if p.is_file())
    assert len(entries) == 3  # one per compiled file, none for the one that failed
    # A hit is what the cache holds (proved with a stand-in), a damaged entry is not used.
    stand_in = b"stand-in .pyc"
    kept = {e: e.read_bytes() for e in entries}
    entries[0].write_bytes(hashlib.sha256(stand_in).digest() + stand_in)
    entries[1].write_bytes(kept[entries[1]][:-1])  # truncated: its sha256 no longer matches
    root = tmp_path / "again"
    install_wheels([(locked(p), p) for p in wheels.values()], root, PY)
    compile_tree(interpreter, root, ["/" + SITE], cache=cache)
    again = {p.relative_to(root): p.read_bytes() for p in root.rglob("*.pyc")}
    assert sorted(again.values()).count(stand_in) == 1
    assert sum(1 for k, v in again.items() if v == pycs[0][k]) == 2  # the damaged one redone
    assert entries[1].read_bytes() == kept[entries[1]]  # and kept again, whole


def wheel_named(name: str, size: int, profiles: tuple[str, ...] = ()) -> LockedWheel:
    return LockedWheel(name=name, version="1", filename=f"{name}-1-py3-none-any.whl",
                       url="u", sha256=hashlib.sha256(name.encode()).hexdigest(), size=size,
                       profiles=profiles)


def _until(check, seconds: float = 10.0) -> None:
    """Wait (bounded) for ``check()`` to hold."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _framework_and_buckets() -> tuple[list[tuple[int, LayerPlan]], Future[Path], dict]:
    layers = plan_wheel_layers([wheel_named("tensorflow", 500 << 20),
                                *[wheel_named(f"pkg{i}", 1 << 20) for i in range(20)]])
    assert [layers[0].part, layers[1].part] == ["large", "rest"]  # the framework, split
    framework: Future[Path] = Future()
    here: Future[Path] = Future()
    here.set_result(Path("pkg.whl"))
    fetches = {w.sha256: framework if w.name == "tensorflow" else here
               for layer in layers for w in layer.wheels}
    return list(enumerate(layers)), framework, fetches


def test_an_early_load_builds_each_layer_alone_lowest_first_others_while_it_downloads():
    todo, framework, fetches = _framework_and_buckets()
    started: list[int] = []
    release = {i: threading.Event() for i, _ in todo}

    def build(i, layer):
        started.append(i)
        assert release[i].wait(10)
        return layer.name

    queue = ReadyFirst(todo, fetches, build, in_order=True)
    workers = [threading.Thread(target=queue.work) for _ in range(3)]
    for w in workers:
        w.start()
    # the framework downloads: the lowest layer whose wheels are here starts, alone
    _until(lambda: started == [2])
    time.sleep(0.2)
    assert started == [2]
    # its wheel arrives: its large files start at once, below the one being built
    framework.set_result(Path("tensorflow.whl"))
    _until(lambda: started == [2, 0])
    release[2].set()
    time.sleep(0.2)
    assert started == [2, 0]  # nothing above it starts while it is built
    release[0].set()
    _until(lambda: started == [2, 0, 1])
    queue.futures[4].cancel()  # a cancelled layer is never built
    for event in release.values():
        event.set()
    for w in workers:
        w.join(10)
    assert not any(w.is_alive() for w in workers)
    assert started == [2, 0, 1, 3, *range(5, len(todo))]
    assert [queue.futures[i].result() for i in (0, 1, 3)] == [todo[i][1].name for i in (0, 1, 3)]


def test_without_an_engine_ready_layers_build_side_by_side_and_failures_reach_the_caller():
    todo, framework, fetches = _framework_and_buckets()
    started: list[int] = []
    go = threading.Event()

    def build(i, layer):
        started.append(i)
        assert go.wait(10)
        if i == 3:
            raise OSError("disk full")
        return layer.name

    queue = ReadyFirst(todo, fetches, build)
    workers = [threading.Thread(target=queue.work) for _ in range(3)]
    for w in workers:
        w.start()
    _until(lambda: sorted(started) == [2, 3, 4])  # three workers, the lowest ready three
    go.set()
    framework.set_exception(OSError("download failed"))  # the layers still end
    for w in workers:
        w.join(10)
    assert not any(w.is_alive() for w in workers) and sorted(started) == [i for i, _ in todo]
    with pytest.raises(OSError, match="disk full"):
        queue.futures[3].result()
    assert queue.futures[2].result() == todo[2][1].name


def test_big_wheels_get_own_layers_and_small_ones_stable_buckets():
    small = [wheel_named(f"pkg{i}", 1000) for i in range(20)]
    big = [wheel_named("tensorflow", 500 << 20), wheel_named("numpy", BIG_WHEEL)]
    layers = plan_wheel_layers([*small, *big])
    # the largest lowest, its large files below the rest of it
    assert [x.name for x in layers[:3]] == ["tensorflow 1, large files", "tensorflow 1",
                                            "numpy 1"]
    assert all(x.name.startswith("python packages") for x in layers[3:])
    assert len(layers) <= 3 + BUCKETS
    before = {x.name: x.wheels for x in layers}
    after = {x.name: x.wheels for x in plan_wheel_layers([*small, *big,
                                                          wheel_named("newpkg", 1000)])}
    changed = [n for n in after if after[n] != before.get(n)]
    assert len(changed) == 1 and changed[0].startswith("python packages")


def test_a_new_big_wheel_lands_above_the_larger_ones_so_their_chain_stays():
    big = [wheel_named("tensorflow", 500 << 20), wheel_named("numpy", 18 << 20),
           wheel_named("keras", 2 << 20)]
    before = [x.name for x in plan_wheel_layers(big)]
    after = [x.name for x in plan_wheel_layers([*big, wheel_named("scipy", 3 << 20)])]
    # everything below the new layer is the same, so an engine keeps those layers
    assert after[:3] == before[:3] == ["tensorflow 1, large files", "tensorflow 1", "numpy 1"]
    assert after[3:] == ["scipy 1", "keras 1"]


def test_profile_wheels_come_after_the_shared_ones_and_layers_stay_under_budget():
    many = [wheel_named(f"nvidia-lib{i}", BIG_WHEEL * 2) for i in range(MAX_OWN_LAYERS + 10)]
    layers = plan_wheel_layers([*many, wheel_named("jupyterlab", 1000, ("dev",))])
    assert layers[-1].name.startswith("profile python packages")
    own = [x for x in layers if not x.name.startswith(("python packages", "profile "))]
    assert len(own) == MAX_OWN_LAYERS
    assert sum(len(x.wheels) for x in layers) == len(many) + 1
    # wheels large enough to split: the largest MAX_SPLIT are two layers each, no more
    huge = [wheel_named(f"nvidia-big{i}", SPLIT_WHEEL + i) for i in range(MAX_OWN_LAYERS)]
    layers = plan_wheel_layers(huge)
    assert len(layers) == MAX_OWN_LAYERS + MAX_SPLIT
    assert [x.part for x in layers[:3]] == ["large", "rest", "large"]
    assert sum(x.part == "large" for x in layers) == MAX_SPLIT
    assert {x.wheels[0].name for x in layers if x.part} == \
        {f"nvidia-big{i}" for i in range(MAX_OWN_LAYERS - MAX_SPLIT, MAX_OWN_LAYERS)}
    assert sum(len(x.wheels) for x in layers if x.installs) == len(huge)  # each once


def lock_with(wheels: tuple[LockedWheel, ...], epoch: int = 1) -> Lock:
    return Lock(spec_digest="sha256:x", source_date_epoch=epoch,
                target=LockedTarget(python=PY, suite="bookworm"),
                base=LockedBase(kind="image", ref="reg.test/base:1", digest="sha256:" + "a" * 64),
                wheels=wheels)


def test_framework_layer_key_is_shared_by_specs_with_other_packages_and_dates():
    tf = wheel_named("tensorflow", 500 << 20)
    one = plan_build(parse_spec({"name": "a"}), lock_with((tf,), epoch=1))
    two = plan_build(parse_spec({"name": "b", "workdir": "/srv"}),
                     lock_with((tf, wheel_named("six", 10)), epoch=2))
    key = {x.name: x.key(one) for x in one.layers}["tensorflow 1"]
    assert key == {x.name: x.key(two) for x in two.layers}["tensorflow 1"]
    no_pyc = replace(one, bytecode=False)
    assert key != one.layers[1].key(no_pyc)


def test_project_files_honour_the_ignore_file_and_skip_spec_and_lock(tmp_path):
    (tmp_path / "dlenv.toml").write_text('name = "x"\n')
    (tmp_path / "dlenv.lock").write_text("")
    (tmp_path / "train.py").write_text("print(1)\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data/big.bin").write_bytes(b"0" * 100)
    (tmp_path / "src/__pycache__").mkdir(parents=True)
    (tmp_path / "src/__pycache__/m.cpython-311.pyc").write_bytes(b"")
    (tmp_path / "src/m.py").write_text("")
    (tmp_path / ".dlenvignore").write_text("data/\n")
    assert [f.path for f in collect_project(tmp_path)] == ["src/m.py", "train.py"]
    (tmp_path / ".dlenvignore").write_text("*.py\n!train.py\n")
    assert [f.path for f in collect_project(tmp_path)] == ["data/big.bin", "train.py"]


class _Server:
    """Serves a directory on 127.0.0.1 for one test; stopped at the end."""

    def __init__(self, directory: Path) -> None:
        handler = lambda *a: http.server.SimpleHTTPRequestHandler(  # noqa: E731
            *a, directory=str(directory))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(wheels) -> Iterator[_Server]:
    s = _Server(next(iter(wheels.values())).parent)
    yield s
    s.close()


def build_tree(tmp_path: Path, wheels: dict[str, Path], server: _Server,
               bad: str | None = None) -> tuple[NativeBuilder, object, Path]:
    entries = []
    for name, path in wheels.items():
        w = locked(path, url=f"{server.url}/{path.name}")
        if name == bad:
            w = replace(w, sha256="0" * 64)
        entries.append(w)
    spec = parse_spec({"name": "demo"})
    plan = plan_build(spec, lock_with(tuple(entries)), bytecode=False)
    plan = replace(plan, base_ref=None)  # the wheel layers alone
    cache = tmp_path / "cache"
    builder = NativeBuilder(OCIStore(cache / "store"), cache)
    return builder, plan, cache


def layer_files(store: OCIStore, digest: str) -> dict[str, bytes]:
    import gzip

    data = gzip.decompress(store.blob_path(digest).read_bytes())
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore


def test_builder_downloads_installs_and_reports_files_two_layers_ship(tmp_path, wheels,
                                                                       server):
    builder, plan, _ = build_tree(tmp_path, wheels, server)
    # alpha in a layer of its own, so its script and beta's meet across layers
    alpha = next(x for x in plan.layers if "alpha" in [w.name for w in x.wheels])
    own = replace(alpha, name="alpha own", wheels=alpha.wheels)
    rest = tuple(replace(x, wheels=tuple(w for w in x.wheels if w.name != "alpha"))
                 for x in plan.layers if x.kind == "wheels")
    plan = replace(plan, layers=(own, *[x for x in rest if x.wheels]))
    heard: list[int] = []
    result = builder.build(plan, lambda position, blob: heard.append(position))
    assert [(p, lo) for p, lo, _ in result.overlaps] == [("/usr/local/bin/shared-tool",
                                                          "alpha own")]
    files = layer_files(builder.store, result.layers[0].descriptor.digest)
    assert f"{SITE}/alpha/core.py" in files
    assert sorted(heard) == list(range(len(plan.layers)))  # each layer, once it was made
    heard.clear()
    again = builder.build(plan, lambda position, blob: heard.append(position))
    assert again.manifest == result.manifest and all(again.reused)
    assert heard == []  # nothing made: nothing for an early load to overlap with
    assert again.overlaps == result.overlaps  # remembered with the layer, not recomputed


def test_a_reused_layer_takes_this_plans_name_so_the_digest_does_not_depend_on_the_cache(
        tmp_path, wheels, server):
    builder, plan, _ = build_tree(tmp_path, wheels, server)
    renamed = replace(plan, layers=tuple(replace(x, name=f"renamed {i}")
                                         for i, x in enumerate(plan.layers)))
    builder.build(plan)  # the records now hold every layer under the first plan's names
    warm = builder.build(renamed)
    assert all(warm.reused)
    assert [b.name for b in warm.layers] == [x.name for x in renamed.layers]
    fresh_cache = tmp_path / "fresh"
    cold = NativeBuilder(OCIStore(fresh_cache / "store"), fresh_cache).build(renamed)
    assert warm.manifest.digest == cold.manifest.digest  # the config's history agrees


def test_a_wheel_with_a_wrong_hash_is_refused_and_nothing_is_tagged(tmp_path, wheels, server):
    builder, plan, cache = build_tree(tmp_path, wheels, server, bad="beta")
    with pytest.raises(IntegrityError, match="sha256 is"):
        builder.build(plan)
    assert builder.store.tags() == {}
    assert not list((cache / "blobs/sha256").glob("0000*"))


def test_the_base_loader_is_found_through_links_inside_the_tree_not_the_host(tmp_path):
    from dlenv.image.wheels import _inside

    (tmp_path / "usr/lib/x86_64-linux-gnu").mkdir(parents=True)
    (tmp_path / "usr/lib64").mkdir()
    (tmp_path / "lib").symlink_to("usr/lib")
    (tmp_path / "usr/lib/x86_64-linux-gnu/ld-2.31.so").write_bytes(b"\x7fELF")
    (tmp_path / "usr/lib64/ld-linux-x86-64.so.2").symlink_to("/lib/x86_64-linux-gnu/ld-2.31.so")
    found = _inside(tmp_path, "usr/lib64/ld-linux-x86-64.so.2")
    assert found is not None and found.resolve() == \
        (tmp_path / "usr/lib/x86_64-linux-gnu/ld-2.31.so").resolve()
    assert _inside(tmp_path, "usr/bin/python3.9") is None


def test_cuda_libraries_from_nvidia_wheels_get_links_where_the_loader_looks(tmp_path, wheels,
                                                                         server):
    from dlenv.image import plan_cuda_links

    lib = f"/{SITE}/nvidia/cublas/lib/libcublas.so.11"
    assert plan_cuda_links([lib, f"/{SITE}/nvidia/cublas/__init__.py",
                            f"/{SITE}/nvidia/cuda_nvcc/bin/ptxas"]) == (
        ("/usr/lib/x86_64-linux-gnu/libcublas.so.11", lib),
        ("/usr/local/cuda", f"/{SITE}/nvidia/cuda_nvcc"))
    wheels["nvidia_cublas_cu11"] = make_wheel(
        next(iter(wheels.values())).parent, "nvidia_cublas_cu11",
        {"nvidia/cublas/lib/libcublas.so.11": b"\x7fELF not really",
         "nvidia/cuda_nvcc/bin/ptxas": b"#!/bin/sh\n"})
    builder, plan, _ = build_tree(tmp_path, wheels, server)
    result = builder.build(replace(plan, cuda_links=True))
    assert result.layers[-1].name == "CUDA library links"
    data = gzip.decompress(builder.store.blob_path(result.layers[-1].descriptor.digest)
                           .read_bytes())
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        links = {m.name: m.linkname for m in tar if m.issym()}
    assert links == {"usr/lib/x86_64-linux-gnu/libcublas.so.11": lib,
                     "usr/local/cuda": f"/{SITE}/nvidia/cuda_nvcc"}
    again = builder.build(replace(plan, cuda_links=True))
    assert again.manifest == result.manifest and all(again.reused)
