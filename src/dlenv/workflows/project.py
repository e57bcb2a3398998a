"""The project verbs: ``init`` a spec, ``resolve`` its target, ``lock`` it, and the lock every
other verb starts from (made or remade when missing or stale, never silently when damaged)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from dlenv.config import Config, load_config
from dlenv.errors import BuildError, ConfigError, LockError, SpecError, StaleLockError, UsageError
from dlenv.fsutil import inside, write_atomic
from dlenv.lock import LOCK_FILE
from dlenv.spec import SPEC_FILE, find_spec_file
from dlenv.workflows.report import Reporter, Silent
from dlenv.workflows.team import published_config

if TYPE_CHECKING:  # the importers load only for 'dlenv init --from' (start-up stays short)
    from dlenv.audit.importing import Imported
    from dlenv.image.project import ProjectFile, Scanned
    from dlenv.lock import Lock
    from dlenv.resolve import Target
    from dlenv.spec import Spec

# The spec's parser, the lock's reader, the resolver and the project scan load in the verbs
# that use them: a run whose image is current (``workflows.inputs``) opens the project and
# plans its container without them.


@dataclass(frozen=True, slots=True)
class Project:
    """A spec file and the team configuration that applies there; the lock sits beside
    it. The spec is parsed at the first use of ``spec`` (``open_project(lazy=True)``: a run
    whose record answers plans its container from the record and never parses it). A
    ``variant`` (the candidate of ``dlenv upgrade``) keeps its lock elsewhere and tags its
    images apart, so that the project's own lock and images stay as they are."""

    file: Path
    config: Config = field(default_factory=Config.defaults, compare=False)  # the team's
    variant: str = ""  # "": the project itself
    lock_file: Path | None = None  # a variant's lock (None: dlenv.lock beside the spec)
    parsed: list[Spec] = field(default_factory=list, compare=False, repr=False)  # 0 or 1

    @classmethod
    def of(cls, spec: Spec, file: Path, config: Config | None = None) -> Project:
        """The project of a spec parsed already."""
        return cls(file, config or Config.defaults(), parsed=[spec])

    @property
    def spec(self) -> Spec:
        """The spec as the team's configuration makes it, parsed once."""
        if not self.parsed:
            from dlenv.spec import load_spec

            self.parsed.append(team_spec(load_spec(self.file), self.config))
        return self.parsed[0]

    @property
    def directory(self) -> Path:
        return self.file.parent

    @property
    def lock_path(self) -> Path:
        return self.lock_file or self.file.parent / LOCK_FILE


def open_project(directory: Path | str, *, lazy: bool = False) -> Project:
    """The project in ``directory`` (dlenv.toml, else pyproject.toml's [tool.dlenv]), with
    the team configuration that applies there: a spec that names no base gets the team's
    Debian suite (``debian.suite``), which then counts in the spec's digest. The spec is
    parsed now (its errors raised here), or with ``lazy`` at its first use."""
    file = find_spec_file(Path(directory))
    project = Project(file, load_config(file.parent, fetch=published_config))
    if not lazy:
        project.spec  # noqa: B018 (parsed now: a bad spec fails before any work)
    return project


def team_spec(spec: Spec, config: Config) -> Spec:
    """``spec`` as the team's configuration makes it (the Debian suite of a spec that names
    no base)."""
    from dlenv.spec import SUITES, Base

    suite = config["debian.suite"]
    if suite and spec.base == Base(kind="debian"):
        if suite not in SUITES:
            raise ConfigError(f"debian.suite = {suite!r} ({config.settings['debian.suite'].source})"
                              f" is not one of {', '.join(SUITES)}",
                              fix="name a suite dlenv supports, or remove the key")
        spec = replace(spec, base=Base(kind="debian", suite=suite))
    return spec


