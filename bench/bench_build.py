"""Compare dlenv with `docker build` of the Dockerfile users write, in one run, on the
paths users wait on: to an image runnable in Docker (cold, one package added, unchanged),
pushed to a registry, a sibling environment's new bytes, and a command run in it.

    python3 bench/bench_build.py [examples/tensorflow-cpu] [--eject] [--json]

Both sides start from the same Debian bookworm Python base (dlenv builds it from .debs and
loads it into Docker as the Dockerfile's FROM) and install the same pinned, hashed
requirements from the same lock. Docker side: BuildKit through /usr/bin/docker with
DOCKER_BUILDKIT=1, the host's CA bundle passed as a build secret (never in a layer). Pushes
go to Debian's docker-registry on 127.0.0.1, started here; pushed bytes are the growth of its
storage. Times are wall-clock seconds of each command; peak memory is the build process's
max RSS. Nothing here is asserted: the numbers are printed, with ratios.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dlenv.oci.store import OCIStore

ROOT = Path(__file__).resolve().parent.parent
DOCKER = "/usr/bin/docker"
EXTRA = "tomli==2.0.1"  # the "one small package" both sides add
SIBLING = "scikit-learn"  # the second environment: the same framework and this
DOCKERFILE = """\
# What a team writes by hand for the same environment: the same base, pip of the same pins.
FROM {base}
USER root
WORKDIR /workspace
COPY requirements.txt /tmp/requirements.txt
RUN --mount=type=secret,id=ca PIP_CERT=/run/secrets/ca pip install --no-cache-dir \\
    --break-system-packages --require-hashes -r /tmp/requirements.txt
USER 1000:1000
"""


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    """Run cmd; return seconds and stdout. Stop the benchmark on error."""
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                          env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return time.monotonic() - start, proc.stdout


def peak_rss(cmd: list[str], env: dict[str, str]) -> tuple[float, int, str, float]:
    """Like timed, and the child's peak RSS in MiB and its CPU seconds, with those of the
    processes it waited for (from wait4)."""
    start = time.monotonic()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True,
                                env={**os.environ, **env})
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.monotonic() - start
        if proc.returncode != 0:
            err.seek(0)
            sys.exit(f"command failed: {' '.join(cmd)}\n{err.read()[-2000:]}")
    return elapsed, usage.ru_maxrss // 1024, out, usage.ru_utime + usage.ru_stime


def dockerd_cpu() -> float:
    """CPU seconds the Docker daemon has used, with the helpers it waited for (its layer
    unpacking runs in a child process), from /proc."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if text[text.index("(") + 1:text.rindex(")")] == "dockerd":
            ticks = [int(x) for x in text[text.rindex(")") + 2:].split()[11:15]]
            return sum(ticks) / os.sysconf("SC_CLK_TCK")
    return float("nan")


def compile_dlenv() -> None:
    """Give dlenv its bytecode before anything is timed, as an installed dlenv has it (pip
    compiles at install). A checkout installed with ``pip -e`` writes it at the first start,
    unless PYTHONDONTWRITEBYTECODE is set, and then every start compiles dlenv again: about
    0.1 s of each command here, which users do not pay."""
    import importlib.util

    found = importlib.util.find_spec("dlenv")
    assert found is not None and found.origin is not None
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(found.origin).parent)],
                   check=True, env={k: v for k, v in os.environ.items()
                                    if k != "PYTHONDONTWRITEBYTECODE"})


def dlenv(*args: str) -> list[str]:
    return [sys.executable, "-m", "dlenv", *args]


def add_package(project: Path, package: str = EXTRA) -> None:
    spec = project / "dlenv.toml"
    text = spec.read_text()
    marker = "packages = ["
    if marker in text:
        text = text.replace(marker, f'{marker}"{package}", ', 1)
    else:
        text = text.replace("\n[", f'\npackages = ["{package}"]\n\n[', 1) if "\n[" in text \
            else text + f'packages = ["{package}"]\n'
    spec.write_text(text)


