"""How a workflow tells its caller what it is doing, without printing: the CLI shows steps
as a spinner, byte counts as bars and warnings in yellow; tests and libraries pass
``Silent`` (or a recorder)."""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    def step(self, text: str) -> None:
        """A long step begins (locking, building, pushing); the previous one is over."""

    def progress(self, stage: str, done: int, total: int) -> None:
        """Bytes or items of ``stage`` done so far (``total`` 0: unknown)."""

    def note(self, text: str) -> None:
        """Something the user should know now, before the workflow goes on."""

    def warn(self, text: str) -> None:
        """Something that may be wrong, before the workflow goes on."""


class Silent:
    """A reporter that drops everything."""

    def step(self, text: str) -> None:
        pass

    def progress(self, stage: str, done: int, total: int) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def warn(self, text: str) -> None:
        pass
