"""Compare `dlenv build` with `docker build` of the Dockerfile users write, in one run.

    python3 bench/bench_build.py [examples/tensorflow-cpu] [--json]

Both sides start from the same Debian bookworm Python base (dlenv builds it from .debs and
loads it into Docker as the Dockerfile's FROM) and install the same pinned, hashed
requirements from the same lock. Docker side: BuildKit through /usr/bin/docker with
DOCKER_BUILDKIT=1, the host's CA bundle passed as a build secret (never in a layer).
Times are wall-clock seconds of each command; peak memory is the build process's max RSS.
Nothing here is asserted: the numbers are printed, with ratios.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKER = "/usr/bin/docker"
EXTRA = "tomli==2.0.1"  # the "one small package" both sides add
PROBE = ("import time; t = time.perf_counter(); import tensorflow as tf; "
         "print(round(time.perf_counter() - t, 2))")
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


def peak_rss(cmd: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Like timed, and the child's peak RSS in MiB (from wait4)."""
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
    return elapsed, usage.ru_maxrss // 1024, out


def dlenv(*args: str) -> list[str]:
    return [sys.executable, "-m", "dlenv", *args]


def add_package(project: Path) -> None:
    spec = project / "dlenv.toml"
    text = spec.read_text()
    marker = "packages = ["
    if marker in text:
        text = text.replace(marker, f'{marker}"{EXTRA}", ', 1)
    else:
        text = text.replace("\n[", f'\npackages = ["{EXTRA}"]\n\n[', 1) if "\n[" in text \
            else text + f'packages = ["{EXTRA}"]\n'
    spec.write_text(text)


def docker_build(context: Path, tag: str, ca: str) -> float:
    env = {"DOCKER_BUILDKIT": "1"}
    seconds, _ = timed([DOCKER, "build", "-q", "-t", tag, "--secret", f"id=ca,src={ca}",
                           str(context)], env=env)
    return seconds


def image_facts(tag: str) -> tuple[int, int]:
    out = subprocess.run([DOCKER, "image", "inspect", tag], capture_output=True, text=True,
                         check=True).stdout
    info = json.loads(out)[0]
    return int(info["Size"]), len(info["RootFS"]["Layers"])


def import_times(tag: str) -> list[float]:
    times = []
    for _ in range(2):
        out = subprocess.run([DOCKER, "run", "--rm", "-e", "TF_CPP_MIN_LOG_LEVEL=3", tag,
                              "python3", "-c", PROBE], capture_output=True, text=True,
                             check=True).stdout
        times.append(float(out.strip().splitlines()[-1]))
    return times


