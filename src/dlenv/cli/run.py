"""The container commands: run, shell, jupyter, ssh, ps and stop. Their own module, light at
import: a run of an unchanged project answers from the record its last build left, and
imports neither rich's tables nor the compatibility matrix's commands to get there."""

from __future__ import annotations

import argparse
import sys

from dlenv.cli.render import ConsoleReporter, emit_json, escape, out
from dlenv.engine.base import LABEL
from dlenv.workflows.project import open_project


def cmd_run(args: argparse.Namespace) -> int:
    from dlenv.workflows import run as run_flow
    project = open_project(args.dir, lazy=True)  # parsed only when the run's records miss
    request = run_flow.RunRequest(
        mode=args.mode, profile=args.profile, image=args.image, engine=args.engine,
        command=tuple(args.cmd), memory=args.memory, cpus=args.cpus, shm_size=args.shm_size,
        pids_limit=args.pids_limit, mounts=tuple(args.mount), publish=tuple(args.publish),
        port=args.port or None, expose=args.expose, allow_cpu=args.allow_cpu,
        host_ca=not args.no_host_ca, volumes=not args.no_volumes,
        tty=sys.stdin.isatty() and sys.stdout.isatty(), key=args.key,
        ssh_config=args.ssh_config, cache_dir=args.cache_dir)
    reporter = ConsoleReporter(quiet=args.json or args.dry_run)
    with reporter:
        prepared = run_flow.prepare_run(project, request, reporter)
    plan = prepared.plan
    if args.dry_run:
        emit_json({**plan.to_json(), "argv": [prepared.engine.exe, "run",
                                              *plan.args(prepared.engine.kind)]})
        return 0
    if not plan.detach:
        return run_flow.run_attached(prepared, reporter)
    with reporter:
        started = run_flow.start_service(project, prepared, ssh_config=args.ssh_config,
                                         reporter=reporter)
    if args.json:
        emit_json({**plan.to_json(), "again": started.again})
        return 0
    name, profile = prepared.view.name, prepared.profile
    runs = "already runs" if started.again else "runs"
    if plan.mode == "jupyter":
        out.print(f"JupyterLab for {name} ({profile}) {runs} as {plan.name}:\n"
                  f"  {plan.extra['url']}\n"
                  f"notebooks are in {project.directory.resolve()}; 'dlenv stop "
                  f"{args.dir or '.'}' ends it", soft_wrap=True)
    else:
        identity = f" -i {prepared.identity}" if prepared.identity else ""
        out.print(f"SSH for {name} ({profile}) {runs} as {plan.name}:\n  {plan.extra['ssh']}"
                  f"{identity}", soft_wrap=True)
        if started.ssh_alias:
            out.print(f"  or: ssh {started.ssh_alias}  (added to ~/.ssh/config for VS Code "
                      "Remote-SSH)")
    return 0


def cmd_ps(args: argparse.Namespace) -> int:
    from dlenv.workflows import run as run_flow
    project = open_project(args.dir) if args.dir else None
    _, found = run_flow.containers(args.engine, project)
    if args.json:
        emit_json([{**c.to_json(), "endpoint": run_flow.endpoint(c)} for c in found])
        return 0
    from rich.table import Table

    table = Table(title="containers dlenv started")
    for col in ("name", "env", "mode", "profile", "status", "ports"):
        table.add_column(col)
    for c in found:
        table.add_row(c.name, c.labels.get(f"{LABEL}.env", ""), c.labels.get(f"{LABEL}.mode", ""),
                      c.labels.get(f"{LABEL}.profile", ""), c.status, c.ports)
    out.print(table)
    for c in found:  # whole lines, never cut by the table's width
        if reach := run_flow.endpoint(c):
            out.print(f"{c.name}: {escape(reach)}", soft_wrap=True)
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from dlenv.workflows import run as run_flow
    project = open_project(args.dir) if args.dir else None
    stopped = run_flow.stop(project, args.name, args.engine)
    if args.json:
        emit_json({"stopped": stopped})
    else:
        out.print(f"stopped {len(stopped)} container(s)" + (": " + ", ".join(stopped)
                                                              if stopped else ""))
    return 0
