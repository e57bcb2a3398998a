"""The commands that move environments between machines and registries: push, pull, copy,
mirror, bundle, and the team configuration they read (config). Their workflows are imported
inside each command: every other command's start-up stays without them."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from dlenv.cli.render import ConsoleReporter, emit_json, out
from dlenv.workflows.project import open_project
from dlenv.workflows.team import published_config

if TYPE_CHECKING:
    from dlenv.workflows.registry import Copied


def cmd_push(args: argparse.Namespace) -> int:
    from dlenv.workflows import registry as registry_flow

    ref, where = args.ref, args.dir
    if ref and where == "." and Path(ref).is_dir():  # 'dlenv push DIR': the configured REF
        ref, where = None, ref
    project = open_project(where)
    with ConsoleReporter(quiet=args.json) as reporter:
        pushed = registry_flow.push(project, ref, profile=args.profile,
                                    frozen=args.frozen, cache_dir=args.cache_dir,
                                    sbom=args.sbom_format if args.sbom else None,
                                    reporter=reporter)
    if args.json:
        emit_json({"ref": str(pushed.ref), "digest": pushed.digest,
                   "blobs_sent": pushed.blobs_sent, "image": pushed.image,
                   "layers": pushed.layers, "built": pushed.built, "sbom": pushed.sbom})
    else:
        how = "built now" if pushed.built else "as built"
        out.print(f"pushed {pushed.image} ({pushed.layers} layers, {how} from the current "
                  f"lock) as {pushed.ref}@{pushed.digest} ({pushed.blobs_sent} blobs sent, the "
                  "rest were there)", soft_wrap=True)
        if pushed.sbom:
            out.print(f"with its {args.sbom_format} SBOM {pushed.sbom} referring to it "
                      f"('dlenv sbom {pushed.ref}' reads it back)", soft_wrap=True)
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from dlenv.workflows import registry as registry_flow

    with ConsoleReporter(quiet=args.json) as reporter:
        pulled = registry_flow.pull(args.ref, load=args.load, tag=args.tag,
                                    cache_dir=args.cache_dir, reporter=reporter)
    if args.json:
        emit_json({"ref": str(pulled.ref), "digest": pulled.digest, "loaded": pulled.loaded})
    else:
        out.print(f"pulled {pulled.ref} → {pulled.digest}", soft_wrap=True)
    return 0


def cmd_copy(args: argparse.Namespace) -> int:
    from dlenv.workflows import registry as registry_flow

    with ConsoleReporter(quiet=args.json) as reporter:
        copied = registry_flow.copy(args.source, args.target, cache_dir=args.cache_dir,
                                    reporter=reporter)
    return _copies([copied], args.json)


def cmd_mirror(args: argparse.Namespace) -> int:
    from dlenv.workflows import registry as registry_flow

    with ConsoleReporter(quiet=args.json) as reporter:
        copied = registry_flow.mirror(args.sources, args.to, tags=args.tags,
                                      cache_dir=args.cache_dir, reporter=reporter)
    return _copies(copied, args.json)


def _copies(copied: list[Copied], as_json: bool) -> int:
    if as_json:
        emit_json([{"source": c.source, "target": c.target, "digest": c.digest,
                    "blobs_sent": c.blobs_sent, "skipped": c.skipped} for c in copied])
        return 0
    for c in copied:
        how = "already there" if c.skipped else f"{c.blobs_sent} blobs sent, the rest were there"
        out.print(f"{escape(c.target)}@{c.digest} ({how})", soft_wrap=True)
    fresh = sum(not c.skipped for c in copied)
    out.print(f"{len(copied)} images: {fresh} copied, {len(copied) - fresh} already there")
    return 0


def cmd_bundle(args: argparse.Namespace) -> int:
    from dlenv.workflows import bundle as bundle_flow

    with ConsoleReporter(quiet=args.json) as reporter:
        if args.verb == "create":
            made = bundle_flow.create_bundle([Path(d) for d in args.dirs], Path(args.output),
                                             cache_dir=args.cache_dir, reporter=reporter)
            data = {"bundle": str(made.path), "members": made.members, "bytes": made.size,
                    "images": [{"tag": i.tag, "manifest": i.manifest} for i in made.images]}
            words = (f"{made.path}: {made.members} members, {made.size / 1e6:,.1f} MB, "
                     f"{len(made.images)} images")
        elif args.verb == "import":
            done = bundle_flow.import_bundle(
                Path(args.file), cache_dir=args.cache_dir, reporter=reporter,
                projects_dir=Path(args.projects) if args.projects else None)
            data = {"members": done.members, "projects": [str(p) for p in done.projects],
                    "images": [{"tag": i.tag, "manifest": i.manifest} for i in done.images]}
            words = (f"{args.file}: {done.members} members checked and imported; images "
                     + ", ".join(i.tag for i in done.images)
                     + ("; projects in " + ", ".join(map(str, done.projects))
                        if done.projects else ""))
        else:
            pushed = bundle_flow.push_bundle(Path(args.file), args.destination,
                                             cache_dir=args.cache_dir, reporter=reporter)
            data = {"pushed": [{"ref": r, "digest": d, "blobs_sent": n} for r, d, n in pushed]}
            words = "; ".join(f"{r}@{d} ({n} blobs sent)" for r, d, n in pushed)
    if args.json:
        emit_json(data)
    else:
        out.print(escape(words), soft_wrap=True)
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from dlenv.config import KEYS, load_config

    config = load_config(Path(args.dir), fetch=published_config)
    if args.json:
        emit_json({"files": list(config.files), "settings": {
            name: {"value": s.value, "source": s.source}
            for name, s in config.settings.items()}})
        return 0
    table = Table(title="dlenv configuration")
    table.add_column("key", no_wrap=True)
    for col in ("value", "from"):
        table.add_column(col, overflow="fold")
    for name, s in config.settings.items():
        table.add_row(name, escape(_config_value(s.value)),
                      escape(s.source) if s.source != "default" else "[dim]default[/]")
    out.print(table)
    out.print("files read (lowest first): " + (", ".join(map(escape, config.files)) or "none")
              + f"; {len(KEYS)} keys, see the README's 'For teams'", soft_wrap=True)
    return 0


def _config_value(value: object) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k} → {', '.join(v)}" for k, v in value.items()) or "-"
    if isinstance(value, tuple):
        return ", ".join(value) or "-"
    return "-" if value is None else str(value)
