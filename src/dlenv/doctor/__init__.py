"""``dlenv doctor``: what this host can run, each check with its evidence and fix.

``gather`` reads the host (commands and files) into ``HostFacts``, raw text only;
``diagnose`` is pure and turns facts plus what a lock needs into checks. Tests replay
recorded facts, so every decision is checked without the hardware it is about."""

from __future__ import annotations

from dlenv.doctor.diagnose import MIN_FREE_BYTES, Needs, diagnose, needs_from_target
from dlenv.doctor.facts import (
    CDI_DIRS,
    DISTRO_CAS,
    SMI_QUERY,
    TOOLKIT_BINARIES,
    Gpu,
    HostFacts,
    Runner,
    extra_cas,
    gather,
    gather_gpu,
    parse_gpus,
    parse_proc_driver,
    query_gpus,
    reach,
    run_command,
)

__all__ = [
    "CDI_DIRS", "DISTRO_CAS", "Gpu", "HostFacts", "MIN_FREE_BYTES", "Needs", "Runner",
    "SMI_QUERY", "TOOLKIT_BINARIES", "diagnose", "extra_cas", "gather", "gather_gpu",
    "needs_from_target",
    "parse_gpus", "parse_proc_driver", "query_gpus", "reach", "run_command",
]
