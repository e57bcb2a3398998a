"""``dlenv build``: its own module, light at import, because a build with nothing changed
answers from the last build's record (``workflows.inputs``) before the spec, the lock or the
builder is imported; only a build that has work to do imports them."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlenv.cli.render import ConsoleReporter, emit_json, out, say
from dlenv.config import load_config
from dlenv.workflows.inputs import BuildOptions, lookup
from dlenv.workflows.team import published_config

if TYPE_CHECKING:
    from dlenv.workflows.build import Loaded


def cmd_build(args: argparse.Namespace) -> int:
    if args.backend == "docker":
        return _with_docker(args)
    options = BuildOptions(
        profile=args.profile, compression=args.compression, bytecode=not args.no_bytecode,
        with_project=not args.no_project, tag=args.tag, outputs=tuple(args.output),
        load=args.load, frozen=args.frozen, cache_dir=args.cache_dir)
    where = Path(args.dir or ".")
    config = load_config(where if where.is_dir() else where.parent, fetch=published_config)
    hit = lookup(where, options, config)
    if hit is not None:
        if hit.warnings:
            with ConsoleReporter(quiet=args.json) as reporter:
                for line in hit.warnings:
                    reporter.warn(line)
        return _show(args, hit.tag, hit.alias, hit.result, hit.seconds,
                     _Load(True) if options.load else None, unchanged=True)

    if options.load:  # Docker answers its `info` while the builder is imported
        from dlenv.engine.cli import ask_early

        ask_early("docker")
    from dlenv.workflows import build as build_flow
    from dlenv.workflows.project import open_project

    project = open_project(args.dir)
    with ConsoleReporter(quiet=args.json) as reporter:
        built = build_flow.build(project, options, reporter)
    result, loaded = built.result, built.loaded
    if not args.json and not all(result.reused):
        from rich.table import Table

        table = Table(title=built.tag)
        for col in ("layer", "size", "digest", ""):
            table.add_column(col)
        for blob, reused in zip(result.layers, result.reused, strict=True):
            table.add_row(blob.name, f"{blob.descriptor.size / 1e6:,.1f} MB",
                          blob.descriptor.digest[:19], "reused" if reused else "built")
        out.print(table)
    return _show(args, built.tag, built.alias, result.to_json(), built.seconds,
                 _Load.of(loaded) if loaded else None)


@dataclass(frozen=True, slots=True)
class _Load:
    """What the load did, in the words and JSON both build paths show."""

    already: bool  # Docker held the image already: nothing was sent
    sent: int = 0
    held: int = 0
    early: int = 0

    @classmethod
    def of(cls, loaded: Loaded) -> _Load:
        return cls(not loaded.loaded, loaded.sent, loaded.held, loaded.early)

    def words(self, alias: str | None) -> str:
        also = f" (also as {alias})" if alias else ""
        if self.already:
            return f"; Docker holds it already{also}"
        total = self.sent + self.held
        if self.early:
            sent = (f", {self.early} of {total} layers while they were built and "
                    f"{self.sent} after" + (f" ({self.held - self.early} held already)"
                                            if self.held > self.early else ""))
        else:
            sent = f", {self.sent} of {total} layers sent" if self.held else ""
        return f"; loaded into Docker{also}{sent}"


def _show(args: argparse.Namespace, tag: str, alias: str | None, result: dict[str, Any],
          seconds: float, load: _Load | None, *, unchanged: bool = False) -> int:
    """The summary (a build's, or an unchanged build's from its record) as words or JSON."""
    if args.json:
        emit_json({**result, "tag": tag, "seconds": round(seconds, 3),
                   "unchanged": unchanged, "loaded": load is not None,
                   **({"load": {"sent_layers": load.sent, "held_layers": load.held,
                                "early_layers": load.early, "already_there": load.already}}
                      if load else {})})
        return 0
    layers = result["layers"]
    fresh = sum(not layer["reused"] for layer in layers)
    # an image only for Docker here: its new layers are compressed when it leaves
    named = f"{result['digest']}: {result['size'] / 1e6:,.1f} MB compressed" \
        if result.get("digest") else f"(id {result.get('image_id', '')[:19]}): " \
        f"{result['size'] / 1e6:,.1f} MB, compressed when pushed"
    say(f"image {tag} {named}, {len(layers)} layers ({fresh} built, "
        f"{len(layers) - fresh} reused) in {seconds:.1f} s" + (load.words(alias) if load else ""))
    overlaps = [(o["path"], o["lower"], o["upper"]) for o in result["overlaps"]]
    if overlaps:
        shown = ", ".join(f"{p} ({upper} over {lower})" for p, lower, upper in overlaps[:3])
        more = f" and {len(overlaps) - 3} more" if len(overlaps) > 3 else ""
        out.print(f"[yellow]note:[/] {len(overlaps)} files ship in two layers; the upper "
                  f"one is used: {shown}{more}", soft_wrap=True)
    for line in result["notes"]:
        out.print(f"[yellow]note:[/] {line}", soft_wrap=True)
    return 0


def _with_docker(args: argparse.Namespace) -> int:
    """``--backend docker``: the rendered Dockerfile, built by Docker."""
    from dlenv.workflows import eject as eject_flow
    from dlenv.workflows.project import open_project

    project = open_project(args.dir)
    with ConsoleReporter(quiet=args.json) as reporter:
        made = eject_flow.build_dockerfile(project, profile=args.profile, tag=args.tag,
                                           frozen=args.frozen, cache_dir=args.cache_dir,
                                           reporter=reporter)
    if args.json:
        emit_json({"tag": made.tag, "image": made.image, "backend": "docker",
                   "target": made.target, "dockerfile": str(made.dockerfile),
                   "seconds": round(made.seconds, 3)})
    else:
        out.print(f"image {made.tag} {made.image}: built by Docker from {made.dockerfile} "
                  f"(target {made.target}) in {made.seconds:.1f} s; it holds exactly the "
                  f"{made.packages} locked packages", soft_wrap=True)
    return 0
