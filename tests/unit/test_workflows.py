"""The orchestration every verb starts from, called as a library would call it: the lock is
made when missing or stale, refused when damaged, and never rewritten behind the user's back;
progress reaches the caller's Reporter, and nothing is printed."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

import dlenv.workflows.project as flow
from dlenv.errors import EngineError, LockError, StaleLockError
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

    monkeypatch.setattr("dlenv.resolve.locking.lock_project", fake_lock_project)
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


# --- ports, loads and gc: what keeps a shared machine tidy ---------------------------------

def test_a_service_takes_the_port_it_had_and_moves_only_when_another_program_holds_it(
        tmp_path):
    import socket

    from dlenv.run.launch import PortBook

    book = PortBook(tmp_path, "abcd1234")
    first, note = book.choose("ssh", "127.0.0.1", 42222)
    assert note is None
    book.remember("ssh", first)
    assert book.choose("ssh", "127.0.0.1", 42222) == (first, None)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", first))
        busy.listen()
        moved, note = book.choose("ssh", "127.0.0.1", 42222)
    assert moved != first and note and f"port {first} is taken" in note
    (tmp_path / "ports/abcd1234.json").write_text("not json")
    assert PortBook(tmp_path, "abcd1234").read() == {}  # a damaged file is no file



class FakeEngine:
    """Images by id with their tags; ``load`` takes the archive's manifest.json."""

    kind = "docker"

    def __init__(self, images: dict[str, list[str]]) -> None:
        self.images_ = images
        self.loads = 0
        self.chains: set[str] = set()  # what held_layers answers
        self.asked_held = 0
        self.diff_ids: dict[str, tuple[str, ...]] = {}  # an image's layers, by id
        self.sent: list[list[str]] = []  # the layer files of each archive loaded
        self.forget = False

    def image_id(self, ref: str) -> str | None:
        return next((i for i, tags in self.images_.items() if ref in tags or ref == i), None)

    def image(self, ref: str):
        from dlenv.engine import EngineImage

        found = self.image_id(ref)
        return None if found is None else EngineImage(found, tuple(self.images_[found]), 10,
                                                      {"dev.dlenv.lock.digest": "x"},
                                                      diff_ids=self.diff_ids.get(found, ()))

    def images(self, label: str):
        return [self.image(i) for i in self.images_]

    def containers(self, label: str):
        return []

    def networks(self, label: str):
        return []

    def remove_image(self, ref: str) -> bool:
        found = self.image_id(ref)
        if found is None:
            return False
        if ref != found and len(self.images_[found]) > 1:
            self.images_[found].remove(ref)
        elif ref == found and self.images_[found]:
            return False  # tagged: the engine refuses without force
        else:
            del self.images_[found]
        return True

    def omits_held_layers(self) -> bool:
        return True

    def held_layers(self, label: str) -> frozenset[str]:
        self.asked_held += 1
        return frozenset(self.chains)

    def load(self, write) -> None:
        import io
        import json
        import tarfile

        buf = io.BytesIO()
        write(buf)
        buf.seek(0)
        with tarfile.open(fileobj=buf) as tar:
            manifest = json.load(tar.extractfile("manifest.json"))[0]
            self.sent.append(sorted(n for n in tar.getnames() if n in manifest["Layers"]))
        missing = [n for n in manifest["Layers"] if n not in self.sent[-1]]
        if missing and self.forget:  # the engine dropped the layers it said it had
            raise EngineError("docker load failed: open blobs/...: no such file or directory")
        image_id = "sha256:" + manifest["Config"].rsplit("/", 1)[1]
        for tags in self.images_.values():
            for tag in manifest["RepoTags"]:
                if tag in tags:
                    tags.remove(tag)
        self.images_[image_id] = list(manifest["RepoTags"])
        self.loads += 1


def _stored_image(store, text: bytes):
    import json

    cfg = store.put_bytes(text, "application/vnd.oci.image.config.v1+json")
    return store.put_bytes(json.dumps({"config": cfg.to_json(), "layers": []}).encode(),
                           "application/vnd.oci.image.manifest.v1+json"), cfg.digest


