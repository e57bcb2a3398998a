"""Load on dlenv's model server: a bounded number of predict requests from a fixed number of
concurrent clients on 127.0.0.1, against `dlenv serve` of a TensorFlow example with a small
Keras model (``--batch N``: with the server's batching, ``batch_size = N``); prints
requests per second, latency percentiles and errors.

    python3 bench/bench_serve.py [examples/tensorflow-cpu] [--requests 2000]
                                 [--concurrency 8] [--batch N] [--json]

The model (two dense layers, 64 inputs, 256 hidden units, 10 outputs) is exported as a
SavedModel inside the serve profile's image; each request carries 4 rows. The official
TensorFlow Serving image cannot be pulled here (no registry on the internet is reachable),
so there is no side-by-side figure: the numbers are printed, nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SERVE = '\n[profiles.serve]\nmodel = "models/mlp"\n'
EXPORT = """
import numpy as np, tensorflow as tf
tf.keras.utils.set_random_seed(0)
model = tf.keras.Sequential([tf.keras.Input(shape=(64,), name="x"),
                             tf.keras.layers.Dense(256, activation="relu"),
                             tf.keras.layers.Dense(10)])
tf.saved_model.save(model, "models/mlp/1")
"""


def dlenv(*args: str, env: dict[str, str]) -> str:
    proc = subprocess.run([sys.executable, "-m", "dlenv", *args], capture_output=True,
                          text=True, env={**os.environ, **env}, check=False)
    if proc.returncode != 0:
        sys.exit(f"dlenv {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return proc.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load(url: str, requests: int, concurrency: int) -> dict[str, float]:
    """``requests`` predicts shared by ``concurrency`` threads, each with its own client."""
    body = {"instances": [[float(i % 7) for i in range(64)] for _ in range(4)]}
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    left = [requests]

    def worker() -> None:
        with httpx.Client(timeout=30) as client:
            while True:
                with lock:
                    if left[0] == 0:
                        return
                    left[0] -= 1
                start = time.perf_counter()
                try:
                    ok = client.post(url, json=body).status_code == 200
                except httpx.HTTPError:
                    ok = False
                took = time.perf_counter() - start
                with lock:
                    latencies.append(took)
                    errors[0] += not ok

    for _ in range(20):  # warm-up: the first calls trace the signature
        httpx.post(url, json=body, timeout=60)
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    cuts = statistics.quantiles(latencies, n=100)
    return {"requests": len(latencies), "concurrency": concurrency, "errors": errors[0],
            "seconds": round(wall, 2), "requests_per_second": round(len(latencies) / wall, 1),
            "p50_ms": round(cuts[49] * 1000, 1), "p90_ms": round(cuts[89] * 1000, 1),
            "p99_ms": round(cuts[98] * 1000, 1), "max_ms": round(max(latencies) * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("example", nargs="?", default=str(ROOT / "examples/tensorflow-cpu"))
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch", type=int, default=0, help="the serve profile's batch_size")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dlenv-bench-serve-"))
    project = work / Path(args.example).name
    shutil.copytree(args.example, project)
    with (project / "dlenv.toml").open("a") as f:
        f.write(SERVE + (f"batch_size = {args.batch}\n" if args.batch else ""))
    (project / "export.py").write_text(EXPORT)
    env = {"DLENV_DATA_DIR": str(work / "data")}
    try:
        dlenv("run", str(project), "--profile", "serve", "--", "python3", "export.py",
              env=env)
        port = free_port()
        dlenv("serve", str(project), "--detach", "--port", str(port), "--json", env=env)
        figures = load(f"http://127.0.0.1:{port}/v1/models/mlp:predict", args.requests,
                       args.concurrency)
    finally:
        subprocess.run([sys.executable, "-m", "dlenv", "stop", str(project)],
                       capture_output=True, env={**os.environ, **env}, check=False)
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(figures))
        return
    batching = f", batches of up to {args.batch}" if args.batch else ""
    print(f"{figures['requests']} predicts (4 rows each{batching}) from "
          f"{figures['concurrency']} clients in {figures['seconds']} s: "
          f"{figures['requests_per_second']} requests/s, {figures['errors']} errors")
    print(f"latency p50 {figures['p50_ms']} ms, p90 {figures['p90_ms']} ms, "
          f"p99 {figures['p99_ms']} ms, max {figures['max_ms']} ms")


if __name__ == "__main__":
    main()
