"""The multi-worker launcher: from a worker's index and its peers' names, the variables that
TensorFlow (``TF_CONFIG``), PyTorch (torchrun and DDP) and JAX (``jax.distributed``) read to
find each other; then it runs the training command in its place.

The same file runs in three places: in every image of a ``train`` profile (at ``PATH``, a
layer of its own), in the containers of ``dlenv train`` and in the pods of an Indexed Job that
``dlenv k8s`` renders, and here, in tests. It runs by itself under the image's Python
(standard library only, Python 3.8 or later).

What it reads (all set by dlenv or by Kubernetes):

- ``DLENV_INDEX``, else ``JOB_COMPLETION_INDEX`` (what an Indexed Job gives each pod);
- ``DLENV_HOSTS``: the peers' host names with ``{index}`` in place of the index
  (``job-{index}.job``), or a comma-separated list;
- ``DLENV_ROLES``: how many of each TensorFlow task type, in index order
  (``chief=1,worker=2,ps=1,evaluator=1``; default: every index a worker);
- ``DLENV_PORT``: the port each worker listens on (default 29500);
- ``DLENV_WAIT``: seconds to wait for the peers' names to resolve (default 300).

torch.distributed (``env://``) and torchrun take what it sets without arguments; JAX reads
``JAX_COORDINATOR_ADDRESS`` itself, and a script passes ``JAX_NUM_PROCESSES`` and
``JAX_PROCESS_ID`` to ``jax.distributed.initialize`` (JAX has no variables for them).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time

PATH = "/usr/local/lib/dlenv/launch.py"
ROLE_ORDER = ("chief", "worker", "ps", "evaluator")
DEFAULT_PORT = 29500
MAX_WORKERS = 1024


class LaunchError(Exception):
    """A setting the launcher cannot work with; its message says which and why."""


def parse_roles(text: str, workers: int | None = None) -> list[tuple[str, int]]:
    """``chief=1,worker=2`` as counts in ``ROLE_ORDER``; empty text: ``workers`` workers."""
    counts = dict.fromkeys(ROLE_ORDER, 0)
    if not text.strip():
        if workers is None:
            raise LaunchError("DLENV_ROLES is empty and the number of workers is unknown")
        counts["worker"] = workers
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, count = part.partition("=")
        if name not in counts or not count.isdigit():
            raise LaunchError(f"DLENV_ROLES: {part!r} is not ROLE=COUNT with a role of "
                              f"{', '.join(ROLE_ORDER)}")
        counts[name] = int(count)
    if counts["chief"] > 1 or counts["evaluator"] > 1:
        raise LaunchError("DLENV_ROLES: at most one chief and one evaluator")
    if counts["chief"] + counts["worker"] == 0:
        raise LaunchError("DLENV_ROLES: no chief and no worker")
    if sum(counts.values()) > MAX_WORKERS:
        raise LaunchError(f"DLENV_ROLES: more than {MAX_WORKERS} tasks")
    return [(name, counts[name]) for name in ROLE_ORDER if counts[name]]


def tasks(roles: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """(task type, index within the type) of every worker index, in index order."""
    return [(name, i) for name, count in roles for i in range(count)]


def host_names(pattern: str, total: int) -> list[str]:
    if "{index}" in pattern:
        return [pattern.replace("{index}", str(i)) for i in range(total)]
    names = [h.strip() for h in pattern.split(",") if h.strip()]
    if len(names) != total:
        raise LaunchError(f"DLENV_HOSTS names {len(names)} hosts for {total} workers")
    return names


def cluster_env(index: int, hosts: list[str], roles: list[tuple[str, int]],
                port: int = DEFAULT_PORT) -> dict[str, str]:
    """Every variable worker ``index`` needs, for the three frameworks at once (each reads
    only its own). Index 0 is the coordinator: the chief, or worker 0."""
    every = tasks(roles)
    if not 0 <= index < len(every):
        raise LaunchError(f"worker index {index} is outside 0..{len(every) - 1}")
    if len(hosts) != len(every):
        raise LaunchError(f"{len(hosts)} host names for {len(every)} workers")
    addresses = [f"{h}:{port}" for h in hosts]
    cluster: dict[str, list[str]] = {}
    for i, (kind, _) in enumerate(every):  # (no zip(strict=): Python 3.8 runs this too)
        if kind != "evaluator":  # an evaluator watches checkpoints; it is no cluster member
            cluster.setdefault(kind, []).append(addresses[i])
    kind, task_index = every[index]
    tf_config = {"cluster": cluster, "task": {"type": kind, "index": task_index},
                 "environment": "cloud"}
    world = len(every)
    return {
        "TF_CONFIG": json.dumps(tf_config, separators=(",", ":")),
        "MASTER_ADDR": hosts[0], "MASTER_PORT": str(port),
        "WORLD_SIZE": str(world), "RANK": str(index), "NODE_RANK": str(index),
        "PET_NNODES": str(world), "PET_NODE_RANK": str(index),
        "PET_MASTER_ADDR": hosts[0], "PET_MASTER_PORT": str(port),
        "JAX_COORDINATOR_ADDRESS": addresses[0], "JAX_NUM_PROCESSES": str(world),
        "JAX_PROCESS_ID": str(index),
        "DLENV_TASK": f"{kind}:{task_index}",
    }


def env_from(environ: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """``cluster_env`` from the launcher's own variables (see the module's docstring), and
    the peers' host names."""
    raw_index = environ.get("DLENV_INDEX") or environ.get("JOB_COMPLETION_INDEX") or ""
    if not raw_index.isdigit():
        raise LaunchError("no worker index: set DLENV_INDEX (Kubernetes sets "
                          "JOB_COMPLETION_INDEX in an Indexed Job)")
    raw_port = environ.get("DLENV_PORT") or str(DEFAULT_PORT)
    if not raw_port.isdigit() or not 0 < int(raw_port) < 65536:
        raise LaunchError(f"DLENV_PORT {raw_port!r} is not a port number")
    pattern = environ.get("DLENV_HOSTS", "")
    if not pattern:
        raise LaunchError("DLENV_HOSTS is not set")
    listed = None if "{index}" in pattern else len([h for h in pattern.split(",") if h.strip()])
    roles = parse_roles(environ.get("DLENV_ROLES", ""), listed)
    hosts = host_names(pattern, sum(count for _, count in roles))
    return cluster_env(int(raw_index), hosts, roles, int(raw_port)), hosts