def test_loading_a_rebuilt_image_removes_the_one_it_replaces_unless_tagged_elsewhere(tmp_path):
    from dlenv.oci.store import OCIStore
    from dlenv.workflows.build import load_image

    store = OCIStore(tmp_path)
    old, old_id = _stored_image(store, b'{"v": 1}')
    new, new_id = _stored_image(store, b'{"v": 2}')
    engine = FakeEngine({})
    tags = ("env:dev-1a2b3c4d", "env:dev")
    assert load_image(engine, store, old, tags).loaded
    assert not load_image(engine, store, old, tags).loaded and engine.loads == 1  # held already
    done = load_image(engine, store, new, tags)
    assert done.replaced == old_id and old_id not in engine.images_
    engine.images_[new_id].append("mine:keep")  # the user tagged it too
    done = load_image(engine, store, old, tags)
    assert done.replaced is None and engine.images_[new_id] == ["mine:keep"]


def test_a_load_leaves_out_the_layers_the_engine_holds_and_sends_all_when_it_lost_them(
        tmp_path):
    import json

    from dlenv.oci.image import chain_ids
    from dlenv.oci.store import OCIStore
    from dlenv.workflows.build import load_image

    store = OCIStore(tmp_path)
    blobs = [store.put_bytes(f"layer {i}".encode(), "application/vnd.oci.image.layer.v1.tar")
             for i in range(3)]
    diff_ids = [b.digest for b in blobs]

    def image(last: int):
        cfg = store.put_bytes(json.dumps({"rootfs": {"diff_ids": [*diff_ids[:2], last]}})
                              .encode(), "application/vnd.oci.image.config.v1+json")
        layers = [b.to_json() for b in blobs[:2]] + [
            store.put_bytes(f"top {last}".encode(), "x").to_json()]
        return store.put_bytes(json.dumps({"config": cfg.to_json(), "layers": layers}).encode(),
                               "application/vnd.oci.image.manifest.v1+json")

    engine = FakeEngine({})
    engine.chains = set(chain_ids(diff_ids[:2]))  # an older image had the two lower layers
    done = load_image(engine, store, image(1), ("env:dev",))
    assert (done.sent, done.held) == (1, 2) and len(engine.sent[-1]) == 1
    engine.forget = True  # the engine lost them since it was asked
    done = load_image(engine, store, image(2), ("env:dev",))
    assert (done.sent, done.held) == (3, 0) and len(engine.sent[-1]) == 3
    assert engine.image_id("env:dev") is not None


def test_a_rebuild_leaves_out_what_it_shares_with_the_image_its_tag_names_without_asking(
        tmp_path):
    import json

    from dlenv.oci.store import OCIStore
    from dlenv.workflows.build import load_image

    store = OCIStore(tmp_path)
    blobs = [store.put_bytes(f"layer {i}".encode(), "application/vnd.oci.image.layer.v1.tar")
             for i in range(4)]

    def image(*layers: int):
        diff_ids = [blobs[i].digest for i in layers]
        cfg = store.put_bytes(json.dumps({"rootfs": {"diff_ids": diff_ids}}).encode(),
                              "application/vnd.oci.image.config.v1+json")
        doc = {"config": cfg.to_json(), "layers": [blobs[i].to_json() for i in layers]}
        manifest = store.put_bytes(json.dumps(doc).encode(),
                                   "application/vnd.oci.image.manifest.v1+json")
        return manifest, cfg.digest, tuple(diff_ids)

    engine = FakeEngine({})
    first, first_id, first_layers = image(0, 1, 2)
    done = load_image(engine, store, first, ("env:dev",))
    assert (done.sent, done.held, engine.asked_held) == (3, 0, 1)  # nothing of dlenv's held
    engine.diff_ids[first_id] = first_layers
    rebuilt, _, _ = image(0, 1, 3)  # the top layer changed
    done = load_image(engine, store, rebuilt, ("env:dev",))
    assert (done.sent, done.held) == (1, 2) and len(engine.sent[-1]) == 1
    assert engine.asked_held == 1  # the tag's image answered: no question about every image
    assert done.replaced == first_id


