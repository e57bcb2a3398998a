"""``dlenv sbom``: what an image holds, as a CycloneDX or SPDX document; ``dlenv export``:
the lock's Python packages for other tools; ``dlenv diff``: two environments compared."""

from __future__ import annotations

import argparse
import sys

from dlenv.cli.render import ConsoleReporter, diff_table, emit_json, out
from dlenv.workflows.project import open_project


def cmd_sbom(args: argparse.Namespace) -> int:
    from dlenv.workflows import audit

    project = open_project(args.dir)
    options = audit.SbomOptions(profile=args.profile, format=args.format, output=args.output,
                                frozen=args.frozen, cache_dir=args.cache_dir)
    with ConsoleReporter() as reporter:  # on stderr: stdout carries the document
        made = audit.sbom(project, options, reporter)
    if made.written is None:
        sys.stdout.write(made.text)
        sys.stdout.write("\n")
        return 0
    debs = sum(c.ecosystem == "deb" for c in made.components)
    out.print(f"wrote {made.written}: {args.format}, {debs} Debian packages and "
              f"{len(made.components) - debs} Python distributions in "
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
