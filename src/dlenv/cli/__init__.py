"""The ``dlenv`` command: parse arguments, call the library, render tables, JSON and errors."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dlenv import __version__
from dlenv.errors import DlenvError, SpecError

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def _emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def cmd_init(args: argparse.Namespace) -> int:
    from dlenv.spec import SPEC_FILE, load_spec
    from dlenv.spec.starter import render_starter

    directory = Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / SPEC_FILE
    if path.exists() and not args.force:
        raise DlenvError(f"{path} exists", fix="pass --force to overwrite it")
    name = "".join(c if c.isalnum() or c in "._-" else "-"
                   for c in directory.resolve().name.lower()) or "env"
    text = render_starter(name, framework=args.framework, gpu=args.gpu, python=args.python,
                          packages=args.package)
    path.write_text(text)
    try:
        load_spec(path)  # a starter that does not parse is a bug or a bad --framework
    except SpecError:
        path.unlink()
        raise
    out.print(f"wrote {path}")
    return 0


def cmd_matrix(args: argparse.Namespace) -> int:
    from dlenv.compat import FRAMEWORKS, load_matrix

    matrix = load_matrix()
    names = [args.framework] if args.framework else list(FRAMEWORKS)
    if args.framework == "torch":
        names = ["pytorch"]
    if args.json:
        _emit_json({
            "updated": matrix.updated, "sources": matrix.sources,
            "min_driver": matrix.driver_floor,
            "frameworks": {n: [{
                "line": r.line, "python": [r.python_min, r.python_max], "manylinux": r.manylinux,
                "cuda": [{"cuda": o.cuda, "cudnn": o.cudnn, "source": o.source, "extra": o.extra,
                          "min_driver": matrix.min_driver(o.cuda),
                          "gpu_archs": list(matrix.gpu_archs(o.cuda, o.min_sm))}
                         for o in r.cuda_options],
            } for r in matrix.lines(n)] for n in names},
        })
        return 0
    for n in names:
        table = Table(title=f"{n} (matrix of {matrix.updated})")
        for col in ("release", "python", "CUDA (cuDNN) · how", "min driver", "wheels"):
            table.add_column(col)
        for r in matrix.lines(n):
            cuda = "; ".join(f"{o.cuda} ({o.cudnn}) · {o.source}" + (f"[{o.extra}]" if o.extra
                                                                       else "")
                             for o in r.cuda_options)
            drivers = ", ".join(sorted({matrix.min_driver(o.cuda) for o in r.cuda_options}))
            table.add_row(r.line, f"{r.python_min}–{r.python_max}", cuda, drivers, r.manylinux)
        out.print(table)
    return 0


def _load(dir_: str) -> tuple[Any, Path]:
    from dlenv.spec import find_spec_file, load_spec

    file = find_spec_file(Path(dir_))
    return load_spec(file), file


def cmd_resolve(args: argparse.Namespace) -> int:
    from dlenv.resolve import resolve_target

    spec, _ = _load(args.dir)
    target = resolve_target(spec)
    if args.json:
        data = target.to_dict()
        data["decisions"] = [{"key": d.key, "value": d.value, "reason": d.reason}
                             for d in target.decisions]
        _emit_json(data)
        return 0
    table = Table(title=f"{spec.name}: resolved target")
    for col in ("decision", "value", "why"):
        table.add_column(col)
    for d in target.decisions:
        table.add_row(d.key, d.value, d.reason)
    out.print(table)
    return 0


def cmd_lock(args: argparse.Namespace) -> int:
    from dlenv.lock import LOCK_FILE, read_lock, write_lock
    from dlenv.lock.create import lock_project

    spec, file = _load(args.dir)
    lock_path = file.parent / LOCK_FILE
    if args.check:
        read_lock(lock_path).check_fresh(spec.digest())
        out.print(f"{lock_path} is up to date")
        return 0
    with err.status(f"locking {spec.name}"):
        lock = lock_project(spec, cache_dir=args.cache_dir)
    write_lock(lock_path, lock)
    if args.requirements:
        Path(args.requirements).write_text(lock.requirements_txt(args.profile))
    total = sum(w.size for w in lock.wheels)
    if args.json:
        _emit_json({"lock": str(lock_path), "spec_digest": lock.spec_digest,
                    "wheels": len(lock.wheels), "debs": len(lock.debs),
                    "wheel_bytes": total, "target": lock.target})
    else:
        out.print(f"locked {len(lock.wheels)} wheels ({total / 1e6:,.1f} MB) and "
                  f"{len(lock.debs)} .debs for Python {lock.target['python']} on "
                  f"{lock.target['base']}: {lock_path}", soft_wrap=True)
    return 0


def _fresh_lock(spec: Any, file: Path, cache_dir: str | None, frozen: bool) -> Any:
    """The project's lock; made or remade first when missing or stale (unless --frozen)."""
    from dlenv.errors import LockError
    from dlenv.lock import LOCK_FILE, read_lock, write_lock
    from dlenv.lock.create import lock_project

    path = file.parent / LOCK_FILE
    try:
        lock = read_lock(path)
        lock.check_fresh(spec.digest())
        return lock
    except LockError:
        if frozen:
            raise
    with err.status(f"locking {spec.name} (the lock was missing or stale)"):
        lock = lock_project(spec, cache_dir=cache_dir)
    write_lock(path, lock)
    return lock