def test_gc_drops_what_belongs_to_projects_that_are_gone_and_keeps_the_rest(tmp_path):
    from dlenv.oci.store import default_store
    from dlenv.workflows import gc as gc_flow

    kept_project, gone_project = tmp_path / "kept", tmp_path / "gone"
    kept_project.mkdir()
    (kept_project / "dlenv.toml").write_text(SPEC)
    store = default_store(tmp_path / "cache")
    kept, _ = _stored_image(store, b'{"kept": 1}')
    gone, _ = _stored_image(store, b'{"gone": 1}')
    store.tag("env:latest-kept", kept, project=str(kept_project))
    store.tag("env:latest-gone", gone, project=str(gone_project))
    store.tag("team/env:1", gone)  # pulled: no project, kept whatever happens
    store.untag({"team/env:1"})
    orphan = store.put_bytes(b"orphan layer", "application/octet-stream")
    (tmp_path / "cache/rootfs/unused-base").mkdir(parents=True)
    (tmp_path / "cache/rootfs/unused-base/python3").write_bytes(b"x" * 100)
    (tmp_path / "cache/pyc/unused-base/ab").mkdir(parents=True)  # what its python compiled
    (tmp_path / "cache/pyc/unused-base/ab/abcd").write_bytes(b"y" * 50)
    records = tmp_path / "cache/unchanged"  # what answers an unchanged build, per project
    records.mkdir()
    for name, project in (("kept", kept_project), ("gone", gone_project)):
        (records / f"{name}.json").write_text(json.dumps({"spec": str(project / "dlenv.toml")}))
    engine = FakeEngine({"sha256:" + "a" * 64: ["env:latest-gone"],
                         "sha256:" + "b" * 64: ["env:latest-kept"],
                         "sha256:" + "c" * 64: []})
    dry = gc_flow._collect(str(tmp_path / "cache"), engine, False, True)
    assert store.tags().keys() == {"env:latest-kept", "env:latest-gone"}  # nothing removed
    done = gc_flow._collect(str(tmp_path / "cache"), engine, False, False)
    assert [f.name for f in done] == [f.name for f in dry]
    by_kind = {(f.kind, f.name) for f in done}
    assert ("store tag", "env:latest-gone") in by_kind and ("base tree", "unused-base") in by_kind
    assert ("bytecode cache", "unused-base") in by_kind
    assert ("build record", "gone") in by_kind and ("build record", "kept") not in by_kind
    assert [p.name for p in records.iterdir()] == ["kept.json"]
    assert not (tmp_path / "cache/pyc/unused-base").exists()
    assert ("store blob", orphan.hex) in by_kind
    assert store.tags() == {"env:latest-kept": kept.digest} and store.has(kept.digest)
    assert list(engine.images_) == ["sha256:" + "b" * 64]  # the gone one and the dangling one
    assert sum(f.size for f in done) >= 100 + len(b"orphan layer")


def test_gc_removes_what_a_killed_train_left_but_not_a_job_still_running(tmp_path):
    from dlenv.engine import Container
    from dlenv.workflows import gc as gc_flow

    def worker(name, state, job):
        return Container(name, state, "", "env:train", {"dev.dlenv.job": job}, "")

    class Jobs(FakeEngine):
        def __init__(self):
            super().__init__({})
            self.workers = [worker("dlenv-a-0", "exited", "dlenv-job-a"),
                            worker("dlenv-a-1", "exited", "dlenv-job-a"),
                            worker("dlenv-b-0", "running", "dlenv-job-b"),
                            worker("dlenv-b-1", "exited", "dlenv-job-b")]
            self.nets = ["dlenv-job-a", "dlenv-job-b", "dlenv-job-c"]

        def containers(self, label):
            assert label == "dev.dlenv.job"
            return list(self.workers)

        def remove(self, name):
            self.workers = [w for w in self.workers if w.name != name]

        def networks(self, label):
            return list(self.nets)

        def remove_network(self, name):
            attached = any(w.labels["dev.dlenv.job"] == name for w in self.workers)
            if not attached:  # as the engine: not while a container is attached
                self.nets.remove(name)
            return not attached

    engine = Jobs()
    dry = gc_flow._engine_jobs(engine, dry_run=True)
    assert len(engine.workers) == 4 and len(engine.nets) == 3  # nothing removed
    done = gc_flow._engine_jobs(engine, dry_run=False)
    assert [(f.kind, f.name) for f in done] == [(f.kind, f.name) for f in dry]
    assert [w.name for w in engine.workers] == ["dlenv-b-0"]  # still training: kept
    assert engine.nets == ["dlenv-job-b"]  # its network too
    assert ("engine network", "dlenv-job-a") in {(f.kind, f.name) for f in done}


