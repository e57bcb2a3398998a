"""``dlenv sbom``: what an image holds, as a CycloneDX or SPDX document; ``dlenv export``:
the lock's Python packages for other tools; ``dlenv diff``: two environments compared."""

from __future__ import annotations

import argparse
import sys

from dlenv.cli.render import ConsoleReporter, diff_table, emit_json, err, out, scan_table
from dlenv.workflows.project import open_project


def cmd_sbom(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dlenv.spec import IMAGE_RE
    from dlenv.workflows import audit

    if not Path(args.dir).exists() and IMAGE_RE.fullmatch(args.dir) and "/" in args.dir:
        with ConsoleReporter() as reporter:  # a registry reference: the SBOM pushed with it
            fetched = audit.fetch_sbom(args.dir, args.format, output=args.output,
                                       reporter=reporter)
        if fetched.written is None:
            sys.stdout.write(fetched.text.rstrip("\n") + "\n")
        else:
            out.print(f"wrote {fetched.written}: the {args.format} SBOM {fetched.artifact} "
                      f"of {args.dir} ({fetched.image})")
        return 0
    project = open_project(args.dir)
    options = audit.SbomOptions(profile=args.profile, format=args.format, output=args.output,
                                frozen=args.frozen, cache_dir=args.cache_dir)
    with ConsoleReporter() as reporter:  # on stderr: stdout carries the document
        made = audit.sbom(project, options, reporter)
    if made.written is None:
        sys.stdout.write(made.text)
        sys.stdout.write("\n")
        return 0
    count = {k: sum(c.ecosystem == k for c in made.components) for k in ("deb", "pypi", "npm")}
    out.print(f"wrote {made.written}: {args.format}, {count['deb']} Debian packages, "
              f"{count['pypi']} Python distributions and {count['npm']} npm packages in "
              f"{made.subject.tag} ({made.subject.digest})")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from dlenv.workflows import audit

    project = open_project(args.dir)
    with ConsoleReporter() as reporter:
        text, written = audit.export(project, args.format, profile=args.profile,
                                     output=args.output, frozen=args.frozen,
                                     cache_dir=args.cache_dir, reporter=reporter)
    if written is None:
        sys.stdout.write(text)
    else:
        out.print(f"wrote {written} ({args.format})")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from dlenv.errors import UsageError
    from dlenv.workflows.diff import HOST, diff

    if (args.b is None) != bool(args.host):
        raise UsageError("diff compares two sides", fix="name two (A B), or one and --host")
    with ConsoleReporter() as reporter:
        found = diff(args.a, args.b or HOST, profile=args.profile, cache_dir=args.cache_dir,
                     reporter=reporter)
    if args.json:
        emit_json(found.to_json())
    else:
        diff_table(found)
    return 0 if found.same else 1


def cmd_scan(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dlenv import __version__
    from dlenv.audit.scan import failing, sarif
    from dlenv.config import load_config
    from dlenv.workflows.scan import scan
    from dlenv.workflows.team import published_config

    where = Path(args.dir) if Path(args.dir).is_dir() else Path(args.dir).parent \
        if Path(args.dir).is_file() else Path.cwd()
    osv_url = None if args.db else load_config(where, fetch=published_config)["scan.osv-url"]
    with ConsoleReporter() as reporter:
        found = scan(args.dir, db=Path(args.db) if args.db else None, osv_url=osv_url,
                     profile=args.profile,
                     ignore=Path(args.ignore) if args.ignore else None,
                     security_suite=not args.no_security_suite, cache_dir=args.cache_dir,
                     reporter=reporter)
    if args.format == "json":
        emit_json(found.to_json())
    elif args.format == "sarif":
        emit_json(sarif(found.findings, Path(found.target).name, __version__))
    else:
        scan_table(found)
    bad = failing(found.findings, args.fail_on)
    for entry in found.expired:
        err.print(f"[red]error[/]: the ignore entry for {entry.id} expired on "
                  f"{entry.expires.isoformat()} — look at the finding again, then renew or "
                  "remove the entry")
    if bad:
        err.print(f"[red]{len(bad)} finding(s) at or above {args.fail_on}[/]")
    return 1 if bad or found.expired else 0


def cmd_upgrade(args: argparse.Namespace) -> int:
    from dlenv.cli.render import upgrade_table
    from dlenv.workflows.upgrade import UpgradeOptions, upgrade

    project = open_project(args.dir)
    options = UpgradeOptions(framework=args.framework, profile=args.profile, apply=args.apply,
                             engine=args.engine, allow_cpu=args.allow_cpu,
                             cache_dir=args.cache_dir)
    with ConsoleReporter(quiet=args.json) as reporter:
        found = upgrade(project, options, reporter)
    if args.json:
        emit_json(found.to_json())
    else:
        upgrade_table(found, asked_apply=args.apply)
    return 0 if found.verdict.ready else 1
