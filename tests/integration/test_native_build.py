"""The native build of a Python-only environment, checked with real tools: Docker, a
registry, skopeo and umoci; reproducibility across caches; faults in cache and store."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from dlenv.cli import main
from dlenv.fsutil import location_id
from dlenv.lock import read_lock
from dlenv.oci.store import default_store
from tests.conftest import docker_ready, locked_project, run_dlenv

pytestmark = pytest.mark.integration
SPEC = 'name = "pybase"\npython = "3.11"\napt = ["libgomp1"]\n'


dlenv = run_dlenv


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return locked_project(tmp_path_factory, {"dlenv.toml": SPEC})


@pytest.fixture(scope="module")
def built(project):
    root, cache = project
    r = dlenv("build", str(root), "--cache-dir", str(cache), "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_lock_pins_every_deb_of_the_base(project):
    root, _ = project
    lock = read_lock(root / "dlenv.lock")
    names = {d.name for d in lock.debs}
    assert {"python3.11", "libc6", "ca-certificates", "tzdata", "libgomp1"} <= names
    assert lock.base.release_sha256 and all(len(d.sha256) == 64 for d in lock.debs)
    assert all(d.filename.startswith("pool/") for d in lock.debs)  # no mirror host inside


def test_build_summary_reports_digest_size_and_layers(built):
    assert built["digest"].startswith("sha256:") and built["size"] > 10_000_000
    layer = built["layers"][0]
    assert layer["media_type"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert set(layer) >= {"digest", "size", "media_type"}


def test_image_runs_in_docker_as_non_root(project, built):
    docker_ready()
    root, cache = project
    r = dlenv("build", str(root), "--cache-dir", str(cache), "--load", "--tag", "pybase:test")
    assert r.returncode == 0, r.stderr
    run = subprocess.run(
        ["docker", "run", "--rm", "pybase:test", "sh", "-c",
         "id -u; python3 -c 'import ssl, sqlite3, json; "
         "print(ssl.create_default_context().cert_store_stats()[\"x509_ca\"] > 100)'; "
         "python --version; test -w $HOME && echo home-writable; "
         "python3 -c 'print(open(\"/var/lib/dpkg/status\").read().count(\"Package: \"))'"],
        capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    uid, cas, _, version, home, packages = run.stdout.split()
    assert (uid, cas, home) == ("1000", "True", "home-writable")
    assert version.startswith("3.11.")
    assert int(packages) == len(read_lock(root / "dlenv.lock").debs)  # scanners see all


def test_a_rebuilt_image_reaches_docker_with_only_the_layers_it_lacks(project, built):
    docker_ready()
    root, cache = project
    first = json.loads(dlenv("build", str(root), "--cache-dir", str(cache), "--load", "--tag",
                             "pybase:partial", "--json").stdout)
    assert first["load"]["sent_layers"] + first["load"]["held_layers"] == len(first["layers"])
    (root / "notes.txt").write_text("changed after the first load\n")
    try:
        r = dlenv("build", str(root), "--cache-dir", str(cache), "--load", "--tag",
                  "pybase:partial", "--json")
        assert r.returncode == 0, r.stderr
        second = json.loads(r.stdout)
        load = second["load"]
        # only the project layer (the top one) is new: Docker gets it and keeps the rest
        assert second["layers"][-1]["name"] == "project files"
        assert (load["sent_layers"], load["held_layers"]) == (1, len(second["layers"]) - 1)
        # the new layer is kept as its plain tar, sent as it is: no digest for a registry
        assert second["layers"][-1]["media_type"] == "application/vnd.oci.image.layer.v1.tar"
        assert second["digest"] is None and not second["packed"]
        assert _engine_image("pybase:partial")["Id"] == second["image_id"]
        run = subprocess.run(["docker", "run", "--rm", "pybase:partial", "sh", "-c",
                              "cat notes.txt; python3 -c 'import ssl; print(ssl.OPENSSL_VERSION)'"],
                             capture_output=True, text=True, check=False)
        assert run.returncode == 0, run.stderr
        assert run.stdout.startswith("changed after the first load\nOpenSSL")
        again = json.loads(dlenv("build", str(root), "--cache-dir", str(cache), "--load",
                                 "--tag", "pybase:partial", "--json").stdout)
        assert again["load"] == {"sent_layers": 0, "held_layers": 0, "early_layers": 0,
                                 "already_there": True}
    finally:
        (root / "notes.txt").unlink()
        subprocess.run(["docker", "rmi", "pybase:partial"], capture_output=True, check=False)


def _settled(root) -> None:
    """Wait (at most a few seconds) until the project's files are older than the time an
    edit could hide in: only then does a build leave a record to answer from."""
    from dlenv.image.project import SETTLE_NS

    newest = max(max(p.stat().st_mtime_ns, p.stat().st_ctime_ns)
                 for p in [root, *root.rglob("*")])
    time.sleep(max(0.0, (newest + SETTLE_NS) / 1e9 - time.time() + 0.1))


def test_an_unchanged_build_answers_from_its_record_until_something_changes(project, built):
    docker_ready()
    root, cache = project
    _settled(root)
    args = ("build", str(root), "--cache-dir", str(cache), "--load", "--tag", "pybase:same",
            "--json")
    try:
        first = json.loads(dlenv(*args).stdout)
        again = json.loads(dlenv(*args).stdout)
        assert not first["unchanged"] and again["unchanged"]
        assert again["digest"] == first["digest"] and all(x["reused"] for x in again["layers"])
        assert again["load"]["already_there"]
        # Docker lost the image: the record is no answer, the build loads it again.
        subprocess.run(["docker", "rmi", "pybase:same"], capture_output=True, check=True)
        reloaded = json.loads(dlenv(*args).stdout)
        assert not reloaded["unchanged"] and not reloaded["load"]["already_there"]
        assert _engine_image("pybase:same") is not None
        # A project file changed: the project layer is built again and reaches Docker.
        (root / "notes.txt").write_text("a note\n")
        changed = json.loads(dlenv(*args).stdout)
        assert not changed["unchanged"] and changed["digest"] != first["digest"]
        run = subprocess.run(["docker", "run", "--rm", "pybase:same", "cat", "notes.txt"],
                             capture_output=True, text=True, check=False)
        assert run.stdout == "a note\n", run.stderr
        (root / "notes.txt").unlink()
        back = json.loads(dlenv(*args).stdout)  # removed again: the first image's digest
        assert not back["unchanged"] and back["digest"] == first["digest"]
    finally:
        (root / "notes.txt").unlink(missing_ok=True)
        subprocess.run(["docker", "rmi", "pybase:same"], capture_output=True, check=False)


def test_outputs_pass_skopeo_umoci_and_docker_load(project, built, tmp_path):
    docker_ready()
    root, cache = project
    oci, archive = tmp_path / "oci", tmp_path / "image.tar"
    r = dlenv("build", str(root), "--cache-dir", str(cache), "--output", f"oci:{oci}",
              "--output", f"docker-archive:{archive}", "--tag", "pybase:archive")
    assert r.returncode == 0, r.stderr
    inspect = subprocess.run(["skopeo", "inspect", f"oci:{oci}:pybase:archive"],
                             capture_output=True, text=True, check=True)
    assert json.loads(inspect.stdout)["Digest"] == built["digest"]
    copied = tmp_path / "copied"
    subprocess.run(["skopeo", "copy", f"oci:{oci}:pybase:archive", f"dir:{copied}"],
                   capture_output=True, check=True)
    bundle = tmp_path / "bundle"
    subprocess.run(["umoci", "unpack", "--image", f"{oci}:pybase:archive", str(bundle)],
                   capture_output=True, check=True)
    assert (bundle / "rootfs/usr/bin/python3.11").exists()
    config = json.loads((bundle / "config.json").read_text())
    assert config["process"]["user"]["uid"] == 1000
    loaded = subprocess.run(["docker", "load", "-i", str(archive)], capture_output=True,
                            text=True, check=True)
    assert "pybase:archive" in loaded.stdout


def test_same_lock_same_digest_with_other_cache_umask_and_tz(project, built, tmp_path):
    root, _ = project
    other = tmp_path / "other-cache"
    r = dlenv("build", str(root), "--cache-dir", str(other), "--json", "--frozen",
              env={"TZ": "Pacific/Kiritimati"}, preexec_fn=lambda: os.umask(0o077))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["digest"] == built["digest"]


def test_an_image_built_for_docker_is_packed_when_pushed_to_the_digest_a_plain_build_gives(
        project, built, registry, tmp_path):
    docker_ready()
    root, _ = project
    cache, tag = tmp_path / "cold-cache", "pybase:for-docker"
    try:
        r = dlenv("build", str(root), "--cache-dir", str(cache), "--load", "--tag", tag,
                  "--json", "--frozen")
        assert r.returncode == 0, r.stderr
        loaded = json.loads(r.stdout)
        # only for Docker here: every layer kept as its plain tar, none compressed yet
        assert loaded["digest"] is None and not loaded["packed"]
        assert {x["media_type"] for x in loaded["layers"]} == {
            "application/vnd.oci.image.layer.v1.tar"}
        assert _engine_image(tag)["Id"] == loaded["image_id"]
        run = subprocess.run(["docker", "run", "--rm", tag, "python3", "-c", "print(6*7)"],
                             capture_output=True, text=True, check=False)
        assert run.stdout == "42\n", run.stderr
        r = dlenv("push", f"{registry}/for-docker/pybase:1", str(root), "--cache-dir",
                  str(cache), "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["digest"] == built["digest"]  # as a compressed build
        # packed once: the store's tags name it, and builds reuse every layer compressed
        assert default_store(cache).resolve(tag).digest == built["digest"]
        r = dlenv("build", str(root), "--cache-dir", str(cache), "--load", "--tag", tag,
                  "--json", "--frozen")
        reloaded = json.loads(r.stdout)
        assert reloaded["digest"] == built["digest"] and reloaded["load"]["already_there"]
        r = dlenv("build", str(root), "--cache-dir", str(cache), "--json", "--frozen")
        again = json.loads(r.stdout)
        assert again["digest"] == built["digest"] and again["image_id"] == loaded["image_id"]
        assert all(x["reused"] and x["media_type"].endswith("+gzip") for x in again["layers"])
    finally:
        subprocess.run(["docker", "rmi", tag], capture_output=True, check=False)


def test_a_python_3_9_base_gives_the_same_digest_from_two_empty_caches(tmp_path_factory):
    # Before 3.11, marshal writes frozenset constants in hash order: the base's bytecode
    # must be compiled with a fixed hash seed, or every build differs.
    root, cache = locked_project(tmp_path_factory, {"dlenv.toml": 'name = "py39"\n'
                                                                  'python = "3.9"\n'})
    digests = []
    for where in (cache, tmp_path_factory.mktemp("second-cache")):
        r = dlenv("build", str(root), "--cache-dir", str(where), "--json", "--frozen")
        assert r.returncode == 0, r.stderr
        digests.append(json.loads(r.stdout)["digest"])
    assert digests[0] == digests[1]


def test_warm_rebuild_reuses_the_layer(project, built):
    root, cache = project
    r = dlenv("build", str(root), "--cache-dir", str(cache), "--json")
    data = json.loads(r.stdout)
    assert data["digest"] == built["digest"] and all(x["reused"] for x in data["layers"])


def test_registry_round_trip_by_digest(project, built, registry, tmp_path):
    docker_ready()
    root, cache = project
    ref = f"{registry}/team/pybase:1"
    r = dlenv("push", ref, str(root), "--cache-dir", str(cache), "--json")
    assert r.returncode == 0, r.stderr
    pushed = json.loads(r.stdout)
    assert pushed["digest"] == built["digest"] and pushed["blobs_sent"] == len(built["layers"]) + 1
    again = json.loads(dlenv("push", ref, str(root), "--cache-dir", str(cache),
                             "--json").stdout)
    assert again["blobs_sent"] == 0  # the registry had every blob
    by_digest = f"{registry}/team/pybase@{built['digest']}"
    subprocess.run(["docker", "pull", by_digest], capture_output=True, check=True)
    out = subprocess.run(["docker", "run", "--rm", by_digest, "python3", "-c", "print(6*7)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "42"
    r = dlenv("pull", by_digest, "--cache-dir", str(tmp_path / "fresh"), "--json")
    assert r.returncode == 0, r.stderr and json.loads(r.stdout)["digest"] == built["digest"]
    skopeo = subprocess.run(["skopeo", "inspect", "--tls-verify=false", f"docker://{ref}"],
                            capture_output=True, text=True, check=True)
    assert json.loads(skopeo.stdout)["Digest"] == built["digest"]


def test_push_with_no_ref_goes_where_the_team_file_says(project, built, registry, tmp_path):
    root, cache = project
    team = tmp_path / "team"
    (team / "vision").mkdir(parents=True)
    (team / "dlenv-team.toml").write_text(f'[registry]\npush = "{registry}/ml-team"\n')
    for name in ("dlenv.toml", "dlenv.lock"):
        (team / "vision" / name).write_bytes((root / name).read_bytes())
    r = dlenv("push", str(team / "vision"), "--cache-dir", str(cache), "--json")
    assert r.returncode == 0, r.stderr
    pushed = json.loads(r.stdout)
    assert pushed["ref"] == f"{registry}/ml-team/pybase:latest"
    r = dlenv("push", str(root), "--cache-dir", str(cache))  # no team file above it
    assert r.returncode == 2 and "needs a REF" in r.stderr and "registry.push" in r.stderr


def test_a_push_to_another_repository_mounts_blobs_instead_of_sending_them(
        project, built, registry, tmp_path):
    root, cache = project
    r = dlenv("push", f"{registry}/mount/first:1", str(root), "--cache-dir", str(cache))
    assert r.returncode == 0, r.stderr
    r = dlenv("push", f"{registry}/mount/second:1", str(root), "--cache-dir", str(cache),
              "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["blobs_sent"] == 0  # every blob mounted from mount/first
    r = dlenv("pull", f"{registry}/mount/second@{built['digest']}", "--cache-dir",
              str(tmp_path / "fresh"), "--json")
    assert r.returncode == 0, r.stderr  # the second repository serves every blob


def test_push_sends_what_build_built_even_after_a_run(project, registry, tmp_path):
    # `dlenv run` builds the image without the project's files (they are mounted): it must
    # not take the tag `dlenv build` gave, which `dlenv push` sends.
    docker_ready()
    root, cache = project
    team = tmp_path / "team"
    team.mkdir()
    for name in ("dlenv.toml", "dlenv.lock"):
        (team / name).write_bytes((root / name).read_bytes())
    (team / "train.py").write_text("print('the team code')\n")
    r = dlenv("build", str(team), "--cache-dir", str(cache), "--json")
    assert r.returncode == 0, r.stderr
    released = json.loads(r.stdout)["digest"]
    r = dlenv("run", str(team), "--cache-dir", str(cache), "--no-volumes", "--", "true",
              env={"DLENV_DATA_DIR": str(tmp_path / "data")})
    assert r.returncode == 0, r.stderr
    store = default_store(cache)
    here = location_id(str(team.resolve()))
    assert store.resolve(f"pybase:latest-{here}").digest == released
    assert store.resolve(f"pybase:latest-run-{here}").digest != released  # no project layer
    r = dlenv("push", f"{registry}/team/pybase:after-run", str(team), "--cache-dir", str(cache),
              "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["digest"] == released


def _flip(path, keep_mtime: bool) -> None:
    st = path.stat()
    with path.open("r+b") as f:
        f.seek(st.st_size // 2)
        byte = f.read(1)
        f.seek(st.st_size // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_damaged_store_blob_is_never_exported_and_is_built_again(project, built, tmp_path):
    root, cache = project
    small = min(built["layers"], key=lambda x: x["size"])
    blob = default_store(cache).blob_path(small["digest"])
    # A flipped byte that keeps the size and the mtime passes the cheap reuse check, so the
    # build reuses it, but the full hash before any output catches it.
    _flip(blob, keep_mtime=True)
    oci = tmp_path / "oci"
    r = dlenv("build", str(root), "--cache-dir", str(cache), "--output", f"oci:{oci}")
    assert r.returncode == 3 and "damaged" in r.stderr and "Traceback" not in r.stderr
    assert not (oci / "blobs/sha256" / small["digest"].split(":")[1]).exists()
    # The damaged blob was removed: the next build makes the layer again, byte for byte.
    r = dlenv("build", str(root), "--cache-dir", str(cache), "--output", f"oci:{oci}",
              "--json", "--tag", "pybase:repaired")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    rebuilt = next(x for x in data["layers"] if x["digest"] == small["digest"])
    assert data["digest"] == built["digest"] and not rebuilt["reused"]
    subprocess.run(["skopeo", "copy", f"oci:{oci}:pybase:repaired", f"dir:{tmp_path / 'copy'}"],
                   capture_output=True, check=True)
    # A damaged blob with a new mtime fails its stamp: the build hashes it and rebuilds.
    _flip(blob, keep_mtime=False)
    data = json.loads(dlenv("build", str(root), "--cache-dir", str(cache), "--json").stdout)
    assert data["digest"] == built["digest"]
    assert not next(x for x in data["layers"] if x["digest"] == small["digest"])["reused"]


def test_a_registry_image_as_base_is_locked_by_digest_and_reused(
        project, built, registry, tmp_path):
    docker_ready()
    root, cache = project
    base = f"{registry}/team/basepy:3.11"
    assert dlenv("push", base, str(root), "--cache-dir", str(cache)).returncode == 0
    app = tmp_path / "app"
    app.mkdir()
    (app / "dlenv.toml").write_text(f'name = "app"\nbase = "{base}"\npython = "3.11"\n'
                                    '[user]\nname = "ml"\nuid = 1234\ngid = 1234\n')
    r = dlenv("build", str(app), "--cache-dir", str(cache), "--json", "--load")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    lock = read_lock(app / "dlenv.lock")
    assert (lock.base.kind, lock.base.digest) == ("image", built["digest"])
    assert data["layers"][0]["digest"] == built["layers"][0]["digest"]  # reused as it is
    out = subprocess.run(["docker", "run", "--rm", "app:latest", "sh", "-c",
                          "id -u; test -w /home/ml && echo ok"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1234", "ok"]


def test_a_corrupted_cached_deb_is_refetched(project, tmp_path):
    root, cache = project
    lock = read_lock(root / "dlenv.lock")
    victim = cache / "blobs" / "sha256" / lock.debs[0].sha256
    assert victim.exists()
    victim.write_bytes(b"not a deb")
    fresh_store = tmp_path / "store-cache"
    fresh_store.mkdir()
    (fresh_store / "blobs").symlink_to(cache / "blobs")
    r = dlenv("build", str(root), "--cache-dir", str(fresh_store), "--json")
    assert r.returncode == 0, r.stderr
    from dlenv.cache import sha256_file
    assert sha256_file(victim) == lock.debs[0].sha256


def test_a_build_killed_midway_leaves_the_store_consistent(project, built, tmp_path):
    root, cache = project
    work = tmp_path / "killed"
    work.mkdir()
    (work / "blobs").symlink_to(cache / "blobs")  # debs cached: the kill lands in the layer
    for delay in (0.8, 1.6):
        proc = subprocess.Popen([sys.executable, "-m", "dlenv", "build", str(root),
                                 "--cache-dir", str(work), "--json"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        store = default_store(work)
        for tag, digest in store.tags().items():
            doc = store.read_json(digest)
            for blob in [doc["config"], *doc["layers"]]:
                assert store.verify_blob(blob["digest"]), (tag, blob)
        for path in store.blobs.iterdir():
            if not path.name.startswith(".tmp-"):
                assert store.verify_blob("sha256:" + path.name)
    store.gc()
    assert not [p for p in store.blobs.iterdir() if p.name.startswith(".tmp-")]
    r = dlenv("build", str(root), "--cache-dir", str(work), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["digest"] == built["digest"]


def test_build_without_engine_or_spec_errors_are_clear(tmp_path, capsys):
    assert main(["build", str(tmp_path)]) == 2
    assert "dlenv init" in capsys.readouterr().err


# --- the first hour: every verb gets its image the same way; shared daemons stay tidy -----

def _checkout(tmp_path_factory, root, files: dict[str, str]):
    here = tmp_path_factory.mktemp("checkout")
    for name in ("dlenv.toml", "dlenv.lock"):
        (here / name).write_bytes((root / name).read_bytes())
    for name, text in files.items():
        (here / name).write_text(text)
    return here


def _engine_image(ref: str) -> dict | None:
    proc = subprocess.run(["docker", "image", "inspect", ref], capture_output=True, text=True,
                          check=False)
    return json.loads(proc.stdout)[0] if proc.returncode == 0 else None


def test_verify_and_push_build_a_never_built_project(project, registry, tmp_path_factory):
    docker_ready()
    root, cache = project
    fresh = _checkout(tmp_path_factory, root, {"train.py": "print('never built')\n"})
    (fresh / "dlenv.lock").unlink()  # not even locked
    r = dlenv("verify", str(fresh), "--cache-dir", str(cache), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["status"] == "ok" and (fresh / "dlenv.lock").exists()
    tag = f"pybase:latest-{location_id(str(fresh.resolve()))}"
    assert _engine_image(tag) is not None and _engine_image("pybase:latest") is not None
    r = dlenv("push", f"{registry}/team/never-built:1", str(fresh), "--cache-dir", str(cache),
              "--json")
    assert r.returncode == 0, r.stderr
    pushed = json.loads(r.stdout)
    assert pushed["image"] == tag and not pushed["built"]  # verify's build, reused
    assert pushed["digest"] == default_store(cache).resolve(tag).digest
    frozen = _checkout(tmp_path_factory, root, {})
    (frozen / "dlenv.lock").unlink()
    r = dlenv("push", f"{registry}/team/never-built:2", str(frozen), "--frozen",
              "--cache-dir", str(cache))
    assert r.returncode == 2 and "lock" in r.stderr  # --frozen never locks


def test_two_checkouts_keep_their_images_and_gc_frees_a_removed_one(project, tmp_path_factory):
    docker_ready()
    root, cache = project
    a = _checkout(tmp_path_factory, root, {"who.txt": "checkout a\n"})
    b = _checkout(tmp_path_factory, root, {"who.txt": "checkout b\n"})

    def build(where) -> str:
        r = dlenv("build", str(where), "--load", "--cache-dir", str(cache), "--json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)["tag"]

    tag_a, tag_b = build(a), build(b)
    assert tag_a != tag_b and tag_a.startswith("pybase:latest-")

    def cat(ref: str) -> str:
        return subprocess.run(["docker", "run", "--rm", ref, "cat", "who.txt"],
                              capture_output=True, text=True, check=True).stdout.strip()

    assert (cat(tag_a), cat(tag_b), cat("pybase:latest")) == ("checkout a", "checkout b",
                                                                "checkout b")
    old_a = _engine_image(tag_a)["Id"]
    (a / "who.txt").write_text("checkout a, edited\n")
    assert build(a) == tag_a and cat(tag_a) == "checkout a, edited"
    assert _engine_image(old_a) is None  # the replaced image went, no dangling copy
    # b's checkout is deleted: gc gives back its image, its store tag and its project layer
    store = default_store(cache)
    shutil.rmtree(b)
    r = dlenv("gc", "--cache-dir", str(cache), "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    planned = json.loads(r.stdout)
    assert tag_b in store.tags() and _engine_image(tag_b) is not None  # a dry run keeps all
    r = dlenv("gc", "--cache-dir", str(cache), "--json")
    assert r.returncode == 0, r.stderr
    freed = json.loads(r.stdout)
    kinds = {f["kind"] for f in freed["freed"]}
    assert {"store tag", "store blob", "engine image"} <= kinds and freed["bytes"] > 0
    listed = [[f["name"] for f in d["freed"] if f["kind"] not in ("temporary", "engine image")]
              for d in (freed, planned)]
    assert listed[0] == listed[1]  # the dry run listed what went from the store
    assert tag_b not in store.tags() and _engine_image(tag_b) is None
    assert tag_a in store.tags() and cat(tag_a) == "checkout a, edited"  # a is untouched
    r = dlenv("build", str(root), "--cache-dir", str(cache), "--json")
    assert r.returncode == 0 and all(x["reused"] for x in json.loads(r.stdout)["layers"])
