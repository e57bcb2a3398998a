"""The commands that carry an environment to more than one machine: ``train`` (a
multi-worker job on this machine) and ``k8s`` (Kubernetes manifests)."""

from __future__ import annotations

import argparse
import threading

from rich.markup import escape

from dlenv.cli.render import ConsoleReporter, emit_json, err, out
from dlenv.workflows.project import open_project


def cmd_train(args: argparse.Namespace) -> int:
    from dlenv.workflows import train as train_flow

    project = open_project(args.dir)
    request = train_flow.TrainRequest(
        workers=args.workers, command=tuple(args.cmd), engine=args.engine,
        memory=args.memory, cpus=args.cpus, shm_size=args.shm_size, mounts=tuple(args.mount),
        allow_cpu=args.allow_cpu, host_ca=not args.no_host_ca, cache_dir=args.cache_dir)
    reporter = ConsoleReporter(quiet=args.dry_run)
    with reporter:
        prepared = train_flow.prepare_train(project, request, reporter)
    plan = prepared.plan
    if args.dry_run:
        emit_json({"network": plan.network, "command": list(plan.command), "workers": [
            {**w.to_json(), "task": plan.name_of(i),
             "argv": [prepared.engine.exe, "run", "--detach", *w.args(prepared.engine.kind)]}
            for i, w in enumerate(plan.workers)]})
        return 0
    width = max(len(plan.name_of(i)) for i in range(len(plan.workers)))
    lock = threading.Lock()

    def show(worker: str, line: str) -> None:
        with lock:  # one line at a time from the workers' threads
            out.print(f"[bold]{escape(worker.ljust(width))}[/] | {escape(line)}",
                      highlight=False, soft_wrap=True)

    with reporter:
        result = train_flow.run_train(prepared, show, reporter)
    if result.failed is not None:
        err.print(f"[red]error:[/] {escape(result.failed)} exited with {result.code}; the job "
                  "failed and every worker was removed. Its last lines:", highlight=False)
        for line in result.tail:
            err.print(f"  {escape(line)}", highlight=False, soft_wrap=True)
        return result.code
    ok = "done" if result.code == 0 else f"exit {result.code}"
    err.print(f"training {ok}: {len(plan.workers)} workers ({plan.workerset.roles_text}), "
              f"the chief's exit code {result.code}", highlight=False)
    return result.code


def cmd_k8s(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dlenv.workflows import cluster as cluster_flow

    project = open_project(args.dir)
    with ConsoleReporter(quiet=True) as reporter:
        rendered = cluster_flow.render_k8s(
            project, args.profile, workers=args.workers, kind=args.kind, image=args.image,
            output=Path(args.output) if args.output else None, cache_dir=args.cache_dir,
            reporter=reporter)
    if args.output:
        for path in rendered.written:
            err.print(f"wrote {escape(str(path))}", highlight=False)
    else:
        out.print(rendered.text, end="", markup=False, highlight=False, soft_wrap=True)
    for note in rendered.manifests.notes:
        err.print(f"# {escape(note)}", highlight=False, soft_wrap=True)
    return 0