def cmd_build(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    from dlenv.build import builder_for, plan_build
    from dlenv.build.project import collect_project
    from dlenv.oci.export import export_oci, load_into_docker, parse_output, save_docker_archive

    spec, file = _load(args.dir)
    lock = _fresh_lock(spec, file, args.cache_dir, args.frozen)
    project = () if args.no_project else collect_project(file.parent)
    plan = plan_build(spec, lock, profile=args.profile, compression=args.compression,
                      bytecode=not args.no_bytecode, project=project)
    started = time.monotonic()
    outputs = [parse_output(o) for o in args.output]
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                  console=err, transient=True, disable=args.json) as bar:
        tasks: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total or None)
            bar.update(tasks[stage], completed=done, total=total or None)

        builder, _ = builder_for(spec, args.cache_dir, progress)
        result = builder.build(plan)
    elapsed = time.monotonic() - started
    tag = args.tag or plan.tag
    for kind, where in outputs:
        if kind == "oci":
            export_oci(builder.store, result.manifest, where, tag)
        else:
            save_docker_archive(builder.store, result.manifest, where, tag)
    loaded = load_into_docker(builder.store, result.manifest, tag) if args.load else None
    if args.json:
        data = result.to_json()
        data["loaded"] = bool(loaded)
        data["tag"] = tag
        data["seconds"] = round(elapsed, 3)
        _emit_json(data)
        return 0
    table = Table(title=tag)
    for col in ("layer", "size", "digest", ""):
        table.add_column(col)
    for blob, reused in zip(result.layers, result.reused, strict=True):
        table.add_row(blob.name, f"{blob.descriptor.size / 1e6:,.1f} MB",
                      blob.descriptor.digest[:19], "reused" if reused else "built")
    out.print(table)
    built = sum(not r for r in result.reused)
    out.print(f"image {tag} {result.manifest.digest}: {result.size / 1e6:,.1f} MB compressed, "
              f"{len(result.layers)} layers ({built} built, {len(result.layers) - built} "
              f"reused) in {elapsed:.1f} s" + ("; loaded into Docker" if loaded else ""),
              soft_wrap=True)
    if result.overlaps:
        shown = ", ".join(f"{p} ({upper} over {lower})" for p, lower, upper in result.overlaps[:3])
        more = f" and {len(result.overlaps) - 3} more" if len(result.overlaps) > 3 else ""
        out.print(f"[yellow]note:[/] {len(result.overlaps)} files ship in two layers; the upper "
                  f"one is used: {shown}{more}", soft_wrap=True)
    for note in result.notes:
        out.print(f"[yellow]note:[/] {note}", soft_wrap=True)
    return 0


def _store(cache_dir: str | None) -> Any:
    from dlenv.build import default_store
    from dlenv.cache import default_cache_dir

    return default_store(default_cache_dir(cache_dir))