def init_project(directory: Path, *, framework: str | None = None, gpu: bool = False,
                 python: str | None = None, packages: tuple[str, ...] = (),
                 force: bool = False, source: Path | None = None) -> tuple[Path, tuple[str, ...]]:
    """Write a commented starter spec in ``directory``, filled from ``source`` (a
    requirements.txt, environment.yml, pyproject.toml or Dockerfile) when given; the options
    win over what the file says. Its path, and what the file held that has no translation."""
    from dlenv.spec import load_spec
    from dlenv.spec.starter import render_starter

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / SPEC_FILE
    if path.exists() and not force:
        raise UsageError(f"{path} exists", fix="pass --force to overwrite it")
    from dlenv.audit.importing import spec_name

    found = read_source(source) if source is not None else None
    if found is not None and found.python and not python:
        from dlenv.compat import load_matrix

        matrix = load_matrix()
        if matrix.suite_for_python(found.python) is None:
            have = ", ".join(f"{s.name} {s.python}" for s in matrix.suites)
            found = replace(found, python=None, notes=(*found.notes, (
                f"python {found.python}: no Debian suite has it ({have}); dlenv picks the "
                "newest the framework supports (or base = \"python:"
                f"{found.python}-slim\" from a registry keeps it)")))
    fallback = "".join(c if c.isalnum() or c in "._-" else "-"
                       for c in directory.resolve().name.lower()) or "env"
    accelerator = "cuda" if gpu else found.accelerator if found else "cpu"
    header: tuple[str, ...] = ()
    if found is not None and source is not None:
        header = (f"Made by 'dlenv init --from {source.name}'. Not translated:",
                  *(f"  {note}" for note in found.notes)) if found.notes else (
                  f"Made by 'dlenv init --from {source.name}'.",)
    text = render_starter(
        spec_name(found.name if found else None, fallback) if found else fallback,
        framework=framework or (found.framework if found else None), accelerator=accelerator,
        python=python or (found.python if found else None),
        packages=[*(found.packages if found else ()), *packages],
        apt=found.apt if found else (), workdir=found.workdir if found else None,
        env=found.env if found and found.env else (("PYTHONDONTWRITEBYTECODE", "1"),),
        header=header)
    write_atomic(path, text.encode())
    try:
        load_spec(path)  # a starter that does not parse is a bug or a bad --framework
    except SpecError:
        path.unlink()
        raise
    return path, found.notes if found else ()


def read_source(source: Path) -> Imported:
    """What ``source`` says about an environment (``dlenv init --from``)."""
    import tomllib

    import yaml

    from dlenv.audit.importing import (
        from_conda,
        from_dockerfile,
        from_pyproject,
        from_requirements,
        kind_of,
    )

    kind = kind_of(PurePosixPath(source.name))
    if kind is None:
        raise UsageError(f"{source}: cannot tell what this file is",
                         fix="name a requirements*.txt, environment.yml, pyproject.toml or "
                             "Dockerfile")
    if not source.is_file() or source.stat().st_size > 1 << 20:
        raise UsageError(f"{source}: not a file of at most 1 MiB", fix="name the file itself")
    text = source.read_text(encoding="utf-8", errors="replace")
    where = source.name
    try:
        if kind == "conda":
            return from_conda(yaml.safe_load(text), where)
        if kind == "pyproject":
            return from_pyproject(tomllib.loads(text), where)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{source}: cannot be read ({str(exc).splitlines()[0]})",
                         fix="fix the file's syntax") from None
    if kind == "requirements":
        return from_requirements(text, where)

    def beside(name: str) -> str | None:
        """A file the Dockerfile names (pip -r), only from the Dockerfile's own directory."""
        try:
            found = inside(source.parent, name, follow_last=True)
        except BuildError:
            return None
        if not found.is_file() or found.stat().st_size > 1 << 20:
            return None
        return found.read_text(encoding="utf-8", errors="replace")

    return from_dockerfile(text, where, beside)


def resolve_project(project: Project) -> Target:
    """The target: from the lock's recorded choice when the lock is fresh (the packages may
    have chosen a framework line or a Python), else what the spec alone resolves to."""
    from dlenv.resolve import resolve_target
    from dlenv.resolve.locking import load_lock, target_of

    try:
        return target_of(project.spec, load_lock(project.spec, project.lock_path))
    except LockError:
        return resolve_target(project.spec)


def lock(project: Project, *, cache_dir: str | None = None,
         reporter: Reporter | None = None, why: str = "") -> Lock:
    """Resolve and pin everything; write ``dlenv.lock`` (atomically)."""
    from dlenv.lock import write_lock
    from dlenv.resolve.locking import lock_project
    from dlenv.resolve.policy import check_policy

    (reporter or Silent()).step(f"locking {project.spec.name}{why}")
    made = lock_project(project.spec, cache_dir=cache_dir)
    check_policy(project.config, project.spec, made)  # a refused lock is not written
    write_lock(project.lock_path, made)
    return made


