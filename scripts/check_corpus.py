"""Lock, build and verify every environment of tests/corpus (or those named), the way a
team member would: `dlenv lock`, `dlenv build --load`, then `dlenv verify`, which imports the
framework and every package the spec names inside the image. Not run in CI: the PyTorch
environments bring about 3 GB of CUDA wheels each. Prints one line per environment and exits
1 when any fails.

    python scripts/check_corpus.py [NAME ...] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "corpus"


def dlenv(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dlenv", *args], capture_output=True,
                          text=True, check=False)


def check(name: str, cache: str, work: Path) -> tuple[bool, str]:
    project = work / name
    project.mkdir()
    shutil.copy(CORPUS / f"{name}.toml", project / "dlenv.toml")
    for step in (("lock", str(project), "--cache-dir", cache),
                 ("build", str(project), "--cache-dir", cache, "--load")):
        r = dlenv(*step)
        if r.returncode != 0:
            return False, f"{step[0]} failed: {r.stderr.strip().splitlines()[-1:]}"
    r = dlenv("verify", str(project), "--cache-dir", cache, "--allow-cpu", "--json")
    # The images are large (PyTorch's CUDA wheels): give the engine its space back.
    subprocess.run(["docker", "rmi", "-f", f"{name}:latest"], capture_output=True, check=False)
    checks = json.loads(r.stdout)["checks"] if r.stdout.strip() else []
    failed = [f"{c['id']}: {c['summary']}" for c in checks if c["status"] == "fail"]
    return r.returncode == 0, "; ".join(failed) or f"{len(checks)} checks passed"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="corpus entries (default: all)")
    parser.add_argument("--cache-dir", default=None, help="dlenv cache shared by all")
    args = parser.parse_args()
    names = args.names or sorted(p.stem for p in CORPUS.glob("*.toml"))
    cache = args.cache_dir or tempfile.mkdtemp(prefix="dlenv-corpus-cache-")
    failures = 0
    with tempfile.TemporaryDirectory(prefix="dlenv-corpus-") as work:
        for name in names:
            started = time.monotonic()
            ok, detail = check(name, cache, Path(work))
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {name:28} {time.monotonic() - started:7.1f} s  "
                  f"{detail}", flush=True)
    print(f"{len(names) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