def docker_build(context: Path, tag: str, ca: str) -> float:
    env = {"DOCKER_BUILDKIT": "1"}
    seconds, _ = timed([DOCKER, "build", "-q", "-t", tag, "--secret", f"id=ca,src={ca}",
                           str(context)], env=env)
    return seconds


def eject_build(project: Path, base: str, tag: str, ca: str, env: dict[str, str]
                ) -> tuple[float, float]:
    """`dlenv dockerfile` (portable, on ``base``), then `docker build` of it, as a team that
    keeps the Dockerfile does after changing the spec: the seconds of each."""
    from dlenv.resolve.debian import find_mirror

    seconds, _ = timed(dlenv("dockerfile", str(project), "--base", base), env=env)
    more, _ = timed([DOCKER, "build", "-q", "--target", "runtime", "-t", tag, "--secret",
                     f"id=ca,src={ca}", "--build-arg",
                     f"DEBIAN_MIRROR={find_mirror(os.environ)}", str(project)],
                    env={"DOCKER_BUILDKIT": "1"})
    return seconds, more


def image_facts(tag: str) -> tuple[int, int]:
    out = subprocess.run([DOCKER, "image", "inspect", tag], capture_output=True, text=True,
                         check=True).stdout
    info = json.loads(out)[0]
    return int(info["Size"]), len(info["RootFS"]["Layers"])