def test_built_bottom_layers_reach_docker_while_the_rest_builds(tmp_path, monkeypatch):
    import io
    import json
    import tarfile
    import time
    from types import SimpleNamespace

    from dlenv.oci import LayerBlob
    from dlenv.oci.image import chain_ids
    from dlenv.oci.store import OCIStore
    from dlenv.workflows.build import EarlyLoad, load_image

    class Tracking(FakeEngine):
        def load(self, write) -> None:  # the engine then holds the chains it was sent
            buf = io.BytesIO()
            write(buf)
            super().load(lambda f: f.write(buf.getvalue()))
            with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tar:
                name = json.load(tar.extractfile("manifest.json"))[0]["Config"]
                config = json.load(tar.extractfile(name))
            self.chains |= set(chain_ids(config["rootfs"]["diff_ids"]))

    store = OCIStore(tmp_path)
    blobs = [LayerBlob(descriptor=store.put_bytes(f"layer {i}".encode(), "x"),
                       diff_id="sha256:" + f"{i}" * 64) for i in range(3)]
    plan = SimpleNamespace(name="env", config=SimpleNamespace(labels={"a": "b"}))
    monkeypatch.setattr(EarlyLoad, "STEP", 1)
    engine = Tracking({})
    early = EarlyLoad(engine, store, plan)  # type: ignore[arg-type]
    early.layer(1, blobs[1])  # not from the bottom: nothing can go yet
    early.layer(0, blobs[0])
    for _ in range(500):  # the loader works in its own thread: give it up to 5 s
        if early.loaded == 2:
            break
        time.sleep(0.01)
    early.finish()  # the build ended before layer 2 was announced
    assert early.loaded == early.sent == 2 and engine.sent
    went = [name for archive in engine.sent for name in archive]
    assert len(set(went)) == len(went) == 2  # each layer sent once, the third not early

    cfg = store.put_bytes(json.dumps({"rootfs": {"diff_ids": [b.diff_id for b in blobs]}})
                          .encode(), "application/vnd.oci.image.config.v1+json")
    manifest = store.put_bytes(json.dumps({"config": cfg.to_json(), "layers": [
        b.descriptor.to_json() for b in blobs]}).encode(),
        "application/vnd.oci.image.manifest.v1+json")
    done = load_image(engine, store, manifest, ("env:latest",))
    assert (done.sent, done.held) == (1, 2) and len(engine.sent[-1]) == 1
    early.clean()
    assert engine.image_id("env:dlenv-loading") is None
    assert engine.image_id("env:latest") is not None


def test_the_engine_asked_early_is_taken_once_and_what_no_command_took_is_dropped(
        monkeypatch):
    from dlenv.engine import cli as engine_cli

    asked: list[str | None] = []

    def detect(choice=None):
        asked.append(choice)
        return f"engine {len(asked)}"

    monkeypatch.setattr(engine_cli, "detect", detect)
    engine_cli.ask_early("docker")
    assert engine_cli.detect_soon("docker")() == "engine 1"  # the early answer
    assert engine_cli.detect_soon("docker")() == "engine 2"  # asked again: not reused
    engine_cli.ask_early("podman")
    engine_cli.forget_early()
    assert engine_cli.detect_soon("podman")() == "engine 4"  # the early one was dropped
    assert asked == ["docker", "docker", "podman", "podman"]