@dataclass(frozen=True, slots=True)
class Moved:
    """A .deb that ``update_base`` changed: ``before`` "" when new, ``after`` "" when gone."""

    name: str
    before: str
    after: str
    suite: str  # where the new version comes from ("" the base suite)


@dataclass(frozen=True, slots=True)
class BaseUpdate:
    lock: Lock
    moved: tuple[Moved, ...]


def update_base(project: Project, *, cache_dir: str | None = None,
                reporter: Reporter | None = None) -> BaseUpdate:
    """Take every .deb of the current lock again from the newest of the suite, its stable
    updates and its security updates; the wheels, the date and so every Python layer stay
    as they are. The lock is rewritten only when something moved."""
    from dlenv.lock import write_lock
    from dlenv.resolve.debian import lock_debs
    from dlenv.resolve.locking import load_lock
    from dlenv.resolve.policy import check_policy

    current = load_lock(project.spec, project.lock_path)  # stale or damaged: say so first
    if current.base.kind != "debian":
        raise UsageError(f"{project.lock_path}: the base is the image {current.base.ref}, "
                         "not Debian packages dlenv locks",
                         fix="lock a newer image with 'dlenv lock' after changing spec.base")
    (reporter or Silent()).step(f"reading Debian {current.base.suite}, -updates and -security")
    updated = lock_debs(current, project.spec, cache_dir=cache_dir)
    check_policy(project.config, project.spec, updated)
    old = {d.name: d for d in current.debs}
    new = {d.name: d for d in updated.debs}
    moved = tuple(
        Moved(name, old[name].version if name in old else "",
              new[name].version if name in new else "", new[name].suite if name in new else "")
        for name in sorted(old.keys() | new.keys())
        if name not in old or name not in new or old[name].version != new[name].version)
    if updated.debs != current.debs:
        write_lock(project.lock_path, updated)
    return BaseUpdate(lock=updated, moved=moved)


def check_lock_file(project: Project) -> Lock:
    """The project's lock, when it is there, fresh and matches the spec (else LockError)."""
    from dlenv.resolve.locking import load_lock

    return load_lock(project.spec, project.lock_path)


def fresh_lock(project: Project, *, cache_dir: str | None = None, frozen: bool = False,
               reporter: Reporter | None = None) -> Lock:
    """The project's lock; made or remade first when missing or stale (unless ``frozen``).
    A lock that is damaged or does not match the spec is never overwritten silently."""
    from dlenv.lock import read_lock
    from dlenv.resolve.locking import load_lock
    from dlenv.resolve.policy import check_policy

    path = project.lock_path
    try:
        if path.exists() or frozen:
            found = load_lock(project.spec, path) if path.exists() else read_lock(path)
            check_policy(project.config, project.spec, found)
            return found
    except StaleLockError:
        if frozen:
            raise
    return lock(project, cache_dir=cache_dir, reporter=reporter,
                why=" (the lock was missing or stale)")


def project_files(project: Project, reporter: Reporter | None = None, *,
                  profile: str | None = None) -> tuple[ProjectFile, ...]:
    """The project's files for an image of ``profile`` (see ``scan_files``)."""
    return scan_files(project, reporter, profile=profile)[0].files


def scan_files(project: Project, reporter: Reporter | None = None, *,
               profile: str | None = None) -> tuple[Scanned, tuple[str, ...]]:
    """The project's files for an image of ``profile``, and the warnings given: of any that
    look like credentials, and of a served model missing. A model the profile serves from
    the project is checked here, before it is baked into the image (its version directories
    become layers of their own)."""
    from dlenv.image.model import model_versions
    from dlenv.image.project import credential_like, scan_project

    report = reporter or Silent()
    scanned = scan_project(project.directory)
    files = scanned.files
    warnings = [
        f"{path} looks like a credential and goes into the image (an ignore file "
        "re-includes it); remove the '!' line from .dlenvignore/.dockerignore unless the "
        "image must carry it" for path in credential_like(files)]
    for line in warnings:
        report.warn(line)
    chosen = project.spec.profile(profile) if profile else None
    model = chosen.serving.path if chosen and chosen.serving else None
    if model is not None:
        if any(f.path.startswith(model + "/") for f in files):
            model_versions(project.directory / model)
        else:
            warnings.append(f"{model} is not in the project's files (missing, or left out by "
                            "an ignore file), so the image holds no model: mount one at run "
                            "time ('dlenv serve --model DIR')")
            report.warn(warnings[-1])
    return scanned, tuple(warnings)
