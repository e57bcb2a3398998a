"""``dlenv serve``: a model behind TensorFlow Serving's REST API, from the serve profile;
``dlenv compose``: the dev and serve services (and Prometheus) as a Compose file."""

from __future__ import annotations

import argparse
import json

from dlenv.cli.render import ConsoleReporter, emit_json, out
from dlenv.errors import UsageError
from dlenv.workflows.project import open_project


def cmd_serve(args: argparse.Namespace) -> int:
    from dlenv.workflows import run as run_flow
    from dlenv.workflows import serve as serve_flow

    if args.port is not None and not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port} is not a port", fix="use 1-65535, e.g. 8501")
    project = open_project(args.dir)
    request = serve_flow.ServeRequest(model=args.model, name=args.name, port=args.port,
                                      engine=args.engine, cache_dir=args.cache_dir)
    reporter = ConsoleReporter(quiet=args.json)
    with reporter:
        serving = serve_flow.prepare_serve(project, request, reporter)
        if args.detach:
            serve_flow.start_serving(serving, reporter)
    plan = serving.prepared.plan
    if args.json:
        emit_json({"name": serving.name, "url": serving.url, "model": serving.model,
                   "container": plan.name, "detached": args.detach})
        if args.detach:
            return 0
    else:
        example = json.dumps({"instances": [[1.0, 2.0]]})
        where = serving.model or "the project's models volume (/models in its containers)"
        out.print(f"serving {serving.name} from {where}\n"
                  f"  predict: {serving.url}\n"
                  f"  e.g.     curl -s -d '{example}' {serving.url}\n"
                  f"  status:  {serving.url.removesuffix(':predict')}\n"
                  f"  metrics: {serving.url.split('/v1/')[0]}/metrics", soft_wrap=True,
                  highlight=False)
        if args.detach:
            out.print(f"it runs as {plan.name}; 'dlenv stop {args.dir or '.'}' ends it")
            return 0
    return run_flow.run_attached(serving.prepared, reporter)


def cmd_compose(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dlenv.workflows import compose as compose_flow

    for flag, port in (("--port", args.port), ("--jupyter-port", args.jupyter_port)):
        if not 0 < port < 65536:
            raise UsageError(f"{flag} {port} is not a port", fix="use 1-65535")
    options = compose_flow.ComposeOptions(
        output=Path(args.output) if args.output else None, engine=args.engine,
        serve_port=args.port, jupyter_port=args.jupyter_port, cache_dir=args.cache_dir,
        **({"prometheus_image": args.prometheus_image} if args.prometheus_image else {}))
    with ConsoleReporter(quiet=args.json) as reporter:
        done = compose_flow.write_compose(open_project(args.dir), options, reporter)
    if args.json:
        emit_json({"file": str(done.path), "prometheus": str(done.prometheus)
                   if done.prometheus else None, "services": list(
                       done.plan.document["services"]), "notes": list(done.plan.notes)})
        return 0
    out.print(f"wrote {done.path}" + (f" and {done.prometheus}" if done.prometheus else ""),
              highlight=False, soft_wrap=True)
    for note in done.plan.notes:
        out.print(f"  {note}", highlight=False, soft_wrap=True)
    out.print(f"  start: docker compose -f {done.path} up -d", highlight=False,
              soft_wrap=True)
    return 0
