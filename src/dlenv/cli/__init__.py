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
from dlenv.errors import DlenvError, SpecError, UsageError
from dlenv.run import PIDS_LIMIT

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
    from dlenv.errors import LockError
    from dlenv.lock import LOCK_FILE
    from dlenv.resolve import resolve_target
    from dlenv.resolve.locking import load_lock, target_of

    spec, file = _load(args.dir)
    try:  # a fresh lock knows what the packages chose (a framework line, a Python)
        target = target_of(spec, load_lock(spec, file.parent / LOCK_FILE))
    except LockError:
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
    from dlenv.lock import LOCK_FILE, write_lock
    from dlenv.resolve.locking import load_lock, lock_project

    spec, file = _load(args.dir)
    lock_path = file.parent / LOCK_FILE
    if args.check:
        load_lock(spec, lock_path)
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
                    "wheel_bytes": total, "target": lock.target.to_dict()})
    else:
        out.print(f"locked {len(lock.wheels)} wheels ({total / 1e6:,.1f} MB) and "
                  f"{len(lock.debs)} .debs for Python {lock.target.python} on "
                  f"{lock.target.base}: {lock_path}", soft_wrap=True)
    return 0


def _fresh_lock(spec: Any, file: Path, cache_dir: str | None, frozen: bool) -> Any:
    """The project's lock; made or remade first when missing or stale (unless --frozen).
    A lock that is damaged or does not match the spec is never overwritten silently."""
    from dlenv.errors import StaleLockError
    from dlenv.lock import LOCK_FILE, read_lock, write_lock
    from dlenv.resolve.locking import load_lock, lock_project

    path = file.parent / LOCK_FILE
    try:
        if path.exists() or frozen:
            return load_lock(spec, path) if path.exists() else read_lock(path)
    except StaleLockError:
        if frozen:
            raise
    with err.status(f"locking {spec.name} (the lock was missing or stale)"):
        lock = lock_project(spec, cache_dir=cache_dir)
    write_lock(path, lock)
    return lock