def test_a_loading_build_asks_docker_early_only_when_its_record_missed(monkeypatch, tmp_path):
    from dlenv.cli import build as cli_build
    from dlenv.cli.parser import build_parser
    from dlenv.engine import cli as engine_cli
    from dlenv.workflows import build as build_flow
    from dlenv.workflows.inputs import Unchanged

    asked: list[str | None] = []
    monkeypatch.setattr(engine_cli, "ask_early", asked.append)
    result = {"digest": "sha256:" + "a" * 64, "size": 1, "layers": [], "overlaps": [],
              "notes": []}
    hit = Unchanged(tag="demo:latest", alias=None, image_id="sha256:" + "b" * 64,
                    result=result, warnings=(), seconds=0.1)
    args = build_parser("build").parse_args(["build", str(tmp_path), "--load", "--json"])
    monkeypatch.setattr(cli_build, "lookup", lambda *a: hit)
    assert cli_build.cmd_build(args) == 0
    assert asked == []

    class Built(Exception):
        pass

    def build(*a, **k):
        raise Built

    monkeypatch.setattr(cli_build, "lookup", lambda *a: None)
    monkeypatch.setattr(build_flow, "build", build)
    monkeypatch.setattr("dlenv.workflows.project.open_project", lambda d: d)
    with pytest.raises(Built):
        cli_build.cmd_build(args)
    assert asked == ["docker"]


def test_the_parser_of_one_command_reads_what_the_whole_parser_reads():
    from dlenv.cli.parser import build_parser

    for argv in (["run", "x", "--memory", "2g", "--engine", "podman"],
                 ["bundle", "push", "f.tar", "reg.test/team"], ["lock", "--check"],
                 ["build", "--load", "--profile", "train", "--output", "oci:o"]):
        one, full = (vars(p.parse_args(argv)) for p in (build_parser(argv[0]), build_parser()))
        ran = [tuple(c.cell_contents for c in f.pop("func").__closure__) for f in (one, full)]
        assert one == full and ran[0] == ran[1]  # the same values, the same function
    full, one = build_parser(), build_parser("build")
    assert set(full._subparsers._group_actions[0].choices) > {"build", "run", "k8s"}
    assert set(one._subparsers._group_actions[0].choices) == {"build"}
    # a word that is no command: the whole parser, whose error lists every command
    assert set(build_parser("biuld")._subparsers._group_actions[0].choices) == set(
        full._subparsers._group_actions[0].choices)




def test_a_run_opens_its_project_without_the_spec_parser_the_lock_or_the_image_stack():
    # What a run of an unchanged project loads before its container starts: the run's own
    # modules, its records and the spec's run view. The spec's parser and model (and
    # packaging below them), the lock's model and reader, the compatibility matrix and the
    # image code are for a run whose records missed (each costs milliseconds at every start).
    import subprocess
    import sys

    code = ("import sys\nimport dlenv.cli.run, dlenv.workflows.run, dlenv.engine.cli\n"
            "from dlenv.workflows.project import open_project\n"
            "p = open_project(sys.argv[1], lazy=True)\n"
            "print(p.lock_path.name, p.file.name)\n"
            "print(' '.join(sorted(m for m in sys.modules if m.startswith(('dlenv.', "
            "'packaging')))))\n"
            "print(p.spec.framework.name)\n")
    done = subprocess.run([sys.executable, "-c", code, str(EXAMPLES / "tensorflow-cpu")],
                          capture_output=True, text=True, check=True)
    named, loaded, parsed = done.stdout.splitlines()
    assert named == "dlenv.lock dlenv.toml" and parsed == "tensorflow"  # parsed when asked
    loaded_set = set(loaded.split())
    assert {"dlenv.spec.view", "dlenv.workflows.inputs", "dlenv.lock"} <= loaded_set
    heavy = {"dlenv.spec.model", "dlenv.spec.parse", "packaging", "dlenv.image.project",
             "dlenv.lock.model", "dlenv.lock.file", "dlenv.compat.matrix", "dlenv.oci.image",
             "dlenv.image.plan", "dlenv.resolve", "dlenv.image.builder"}
    assert not heavy & loaded_set, heavy & loaded_set
