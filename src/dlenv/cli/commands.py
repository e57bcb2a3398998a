"""The commands: each turns parsed arguments into one workflow call and renders the result.
Every decision lives in ``dlenv.workflows`` and below. The project workflows are imported
here; the others (run, checks, eject, registry, gc) where their command runs, since importing
them all costs every start of ``dlenv`` a tenth of a second. ``build`` has a module of its
own (``cli/build.py``): an unchanged build answers before any of them is imported."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from dlenv.cli.render import ConsoleReporter, checks, emit_json, err, out
from dlenv.compat import FRAMEWORKS, load_matrix
from dlenv.workflows import project as project_flow
from dlenv.workflows.project import open_project


def cmd_init(args: argparse.Namespace) -> int:
    path, notes = project_flow.init_project(
        Path(args.dir), framework=args.framework, gpu=args.gpu, python=args.python,
        packages=tuple(args.package), force=args.force,
        source=Path(args.source) if args.source else None)
    out.print(f"wrote {path}")
    if notes:
        err.print(f"[yellow]not translated[/] from {escape(args.source)} (also at the top of "
                  f"{escape(path.name)}):")
        for note in notes:
            err.print(f"  {escape(note)}")
    if args.source:
        out.print(f"next: 'dlenv lock {escape(args.dir)}' pins it")
    return 0


def cmd_matrix(args: argparse.Namespace) -> int:
    matrix = load_matrix()
    names = ["pytorch"] if args.framework == "torch" else \
        [args.framework] if args.framework else list(FRAMEWORKS)
    if args.json:
        emit_json({
            "updated": matrix.updated, "sources": matrix.sources,
            "min_driver": matrix.driver_floor,
            "frameworks": {n: [{
                "line": r.line, "python": [r.python_min, r.python_max], "manylinux": r.manylinux,
                "cuda": [{"cuda": o.cuda, "cudnn": o.cudnn, "source": o.source, "extra": o.extra,
                          "min_driver": matrix.min_driver(o.cuda),
                          "gpu_archs": list(matrix.gpu_archs(o.cuda, o.min_sm))}
                         for o in r.cuda_options],
            } for r in matrix.lines(n)] for n in names},
        })
        return 0
    for n in names:
        table = Table(title=f"{n} (matrix of {matrix.updated})")
        for col in ("release", "python", "CUDA (cuDNN) · how", "min driver", "wheels"):
            table.add_column(col)
        for r in matrix.lines(n):
            cuda = "; ".join(f"{o.cuda} ({o.cudnn}) · {o.source}" + (f"[{o.extra}]" if o.extra
                                                                       else "")
                             for o in r.cuda_options)
            drivers = ", ".join(sorted({matrix.min_driver(o.cuda) for o in r.cuda_options}))
            table.add_row(r.line, f"{r.python_min}–{r.python_max}", cuda, drivers, r.manylinux)
        out.print(table)
    return 0


def cmd_resolve(args: argparse.Namespace) -> int:
    project = open_project(args.dir)
    target = project_flow.resolve_project(project)
    if args.json:
        data = target.to_dict()
        data["decisions"] = [{"key": d.key, "value": d.value, "reason": d.reason}
                             for d in target.decisions]
        emit_json(data)
        return 0
    table = Table(title=f"{project.spec.name}: resolved target")
    for col in ("decision", "value", "why"):
        table.add_column(col)
    for d in target.decisions:
        table.add_row(d.key, d.value, d.reason)
    out.print(table)
    return 0


def cmd_lock(args: argparse.Namespace) -> int:
    project = open_project(args.dir)
    if args.check:
        project_flow.check_lock_file(project)
        out.print(f"{project.lock_path} is up to date")
        return 0
    if args.update_base:
        return _update_base(project, args)
    with ConsoleReporter(quiet=args.json) as reporter:
        lock = project_flow.lock(project, cache_dir=args.cache_dir, reporter=reporter)
    if args.requirements:
        Path(args.requirements).write_text(lock.requirements_txt(args.profile))
    total = sum(w.size for w in lock.wheels)
    if args.json:
        emit_json({"lock": str(project.lock_path), "spec_digest": lock.spec_digest,
                   "wheels": len(lock.wheels), "debs": len(lock.debs),
                   "wheel_bytes": total, "target": lock.target.to_dict()})
    else:
        out.print(f"locked {len(lock.wheels)} wheels ({total / 1e6:,.1f} MB) and "
                  f"{len(lock.debs)} .debs for Python {lock.target.python} on "
                  f"{lock.target.base}: {project.lock_path}", soft_wrap=True)
    return 0


def _update_base(project: project_flow.Project, args: argparse.Namespace) -> int:
    with ConsoleReporter(quiet=args.json) as reporter:
        update = project_flow.update_base(project, cache_dir=args.cache_dir, reporter=reporter)
    if args.json:
        emit_json({"lock": str(project.lock_path), "moved": [
            {"name": m.name, "before": m.before, "after": m.after, "suite": m.suite}
            for m in update.moved]})
        return 0
    if not update.moved:
        out.print(f"the {len(update.lock.debs)} .debs are the newest of Debian "
                  f"{update.lock.base.suite}, -updates and -security: nothing moved")
        return 0
    table = Table(title=f"{len(update.moved)} of {len(update.lock.debs)} .debs moved")
    for col in ("package", "locked", "now", "from"):
        table.add_column(col)
    for m in update.moved:
        table.add_row(m.name, m.before or "-", m.after or "(gone)", m.suite or
                      str(update.lock.base.suite))
    out.print(table)
    out.print(f"{project.lock_path}: the wheels and every Python layer stay as they were; "
              "'dlenv build' rebuilds the base layer", soft_wrap=True)
    return 0


def cmd_dockerfile(args: argparse.Namespace) -> int:
    from dlenv.workflows import eject as eject_flow

    project = open_project(args.dir)
    with ConsoleReporter(quiet=args.json or args.stdout) as reporter:
        lock = project_flow.fresh_lock(project, cache_dir=args.cache_dir, frozen=args.frozen,
                                       reporter=reporter)
        if args.stdout:
            portable = eject_flow.portable_base(project, lock, args.base, args.cache_dir) \
                if args.mode == "portable" else None
            rendered = eject_flow.render(project, lock, reporter, portable)
        else:
            ejected = eject_flow.eject(project, lock,
                                       output=Path(args.output) if args.output else None,
                                       mode=args.mode, base=args.base,
                                       cache_dir=args.cache_dir, reporter=reporter)
    if args.stdout:
        sys.stdout.write(rendered.dockerfile)
        return 0
    if args.json:
        emit_json({"dockerfile": str(ejected.dockerfile), "mode": ejected.rendered.mode,
                   "targets": list(ejected.rendered.targets),
                   "written": [str(p) for p in ejected.written]})
        return 0
    context = "the requirement files it installs" if ejected.rendered.mode == "portable" \
        else f"its context in {project.directory / '.dlenv'}"
    out.print(f"wrote {ejected.dockerfile} ({ejected.rendered.mode} mode; targets: "
              f"{', '.join(ejected.rendered.targets)}) and {context}\nbuild it: "
              f"DOCKER_BUILDKIT=1 docker build --secret id=ca,src=/etc/ssl/certs/"
              f"ca-certificates.crt --target runtime -t {project.spec.name} "
              f"{project.directory}", soft_wrap=True)
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from dlenv.workflows import check as check_flow

    project = open_project(args.dir) if args.dir is not None else None
    report = check_flow.doctor(project, facts_file=Path(args.facts) if args.facts else None,
                               cache_dir=args.cache_dir, network=not args.no_network)
    return checks(report, args.json)


def cmd_verify(args: argparse.Namespace) -> int:
    from dlenv.workflows import check as check_flow

    if args.host:
        project = open_project(args.dir) if args.dir is not None else None
        report = check_flow.verify_host(project, profile=args.profile,
                                        framework=args.framework, expect_gpu=args.gpu)
    else:
        with ConsoleReporter(quiet=args.json) as reporter:
            report = check_flow.verify_image(
                open_project(args.dir or "."), profile=args.profile, image=args.image,
                engine=args.engine, allow_cpu=args.allow_cpu, frozen=args.frozen,
                cache_dir=args.cache_dir, reporter=reporter)
    return checks(report, args.json)


def cmd_lint(args: argparse.Namespace) -> int:
    from dlenv.lint import SEVERITIES, to_sarif
    from dlenv.workflows import check as check_flow

    paths = tuple(Path(p) for p in args.paths) or (Path("Dockerfile"),)
    report = check_flow.lint(paths, threshold=args.failure_threshold,
                             hadolint=not args.no_hadolint,
                             context=Path(args.context) if args.context else None)
    if args.format == "json":
        emit_json({"findings": [f.to_json() for f in report.findings],
                   "hadolint": report.hadolint, "failed": bool(report.failing)})
    elif args.format == "sarif":
        emit_json(to_sarif(report.findings))
    else:
        colour = {"error": "red", "warning": "yellow", "info": "cyan", "style": "dim"}
        for f in report.findings:
            out.print(f"{escape(f.file)}:{f.line}: [{colour[f.severity]}]{f.severity}[/] "
                      f"{f.rule} {escape(f.message)}" + (f"\n    fix: {escape(f.fix)}"
                                                           if f.fix else ""), soft_wrap=True)
        counts = {s: sum(f.severity == s for f in report.findings) for s in SEVERITIES}
        out.print(f"{report.files} file(s): " + ", ".join(f"{n} {s}" for s, n in counts.items())
                  + ("" if report.hadolint else " (dlenv rules only: --no-hadolint)"
                     if args.no_hadolint else " (hadolint not installed: dlenv rules only)"))
    return 1 if report.failing else 0


def cmd_gc(args: argparse.Namespace) -> int:
    from dlenv.workflows import gc as gc_flow

    collected = gc_flow.gc(cache_dir=args.cache_dir, engine_kind=args.engine,
                           use_engine=not args.no_engine, downloads=args.downloads,
                           dry_run=args.dry_run)
    if args.json:
        emit_json({"dry_run": collected.dry_run, "bytes": collected.size,
                   "engine": collected.engine, "freed": [f.to_json() for f in collected.freed]})
        return 0
    kinds: dict[str, list[int]] = {}
    for f in collected.freed:
        kinds.setdefault(f.kind, []).append(f.size)
    table = Table(title="would free" if collected.dry_run else "freed")
    for col in ("what", "count", "size"):
        table.add_column(col)
    for kind, sizes in kinds.items():
        table.add_row(kind, str(len(sizes)), f"{sum(sizes) / 1e6:,.1f} MB")
    out.print(table)
    verb = "would free" if collected.dry_run else "freed"
    engine = f"; {collected.engine} images looked at" if collected.engine else \
        "; no engine answered, its images were not looked at"
    out.print(f"{verb} {collected.size / 1e6:,.1f} MB in {len(collected.freed)} item(s){engine}"
              + ("" if args.downloads else " (downloads kept: --downloads removes them)"),
              soft_wrap=True)
    return 0