def lower_bound(cache: Path, lock_wheels: list[dict[str, object]], store: Path,
                layers: list[dict[str, object]]) -> dict[str, float]:
    """Reading every wheel once plus compressing every layer's bytes at isal's speed here."""
    from isal import igzip_threaded

    start = time.monotonic()
    read = 0
    for w in lock_wheels:
        with open(cache / "blobs/sha256" / str(w["sha256"]), "rb") as f:
            while chunk := f.read(1 << 20):
                read += len(chunk)
    read_s = time.monotonic() - start
    raw = 0
    for layer in layers:
        digest = str(layer["digest"]).split(":")[1]
        with gzip.open(store / "blobs/sha256" / digest) as f:
            while chunk := f.read(1 << 20):
                raw += len(chunk)
    # the compressor's speed on real data: the largest layer's content, as dlenv compresses it
    from dlenv.oci.layer import LayerOptions, compress_threads

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
            "compress_mb_s": speed / 1e6, "bound_s": read_s + raw / speed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("example", nargs="?", default=str(ROOT / "examples/tensorflow-cpu"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    ca = os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
    work = Path(tempfile.mkdtemp(prefix="dlenv-bench-"))
    rows: dict[str, float | str | int] = {}
    try:
        project = work / "project"
        shutil.copytree(args.example, project, ignore=shutil.ignore_patterns("dlenv.lock"))
        name = project.name
        timed(dlenv("lock", str(project)))

        # dlenv: cold, warm, cold again in another cache (same digest?), one package added
        cache, cache2 = work / "cache", work / "cache2"
        env = {"DLENV_CACHE_DIR": str(cache)}
        cold, rss, out = peak_rss(dlenv("build", str(project), "--json"), env)
        first = json.loads(out)
        warm, _, out = peak_rss(dlenv("build", str(project), "--json"), env)
        again, _, out2 = peak_rss(dlenv("build", str(project), "--json"),
                                  {"DLENV_CACHE_DIR": str(cache2)})
        print(f"dlenv cold {cold:.1f} s, warm {warm:.2f} s, again {again:.1f} s",
              file=sys.stderr)
        rows.update(dlenv_cold=cold, dlenv_warm=warm, dlenv_cold_again=again,
                    dlenv_peak_rss_mib=rss,
                    same_digest=str(first["digest"] == json.loads(out2)["digest"]))
        timed(dlenv("build", str(project), "--load", "--tag", f"bench-dlenv/{name}:1"),
              env=env)
        lock_text = (project / "dlenv.lock").read_text()
        import tomllib

        wheels = tomllib.loads(lock_text).get("wheels", [])
        bound = lower_bound(cache, wheels, cache / "store", first["layers"])

        # The Dockerfile's base: the same Debian Python (with pip) that dlenv builds on.
        base = work / "base"
        base.mkdir()
        (base / "dlenv.toml").write_text(f'name = "bench-base"\npython = '
                                         f'"{tomllib.loads(lock_text)["target"]["python"]}"\n')
        timed(dlenv("build", str(base), "--load", "--tag", "bench-base:1"), env=env)

        context = work / "context"
        context.mkdir()
        (context / "Dockerfile").write_text(DOCKERFILE.format(base="bench-base:1"))
        timed(dlenv("lock", str(project), "--requirements", str(context / "requirements.txt")))
        subprocess.run([DOCKER, "builder", "prune", "-af"], capture_output=True, check=False)
        subprocess.run([DOCKER, "rmi", "-f", f"bench-docker/{name}:1"], capture_output=True,
                       check=False)
        rows["docker_cold"] = docker_build(context, f"bench-docker/{name}:1", ca)
        print(f"docker cold {rows['docker_cold']:.1f} s", file=sys.stderr)
        # dlenv's own Dockerfile (eject), built by the same engine from a cold builder cache
        subprocess.run([DOCKER, "builder", "prune", "-af"], capture_output=True, check=False)
        rows["eject_cold"], _ = timed(dlenv("build", str(project), "--backend", "docker",
                                            "--tag", f"bench-eject/{name}:1"), env=env)
        print(f"eject cold {rows['eject_cold']:.1f} s", file=sys.stderr)

        # one small package added, on both sides
        add_package(project)
        timed(dlenv("lock", str(project)))
        print("one package added", file=sys.stderr)
        small, _, out = peak_rss(dlenv("build", str(project), "--json"), env)
        changed = json.loads(out)
        rows["dlenv_one_package"] = small
        rows["dlenv_layers_rebuilt"] = sum(not x["reused"] for x in changed["layers"])
        timed(dlenv("lock", str(project), "--requirements", str(context / "requirements.txt")))
        rows["docker_one_package"] = docker_build(context, f"bench-docker/{name}:2", ca)
        rows["eject_one_package"], _ = timed(dlenv("build", str(project), "--backend", "docker",
                                                   "--tag", f"bench-eject/{name}:2"), env=env)

        d_size, d_layers = image_facts(f"bench-dlenv/{name}:1")
        k_size, k_layers = image_facts(f"bench-docker/{name}:1")
        rows.update(dlenv_image_mb=d_size / 1e6, docker_image_mb=k_size / 1e6,
                    dlenv_compressed_mb=first["size"] / 1e6,
                    dlenv_layer_count=d_layers, docker_layer_count=k_layers)
        if "tensorflow" in lock_text:
            d_imp, k_imp = import_times(f"bench-dlenv/{name}:1"), \
                import_times(f"bench-docker/{name}:1")
            rows.update(dlenv_import_1=d_imp[0], dlenv_import_2=d_imp[1],
                        docker_import_1=k_imp[0], docker_import_2=k_imp[1])
        rows.update({f"bound_{k}": v for k, v in bound.items()})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(rows, args.json)
    return 0


def report(rows: dict[str, float | str | int], as_json: bool) -> None:
    if as_json:
        print(json.dumps(rows, indent=2))
        return

    def f(key: str) -> float:
        return float(rows[key])

    # docker: the hand-written Dockerfile; eject: `dlenv build --backend docker` (the rendered
    # multi-stage Dockerfile, built by the same engine). Ratios are docker / dlenv.
    print(f"{'':34}{'dlenv':>10}{'docker':>10}{'eject':>10}{'ratio':>9}{'eject':>9}")
    for label, a, b, c in (("cold build, s", "dlenv_cold", "docker_cold", "eject_cold"),
                           ("rebuild after one package, s", "dlenv_one_package",
                            "docker_one_package", "eject_one_package")):
        print(f"{label:34}{f(a):10.1f}{f(b):10.1f}{f(c):10.1f}{f(b) / f(a):8.1f}x"
              f"{f(c) / f(a):8.1f}x")
    print(f"{'warm rebuild, unchanged lock, s':34}{f('dlenv_warm'):10.2f}")
    print(f"{'cold build in another cache, s':34}{f('dlenv_cold_again'):10.1f}"
          f"   same digest: {rows['same_digest']}")
    print(f"{'layers rebuilt after one package':34}{int(f('dlenv_layers_rebuilt')):10d}")
    print(f"{'image size in Docker, MB':34}{f('dlenv_image_mb'):10.0f}{f('docker_image_mb'):10.0f}"
          f"{f('dlenv_image_mb') / f('docker_image_mb'):8.2f}x")
    print(f"{'compressed (registry) size, MB':34}{f('dlenv_compressed_mb'):10.0f}")
    print(f"{'layers':34}{int(f('dlenv_layer_count')):10d}{int(f('docker_layer_count')):10d}")
    if "dlenv_import_1" in rows:
        for n in ("1", "2"):
            print(f"{'import tensorflow, run ' + n + ', s':34}{f('dlenv_import_' + n):10.2f}"
                  f"{f('docker_import_' + n):10.2f}")
    print(f"{'dlenv peak memory, MiB':34}{int(f('dlenv_peak_rss_mib')):10d}")
    print(f"lower bound here: read {f('bound_wheel_bytes') / 1e6:,.0f} MB of wheels in "
          f"{f('bound_read_s'):.1f} s + compress {f('bound_layer_bytes') / 1e6:,.0f} MB at "
          f"{f('bound_compress_mb_s'):,.0f} MB/s = {f('bound_bound_s'):.1f} s "
          f"(dlenv cold is {f('dlenv_cold') / f('bound_bound_s'):.1f}x that, with downloads)")


if __name__ == "__main__":
    raise SystemExit(main())
