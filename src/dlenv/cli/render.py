"""What the command line shows: the two consoles, JSON, check tables, and a ``Reporter`` that
turns a workflow's steps and byte counts into a spinner and bars on stderr."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from dlenv.checks import FAIL

if TYPE_CHECKING:  # rich loads when something is drawn: a command that answers in words
    from rich.console import Console  # or JSON alone starts without it (about 50 ms here)
    from rich.progress import Progress, TaskID

    from dlenv.audit.diff import Diff
    from dlenv.audit.upgrade import Side, Upgrade
    from dlenv.workflows.check import CheckReport
    from dlenv.workflows.scan import ScanReport

class _Later:
    """A rich ``Console`` made on its first use."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def made(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.made(), name)


def _made(console: Console) -> Console:
    """The console itself, for rich's own widgets (which keep it and set its state)."""
    return console.made() if isinstance(console, _Later) else console


out = cast("Console", _Later(highlight=False))
err = cast("Console", _Later(stderr=True, highlight=False))


def escape(text: str) -> str:
    """``text`` shown as it is in rich's markup (rich imported on first use)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def say(line: str) -> None:
    """One line of plain words on stdout, no markup: what a command prints when it has
    nothing to draw (rich is not loaded for it)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def emit_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


class ConsoleReporter:
    """Steps as one spinner line, byte counts as bars, warnings printed above them; all on
    stderr and gone when the work ends. ``quiet`` (for --json) keeps only warnings; when
    stderr is not a terminal (a log, CI) there are no bars either, only the words."""

    def __init__(self, *, quiet: bool = False) -> None:
        self._quiet, self._open = quiet, False
        self._drawn: Progress | None = None  # made at the first step or count (start-up)
        self._step: TaskID | None = None
        self._stages: dict[str, TaskID] = {}

    def __enter__(self) -> ConsoleReporter:
        self._open = True
        if self._drawn is not None:
            self._drawn.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._open = False
        if self._drawn is not None:
            self._drawn.stop()

    def _bars(self) -> Progress:
        if self._drawn is None:
            from rich.progress import BarColumn, DownloadColumn, Progress, SpinnerColumn, TextColumn

            self._drawn = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                                   BarColumn(), DownloadColumn(), console=_made(err),
                                   transient=True, disable=not err.is_terminal)
            if self._open:
                self._drawn.start()
        return self._drawn

    def step(self, text: str) -> None:
        if self._quiet:  # nothing drawn: rich's bars are not even imported (start-up)
            return
        if self._step is None:
            self._step = self._bars().add_task(escape(text), total=None)
        else:
            self._bars().update(self._step, description=escape(text))

    def progress(self, stage: str, done: int, total: int) -> None:
        if self._quiet:
            return
        if stage not in self._stages:
            self._stages[stage] = self._bars().add_task(escape(stage), total=total or None)
        self._bars().update(self._stages[stage], completed=done, total=total or None)

    def note(self, text: str) -> None:  # above the bars when they are drawn (one console)
        err.print(f"[yellow]note:[/] {escape(text)}", soft_wrap=True)

    def warn(self, text: str) -> None:
        err.print(f"[yellow]warning:[/] {escape(text)}", soft_wrap=True)


_MARKS = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[bold red]FAIL[/]",
          "skip": "[dim]skip[/]"}


def checks(report: CheckReport, as_json: bool) -> int:
    """Print a check report (table or JSON); exit 1 when any check failed."""
    from rich.table import Table

    if as_json:
        emit_json({"status": report.status, "checks": [asdict(c) for c in report.checks],
                   **report.details})
    else:
        table = Table(title=report.title)
        for col in ("", "check", "what was seen"):
            table.add_column(col)
        for c in report.checks:
            text = escape(c.summary)
            if c.evidence:
                text += f"\n[dim]{escape(c.evidence)}[/]"
            if c.fix and c.status in ("warn", "fail"):
                text += f"\n[cyan]fix:[/] {escape(c.fix)}"
            table.add_row(_MARKS[c.status], c.id, text)
        out.print(table)
    return 1 if report.status == FAIL else 0


def diff_table(found: Diff) -> None:
    """Two environments side by side: what differs, then the packages that changed."""
    from rich.table import Table

    a, b = found.a, found.b
    table = Table(title=f"A: {escape(a.label)}   B: {escape(b.label)}", title_justify="left")
    table.add_column("")
    table.add_column("A")
    table.add_column("B")
    for what, x, y in found.facts:
        mark = "" if x == y else "[bold]"
        table.add_row(f"{mark}{what}", escape(str(x or "—")), escape(str(y or "—")))
    sections = (("CUDA library", "CUDA libraries", found.cuda),
                ("Python package", "Python packages", found.python_packages),
                (".deb", ".debs", found.debs), ("env", "env", found.env))
    shown = 40  # rows per section: a host's hundreds of one-sided .debs are counted, not listed
    for label, many, change in sections:
        rows: list[tuple[str, str | None, str | None]] = list(change.changed)
        rows += [(name, version, None) for name, version in change.removed]
        rows += [(name, None, version) for name, version in change.added]
        for name, x, y in rows[:shown]:
            table.add_row(f"{label} {escape(name)}",
                          *("[red]absent" if v is None else escape(v) for v in (x, y)))
        if len(rows) > shown:
            table.add_row(f"… {len(rows) - shown} more {many}", "", "[dim](--json lists all)")
    out.print(table)
    counts = ", ".join(f"{c.count} {one if c.count == 1 else many}"
                       for one, many, c in sections[:3])
    layers = ""
    if a.layers and b.layers:
        layers = (f"; layers: {found.shared_layers} shared, {found.bytes_only_a / 1e6:,.1f} MB "
                  f"only in A, {found.bytes_only_b / 1e6:,.1f} MB only in B")
    out.print(("the same" if found.same else f"differ: {counts}") + layers)
    for side in (a, b):
        for note in side.notes:
            err.print(f"[yellow]note[/] ({escape(side.label)}): {escape(note)}")