def wait_for(hosts: list[str], seconds: float) -> list[str]:
    """Wait until every peer's name resolves (pods and containers start in any order); the
    names that still do not when time runs out."""
    deadline = time.monotonic() + seconds
    pending = list(hosts)
    while pending:
        still = []
        for host in pending:
            try:
                socket.getaddrinfo(host, None)
            except OSError:
                still.append(host)
        pending = still
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(1)
    return pending


def main(argv: list[str]) -> int:
    command = argv[1:]
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        print("usage: launch.py [--] COMMAND [ARG...]", file=sys.stderr)
        return 2
    try:
        env, hosts = env_from(dict(os.environ))
    except LaunchError as exc:
        print(f"dlenv launcher: {exc}", file=sys.stderr)
        return 2
    missing = wait_for(hosts, float(os.environ.get("DLENV_WAIT") or 300))
    if missing:
        print(f"dlenv launcher: these peers never resolved: {', '.join(missing)}",
              file=sys.stderr)
        return 3
    print(f"dlenv launcher: {env['DLENV_TASK']} of {env['WORLD_SIZE']}, coordinator "
          f"{env['MASTER_ADDR']}:{env['MASTER_PORT']}", file=sys.stderr, flush=True)
    os.environ.update(env)
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        print(f"dlenv launcher: cannot run {command[0]}: {exc}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv))
