"""``upgrade``: try another framework version beside the project's lock before adopting it.

The candidate is the spec with one value changed (``framework``), written with its lock
under ``.dlenv/upgrade/`` (never in the image, never in place of the project's own). Both
images are built (the current one is reused when it is current), verified and put through
the spec's test command; the locks are compared. ``--apply`` replaces dlenv.toml and
dlenv.lock with the candidate's only when the verdict says it is ready."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from dlenv.audit.diff import Inventory, compare, lock_inventory
from dlenv.audit.upgrade import Side, SuiteRun, Upgrade, framework_of, judge
from dlenv.checks import FAIL, Check
from dlenv.engine import CONFINED, Engine, EngineKind, detect, gpu_args
from dlenv.errors import EngineError, UsageError
from dlenv.fsutil import write_atomic
from dlenv.image import plan_build
from dlenv.lock import LOCK_FILE, write_lock
from dlenv.oci.store import default_store
from dlenv.spec.edit import framework_value, with_framework
from dlenv.spec.parse import parse_spec_text
from dlenv.workflows.build import Ready, ready_image
from dlenv.workflows.check import gpus_here, verify_image
from dlenv.workflows.project import Project, fresh_lock, team_spec
from dlenv.workflows.report import Reporter, Silent

VARIANT = "upgrade"
FOLDER = Path(".dlenv") / VARIANT  # inside the project; .dlenv/ never goes into an image
TEST_TIMEOUT = 3600.0  # seconds a test command may run in one image


@dataclass(frozen=True, slots=True)
class UpgradeOptions:
    framework: str  # as --framework gives it: a requirement, a version or a specifier
    profile: str | None = None
    apply: bool = False
    engine: EngineKind = "docker"
    allow_cpu: bool = False
    cache_dir: str | None = None


def candidate_project(project: Project, framework: str) -> tuple[Project, str]:
    """The candidate beside ``project`` and the text of its spec (validated like any spec:
    a bad --framework is a spec error naming the key)."""
    value = framework_value(framework, project.spec.framework)
    text = with_framework(project.file.read_text(encoding="utf-8"), project.file, value)
    spec = team_spec(parse_spec_text(text, project.file), project.config)
    if spec.digest() == project.spec.digest():
        raise UsageError(f"{project.file} already asks for framework = {value!r}",
                         fix="name another version, e.g. --framework 2.16")
    folder = project.directory / FOLDER
    return replace(project, parsed=[spec], variant=VARIANT, lock_file=folder / LOCK_FILE), text


def _test(engine: Engine, tag: str, command: tuple[str, ...], gpus: bool) -> SuiteRun:
    """The test command in a fresh container of ``tag``, confined as `dlenv run` does it,
    in the image's workdir (which holds the project's files)."""
    start = time.perf_counter()
    code, stdout, stderr = engine.run_captured(
        ["--rm", *CONFINED, *(gpu_args(engine.kind) if gpus else []), tag, *command],
        timeout=TEST_TIMEOUT)
    lines = (stdout + stderr).strip().splitlines()
    return SuiteRun(command=command, code=code, seconds=round(time.perf_counter() - start, 2),
                   tail="\n".join(lines[-15:]))


def _side(label: str, project: Project, ready: Ready, options: UpgradeOptions,
          engine: Engine, gpus: bool, report: Reporter) -> Side:
    try:
        verified = verify_image(project, profile=options.profile, image=ready.tag,
                                engine=options.engine, allow_cpu=options.allow_cpu,
                                cache_dir=options.cache_dir, reporter=report)
        checks, seen = verified.checks, verified.details["seen"]
    except EngineError as exc:  # the image's Python did not start: that is the verdict
        checks, seen = (Check("probe", FAIL, "the probe did not run", exc.message),), {}
    command = project.spec.test_command(options.profile)
    test = None
    if command:
        report.step(f"testing {ready.tag}: {' '.join(command)}")
        test = _test(engine, ready.tag, command, gpus)
    layers = default_store(options.cache_dir).read_json(ready.manifest.digest)["layers"]
    found = engine.image(ready.tag)
    return Side(label=label, framework=framework_of(ready.lock), python=ready.lock.target.python,
                tag=ready.tag, digest=ready.manifest.digest, size=found.size if found else 0,
                compressed=sum(int(x["size"]) for x in layers), checks=checks,
                import_seconds=(seen.get("framework") or {}).get("import_seconds"), test=test)


def _inventory(label: str, project: Project, ready: Ready, profile: str | None,
               cache_dir: str | None) -> Inventory:
    """A side of the diff: the lock's packages, with the built image's layers."""
    store = default_store(cache_dir)
    manifest = store.read_json(ready.manifest.digest)
    diff_ids = store.read_json(manifest["config"]["digest"])["rootfs"]["diff_ids"]
    env = plan_build(project.spec, ready.lock, profile=profile).config.env
    inventory = lock_inventory(ready.lock, label, profile=profile, env=env, kind="project")
    return replace(inventory, image_digest=ready.manifest.digest, layers=tuple(
        zip(diff_ids, (int(x["size"]) for x in manifest["layers"]), strict=True)))


def _value(project: Project) -> str:
    """The spec's framework value (``tensorflow==2.16.*``)."""
    framework = project.spec.framework
    return f"{framework.name}{framework.specifier}" if framework else ""


def upgrade(project: Project, options: UpgradeOptions,
            reporter: Reporter | None = None) -> Upgrade:
    report = reporter or Silent()
    candidate, text = candidate_project(project, options.framework)
    folder = project.directory / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    spec_copy = folder / project.file.name
    write_atomic(spec_copy, text.encode())  # to read, and what --apply puts in place
    engine = detect(options.engine)
    # packed: the sizes and digests compared are those a registry would get
    current_ready = ready_image(project, profile=options.profile, engine=engine,
                                cache_dir=options.cache_dir, reporter=report, packed=True)
    report.step(f"locking the candidate ({_value(candidate)})")
    candidate_lock = fresh_lock(candidate, cache_dir=options.cache_dir, reporter=report)
    candidate_ready = ready_image(candidate, profile=options.profile, engine=engine,
                                  cache_dir=options.cache_dir, reporter=report, packed=True)
    gpus = bool(current_ready.lock.target.cuda) and not options.allow_cpu and gpus_here()
    current = _side("current", project, current_ready, options, engine, gpus, report)
    tried = _side("candidate", candidate, candidate_ready, options, engine, gpus, report)
    changes = compare(
        _inventory("current", project, current_ready, options.profile, options.cache_dir),
        _inventory("candidate", candidate, candidate_ready, options.profile, options.cache_dir))
    verdict = judge(current, tried)
    applied = False
    if options.apply and verdict.ready:
        # The lock first: a crash between the two leaves a lock the spec calls stale, which
        # every verb notices (and re-locks), never a spec that silently uses the old lock.
        write_lock(project.lock_path, candidate_lock)
        write_atomic(project.file, text.encode())
        applied = True
    return Upgrade(
        spec_file=str(project.file), before=_value(project), after=_value(candidate),
        candidate_spec=str(spec_copy), candidate_lock=str(candidate.lock_path),
        changes=changes, current=current, candidate=tried, verdict=verdict, applied=applied)