def cmd_build(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    from dlenv.image import builder_for, plan_build
    from dlenv.oci.export import export_oci, load_into_docker, parse_output, save_docker_archive

    spec, file = _load(args.dir)
    lock = _fresh_lock(spec, file, args.cache_dir, args.frozen)
    if args.backend == "docker":
        return _build_with_docker(args, spec, file, lock)
    project = () if args.no_project else _project_files(file.parent)
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


def _project_files(directory: Path) -> Any:
    """The project's files for an image; warns of any that look like credentials."""
    from dlenv.image.project import collect_project, credential_like

    files = collect_project(directory)
    for path in credential_like(files):
        err.print(f"[yellow]warning:[/] {escape(path)} looks like a credential and goes into "
                  "the image (an ignore file re-includes it); remove the '!' line from "
                  ".dlenvignore/.dockerignore unless the image must carry it", soft_wrap=True)
    return files


def _render(spec: Any, file: Path, lock: Any) -> Any:
    from dlenv.image import lock_digest
    from dlenv.image.dockerfile import render_dockerfile
    from dlenv.image.project import user_ignores

    return render_dockerfile(spec, lock, lock_digest(lock), _project_files(file.parent),
                             user_ignores(file.parent))


def _eject(spec: Any, file: Path, lock: Any, output: str | None, cache_dir: str | None) -> Any:
    from dlenv.image import builder_for
    from dlenv.image.eject import write_context

    rendered = _render(spec, file, lock)
    target = Path(output) if output else file.parent / "Dockerfile"
    builder, _ = builder_for(spec, cache_dir)
    with err.status("writing the Dockerfile and its context"):
        written = write_context(rendered, spec, lock, file.parent, target, builder)
    return rendered, target, written


def cmd_dockerfile(args: argparse.Namespace) -> int:
    spec, file = _load(args.dir)
    lock = _fresh_lock(spec, file, args.cache_dir, args.frozen)
    if args.stdout:
        sys.stdout.write(_render(spec, file, lock).dockerfile)
        return 0
    rendered, target, written = _eject(spec, file, lock, args.output, args.cache_dir)
    if args.json:
        _emit_json({"dockerfile": str(target), "targets": list(rendered.targets),
                    "written": [str(p) for p in written]})
        return 0
    out.print(f"wrote {target} (targets: {', '.join(rendered.targets)}) and its context in "
              f"{file.parent / '.dlenv'}\nbuild it: DOCKER_BUILDKIT=1 /usr/bin/docker build "
              f"--secret id=ca,src=/etc/ssl/certs/ca-certificates.crt --target runtime "
              f"-t {spec.name} {file.parent}\nor: dlenv build {args.dir} --backend docker",
              soft_wrap=True)
    return 0


def _build_with_docker(args: argparse.Namespace, spec: Any, file: Path, lock: Any) -> int:
    from dlenv.cache import host_bundle
    from dlenv.errors import BuildError
    from dlenv.image import plan_build
    from dlenv.image.eject import compare_with_lock, docker_build, installed_packages

    started = time.monotonic()
    _, target, _ = _eject(spec, file, lock, None, args.cache_dir)
    stage = args.profile or "runtime"
    tag = args.tag or plan_build(spec, lock, profile=args.profile).tag
    with err.status(f"docker build --target {stage} (BuildKit)") as status:
        image = docker_build(file.parent, target, stage, tag, host_bundle(),
                             log=lambda line: status.update(escape(line[-100:])))
    problems = compare_with_lock(installed_packages(tag), lock, args.profile)
    if problems:
        raise BuildError(f"{tag} does not hold exactly the locked packages: "
                         + "; ".join(problems[:10]), fix="report this: the Dockerfile and the "
                         "lock disagree")
    elapsed = time.monotonic() - started
    if args.json:
        _emit_json({"tag": tag, "image": image, "backend": "docker", "target": stage,
                    "dockerfile": str(target), "seconds": round(elapsed, 3)})
    else:
        out.print(f"image {tag} {image}: built by Docker from {target} (target {stage}) in "
                  f"{elapsed:.1f} s; it holds exactly the {len(lock.wheels_for(args.profile))} "
                  "locked packages", soft_wrap=True)
    return 0


def _store(cache_dir: str | None) -> Any:
    from dlenv.cache import default_cache_dir
    from dlenv.image import default_store

    return default_store(default_cache_dir(cache_dir))


def cmd_push(args: argparse.Namespace) -> int:
    from dlenv.image import lock_digest, plan_build
    from dlenv.lock import LOCK_FILE
    from dlenv.oci.registry import Reference, RegistryClient
    from dlenv.resolve.locking import load_lock

    spec, file = _load(args.dir)
    lock = load_lock(spec, file.parent / LOCK_FILE)
    plan = plan_build(spec, lock, profile=args.profile)
    store = _store(args.cache_dir)
    manifest = store.resolve(plan.tag)
    if manifest is None:
        raise UsageError(f"{plan.tag} is not built", fix=f"run 'dlenv build {args.dir}' first")
    ref = Reference.parse(args.ref)
    doc = store.read_json(manifest.digest)
    labels = store.read_json(doc["config"]["digest"]).get("config", {}).get("Labels") or {}
    for key, want in (("dev.dlenv.lock.digest", lock_digest(lock)),
                      ("dev.dlenv.spec.digest", spec.digest())):
        if labels.get(key) != want:
            raise UsageError(f"{plan.tag} in the store was built from another "
                             f"{'lock' if 'lock' in key else 'spec'} than the project's now",
                             fix=f"run 'dlenv build {args.dir}' first, then push")
    client = RegistryClient()
    try:
        with err.status(f"pushing {plan.tag} to {ref}"):
            digest, sent = client.push(store, manifest, ref)
    finally:
        client.close()
    if args.json:
        _emit_json({"ref": str(ref), "digest": digest, "blobs_sent": sent, "image": plan.tag,
                    "layers": len(doc["layers"])})
    else:
        out.print(f"pushed {plan.tag} ({len(doc['layers'])} layers, built from the current "
                  f"lock) as {ref}@{digest} ({sent} blobs sent, the rest were there)",
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

    from dlenv.checks import FAIL, worst

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
    from dlenv.lock import LOCK_FILE
    from dlenv.resolve import resolve_target
    from dlenv.resolve.locking import load_lock

    if directory is None:
        return None
    spec, file = _load(directory)
    try:
        target = load_lock(spec, file.parent / LOCK_FILE).target
    except LockError:  # no lock, or a stale one: the spec decides the same target
        target = resolve_target(spec).locked()
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

    from dlenv.lock import LOCK_FILE
    from dlenv.resolve.locking import load_lock, spec_requirements
    from dlenv.verify import Request, evaluate, probe_host, probe_image, request_for

    if args.host:
        request = Request(framework=args.framework, packages=())
        if args.dir is not None:
            spec, file = _load(args.dir)
            request = request_for(load_lock(spec, file.parent / LOCK_FILE), args.profile)
            if args.framework:
                request = replace(request, framework=args.framework)
        seen = probe_host(request)
        checks = evaluate(seen, expect_gpu=args.gpu, in_image=False)
        title = f"dlenv verify --host ({seen.get('executable')})"
    else:
        from dlenv.doctor import parse_gpus, query_gpus
        from dlenv.image import plan_build

        spec, file = _load(args.dir or ".")
        lock = _fresh_lock(spec, file, args.cache_dir, frozen=True)
        image = args.image or plan_build(spec, lock, profile=args.profile).tag
        request = request_for(lock, args.profile, (spec.workdir,), spec_requirements(spec))
        expect_gpu = bool(lock.target.cuda) and not args.allow_cpu
        gpus = False
        if expect_gpu:
            rc, smi, _ = query_gpus()
            gpus = rc == 0 and bool(parse_gpus(smi))
        seen = probe_image(image, request, engine=args.engine, gpus=gpus, workdir=spec.workdir)
        checks = evaluate(seen, expect_gpu=expect_gpu, in_image=True)
        title = f"dlenv verify {image}"
    return _checks_result(checks, {"seen": seen}, args.json, title)


# --- run, shell, jupyter, ssh, ps, stop ----------------------------------------------------

def _public_key(path: str | None) -> tuple[str | None, str | None]:
    """The public key's text and the matching private key's path (for ~/.ssh/config)."""
    from dlenv.errors import EngineError

    candidates = [Path(path).expanduser()] if path else [
        Path.home() / ".ssh" / f"id_{k}.pub" for k in ("ed25519", "ecdsa", "rsa")]
    for pub in candidates:
        if pub.is_file():
            text = pub.read_text().strip()
            if not text.startswith(("ssh-", "ecdsa-", "sk-")):
                raise EngineError(f"{pub} is not an SSH public key",
                                  fix="pass the .pub file made by ssh-keygen with --key")
            private = pub.with_suffix("") if pub.suffix == ".pub" else None
            return text, str(private) if private and private.exists() else None
    if path:
        raise EngineError(f"no public key at {path}", fix="make one with 'ssh-keygen -t "
                          "ed25519' or pass another with --key")
    return None, None


def _mounts(values: Sequence[str]) -> tuple[Any, ...]:
    from dlenv.errors import UsageError
    from dlenv.fsutil import shorten
    from dlenv.run import Mount

    out = []
    for value in values:
        parts = value.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
            raise UsageError(f"--mount {shorten(value)} is not HOST:CONTAINER[:ro]",
                             fix="e.g. --mount ~/datasets:/data/datasets:ro")
        target = parts[1]
        if not target.startswith("/") or any(p in (".", "..") for p in target.split("/")) \
                or target.rstrip("/") in ("", "/proc", "/sys", "/dev", "/etc"):
            raise UsageError(f"--mount: {shorten(target)} is not an absolute container path "
                             "outside the system directories", fix="e.g. /data/datasets")
        source = Path(parts[0]).expanduser().resolve()
        if not source.exists():
            raise UsageError(f"--mount: {source} does not exist",
                             fix="create it first, or fix the path")
        out.append(Mount(str(source), target, readonly=len(parts) == 3 and parts[2] == "ro"))
    return tuple(out)


def _publish(values: Sequence[str]) -> tuple[tuple[int | None, int], ...]:
    from dlenv.errors import UsageError
    from dlenv.fsutil import shorten

    out: list[tuple[int | None, int]] = []
    for value in values:
        host, _, container = value.rpartition(":")
        try:
            ports = (int(host) if host else None, int(container))
        except ValueError:
            ports = (0, 0)
        if not all(p is None or 0 < p < 65536 for p in ports):
            raise UsageError(f"--publish {shorten(value)} is not [HOST:]CONTAINER with ports "
                             "1-65535", fix="e.g. --publish 6006 or --publish 16006:6006")
        out.append(ports)
    return tuple(out)


def _limits(args: argparse.Namespace) -> None:
    """Resource limits are passed to the engine as they are: check their form first."""
    import re

    from dlenv.errors import UsageError
    from dlenv.fsutil import shorten

    for flag, value, pattern, example in (
            ("--memory", args.memory, r"\d+(\.\d+)?[bkmgBKMG]?", "16g"),
            ("--shm-size", args.shm_size, r"\d+(\.\d+)?[bkmgBKMG]?", "8g"),
            ("--cpus", args.cpus, r"\d+(\.\d+)?", "4")):
        if value is not None and not re.fullmatch(pattern, value):
            raise UsageError(f"{flag} {shorten(value)} is not a size or number",
                             fix=f"e.g. {flag} {example}")
    if args.pids_limit < 0:
        raise UsageError("--pids-limit must be 0 (the engine's default) or more")
    if args.image is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}",
                                                   args.image):
        raise UsageError(f"--image {shorten(args.image)} is not an image name or id",
                         fix="e.g. --image team/env:1 or --image sha256:…")


