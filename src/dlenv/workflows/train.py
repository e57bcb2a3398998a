"""``train``: a multi-worker job on this machine. The train profile's image runs as N
containers on a network of their own, each through the image's launcher, so TensorFlow's
MultiWorkerMirroredStrategy, torchrun and ``jax.distributed`` find their peers as they do in
the Indexed Job ``dlenv k8s`` renders. The job's exit code is the chief's; a worker that
fails ends the job with its name and last lines; every container and the network go at the
end, on a failure and on Ctrl-C."""

from __future__ import annotations

import queue
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from dlenv.cluster import plan_workers
from dlenv.engine import LABEL, Engine, EngineKind
from dlenv.errors import Problem, SpecError, UsageError
from dlenv.run.launch import prepare
from dlenv.run.train import TrainPlan, plan_train
from dlenv.workflows.project import Project
from dlenv.workflows.report import Reporter, Silent
from dlenv.workflows.run import RunRequest, prepare_run

MAX_LOCAL_WORKERS = 16  # containers on one machine; a cluster takes more (`dlenv k8s`)
GRACE = 120.0  # seconds the other workers get to finish once the chief has
TAIL = 20  # last lines of a failed worker shown


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainRequest:
    workers: int | None = None  # default: the spec's [deploy.train] workers, else 1
    command: tuple[str, ...] = ()  # default: the train profile's command
    engine: EngineKind | None = None
    memory: str | None = None  # per worker
    cpus: str | None = None
    shm_size: str | None = None
    mounts: tuple[str, ...] = ()
    allow_cpu: bool = False
    host_ca: bool = True
    cache_dir: str | None = None


@dataclass(frozen=True, slots=True)
class PreparedTrain:
    plan: TrainPlan
    engine: Engine


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainResult:
    code: int  # the chief's exit code, or the failed worker's
    failed: str | None = None  # the worker that failed the job
    tail: tuple[str, ...] = ()  # its last lines
    codes: dict[str, int] = field(default_factory=dict)  # worker → exit code, as seen


def prepare_train(project: Project, request: TrainRequest,
                  reporter: Reporter | None = None) -> PreparedTrain:
    """Check the request, build and load the train image, and plan the job's containers.
    Nothing is started."""
    spec = project.spec
    profile = spec.profile("train")
    if profile is None:
        raise SpecError([Problem(file=spec.source, key="profiles.train",
                                 message="no train profile: 'dlenv train' runs its image",
                                 fix='add [profiles.train] with command = ["python", '
                                     '"train.py"], then run \'dlenv lock\'')])
    command = request.command or profile.command
    if not command:
        raise UsageError("no command to train with",
                         fix='set command = ["python", "train.py"] under [profiles.train], '
                             "or pass it after --: dlenv train -- python train.py")
    workers = plan_workers(spec, spec.deploy.for_profile("train"), request.workers)
    if workers.total > MAX_LOCAL_WORKERS:
        raise UsageError(f"{workers.total} workers on one machine is more than "
                         f"{MAX_LOCAL_WORKERS}", fix="train with fewer here, or on a cluster "
                         "with 'dlenv k8s --profile train'")
    prepared = prepare_run(project, RunRequest(
        mode="run", profile="train", engine=request.engine, command=command,
        memory=request.memory, cpus=request.cpus, shm_size=request.shm_size,
        mounts=request.mounts, allow_cpu=request.allow_cpu, host_ca=request.host_ca,
        cache_dir=request.cache_dir), reporter)
    plan = plan_train(spec.name, prepared.plan, workers, command,
                      str(project.directory.resolve()), secrets.token_hex(3))
    return PreparedTrain(plan=plan, engine=prepared.engine)


def _watch(engine: Engine, index: int, name: str, done: queue.Queue[tuple[int, int]]) -> None:
    done.put((index, engine.wait(name)))


def _stream(engine: Engine, name: str, worker: str, tail: deque[str],
            on_line: Callable[[str, str], None]) -> None:
    for line in engine.follow(name):
        tail.append(line)
        on_line(worker, line)


def run_train(prepared: PreparedTrain, on_line: Callable[[str, str], None],
              reporter: Reporter | None = None, grace: float = GRACE) -> TrainResult:
    """Start the workers, stream their lines to ``on_line(worker, line)``, and wait for the
    job: the chief's exit, or the first worker that fails. Everything started is removed
    before this returns or raises (KeyboardInterrupt included)."""
    report = reporter or Silent()
    plan, engine = prepared.plan, prepared.engine
    names = [plan.name_of(i) for i in range(len(plan.workers))]
    tails: list[deque[str]] = [deque(maxlen=TAIL) for _ in plan.workers]
    done: queue.Queue[tuple[int, int]] = queue.Queue()
    threads: list[threading.Thread] = []
    streams: dict[str, threading.Thread] = {}
    engine.create_network(plan.network, {f"{LABEL}.job": plan.network})
    try:
        prepare(plan.workers[0], engine)  # files and volumes, shared by every worker
        for i, worker in enumerate(plan.workers):
            report.step(f"starting {names[i]} ({i + 1}/{len(plan.workers)})")
            engine.start(worker.args(engine.kind))
            for target, args in ((_stream, (engine, worker.name, names[i], tails[i], on_line)),
                                 (_watch, (engine, i, worker.name, done))):
                thread = threading.Thread(target=target, args=args, daemon=True)
                thread.start()
                threads.append(thread)
            streams[names[i]] = threads[-2]
        report.step(f"training on {len(plan.workers)} workers")
        result = _wait(plan, names, done, grace)
        end = time.monotonic() + 5  # the last lines of the workers that ended
        for name in result.codes:
            streams[name].join(timeout=max(0.0, end - time.monotonic()))
        if result.failed is not None:
            result = replace(result, tail=tuple(tails[names.index(result.failed)]))
        return result
    finally:
        for worker in plan.workers:
            engine.remove(worker.name)
        engine.remove_network(plan.network)
        for thread in threads:
            thread.join(timeout=5)


def _wait(plan: TrainPlan, names: list[str],
          done: queue.Queue[tuple[int, int]], grace: float) -> TrainResult:
    codes: dict[str, int] = {}
    deadline: float | None = None
    while len(codes) < len(plan.workers):
        try:
            # A short timeout keeps Ctrl-C answered while the workers run.
            index, code = done.get(timeout=0.5)
        except queue.Empty:
            if deadline is not None and time.monotonic() > deadline:
                break  # the chief is done; a worker that does not stop is removed
            continue
        codes[names[index]] = code
        if code != 0:
            return TrainResult(code=code if code > 0 else 1, failed=names[index], codes=codes)
        if index == 0:
            deadline = time.monotonic() + grace
    return TrainResult(code=codes.get(names[0], 1), codes=codes)
