"""Every exception dlenv raises, and the exit code the CLI gives each.

    DlenvError                  base; carries an optional ``fix`` hint       exit 3
    ├── SpecError               dlenv.toml is wrong (all problems at once)   exit 2
    ├── UsageError              a command-line value is wrong                exit 2
    ├── ResolveError            no supported combination; names nearest ones exit 2
    ├── ConfigError             a team/user config file or variable is wrong exit 2
    ├── PolicyError             the spec or lock breaks a team policy        exit 2
    ├── LockError               resolution or lock file problem              exit 2
    │   ├── StaleLockError      the lock no longer matches the spec          exit 1
    │   └── NoWheelError        a package has no wheel for the target        exit 2
    ├── FetchError              a download failed or a hash did not match    exit 3
    │   └── IntegrityError      content did not match its pinned digest      exit 3
    ├── BuildError              the image could not be assembled             exit 3
    ├── RegistryError           an OCI registry refused or failed            exit 3
    └── EngineError             Docker/Podman missing or failing             exit 3
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class DlenvError(Exception):
    """Base of every dlenv error. ``fix`` says what the user can do about it."""

    exit_code = 3

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return self.message if not self.fix else f"{self.message} — {self.fix}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One located problem in a spec file: ``file:line: key: message — fix``."""

    file: str
    key: str
    message: str
    line: int | None = None
    fix: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"
        return f"{text} — {self.fix}" if self.fix else text


class SpecError(DlenvError):
    """The spec has one or more problems; all of them are in ``problems``."""

    exit_code = 2

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def __str__(self) -> str:
        return self.message


class UsageError(DlenvError):
    """A command-line argument is malformed or impossible (a path, port, size, reference)."""

    exit_code = 2


class ResolveError(DlenvError):
    """The requested combination cannot work; ``alternatives`` lists the nearest that do."""

    exit_code = 2

    def __init__(
        self, message: str, *, alternatives: Sequence[str] = (), fix: str | None = None
    ) -> None:
        self.alternatives = tuple(alternatives)
        if self.alternatives and fix is None:
            fix = "nearest working combinations: " + "; ".join(self.alternatives)
        super().__init__(message, fix=fix)


class ConfigError(DlenvError):
    """A team or user configuration file, or a variable that stands for one, is unusable."""

    exit_code = 2


class PolicyError(DlenvError):
    """The spec or its lock breaks a policy of the team configuration."""

    exit_code = 2


class LockError(DlenvError):
    exit_code = 2


class StaleLockError(LockError):
    exit_code = 1


class NoWheelError(LockError):
    """``package`` has no wheel for the target's Python and platform."""

    def __init__(self, message: str, *, package: str, fix: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.package = package


class FetchError(DlenvError):
    exit_code = 3


class IntegrityError(FetchError):
    exit_code = 3


class BuildError(DlenvError):
    exit_code = 3


class RegistryError(DlenvError):
    exit_code = 3


class EngineError(DlenvError):
    exit_code = 3