def _ssh_config_entry(alias: str, port: int, user: str, identity: str | None) -> None:
    """Add or replace this environment's block in ~/.ssh/config (atomically)."""
    from dlenv.fsutil import write_atomic

    path = Path.home() / ".ssh" / "config"
    begin, end = f"# >>> dlenv {alias}", f"# <<< dlenv {alias}"
    old = path.read_text() if path.exists() else ""
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        old = head + rest.split(end, 1)[1].lstrip("\n")
    lines = [begin, f"Host {alias}", "    HostName 127.0.0.1", f"    Port {port}",
             f"    User {user}", *([f"    IdentityFile {identity}"] if identity else []),
             "    IdentitiesOnly yes", end]
    path.parent.mkdir(mode=0o700, exist_ok=True)
    write_atomic(path, ("\n".join(lines) + "\n\n" + old).encode())
    path.chmod(0o600)


def cmd_run(args: argparse.Namespace) -> int:
    import os
    import secrets

    from dlenv.cache import default_cache_dir, host_bundle
    from dlenv.doctor import diagnose, gather, needs_from_target
    from dlenv.engine import detect
    from dlenv.image import builder_for, plan_build
    from dlenv.oci.export import write_docker_archive
    from dlenv.run import Host, RunOptions, choose_profile, decide_gpus, plan_run
    from dlenv.run.launch import (
        default_data_dir,
        free_port,
        host_ids,
        image_for,
        run_foreground,
        start_detached,
    )

    mode = args.mode
    spec, file = _load(args.dir)
    project = file.parent.resolve()
    profile = choose_profile(spec, mode, args.profile)
    key, identity = _public_key(args.key) if mode == "ssh" else (None, None)
    mounts, publish = _mounts(args.mount), _publish(getattr(args, "publish", []))
    _limits(args)
    engine = detect(args.engine)
    lock = _fresh_lock(spec, file, args.cache_dir, frozen=False)
    gpus = False
    if lock.target.cuda:
        facts = gather(default_cache_dir(args.cache_dir))
        gpus = decide_gpus(True, diagnose(facts, needs_from_target(spec.name, lock.target)),
                           args.allow_cpu)
    if args.image:
        image = args.image
    else:
        plan = plan_build(spec, lock, profile=profile, for_run=True)
        builder, _ = builder_for(spec, args.cache_dir)
        with err.status(f"building {plan.tag}"):
            result = builder.build(plan)
        tag = plan.tag  # the project is mounted, not copied: not `dlenv build`'s tag
        with err.status(f"loading {tag} into {engine.kind}"):
            image_for(tag, result.config.digest, engine,
                      lambda f: write_docker_archive(builder.store, result.manifest, f, tag))
        image = result.config.digest
    port = args.port if getattr(args, "port", None) else None
    expose_ip = "0.0.0.0" if args.expose else "127.0.0.1"
    if mode in ("jupyter", "ssh") and port is None:
        port = free_port(expose_ip, 8888 if mode == "jupyter" else 2222)
    uid, gid = host_ids(project)
    token = secrets.token_urlsafe(32) if mode == "jupyter" else ""
    host = Host(project_dir=str(project), uid=uid, gid=gid,
                data_dir=str(default_data_dir().resolve()),
                memory_bytes=os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
                ca_bundle=None if args.no_host_ca else host_bundle(),
                nonce=secrets.token_hex(2), token=token)
    options = RunOptions(
        mode=mode, command=tuple(getattr(args, "cmd", ()) or ()), memory=args.memory,
        cpus=args.cpus, shm_size=args.shm_size, pids_limit=args.pids_limit,
        publish=publish, port=port,
        expose=args.expose, gpus=gpus, mounts=mounts, volumes=not args.no_volumes,
        tty=sys.stdin.isatty() and sys.stdout.isatty(), authorized_key=key)
    run_plan = plan_run(spec, image, profile, options, host, image_env=spec.env)
    if args.dry_run:
        _emit_json({**run_plan.to_json(), "argv": [engine.exe, "run", *run_plan.args(
            engine.kind)]})
        return 0
    for note in run_plan.notes:
        err.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
    if not run_plan.detach:
        return run_foreground(run_plan, engine)
    start_detached(run_plan, engine, token=token)
    if mode == "ssh" and args.ssh_config:
        _ssh_config_entry(f"dlenv-{spec.name}", int(run_plan.extra["port"]), spec.user.name,
                          identity)
    if args.json:
        _emit_json(run_plan.to_json())
        return 0
    if mode == "jupyter":
        out.print(f"JupyterLab for {spec.name} ({profile}) runs as {run_plan.name}:\n"
                  f"  {run_plan.extra['url']}\n"
                  f"notebooks are in {project}; 'dlenv stop {args.dir or '.'}' ends it",
                  soft_wrap=True)
    else:
        line = run_plan.extra["ssh"] + (f" -i {identity}" if identity else "")
        out.print(f"SSH for {spec.name} ({profile}) runs as {run_plan.name}:\n  {line}",
                  soft_wrap=True)
        if args.ssh_config:
            out.print(f"  or: ssh dlenv-{spec.name}  (added to ~/.ssh/config for VS Code "
                      "Remote-SSH)")
    return 0