def paired_medians(a: list[str], b: list[str], env: dict[str, str], n: int = 3
                   ) -> tuple[float, float]:
    """The median wall times of ``n`` runs each of ``a`` and ``b``, taken in turn (a, b, a,
    b, ...) after one run of each that warms caches, so that a slower minute of the machine
    weighs on both sides alike."""
    timed(a, env)
    timed(b, env)
    pairs = [(timed(a, env)[0], timed(b, env)[0]) for _ in range(n)]
    return sorted(x for x, _ in pairs)[n // 2], sorted(y for _, y in pairs)[n // 2]


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


class Registry:
    """Debian's docker-registry on 127.0.0.1, stopped by its PID; ``grew`` measures pushes."""

    def __init__(self, work: Path) -> None:
        import socket
        import urllib.request

        binary = shutil.which("docker-registry")
        if binary is None:
            sys.exit("docker-registry is not installed (apt-get install docker-registry)")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.data = work / "registry"
        config = work / "registry.yml"
        config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: "
                          f"{self.data}\nhttp:\n  addr: 127.0.0.1:{port}\n")
        self.host = f"127.0.0.1:{port}"
        self.proc = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        for _ in range(50):
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1)
                break
            except OSError:
                time.sleep(0.2)

    def push(self, cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
        """Seconds of the push and the bytes the registry's storage grew by."""
        before = du(self.data)
        seconds, _ = timed(cmd, env)
        return seconds, du(self.data) - before

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def lower_bound(cache: Path, lock_wheels: list[dict[str, object]], store: Path,
                layers: list[dict[str, object]]) -> dict[str, float]:
    """Reading every wheel once plus compressing every layer's bytes at isal's speed here;
    and the bytes the layers take compressed as `build --compression zstd` writes them (what
    a registry would store, for engines that read zstd), from the same pass over them."""
    from isal import igzip_threaded

    start = time.monotonic()
    read = 0
    for w in lock_wheels:
        with open(cache / "blobs/sha256" / str(w["sha256"]), "rb") as f:
            while chunk := f.read(1 << 20):
                read += len(chunk)
    read_s = time.monotonic() - start
    from dlenv.oci.layer import LayerOptions, compress_layer, compress_threads

    raw = zstd = 0
    for layer in layers:
        digest = str(layer["digest"]).split(":")[1]
        with gzip.open(store / "blobs/sha256" / digest) as f, open(os.devnull, "wb") as sink:
            blob = compress_layer(f, sink, "zstd")
        raw += blob.diff_size
        zstd += blob.descriptor.size
    # the compressor's speed on real data: the largest layer's content, as dlenv compresses it

    largest = max(layers, key=lambda x: int(str(x["size"])))
    with gzip.open(store / "blobs/sha256" / str(largest["digest"]).split(":")[1]) as f:
        sample = f.read(512 << 20)
    start = time.monotonic()
    with open(os.devnull, "wb") as sink, igzip_threaded.open(  # type: ignore[no-untyped-call]
            sink, "wb", compresslevel=LayerOptions(epoch=0).level,
            threads=compress_threads()) as z:
        z.write(sample)
    speed = len(sample) / (time.monotonic() - start)
    return {"wheel_bytes": read, "read_s": read_s, "layer_bytes": raw,
            "compress_mb_s": speed / 1e6, "bound_s": read_s + raw / speed, "zstd_bytes": zstd}


def stored_image(store_dir: Path, tag: str) -> dict[str, Any]:
    """The manifest digest, size and layers (digest, size) the store's tag names."""
    from dlenv.oci.store import OCIStore

    store = OCIStore(store_dir)
    manifest = store.resolve(tag)
    assert manifest is not None, tag
    doc = store.read_json(manifest.digest)
    layers = [{"digest": x["digest"], "size": x["size"]} for x in doc["layers"]]
    return {"digest": manifest.digest, "layers": layers,
            "size": manifest.size + doc["config"]["size"] + sum(x["size"] for x in layers)}


def load_floor(store_dir: Path, digest: str, work: Path, tags: list[str]
               ) -> tuple[float, int, float]:
    """Seconds of Docker's own `load` of the first image's archive (written beforehand, as
    dlenv sends it: layers uncompressed), once the bench's images are gone: the floor of a
    cold load into Docker; how many layers other images on this engine held (Docker skips
    them); the CPU seconds the load took, the daemon's and the client's."""
    from dlenv.oci import MT_MANIFEST, Descriptor
    from dlenv.oci.export import write_docker_archive
    from dlenv.oci.store import OCIStore

    store = OCIStore(store_dir)
    manifest = Descriptor(media_type=MT_MANIFEST, digest=digest,
                          size=store.blob_path(digest).stat().st_size)
    # The archive is written first, so the load alone is timed: into memory (/dev/shm) when
    # it fits there, else beside the work, else the floor is not measured (a 5.5 GB CUDA
    # image filled this disk once).
    need = sum(store.diff_size(x["digest"]) or x["size"]
               for x in store.read_json(digest)["layers"]) * 11 // 10 + (512 << 20)
    room = [d for d in (Path("/dev/shm"), work) if d.is_dir() and shutil.disk_usage(d).free > need]
    if not room:
        return float("nan"), 0, float("nan")
    archive = room[0] / f"dlenv-bench-{os.getpid()}.tar"
    try:
        with archive.open("wb") as f:
            write_docker_archive(store, manifest, f, "bench-floor/image:1", unpacked=True)
        return _timed_load(store, digest, archive, tags)
    finally:
        archive.unlink(missing_ok=True)


def _timed_load(store: OCIStore, digest: str, archive: Path, tags: list[str]
                ) -> tuple[float, int, float]:
    from dlenv.engine import detect
    from dlenv.oci.image import chain_ids
    from dlenv.workflows.build import IMAGE_LABEL

    config = store.read_json(store.read_json(digest)["config"]["digest"])
    spec_digest = config["config"]["Labels"][IMAGE_LABEL]
    same = subprocess.run([DOCKER, "images", "-q", "--no-trunc", "--filter",
                           f"label={IMAGE_LABEL}={spec_digest}"], capture_output=True,
                          text=True, check=False).stdout.split()
    subprocess.run([DOCKER, "rmi", *tags], capture_output=True, check=False)
    subprocess.run([DOCKER, "rmi", "--force", *same], capture_output=True, check=False)
    held = detect("docker").held_layers(IMAGE_LABEL)
    chains = chain_ids(config["rootfs"]["diff_ids"])
    before = dockerd_cpu()
    seconds, _, _, client = peak_rss([DOCKER, "load", "-q", "-i", str(archive)], {})
    cpu = dockerd_cpu() - before + client
    subprocess.run([DOCKER, "rmi", "bench-floor/image:1"], capture_output=True, check=False)
    return seconds, sum(c in held for c in chains), cpu


def probe_for(lock_text: str) -> str:
    for module in ("tensorflow", "torch", "jax"):
        if f'name = "{module}"' in lock_text:
            return f"import {module}"
    return "import sys"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("example", nargs="?", default=str(ROOT / "examples/tensorflow-cpu"))
    parser.add_argument("--eject", action="store_true",
                        help="also build dlenv's portable Dockerfile with Docker (slow)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    compile_dlenv()
    ca = os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
    work = Path(tempfile.mkdtemp(prefix="dlenv-bench-"))
    rows: dict[str, float | str | int] = {}
    registry = Registry(work)
    name = Path(args.example).resolve().name
    tags = [f"bench-{side}/{name}:{n}" for side in ("dlenv", "docker", "eject")
            for n in ("1", "2", "sibling")]
    try:
        project = work / "project"
        shutil.copytree(args.example, project, ignore=shutil.ignore_patterns("dlenv.lock"))
        timed(dlenv("lock", str(project)))
        lock_text = (project / "dlenv.lock").read_text()
        probe = ["python3", "-c", probe_for(lock_text)]
        subprocess.run([DOCKER, "rmi", *tags], capture_output=True, check=False)

        cache, cache2 = work / "cache", work / "cache2"
        env = {"DLENV_CACHE_DIR": str(cache)}
        # The Dockerfile's base: the same Debian Python (with pip) that dlenv builds on,
        # built first, so that both cold builds start from a base they hold (Docker's in its
        # image store, dlenv's in its cache and in Docker) and download every wheel.
        base = work / "base"
        base.mkdir()
        (base / "dlenv.toml").write_text(f'name = "bench-base"\npython = '
                                         f'"{tomllib.loads(lock_text)["target"]["python"]}"\n')
        timed(dlenv("build", str(base), "--load", "--tag", "bench-base:1"), env=env)

        # dlenv, to an image runnable in Docker: cold, then unchanged; pushed; run
        load = ["--load", "--tag", f"bench-dlenv/{name}:1", "--json"]
        cold, rss, out, cold_cpu = peak_rss(dlenv("build", str(project), *load), env)
        first = json.loads(out)
        unchanged, _, out, _ = peak_rss(dlenv("build", str(project), *load), env)
        rows.update(dlenv_cold=cold, dlenv_unchanged=unchanged, dlenv_peak_rss_mib=rss,
                    dlenv_cold_cpu=cold_cpu,
                    dlenv_cold_held=first["load"]["held_layers"]
                    - first["load"].get("early_layers", 0),
                    dlenv_cold_early=first["load"].get("early_layers", 0),
                    dlenv_unchanged_sent=json.loads(out)["load"]["sent_layers"])
        rows["dlenv_push"], rows["dlenv_push_bytes"] = registry.push(
            dlenv("push", f"{registry.host}/bench-dlenv/{name}:1", str(project)), env)
        # the image as pushed: `build --load` kept its layers plain, the push packed them
        packed = stored_image(cache / "store", f"bench-dlenv/{name}:1")
        print(f"dlenv cold {cold:.1f} s, unchanged {unchanged:.2f} s, push "
              f"{rows['dlenv_push']:.1f} s", file=sys.stderr)
        # another machine's cache, holding the base as both sides' cold builds do (Docker's
        # in its image store): the same digest, and the build a CI job pushes
        timed(dlenv("build", str(base)), env={"DLENV_CACHE_DIR": str(cache2)})
        again, _, out2, _ = peak_rss(dlenv("build", str(project), "--json"),
                                  {"DLENV_CACHE_DIR": str(cache2)})
        # the path of a CI job that builds and pushes, with no Docker: that build, pushed to
        # a registry of its own (the first one holds every blob already)
        (work / "registry2").mkdir()
        registry2 = Registry(work / "registry2")
        try:
            rows["dlenv_push_built"], _ = registry2.push(
                dlenv("push", f"{registry2.host}/bench-dlenv/{name}:1", str(project)),
                {"DLENV_CACHE_DIR": str(cache2)})
        finally:
            registry2.stop()
        shutil.rmtree(cache2)
        rows.update(dlenv_cold_again=again,
                    same_digest=str(packed["digest"] == json.loads(out2)["digest"]))
        wheels = tomllib.loads(lock_text).get("wheels", [])
        bound = lower_bound(cache, wheels, cache / "store", packed["layers"])

        context = work / "context"
        context.mkdir()
        (context / "Dockerfile").write_text(DOCKERFILE.format(base="bench-base:1"))
        timed(dlenv("lock", str(project), "--requirements", str(context / "requirements.txt")))
        subprocess.run([DOCKER, "builder", "prune", "-af"], capture_output=True, check=False)
        rows["docker_cold"] = docker_build(context, f"bench-docker/{name}:1", ca)
        rows["docker_unchanged"] = docker_build(context, f"bench-docker/{name}:1", ca)
        timed([DOCKER, "tag", f"bench-docker/{name}:1", f"{registry.host}/bench-docker/{name}:1"])
        rows["docker_push"], rows["docker_push_bytes"] = registry.push(
            [DOCKER, "push", "-q", f"{registry.host}/bench-docker/{name}:1"])
        print(f"docker cold {rows['docker_cold']:.1f} s, push {rows['docker_push']:.1f} s",
              file=sys.stderr)
        if args.eject:
            # the portable Dockerfile, on a stand-in for debian:bookworm-slim served by the
            # bench's registry (none on the internet is reachable here)
            sys.path.insert(0, str(ROOT))
            from tests.conftest import standin_base

            slim = standin_base(registry.host, work)
            # its own copy: `dlenv run` as root grants the image's user an ACL on the
            # project, which changes the files' group bits, and BuildKit keys its cache on
            # the modes of what a RUN mounts, so the next build would miss every stage once
            ejected = work / "ejected"
            shutil.copytree(args.example, ejected, ignore=shutil.ignore_patterns("dlenv.lock"))
            subprocess.run([DOCKER, "builder", "prune", "-af"], capture_output=True,
                           check=False)
            write, build = eject_build(ejected, slim, f"bench-eject/{name}:1", ca, env)
            rows.update(eject_write_cold=write, eject_docker_cold=build,
                        eject_cold=write + build)

        # a command in each image: `dlenv run` (its run image, loaded once) vs `docker run`
        # (a CUDA image runs on the CPU here: no GPU; Docker's side gets none either)
        accelerator = tomllib.loads((project / "dlenv.toml").read_text()).get("accelerator")
        cpu = ["--allow-cpu"] if accelerator == "cuda" else []
        rows["dlenv_run"], rows["docker_run"] = paired_medians(
            dlenv("run", str(project), *cpu, "--", *probe),
            [DOCKER, "run", "--rm", f"bench-docker/{name}:1", *probe], env)
        # what `dlenv run` adds alone: `true` through dlenv, and in the same image by Docker
        rows["dlenv_run_true"], rows["docker_run_true"] = paired_medians(
            dlenv("run", str(project), *cpu, "--", "true"),
            [DOCKER, "run", "--rm", f"bench-dlenv/{name}:1", "true"], env, n=9)
        d_size, d_layers = image_facts(f"bench-dlenv/{name}:1")
        k_size, k_layers = image_facts(f"bench-docker/{name}:1")
        rows.update(dlenv_image_mb=d_size / 1e6, docker_image_mb=k_size / 1e6,
                    dlenv_compressed_mb=packed["size"] / 1e6,
                    dlenv_layer_count=d_layers, docker_layer_count=k_layers)

        # one small package added, on both sides, to runnable
        add_package(project)
        timed(dlenv("lock", str(project)))
        small, _, out, _ = peak_rss(dlenv("build", str(project), *load), env)
        changed = json.loads(out)
        rows.update(dlenv_one_package=small,
                    dlenv_layers_rebuilt=sum(not x["reused"] for x in changed["layers"]),
                    dlenv_one_package_sent=changed["load"]["sent_layers"])
        timed(dlenv("lock", str(project), "--requirements", str(context / "requirements.txt")))
        rows["docker_one_package"] = docker_build(context, f"bench-docker/{name}:2", ca)
        if args.eject:
            add_package(ejected)
            write, build = eject_build(ejected, slim, f"bench-eject/{name}:2", ca, env)
            rows.update(eject_write_one_package=write, eject_docker_one_package=build,
                        eject_one_package=write + build)
        print(f"one package: dlenv {small:.1f} s, docker {rows['docker_one_package']:.1f} s",
              file=sys.stderr)

        # a sibling environment: the same framework and one more library, built and pushed
        sibling = work / "sibling"
        shutil.copytree(args.example, sibling, ignore=shutil.ignore_patterns("dlenv.lock"))
        add_package(sibling, SIBLING)
        timed(dlenv("lock", str(sibling)))
        sib_wheels = tomllib.loads((sibling / "dlenv.lock").read_text()).get("wheels", [])
        have = {w["sha256"] for w in wheels}
        new = {f"{w['name']} {w['version']}": w for w in sib_wheels if w["sha256"] not in have}
        _, out = timed(dlenv("build", str(sibling), "--tag", f"bench-dlenv/{name}:sibling",
                             "--json"), env)
        layers = [x for x in json.loads(out)["layers"]
                  if x["digest"] not in {y["digest"] for y in packed["layers"]}]
        # the floor: layers that hold nothing but the new packages (compressed, as pushed)
        rows["sibling_new_wheels_mb"] = sum(w["size"] for w in new.values()) / 1e6
        rows["sibling_own_layers_mb"] = sum(x["size"] for x in layers if x["name"] in new) / 1e6
        rows["sibling_new_layers"] = len(layers)
        _, rows["dlenv_sibling_bytes"] = registry.push(
            dlenv("push", f"{registry.host}/bench-dlenv/{name}:sibling", str(sibling)), env)
        timed(dlenv("lock", str(sibling), "--requirements", str(context / "requirements.txt")))
        docker_build(context, f"{registry.host}/bench-docker/{name}:sibling", ca)
        _, rows["docker_sibling_bytes"] = registry.push(
            [DOCKER, "push", "-q", f"{registry.host}/bench-docker/{name}:sibling"])
        rows.update({f"bound_{k}": v for k, v in bound.items()})
        rows["docker_load_floor"], rows["docker_load_floor_held"], \
            rows["docker_load_cpu"] = load_floor(
            cache / "store", str(packed["digest"]), work, tags)
    finally:
        registry.stop()
        # `dlenv run` made the project's run image: a later run's cold load must not find it
        from dlenv.fsutil import location_id

        spec_name = tomllib.loads((work / "project" / "dlenv.toml").read_text())["name"] \
            if (work / "project" / "dlenv.toml").exists() else name
        tags += [f"{spec_name}:latest-run-{location_id(str((work / 'project').resolve()))}",
                 f"{spec_name}:latest-run"]
        subprocess.run([DOCKER, "rmi", *tags, f"{registry.host}/bench-docker/{name}:1",
                        f"{registry.host}/bench-docker/{name}:sibling"], capture_output=True,
                       check=False)
        shutil.rmtree(work, ignore_errors=True)
    report(rows, args.json)
    return 0


def report(rows: dict[str, float | str | int], as_json: bool) -> None:
    if as_json:
        print(json.dumps(rows, indent=2))
        return

    def f(key: str) -> float:
        return float(rows[key])

    # docker: the hand-written Dockerfile. Ratios are docker / dlenv (above 1: dlenv faster).
    eject = "eject_cold" in rows
    print(f"{'':40}{'dlenv':>9}{'docker':>9}{'ratio':>8}" + (f"{'eject':>9}" if eject else ""))

    def line(label: str, a: float, b: float, digits: int = 1, c: str = "") -> None:
        ratio = f"{b / a:7.1f}x" if a else ""
        tail = f"{f(c):9.1f}" if eject and c else ""
        print(f"{label:40}{a:9.{digits}f}{b:9.{digits}f}{ratio}{tail}")

    line("cold build to runnable, s", f("dlenv_cold"), f("docker_cold"), c="eject_cold")
    print(f"{'  floor: docker load of the image alone':40}{f('docker_load_floor'):9.1f}"
          f"   ({int(f('docker_load_floor_held'))} of its layers held by other images)")
    cores = os.cpu_count() or 1
    print(f"{'  floor: its CPU seconds on all cores':40}"
          f"{(f('dlenv_cold_cpu') + f('docker_load_cpu')) / cores:9.1f}"
          f"   (dlenv {f('dlenv_cold_cpu'):.1f} + Docker's load {f('docker_load_cpu'):.1f}"
          f", on {cores} cores)")
    # Any tool whose image ends in Docker's store waits at least for Docker's own load
    print(f"{'  best ratio any tool can reach':40}{'':18}"
          f"{f('docker_cold') / f('docker_load_floor'):7.1f}x   (docker / that load alone)")
    line("cold build + push, s", f("dlenv_cold") + f("dlenv_push"),
         f("docker_cold") + f("docker_push"))
    line("  build + push, no Docker (a CI job), s", f("dlenv_cold_again") + f("dlenv_push_built"),
         f("docker_cold") + f("docker_push"))
    line("push, s", f("dlenv_push"), f("docker_push"))
    line("one package added, to runnable, s", f("dlenv_one_package"),
         f("docker_one_package"), digits=2, c="eject_one_package")
    line("unchanged lock, to runnable, s", f("dlenv_unchanged"), f("docker_unchanged"),
         digits=2)
    line("a command in the image (median of 3), s",
         f("dlenv_run"), f("docker_run"), digits=2)
    line("  `true`, same image (median of 9), s", f("dlenv_run_true"), f("docker_run_true"),
         digits=2)
    line("registry size of the image, MB", f("dlenv_push_bytes") / 1e6,
         f("docker_push_bytes") / 1e6, digits=0)
    print(f"{'  with --compression zstd, MB':40}{f('bound_zstd_bytes') / 1e6:9.0f}{'':9}"
          f"{f('docker_push_bytes') / f('bound_zstd_bytes'):7.1f}x   (for engines that read "
          f"zstd)")
    line("sibling environment: new bytes pushed, MB", f("dlenv_sibling_bytes") / 1e6,
         f("docker_sibling_bytes") / 1e6, digits=0)
    print(f"{'  layers of only its new packages, MB':40}{f('sibling_own_layers_mb'):9.0f}"
          f"   ({f('dlenv_sibling_bytes') / 1e6 / f('sibling_own_layers_mb'):.2f}x of that "
          f"pushed; new wheels {f('sibling_new_wheels_mb'):.0f} MB, "
          f"{int(f('sibling_new_layers'))} new layers)")
    line("image size in Docker, MB", f("dlenv_image_mb"), f("docker_image_mb"), digits=0)
    print(f"{'layers':40}{int(f('dlenv_layer_count')):9d}{int(f('docker_layer_count')):9d}")
    print(f"{'layers Docker held at the cold load':40}{int(f('dlenv_cold_held')):9d}")
    print(f"{'  layers sent while the rest was built':40}{int(f('dlenv_cold_early')):9d}")
    print(f"{'layers rebuilt / sent after one package':40}"
          f"{int(f('dlenv_layers_rebuilt')):5d} / {int(f('dlenv_one_package_sent'))}")
    print(f"{'cold build in another cache, s':40}{f('dlenv_cold_again'):9.1f}"
          f"   same digest: {rows['same_digest']}")
    print(f"{'dlenv peak memory, MiB':40}{int(f('dlenv_peak_rss_mib')):9d}")
    if eject:
        print(f"{'eject: dlenv dockerfile / docker build, s':40}"
              f"{f('eject_write_cold'):9.1f}{f('eject_docker_cold'):9.1f}   cold")
        print(f"{'':40}{f('eject_write_one_package'):9.1f}"
              f"{f('eject_docker_one_package'):9.1f}   one package added")
    print(f"lower bound here: read {f('bound_wheel_bytes') / 1e6:,.0f} MB of wheels in "
          f"{f('bound_read_s'):.1f} s + compress {f('bound_layer_bytes') / 1e6:,.0f} MB at "
          f"{f('bound_compress_mb_s'):,.0f} MB/s = {f('bound_bound_s'):.1f} s "
          f"(dlenv cold is {f('dlenv_cold') / f('bound_bound_s'):.1f}x that, with downloads)")


if __name__ == "__main__":
    raise SystemExit(main())