def cmd_push(args: argparse.Namespace) -> int:
    from dlenv.build import plan_build
    from dlenv.lock import LOCK_FILE, read_lock
    from dlenv.oci.registry import Reference, RegistryClient

    spec, file = _load(args.dir)
    plan = plan_build(spec, read_lock(file.parent / LOCK_FILE), profile=args.profile)
    store = _store(args.cache_dir)
    manifest = store.resolve(plan.tag)
    if manifest is None:
        raise DlenvError(f"{plan.tag} is not built", fix=f"run 'dlenv build {args.dir}' first")
    ref = Reference.parse(args.ref)
    client = RegistryClient()
    try:
        with err.status(f"pushing {plan.tag} to {ref}"):
            digest, sent = client.push(store, manifest, ref)
    finally:
        client.close()
    if args.json:
        _emit_json({"ref": str(ref), "digest": digest, "blobs_sent": sent})
    else:
        out.print(f"pushed {ref}@{digest} ({sent} blobs sent, the rest were there)",
                  soft_wrap=True)
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from dlenv.oci.export import load_into_docker
    from dlenv.oci.registry import Reference, RegistryClient

    ref = Reference.parse(args.ref)
    store = _store(args.cache_dir)
    client = RegistryClient()
    try:
        with err.status(f"pulling {ref}"):
            desc = client.pull(ref, store, tag=args.ref)
    finally:
        client.close()
    if args.load:
        load_into_docker(store, desc, args.tag or args.ref.split("@")[0])
    if args.json:
        _emit_json({"ref": str(ref), "digest": desc.digest, "loaded": args.load})
    else:
        out.print(f"pulled {ref} → {desc.digest}", soft_wrap=True)
    return 0


def _render_checks(title: str, checks: Sequence[Any]) -> None:
    marks = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[bold red]FAIL[/]",
             "skip": "[dim]skip[/]"}
    table = Table(title=title)
    for col in ("", "check", "what was seen"):
        table.add_column(col)
    for c in checks:
        text = escape(c.summary)
        if c.evidence:
            text += f"\n[dim]{escape(c.evidence)}[/]"
        if c.fix and c.status in ("warn", "fail"):
            text += f"\n[cyan]fix:[/] {escape(c.fix)}"
        table.add_row(marks[c.status], c.id, text)
    out.print(table)


def _checks_result(checks: Sequence[Any], extra: dict[str, Any], as_json: bool,
                   title: str) -> int:
    """Print checks (table or JSON); exit 1 when any failed."""
    from dataclasses import asdict

    from dlenv.doctor import FAIL, worst

    status = worst(checks)
    if as_json:
        _emit_json({"status": status, "checks": [asdict(c) for c in checks], **extra})
    else:
        _render_checks(title, checks)
    return 1 if status == FAIL else 0


def _needs(directory: str | None) -> Any:
    """What the spec in ``directory`` needs of a host, from its lock (None without one)."""
    from dlenv.doctor import needs_from_target
    from dlenv.errors import LockError
    from dlenv.lock import LOCK_FILE, read_lock
    from dlenv.resolve import resolve_target

    if directory is None:
        return None
    spec, file = _load(directory)
    try:
        target = read_lock(file.parent / LOCK_FILE).target
    except LockError:  # no lock, or a stale one: the spec decides the same target
        target = resolve_target(spec).to_dict()
    return needs_from_target(spec.name, target)


def cmd_doctor(args: argparse.Namespace) -> int:
    from dlenv.cache import default_cache_dir
    from dlenv.doctor import HostFacts, diagnose, gather

    if args.facts:
        facts = HostFacts.from_json(json.loads(Path(args.facts).read_text()))
    else:
        facts = gather(default_cache_dir(args.cache_dir))
    checks = diagnose(facts, _needs(args.dir))
    return _checks_result(checks, {"facts": facts.to_json()}, args.json, "dlenv doctor")


