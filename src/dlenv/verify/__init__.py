"""``dlenv verify``: run the probe in an image (or on the host) and judge what it saw.

``probe.py`` observes; ``evaluate`` (pure) turns observations into checks with the likely
fix; the runners only move JSON in and out of a container or a host Python."""

from __future__ import annotations

from dlenv.verify.evaluate import CPU_TOLERANCE, GPU_TOLERANCE, Request, evaluate, request_for
from dlenv.verify.launch import PROBE, probe_host, probe_image

__all__ = [
    "CPU_TOLERANCE", "GPU_TOLERANCE", "PROBE", "Request", "evaluate", "probe_host",
    "probe_image", "request_for",
]
