"""Training jobs and Kubernetes workloads as plans: the workers of a job and what each is told
(``workers.py``), the manifests of a profile (``manifests.py``) and the Pod Security Standards'
restricted profile they keep (``restricted.py``), all pure."""

from __future__ import annotations

from dlenv.cluster.manifests import KINDS, Manifests, Workload, plan_manifests
from dlenv.cluster.workers import WorkerSet, launch_command, plan_workers

__all__ = ["KINDS", "Manifests", "WorkerSet", "Workload", "launch_command", "plan_manifests",
           "plan_workers"]