def _started(args: argparse.Namespace) -> tuple[Any, list[Any]]:
    from dlenv.engine import LABEL, detect

    engine = detect(args.engine)
    found = engine.containers(f"{LABEL}.env")
    if getattr(args, "dir", None):
        _, file = _load(args.dir)
        project = str(file.parent.resolve())
        found = [c for c in found if c.labels.get(f"{LABEL}.project") == project]
    return engine, found


def cmd_ps(args: argparse.Namespace) -> int:
    from dlenv.engine import LABEL

    _, found = _started(args)
    if args.json:
        _emit_json([c.to_json() for c in found])
        return 0
    table = Table(title="containers dlenv started")
    for col in ("name", "env", "mode", "profile", "status", "ports"):
        table.add_column(col)
    for c in found:
        table.add_row(c.name, c.labels.get(f"{LABEL}.env", ""), c.labels.get(f"{LABEL}.mode", ""),
                      c.labels.get(f"{LABEL}.profile", ""), c.status, c.ports)
    out.print(table)
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from dlenv.errors import EngineError

    engine, found = _started(args)
    if args.name:
        known = {c.name for c in found}
        unknown = [n for n in args.name if n not in known]
        if unknown:
            raise EngineError(f"not started by dlenv: {', '.join(unknown)}",
                              fix="'dlenv ps' lists the containers dlenv started")
        names = list(args.name)
    else:
        names = [c.name for c in found]
    for name in names:
        engine.remove(name)
    stopped = names
    if args.json:
        _emit_json({"stopped": stopped})
    else:
        out.print(f"stopped {len(stopped)} container(s)" + (": " + ", ".join(stopped)
                                                              if stopped else ""))
    return 0