def cmd_verify(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from dlenv.lock import LOCK_FILE, read_lock
    from dlenv.verify import Request, evaluate, probe_host, probe_image, request_for

    if args.host:
        request = Request(framework=args.framework, packages=())
        if args.dir is not None:
            _, file = _load(args.dir)
            request = request_for(read_lock(file.parent / LOCK_FILE), args.profile)
            if args.framework:
                request = replace(request, framework=args.framework)
        seen = probe_host(request)
        checks = evaluate(seen, expect_gpu=args.gpu, in_image=False)
        title = f"dlenv verify --host ({seen.get('executable')})"
    else:
        from dlenv.build import plan_build
        from dlenv.doctor import parse_gpus, query_gpus

        spec, file = _load(args.dir or ".")
        lock = _fresh_lock(spec, file, args.cache_dir, frozen=True)
        image = args.image or plan_build(spec, lock, profile=args.profile).tag
        request = request_for(lock, args.profile, (spec.workdir,))
        expect_gpu = bool(lock.target.get("cuda")) and not args.allow_cpu
        gpus = False
        if expect_gpu:
            rc, smi, _ = query_gpus()
            gpus = rc == 0 and bool(parse_gpus(smi))
        seen = probe_image(image, request, engine=args.engine, gpus=gpus, workdir=spec.workdir)
        checks = evaluate(seen, expect_gpu=expect_gpu, in_image=True)
        title = f"dlenv verify {image}"
    return _checks_result(checks, {"seen": seen}, args.json, title)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dlenv", description="Reproducible deep-learning "
                                "container environments from one spec.")
    p.add_argument("--version", action="version", version=f"dlenv {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("init", help="write a commented starter dlenv.toml")
    s.add_argument("dir", nargs="?", default=".")
    s.add_argument("--framework", help='e.g. "tensorflow==2.15.*"')
    s.add_argument("--gpu", action="store_true", help="a CUDA environment")
    s.add_argument("--python", help="Python version, e.g. 3.11")
    s.add_argument("--package", action="append", default=[], help="extra pip requirement")
    s.add_argument("--force", action="store_true", help="overwrite an existing dlenv.toml")
    s.set_defaults(func=cmd_init)

    s = sub.add_parser("matrix", help="show the compatibility matrix")
    s.add_argument("framework", nargs="?", choices=["tensorflow", "pytorch", "torch", "jax"])
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_matrix)

    s = sub.add_parser("resolve", help="decide Python, base, CUDA and driver floor, and say why")
    s.add_argument("dir", nargs="?", default=".")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_resolve)

    s = sub.add_parser("lock", help="pin every wheel and .deb by hash in dlenv.lock")
    s.add_argument("dir", nargs="?", default=".")
    s.add_argument("--check", action="store_true", help="exit 1 when the lock is stale")
    s.add_argument("--requirements", metavar="FILE", help="also write requirements.txt "
                   "with hashes")
    s.add_argument("--profile", help="profile for --requirements (default: the base set)")
    s.add_argument("--cache-dir", help="download cache (default $DLENV_CACHE_DIR or the "
                   "user cache directory)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_lock)

    s = sub.add_parser("build", help="build the image natively (no Docker daemon needed)")
    s.add_argument("dir", nargs="?", default=".")
    s.add_argument("--profile", help="build this profile's image (dev, train, serve)")
    s.add_argument("--output", action="append", default=[],
                   help="also write oci:DIR or docker-archive:FILE (repeatable)")
    s.add_argument("--load", action="store_true", help="load the image into Docker")
    s.add_argument("--tag", help="image name:tag (default NAME:latest or NAME:PROFILE)")
    s.add_argument("--compression", choices=["gzip", "zstd", "none"], default="gzip")
    s.add_argument("--frozen", action="store_true", help="fail instead of re-locking")
    s.add_argument("--no-bytecode", action="store_true",
                   help="do not precompile .pyc (smaller, but every start compiles imports)")
    s.add_argument("--no-project", action="store_true",
                   help="do not copy the spec's directory into the workdir")
    s.add_argument("--cache-dir", help="cache and image store (default $DLENV_CACHE_DIR)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_build)

    s = sub.add_parser("push", help="push the built image to a registry")
    s.add_argument("ref", help="registry/repository:tag")
    s.add_argument("dir", nargs="?", default=".")
    s.add_argument("--profile")
    s.add_argument("--cache-dir")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_push)

    s = sub.add_parser("pull", help="pull an image (by tag or digest) into the local store")
    s.add_argument("ref")
    s.add_argument("--load", action="store_true", help="also load it into Docker")
    s.add_argument("--tag", help="name to load it under")
    s.add_argument("--cache-dir")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_pull)
    s = sub.add_parser("doctor", help="check this host: engine, disk, TLS, GPU, driver, toolkit")
    s.add_argument("dir", nargs="?", help="also check that this spec's environment can run here")
    s.add_argument("--cache-dir")
    s.add_argument("--facts", help=argparse.SUPPRESS)  # replay recorded host facts (JSON)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_doctor)

    s = sub.add_parser("verify", help="prove an environment works: framework, devices, a "
                                      "matmul, a training step, XLA, the locked packages")
    s.add_argument("dir", nargs="?", help="the project (default: the current directory)")
    s.add_argument("--profile")
    s.add_argument("--image", help="verify this image instead of the project's tag")
    s.add_argument("--host", action="store_true",
                   help="run the probe in this Python environment, without a container")
    s.add_argument("--framework", choices=["tensorflow", "torch", "jax"],
                   help="with --host: which framework to probe")
    s.add_argument("--gpu", action="store_true", help="with --host: fail when no GPU is seen")
    s.add_argument("--allow-cpu", action="store_true",
                   help="do not fail a CUDA environment for lack of a GPU")
    s.add_argument("--engine", default="docker", choices=["docker", "podman"])
    s.add_argument("--cache-dir")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_verify)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except DlenvError as exc:
        err.print("[bold red]error:[/]", escape(str(exc)), soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
