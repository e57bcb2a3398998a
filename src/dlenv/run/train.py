"""``plan_train`` (pure): the containers of a multi-worker job on this machine. Each worker is
the container ``dlenv run`` would start (the same user, confinement, mounts and limits),
on a network of its own where it is known as ``worker-INDEX``, started through the image's
launcher with its index, so it computes ``TF_CONFIG`` and the torchrun and JAX variables the
way a pod of the Indexed Job that ``dlenv k8s`` renders does."""

from __future__ import annotations

from dataclasses import dataclass, replace

from dlenv.cluster import WorkerSet, launch_command
from dlenv.engine import LABEL
from dlenv.fsutil import location_id
from dlenv.run.plan import RunPlan

HOSTS = "worker-{index}"  # each worker's name on the job's network


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainPlan:
    network: str
    workers: tuple[RunPlan, ...]  # index order: the first is the chief (or worker 0)
    command: tuple[str, ...]
    workerset: WorkerSet

    def name_of(self, index: int) -> str:
        kind, i = self.workerset.task(index)
        return f"{kind}-{i}"


def plan_train(name: str, single: RunPlan, workers: WorkerSet, command: tuple[str, ...],
               project_dir: str, nonce: str) -> TrainPlan:
    """The job's containers from ``single``, the plan of one ``dlenv run`` of the train
    image (its command is replaced by ``command`` through the launcher)."""
    network = f"dlenv-{name}-train-{location_id(project_dir)}-{nonce}"
    labels = tuple((k, "train" if k == f"{LABEL}.mode" else v) for k, v in single.labels)
    plans = []
    for index in range(workers.total):
        hostname = HOSTS.replace("{index}", str(index))
        plans.append(replace(
            single, name=f"{network}-{index}", network=network, hostname=hostname,
            command=launch_command(command), ports=(), detach=True, tty=False,
            env=(*single.env, *workers.env(HOSTS, index)),
            labels=(*labels, (f"{LABEL}.job", network),
                    (f"{LABEL}.worker", str(index)))))
    return TrainPlan(network=network, workers=tuple(plans), command=command,
                     workerset=workers)
