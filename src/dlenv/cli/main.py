"""``dlenv``'s entry point: parse, run one command, and map errors to exit codes (2 bad
input, 3 the outside world, 130 interrupted); the only place that turns exceptions into text."""

from __future__ import annotations

import errno
import gc
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from dlenv.cli.parser import build_parser
from dlenv.cli.render import err, escape
from dlenv.config import load_config
from dlenv.errors import DlenvError
from dlenv.workflows.team import published_config


def entry() -> int:
    """The ``dlenv`` program (and ``python -m dlenv``): ``main``, then an end without the
    collector's last pass over everything the command made. ``gc.freeze`` moves those
    objects where the pass at the interpreter's exit does not look; the process's end frees
    them. That pass took 20 ms of a run's end here; atexit handlers, flushes and threads
    still end as they would. Tests and library callers call ``main``."""
    code = main()
    gc.freeze()
    return code


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv[0] if argv and not argv[0].startswith("-") else None)
    command: list[str] = []
    if "--" in argv and argv and argv[0] in ("run", "shell", "train"):  # dlenv run [DIR] … -- CMD …
        at = argv.index("--")
        argv, command = argv[:at], argv[at + 1:]
    args = parser.parse_args(argv)
    if command:
        args.cmd = command
    try:
        # The team configuration reaches every part (and uv) as the variables each reads;
        # what the user's environment sets stays.
        # ('dlenv config' shows where each value came from, so it reads them itself.)
        if args.command != "config":
            where = Path(getattr(args, "dir", None) or ".")
            config = load_config(where if where.is_dir() else None, fetch=published_config)
            os.environ.update(config.environment(os.environ))
        code: int = args.func(args)
        return code
    except DlenvError as exc:
        err.print("[bold red]error:[/]", escape(str(exc)), soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except OSError as exc:
        # The world said no: a full disk, a permission, a path that is a file. Every write
        # went to a temporary name first, so what was there before is intact.
        err.print("[bold red]error:[/]", escape(_os_error(exc)), soft_wrap=True)
        return 3
    finally:
        # What no command took is dropped (one process may run several commands: tests);
        # only a command that loaded the engine's module can have asked.
        if "dlenv.engine.cli" in sys.modules:
            sys.modules["dlenv.engine.cli"].forget_early()


def _os_error(exc: OSError) -> str:
    where = f": {exc.filename}" if exc.filename else ""
    text = f"{exc.strerror or exc}{where}"
    if exc.errno == errno.ENOSPC:
        return (f"{text} — the disk is full; nothing was replaced (the cache, the store and "
                "the previous image are intact). Free space, or point --cache-dir / "
                "DLENV_CACHE_DIR at a larger disk, and run again")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{text} — dlenv may not write there; check the owner and permissions"
    return text