def scan_table(found: ScanReport) -> None:
    """The findings, worst first, then the newer .debs of Debian's security suite."""
    from rich.table import Table

    from dlenv.audit.scan import SEVERITIES

    order = sorted(found.findings, key=lambda f: -SEVERITIES.index(f.severity))
    if order:
        table = Table(title=f"{len(order)} known vulnerabilities in {escape(found.target)}",
                      title_justify="left")
        for column in ("severity", "package", "version", "advisory", "fixed in"):
            table.add_column(column)
        for f in order:
            ident = f.id + (f" ({', '.join(f.aliases[:2])})" if f.aliases else "")
            severity = f.severity + (f" {f.score}" if f.score is not None else "")
            table.add_row(severity + (" [dim](ignored)" if f.ignored else ""),
                          escape(f.package.shown), escape(f.package.version), escape(ident),
                          escape(", ".join(f.fixed) or "not yet"))
        out.print(table)
    else:
        out.print(f"no known vulnerabilities in {escape(found.target)}")
    for u in found.updates:
        out.print(f"{escape(u.name)} {escape(u.locked)} has a newer {escape(u.newer)} in "
                  f"{escape(u.suite)}")
    if found.updates:
        out.print("'dlenv lock --update-base' takes them (the wheels stay as they are)")
    out.print(f"{found.packages} packages against {found.records} OSV records")
    for note in found.notes:
        err.print(f"[yellow]note[/]: {escape(note)}")


def upgrade_table(found: Upgrade, *, asked_apply: bool) -> None:
    """The current environment and the candidate side by side, what changed, the verdict."""
    from rich.table import Table

    a, b = found.current, found.candidate
    table = Table(title=f"{escape(found.before)} → {escape(found.after)}", title_justify="left")
    for column in ("", "current", "candidate"):
        table.add_column(column)

    def mb(n: int) -> str:
        return f"{n / 1e6:,.0f} MB"

    def checks(side: Side) -> str:
        failed = sum(c.status == FAIL for c in side.checks)
        warned = sum(c.status == "warn" for c in side.checks)
        return f"{len(side.checks) - failed - warned} passed, {warned} warned, {failed} failed"

    def test(side: Side) -> str:
        if side.test is None:
            return "—"
        return f"{'passed' if side.test.passed else 'exit ' + str(side.test.code)} " \
               f"in {side.test.seconds:.1f} s"

    rows = (("framework", a.framework or "—", b.framework or "—"),
            ("python", a.python, b.python), ("image", a.tag, b.tag),
            ("size in the engine", mb(a.size), mb(b.size)),
            ("registry size", mb(a.compressed), mb(b.compressed)),
            ("import, s", *(f"{s.import_seconds:.2f}" if s.import_seconds is not None else "—"
                            for s in (a, b))),
            ("dlenv verify", checks(a), checks(b)), ("test command", test(a), test(b)))
    for what, x, y in rows:
        table.add_row(what, escape(x), escape(y))
    changes = found.changes.python_packages
    shown = 40
    lines = [(n, x, y) for n, x, y in changes.changed]
    lines += [(n, v, "absent") for n, v in changes.removed]
    lines += [(n, "absent", v) for n, v in changes.added]
    for name, x, y in lines[:shown]:
        table.add_row(f"Python package {escape(name)}", escape(x), escape(y))
    if len(lines) > shown:
        table.add_row(f"… {len(lines) - shown} more Python packages", "", "(--json lists all)")
    out.print(table)
    d = found.changes
    out.print(f"{changes.count} Python packages and {d.debs.count} .debs differ; layers: "
              f"{d.shared_layers} shared, {d.bytes_only_b / 1e6:,.1f} MB new in the candidate")
    for side in (a, b):
        if side.test is not None and not side.test.passed:
            err.print(f"[yellow]{side.label}[/]'s test output ends:\n{escape(side.test.tail)}")
    for line in found.verdict.worse:
        out.print(f"[yellow]worse[/]: {escape(line)}")
    if found.verdict.ready:
        out.print("[green]ready[/]: the candidate verifies" +
                  (" and passes the tests" if b.test else " (the spec names no test command)"))
    else:
        out.print("[red]not ready[/]:")
        for reason in found.verdict.reasons:
            out.print(f"  {escape(reason)}")
    if found.applied:
        out.print(f"applied: {escape(found.spec_file)} and its lock are the candidate's")
    elif asked_apply:
        out.print("not applied: the project's spec and lock are as they were")
    else:
        out.print(f"the candidate's spec and lock: {escape(found.candidate_spec)}, "
                  f"{escape(found.candidate_lock)}; '--apply' adopts it")

