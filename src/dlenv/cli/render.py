"""What the command line shows: the two consoles, JSON, check tables, and a ``Reporter`` that
turns a workflow's steps and byte counts into a spinner and bars on stderr."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from types import TracebackType
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, SpinnerColumn, TaskID, TextColumn
from rich.table import Table

from dlenv.checks import FAIL

if TYPE_CHECKING:
    from dlenv.workflows.check import CheckReport

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def emit_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


class ConsoleReporter:
    """Steps as one spinner line, byte counts as bars, warnings printed above them; all on
    stderr and gone when the work ends. ``quiet`` (for --json) keeps only warnings; when
    stderr is not a terminal (a log, CI) there are no bars either, only the words."""

    def __init__(self, *, quiet: bool = False) -> None:
        self._bars = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                              DownloadColumn(), console=err, transient=True,
                              disable=quiet or not err.is_terminal)
        self._step: TaskID | None = None
        self._stages: dict[str, TaskID] = {}

    def __enter__(self) -> ConsoleReporter:
        self._bars.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._bars.stop()

    def step(self, text: str) -> None:
        if self._step is None:
            self._step = self._bars.add_task(escape(text), total=None)
        else:
            self._bars.update(self._step, description=escape(text))

    def progress(self, stage: str, done: int, total: int) -> None:
        if stage not in self._stages:
            self._stages[stage] = self._bars.add_task(escape(stage), total=total or None)
        self._bars.update(self._stages[stage], completed=done, total=total or None)

    def note(self, text: str) -> None:
        self._bars.console.print(f"[yellow]note:[/] {escape(text)}", soft_wrap=True)

    def warn(self, text: str) -> None:
        self._bars.console.print(f"[yellow]warning:[/] {escape(text)}", soft_wrap=True)


_MARKS = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[bold red]FAIL[/]",
          "skip": "[dim]skip[/]"}


def checks(report: CheckReport, as_json: bool) -> int:
    """Print a check report (table or JSON); exit 1 when any check failed."""
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
