"""``doctor``, ``verify`` and ``lint``: checks of the host, of a built environment and of
Dockerfiles and compose files, returned as reports for the CLI to render."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from dlenv.cache import default_cache_dir
from dlenv.checks import Check, Status, worst
from dlenv.doctor import (
    HostFacts,
    Needs,
    diagnose,
    gather,
    needs_from_target,
    parse_gpus,
    query_gpus,
    reach,
)
from dlenv.engine import EngineKind, detect
from dlenv.errors import DlenvError, LockError
from dlenv.lint import (
    SEVERITIES,
    Finding,
    Severity,
    at_or_above,
    hadolint_binary,
    lint_path,
    run_hadolint,
)
from dlenv.resolve import resolve_target
from dlenv.resolve.locking import spec_requirements
from dlenv.verify import Request, evaluate, probe_host, probe_image, request_for
from dlenv.workflows.build import ready_image
from dlenv.workflows.project import Project, check_lock_file, fresh_lock
from dlenv.workflows.report import Reporter


@dataclass(frozen=True, slots=True)
class CheckReport:
    title: str
    checks: tuple[Check, ...]
    details: dict[str, Any]  # the facts or observations the checks were made from

    @property
    def status(self) -> Status:
        return worst(self.checks)


def needs_of(project: Project) -> Needs:
    """What the project's environment needs of a host, from its lock (or, without a fresh
    one, from the spec: it decides the same target)."""
    try:
        target = check_lock_file(project).target
    except LockError:
        target = resolve_target(project.spec).locked()
    return needs_from_target(project.spec.name, target)


def doctor(project: Project | None = None, *, facts_file: Path | None = None,
           cache_dir: str | None = None, network: bool = True) -> CheckReport:
    """This host's checks; with a project, also whether its environment can run here;
    with ``network``, whether the index, the Debian mirrors and the registry answer through
    the configured path. ``facts_file`` replays recorded host facts instead."""
    if facts_file is not None:
        facts = HostFacts.from_json(json.loads(facts_file.read_text()))
    else:
        facts = gather(default_cache_dir(cache_dir))
        if network:
            facts = replace(facts, reached=reach(os.environ, facts.ca_bundle))
    checks = diagnose(facts, needs_of(project) if project else None)
    return CheckReport("dlenv doctor", tuple(checks), {"facts": facts.to_json()})


Framework = Literal["tensorflow", "torch", "jax"]


def verify_host(project: Project | None = None, *, profile: str | None = None,
                framework: Framework | None = None, expect_gpu: bool = False) -> CheckReport:
    """Run the probe in this Python environment (no container)."""
    request = Request(framework=framework, packages=())
    if project is not None:
        request = request_for(check_lock_file(project), profile)
        if framework:
            request = replace(request, framework=framework)
    seen = probe_host(request)
    checks = evaluate(seen, expect_gpu=expect_gpu, in_image=False)
    return CheckReport(f"dlenv verify --host ({seen.get('executable')})", tuple(checks),
                       {"seen": seen})


def gpus_here() -> bool:
    """Whether nvidia-smi lists a GPU on this machine (containers are then given them)."""
    rc, smi, _ = query_gpus()
    return rc == 0 and bool(parse_gpus(smi))


def verify_image(project: Project, *, profile: str | None = None, image: str | None = None,
                 engine: EngineKind = "docker", allow_cpu: bool = False, frozen: bool = False,
                 cache_dir: str | None = None, reporter: Reporter | None = None
                 ) -> CheckReport:
    """Run the probe in a fresh container of the project's image (locked, built and loaded
    as needed, like every verb) or of ``image``: the framework, the devices, a matmul, a
    training step, XLA, TFLite, the locked packages, and one predict through the model
    server of a serve image that holds its model."""
    spec = project.spec
    chosen = detect(engine)
    if image is None:
        ready = ready_image(project, profile=profile, engine=chosen, frozen=frozen,
                            cache_dir=cache_dir, reporter=reporter)
        lock, image = ready.lock, ready.tag
    else:
        lock = fresh_lock(project, cache_dir=cache_dir, frozen=frozen, reporter=reporter)
    chosen_profile = spec.profile(profile) if profile else None
    serving = chosen_profile.serving if chosen_profile else None
    request = request_for(lock, profile, (spec.workdir,), spec_requirements(spec),
                          serve=serving.name if serving else None)
    expect_gpu = bool(lock.target.cuda) and not allow_cpu
    gpus = expect_gpu and gpus_here()
    if reporter is not None:
        reporter.step(f"verifying {image}")
    seen = probe_image(image, request, engine=chosen, gpus=gpus, workdir=spec.workdir)
    checks = evaluate(seen, expect_gpu=expect_gpu, in_image=True)
    return CheckReport(f"dlenv verify {image}", tuple(checks), {"seen": seen})


@dataclass(frozen=True, slots=True)
class LintReport:
    files: int
    findings: tuple[Finding, ...]
    failing: tuple[Finding, ...]  # at or above the threshold
    hadolint: bool  # whether hadolint's rules ran too


def lint(paths: tuple[Path, ...], *, threshold: Severity | Literal["none"] = "warning",
         hadolint: bool = True, context: Path | None = None) -> LintReport:
    """dlenv's rules (and hadolint's, when installed) over Dockerfiles and compose files."""
    binary = hadolint_binary() if hadolint else None
    if context is not None and not context.is_dir():
        raise DlenvError(f"{context}: no such directory", fix="name the build context "
                         "(the directory docker build is given)")
    findings: list[Finding] = []
    for path in paths:
        if not path.is_file():
            raise DlenvError(f"{path}: no such file", fix="name a Dockerfile or compose file")
        findings += lint_path(path, context)
        if binary and path.suffix not in (".yml", ".yaml"):
            findings += run_hadolint(path, binary)
    findings.sort(key=lambda f: (f.file, f.line, SEVERITIES.index(f.severity), f.rule))
    return LintReport(files=len(paths), findings=tuple(findings),
                      failing=tuple(at_or_above(findings, threshold)), hadolint=bool(binary))
