"""A build with nothing changed answers from the last build's record: what counts as a
change (and so runs the build), what does not, and what the store and Docker must still hold.
The records here are made by the same ``remember`` the build calls, over a real image store
and a real scan of a project directory; Docker is a fake with the one question asked."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import dlenv.image.project as project_scan
from dlenv.config import Config, Setting, load_config
from dlenv.engine.base import EngineImage
from dlenv.image.project import scan_project
from dlenv.oci import MT_CONFIG, MT_MANIFEST
from dlenv.oci.store import default_store
from dlenv.spec import SPEC_FILES, load_spec
from dlenv.workflows import inputs
from dlenv.workflows.inputs import BuildOptions

TAG, ALIAS = "demo:latest-1234abcd", "demo:latest"


@pytest.fixture(autouse=True)
def settle_now(monkeypatch):
    # Files written by the test are seconds old at most: trust stats from the scan's time.
    monkeypatch.setattr(project_scan, "SETTLE_NS", 0)
    monkeypatch.setattr(project_scan, "FINE_SETTLE_NS", 0)


class FakeDocker:
    kind = "docker"

    def __init__(self) -> None:
        self.images: dict[str, EngineImage] = {}

    def image(self, ref: str) -> EngineImage | None:
        return self.images.get(ref)


@pytest.fixture
def docker(monkeypatch):
    fake = FakeDocker()
    monkeypatch.setattr("dlenv.engine.cli.unasked", lambda kind: fake)
    return fake


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "demo"
    (root / "src").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "dlenv.toml").write_text('name = "demo"\n')
    (root / "dlenv.lock").write_text("# a lock\n")
    (root / "train.py").write_text("print('train')\n")
    (root / "src/model.py").write_text("x = 1\n")
    (root / ".dlenvignore").write_text("data/\n")
    return root


def _options(tmp_path, **kw) -> BuildOptions:
    return BuildOptions(cache_dir=str(tmp_path / "cache"), **kw)


def _stored(cache_dir: str | None):
    """An image in the store under TAG: its manifest, config and layer descriptors."""
    store = default_store(cache_dir)
    layer = store.put_bytes(b"layer bytes", "application/vnd.oci.image.layer.v1.tar+gzip")
    cfg = store.put_bytes(b'{"config": {}}', MT_CONFIG)
    manifest = store.put_bytes(json.dumps({"config": cfg.to_json(),
                                           "layers": [layer.to_json()]}).encode(), MT_MANIFEST)
    store.tag(TAG, manifest)
    return manifest, cfg, layer


def _record(root: Path, options: BuildOptions, config: Config | None = None) -> str:
    """Store an image under TAG as a build would, and record the build; its manifest."""
    manifest, cfg, layer = _stored(options.cache_dir)
    before = inputs.start(root / "dlenv.toml", root / "dlenv.lock", SPEC_FILES)
    scanned = scan_project(root)
    result = {"digest": manifest.digest, "size": 100, "overlaps": [], "notes": [],
              "layers": [{"digest": layer.digest, "name": "project files", "reused": False}]}
    assert inputs.remember(before, options, config or load_config(root), tag=TAG,
                           alias=ALIAS, image_id=cfg.digest, digest=manifest.digest,
                           result=result,
                           scanned=scanned.stats, settled=scanned.settled,
                           warnings=["key.pem looks like a credential"])
    return manifest.digest


def test_the_same_build_again_answers_from_the_record_with_nothing_built(project, tmp_path):
    options = _options(tmp_path)
    digest = _record(project, options)
    hit = inputs.lookup(project, options, load_config(project))
    assert hit is not None and hit.tag == TAG and hit.alias == ALIAS
    assert hit.result["digest"] == digest
    assert all(layer["reused"] for layer in hit.result["layers"])  # this build built nothing
    assert hit.warnings == ("key.pem looks like a credential",)  # said again each time
    # The spec file named instead of its directory is the same build.
    assert inputs.lookup(project / "dlenv.toml", options, load_config(project)) is not None


def _edit(path: Path, text: str) -> None:
    path.write_text(text)


CHANGES = {
    "the spec": lambda root: _edit(root / "dlenv.toml", 'name = "demo"\npython = "3.11"\n'),
    "the lock": lambda root: _edit(root / "dlenv.lock", "# another lock\n"),
    "a project file": lambda root: _edit(root / "src/model.py", "x = 22\n"),
    "a new project file": lambda root: _edit(root / "src/extra.py", ""),
    "a project file removed": lambda root: (root / "train.py").unlink(),
    "an ignore file": lambda root: _edit(root / ".dlenvignore", "data/\n*.csv\n"),
    "a pyproject.toml beside the spec": lambda root: _edit(root / "pyproject.toml", "[x]\n"),
    "a new directory": lambda root: (root / "src/pkg").mkdir(),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_any_change_to_what_decides_the_image_runs_the_build(project, tmp_path, change):
    options = _options(tmp_path)
    _record(project, options)
    CHANGES[change](project)
    assert inputs.lookup(project, options, load_config(project)) is None


def test_what_the_image_never_gets_does_not_count(project, tmp_path):
    options = _options(tmp_path)
    _record(project, options)
    (project / "data/big.csv").write_text("1,2\n")  # an ignored directory
    (project / "data/more").mkdir()
    assert inputs.lookup(project, options, load_config(project)) is not None


def test_other_options_and_team_settings_are_other_builds(project, tmp_path):
    options = _options(tmp_path)
    config = load_config(project)
    _record(project, options, config)
    assert inputs.lookup(project, _options(tmp_path, profile="train"), config) is None
    assert inputs.lookup(project, _options(tmp_path, outputs=("oci:x",)), config) is None
    other = Config(settings={**config.settings,
                             "debian.suite": Setting("trixie", "dlenv-team.toml")},
                   files=config.files)
    assert inputs.lookup(project, options, other) is None
    assert inputs.lookup(project, options, config) is not None


def test_a_change_to_dlenv_itself_runs_the_build(project, tmp_path, monkeypatch):
    options = _options(tmp_path)
    _record(project, options)
    monkeypatch.setattr(inputs, "_CODE", [["image/builder.py", 1, 2]])
    assert inputs.lookup(project, options, load_config(project)) is None


def test_no_record_for_files_changed_within_the_settle_time_or_edited_while_building(
        project, tmp_path, monkeypatch):
    options = _options(tmp_path)
    config = load_config(project)
    monkeypatch.setattr(project_scan, "FINE_SETTLE_NS", 3_000_000_000)
    scanned = scan_project(project)  # the files were written a moment ago
    assert not scanned.settled
    monkeypatch.setattr(project_scan, "FINE_SETTLE_NS", 0)
    assert scan_project(project).settled
    before = inputs.start(project / "dlenv.toml", project / "dlenv.lock", SPEC_FILES)
    result = {"digest": "sha256:" + "0" * 64, "layers": [], "overlaps": [], "notes": []}
    kw = dict(tag=TAG, alias=None, image_id="sha256:" + "1" * 64, digest=result["digest"],
              result=result, warnings=[])
    assert not inputs.remember(before, options, config, scanned=scanned.stats,
                               settled=False, **kw)
    _edit(project / "dlenv.lock", "# re-locked while the build ran\n")
    assert not inputs.remember(before, options, config, scanned=None, settled=True, **kw)
    assert not (tmp_path / "cache" / inputs.RECORDS).exists()


def test_the_store_must_still_hold_the_image_intact(project, tmp_path):
    options = _options(tmp_path)
    digest = _record(project, options)
    store = default_store(options.cache_dir)
    layer = json.loads(store.blob_path(digest).read_bytes())["layers"][0]
    path = store.blob_path(layer["digest"])
    path.write_bytes(b"LAYER BYTES")  # same size, new mtime: its stamp no longer matches
    assert inputs.lookup(project, options, load_config(project)) is None
    assert not path.exists()  # the damaged blob is gone, so the build makes it again


def test_an_untagged_image_runs_the_build(project, tmp_path):
    options = _options(tmp_path)
    _record(project, options)
    default_store(options.cache_dir).untag({TAG})
    assert inputs.lookup(project, options, load_config(project)) is None


def test_a_load_needs_docker_to_hold_the_image_under_both_names(project, tmp_path, docker):
    options = _options(tmp_path, load=True)
    _record(project, options)
    store = default_store(options.cache_dir)
    image_id = store.read_json(store.resolve(TAG).digest)["config"]["digest"]
    config = load_config(project)
    assert inputs.lookup(project, options, config) is None  # Docker has nothing
    docker.images[TAG] = EngineImage(id=image_id, tags=(TAG,), size=1, labels={})
    assert inputs.lookup(project, options, config) is None  # the alias went elsewhere
    docker.images[TAG] = EngineImage(id=image_id, tags=(TAG, ALIAS), size=1, labels={})
    assert inputs.lookup(project, options, config) is not None
    docker.images[TAG] = EngineImage(id="sha256:" + "9" * 64, tags=(TAG, ALIAS), size=1,
                                     labels={})
    assert inputs.lookup(project, options, config) is None  # another image took the tag


def test_a_damaged_record_is_no_answer(project, tmp_path):
    options = _options(tmp_path)
    _record(project, options)
    for record in (tmp_path / "cache" / inputs.RECORDS).iterdir():
        record.write_text("{not json")
    assert inputs.lookup(project, options, load_config(project)) is None
    assert os.listdir(tmp_path / "cache" / inputs.RECORDS)  # left for the next build


def test_a_file_system_of_whole_seconds_needs_the_wide_margin():
    now = 1_800_000_000 * 10**9
    fine = [("a", 1, 1, now - 10**9 + 123, now - 10**9 + 456)]  # a second ago, ns stamps
    coarse = [("a", 1, 1, now - 10**9, now - 10**9)]  # a second ago, whole seconds
    margins = {"wide": 3 * 10**9, "fine": 50 * 10**6}
    assert project_scan.settled(fine, now, **margins)
    assert not project_scan.settled(coarse, now, **margins)
    assert project_scan.settled([("a", 1, 1, now - 4 * 10**9, now - 4 * 10**9)], now, **margins)
    assert project_scan.settled([("gone", -1, 0, 0, 0)], now, **margins)  # no ignore file


def test_a_run_answers_from_the_record_ready_image_left_while_nothing_changed(project,
                                                                            tmp_path):
    cache = str(tmp_path / "cache")
    manifest, cfg, _ = _stored(cache)
    config = load_config(project)
    before = inputs.start(project / "dlenv.toml", project / "dlenv.lock", SPEC_FILES)
    kw = {"profile": None, "cache_dir": cache}
    view = load_spec(project).run_view()
    assert inputs.remember_run(before, config, tag=TAG, alias=ALIAS, image_id=cfg.digest,
                               digest=manifest.digest, cuda=True, view=view, **kw)
    engine = FakeDocker()
    assert inputs.run_image(project / "dlenv.toml", config, engine, **kw) is None  # not loaded
    engine.images[TAG] = EngineImage(id=cfg.digest, tags=(TAG, ALIAS), size=1, labels={})
    assert inputs.run_image(project / "dlenv.toml", config, engine, **kw) == inputs.Current(
        tag=TAG, image_id=cfg.digest, cuda=True)
    # the spec's run view answers without a parse, for whichever profile the run picks
    assert inputs.run_view(project / "dlenv.toml", config, cache_dir=cache) == view
    # a build's record is not a run's, another profile is another image
    assert inputs.lookup(project, _options(tmp_path), config) is None
    assert inputs.run_image(project / "dlenv.toml", config, engine,
                            **{**kw, "profile": "train"}) is None
    # the project's files do not count (they are mounted); the lock does
    _edit(project / "train.py", "print('changed')\n")
    assert inputs.run_image(project / "dlenv.toml", config, engine, **kw) is not None
    _edit(project / "dlenv.lock", "# re-locked\n")
    assert inputs.run_image(project / "dlenv.toml", config, engine, **kw) is None
    assert inputs.run_view(project / "dlenv.toml", config, cache_dir=cache) is None


def test_a_damaged_run_view_record_is_a_miss_not_a_wrong_plan(project, tmp_path):
    cache = str(tmp_path / "cache")
    config = load_config(project)
    before = inputs.start(project / "dlenv.toml", project / "dlenv.lock", SPEC_FILES)
    manifest, cfg, _ = _stored(cache)
    assert inputs.remember_run(before, config, tag=TAG, alias=ALIAS, image_id=cfg.digest,
                               digest=manifest.digest, cuda=False, profile=None,
                               cache_dir=cache, view=load_spec(project).run_view())
    [slot] = [p for p in (tmp_path / "cache" / inputs.RECORDS).glob("*.json")
              if "view" in json.loads(p.read_text())]
    record = json.loads(slot.read_text())
    record["view"]["user"]["uid"] = "0"  # a string where the uid is a number
    slot.write_text(json.dumps(record))
    assert inputs.run_view(project / "dlenv.toml", config, cache_dir=cache) is None


def test_a_run_of_an_unchanged_project_asks_the_engine_only_for_its_image(project, tmp_path,
                                                                          monkeypatch):
    from dlenv.workflows import run as run_flow
    from dlenv.workflows.project import open_project

    cache = str(tmp_path / "cache")
    manifest, cfg, _ = _stored(cache)
    config = load_config(project)
    before = inputs.start(project / "dlenv.toml", project / "dlenv.lock", SPEC_FILES)
    assert inputs.remember_run(before, config, tag=TAG, alias=ALIAS, image_id=cfg.digest,
                               digest=manifest.digest, cuda=False, profile=None,
                               cache_dir=cache, view=load_spec(project).run_view())
    asked: list[str] = []

    class Held(FakeDocker):
        exe = "/usr/bin/docker"

        def image(self, ref):
            asked.append(ref)
            return super().image(ref)

        def image_id(self, ref):
            return cfg.digest if ref == cfg.digest else None

    engine = Held()
    engine.images[TAG] = EngineImage(id=cfg.digest, tags=(TAG, ALIAS), size=1, labels={})
    monkeypatch.setattr(run_flow, "unasked", lambda kind: engine if kind == "docker" else None)

    def no_info(choice=None):
        raise AssertionError("a run of an unchanged project asked the engine's info")

    monkeypatch.setattr(run_flow, "detect_soon", no_info)
    request = run_flow.RunRequest(command=("true",), cache_dir=cache, host_ca=False,
                                  volumes=False)
    opened = open_project(project, lazy=True)
    prepared = run_flow.prepare_run(opened, request)
    assert prepared.engine is engine and asked == [TAG]  # one question: the image, held
    assert opened.parsed == []  # planned from the records: the spec was never parsed
    assert prepared.view.name == "demo" and prepared.plan.name.startswith("dlenv-demo-run-")
    assert prepared.plan.image == cfg.digest
    args = prepared.plan.args(engine.kind)
    assert args[args.index("--pull") + 1] == "never" and args[-2:] == [cfg.digest, "true"]
