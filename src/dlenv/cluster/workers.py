"""How many workers a training job has, which TensorFlow task type each index takes, and the
variables that tell the launcher (``dlenv.launcher``) where its peers are: one decision for
``dlenv train`` on this machine and for the Indexed Job of ``dlenv k8s`` (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from dlenv.errors import Problem, SpecError
from dlenv.launcher import DEFAULT_PORT, MAX_WORKERS, PATH, parse_roles, tasks
from dlenv.spec import Deploy, Spec


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerSet:
    roles: tuple[tuple[str, int], ...]  # (TensorFlow task type, count), in index order
    port: int = DEFAULT_PORT

    @property
    def total(self) -> int:
        return sum(count for _, count in self.roles)

    @property
    def roles_text(self) -> str:
        return ",".join(f"{name}={count}" for name, count in self.roles)

    def task(self, index: int) -> tuple[str, int]:
        return tasks(list(self.roles))[index]

    def env(self, hosts: str, index: int | None = None) -> tuple[tuple[str, str], ...]:
        """The launcher's variables; ``index`` is left out where the platform gives it
        (Kubernetes' ``JOB_COMPLETION_INDEX``)."""
        out = [("DLENV_HOSTS", hosts), ("DLENV_ROLES", self.roles_text),
               ("DLENV_PORT", str(self.port))]
        if index is not None:
            out.insert(0, ("DLENV_INDEX", str(index)))
        return tuple(out)


def launch_command(command: tuple[str, ...]) -> tuple[str, ...]:
    """``command`` started through the image's launcher."""
    return ("python3", PATH, "--", *command)


def plan_workers(spec: Spec, deploy: Deploy, workers: int | None = None) -> WorkerSet:
    """The job's workers: ``workers`` (the command line) over the spec's ``workers``; a
    chief, parameter servers and an evaluator when the spec asks for them (TensorFlow)."""
    count = workers if workers is not None else deploy.workers or 1
    if not 1 <= count <= MAX_WORKERS:
        raise SpecError([Problem(file=spec.source, key="deploy.train.workers",
                                 message=f"{count} workers: a job has 1 to {MAX_WORKERS}",
                                 fix="pass --workers N with N from 1")])
    tf_roles = deploy.chief or deploy.ps or deploy.evaluator
    if tf_roles and (spec.framework is None or spec.framework.name != "tensorflow"):
        raise SpecError([Problem(file=spec.source, key="deploy.train.chief",
                                 message="chief, ps and evaluator are TensorFlow task types",
                                 fix="leave them out: PyTorch and JAX jobs have workers only")])
    text = ",".join(f"{name}={n}" for name, n in (
        ("chief", 1 if deploy.chief else 0), ("worker", count - (1 if deploy.chief else 0)),
        ("ps", deploy.ps or 0), ("evaluator", 1 if deploy.evaluator else 0)) if n)
    return WorkerSet(roles=tuple(parse_roles(text)), port=deploy.port or DEFAULT_PORT)