def cmd_lint(args: argparse.Namespace) -> int:
    from dlenv.errors import DlenvError
    from dlenv.lint import (
        SEVERITIES,
        at_or_above,
        hadolint_binary,
        lint_path,
        run_hadolint,
        to_sarif,
    )

    paths = [Path(p) for p in args.paths] or [Path("Dockerfile")]
    hadolint = None if args.no_hadolint else hadolint_binary()
    findings = []
    for path in paths:
        if not path.is_file():
            raise DlenvError(f"{path}: no such file", fix="name a Dockerfile or compose file")
        findings += lint_path(path)
        if hadolint and path.suffix not in (".yml", ".yaml"):
            findings += run_hadolint(path, hadolint)
    findings.sort(key=lambda f: (f.file, f.line, SEVERITIES.index(f.severity), f.rule))
    failing = at_or_above(findings, args.failure_threshold)
    if args.format == "json":
        _emit_json({"findings": [f.to_json() for f in findings], "hadolint": bool(hadolint),
                    "failed": bool(failing)})
    elif args.format == "sarif":
        _emit_json(to_sarif(findings))
    else:
        colour = {"error": "red", "warning": "yellow", "info": "cyan", "style": "dim"}
        for f in findings:
            out.print(f"{escape(f.file)}:{f.line}: [{colour[f.severity]}]{f.severity}[/] "
                      f"{f.rule} {escape(f.message)}" + (f"\n    fix: {escape(f.fix)}"
                                                           if f.fix else ""), soft_wrap=True)
        counts = {s: sum(f.severity == s for f in findings) for s in SEVERITIES}
        out.print(f"{len(paths)} file(s): " + ", ".join(f"{n} {s}" for s, n in counts.items())
                  + ("" if hadolint else " (hadolint not installed: dlenv rules only)"))
    return 1 if failing else 0


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
    s.add_argument("--backend", choices=["native", "docker"], default="native",
                   help="docker: render the Dockerfile and build it with BuildKit")
    s.add_argument("--frozen", action="store_true", help="fail instead of re-locking")
    s.add_argument("--no-bytecode", action="store_true",
                   help="do not precompile .pyc (smaller, but every start compiles imports)")
    s.add_argument("--no-project", action="store_true",
                   help="do not copy the spec's directory into the workdir")
    s.add_argument("--cache-dir", help="cache and image store (default $DLENV_CACHE_DIR)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_build)

    s = sub.add_parser("dockerfile", help="render the lock as a multi-stage Dockerfile (eject)")
    s.add_argument("dir", nargs="?", default=".")
    s.add_argument("-o", "--output", help="where to write it (default DIR/Dockerfile)")
    s.add_argument("--stdout", action="store_true", help="print it, write nothing")
    s.add_argument("--frozen", action="store_true", help="fail instead of re-locking")
    s.add_argument("--cache-dir")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_dockerfile)

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

    for mode, text in (
            ("run", "run the environment's command (or -- CMD) with the project mounted"),
            ("shell", "an interactive shell in the environment (dev profile by default)"),
            ("jupyter", "JupyterLab from the dev profile, on 127.0.0.1 with a token"),
            ("ssh", "an SSH server (key only) from the dev profile, for VS Code Remote-SSH")):
        s = sub.add_parser(mode, help=text)
        s.add_argument("dir", nargs="?", default=".")
        s.add_argument("--profile", help="profile to run (default: dev for shell/jupyter/ssh)")
        s.add_argument("--image", help="run this image (tag or id) instead of building")
        s.add_argument("--engine", choices=["docker", "podman"],
                       help="container engine (default: the first that answers)")
        s.add_argument("--memory", help="memory limit, e.g. 16g")
        s.add_argument("--cpus", help="CPU limit, e.g. 4")
        s.add_argument("--shm-size", help="/dev/shm size (default: a quarter of the host's "
                       "memory, 1g to 16g)")
        s.add_argument("--pids-limit", type=int, default=PIDS_LIMIT,
                       help=f"most processes and threads (default {PIDS_LIMIT}; 0: no limit)")
        s.add_argument("--mount", action="append", default=[], metavar="HOST:CONTAINER[:ro]",
                       help="also bind-mount a host path (repeatable)")
        s.add_argument("--no-volumes", action="store_true",
                       help="no named volumes for home, /data and /models")
        s.add_argument("--expose", action="store_true",
                       help="publish ports on every interface, not only 127.0.0.1")
        s.add_argument("--allow-cpu", action="store_true",
                       help="run a CUDA environment without a GPU")
        s.add_argument("--no-host-ca", action="store_true",
                       help="do not mount the host's CA bundle (read-only) for pip and HTTPS")
        s.add_argument("--dry-run", action="store_true",
                       help="print the plan and the engine command, start nothing")
        s.add_argument("--cache-dir")
        if mode in ("run", "shell"):
            s.add_argument("--publish", "-p", action="append", default=[],
                           metavar="[HOST:]CONTAINER", help="publish a port on 127.0.0.1")
        else:
            s.add_argument("--port", type=int, help="host port (default: the first free from "
                           + ("8888)" if mode == "jupyter" else "2222)"))
            s.add_argument("--json", action="store_true")
        if mode == "ssh":
            s.add_argument("--key", help="public key to log in with (default ~/.ssh/id_*.pub)")
            s.add_argument("--ssh-config", action="store_true",
                           help="add a Host entry to ~/.ssh/config (VS Code Remote-SSH)")
        s.set_defaults(func=cmd_run, mode=mode, cmd=[], json=False, key=None, port=None,
                       publish=[], ssh_config=False)

    s = sub.add_parser("lint", help="ML-aware checks for Dockerfiles and compose files "
                                    "(and hadolint's, when installed)")
    s.add_argument("paths", nargs="*", help="Dockerfiles or compose files (default Dockerfile)")
    s.add_argument("--format", choices=["text", "json", "sarif"], default="text")
    s.add_argument("--failure-threshold", choices=["error", "warning", "info", "style", "none"],
                   default="warning", help="exit 1 when a finding is this severe or more")
    s.add_argument("--no-hadolint", action="store_true", help="dlenv's rules only")
    s.set_defaults(func=cmd_lint)

    s = sub.add_parser("ps", help="list the containers dlenv started")
    s.add_argument("dir", nargs="?", help="only this project's")
    s.add_argument("--engine", choices=["docker", "podman"])
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_ps)

    s = sub.add_parser("stop", help="stop and remove containers dlenv started (a project's, "
                                    "or --name)")
    s.add_argument("dir", nargs="?", default=".")
    s.add_argument("--name", action="append", default=[], help="only this container")
    s.add_argument("--engine", choices=["docker", "podman"])
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_stop)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if "--" in argv and argv and argv[0] == "run":  # dlenv run [DIR] [options] -- CMD ...
        at = argv.index("--")
        argv, command = argv[:at], argv[at + 1:]
    args = parser.parse_args(argv)
    if command:
        args.cmd = command
    try:
        code: int = args.func(args)
        return code
    except DlenvError as exc:
        err.print("[bold red]error:[/]", escape(str(exc)), soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except OSError as exc:
        # The world said no: a full disk, a permission, a path that is a file. Every write
        # went to a temporary name first, so what was there before is intact.
        err.print("[bold red]error:[/]", escape(_os_error(exc)), soft_wrap=True)
        return 3


def _os_error(exc: OSError) -> str:
    import errno

    where = f": {exc.filename}" if exc.filename else ""
    text = f"{exc.strerror or exc}{where}"
    if exc.errno == errno.ENOSPC:
        return (f"{text} — the disk is full; nothing was replaced (the cache, the store and "
                "the previous image are intact). Free space, or point --cache-dir / "
                "DLENV_CACHE_DIR at a larger disk, and run again")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{text} — dlenv may not write there; check the owner and permissions"
    return text
