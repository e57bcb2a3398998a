"""Compare the shipped compatibility matrix with what the package index really serves.

For every release line: the highest Python must resolve and the next one must not; for CUDA
options that come from wheels, the resolved nvidia-*-cuda-runtime wheel must carry the
matrix's CUDA version. Uses uv with the user's normal index configuration. Not run in CI
(it asks the index a few hundred questions); run it when the matrix changes:

    python scripts/check_matrix.py [tensorflow|pytorch|jax] [--line 2.15]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from uv import find_uv_bin

from dlenv.compat import FRAMEWORKS, Release, load_matrix


def resolves(requirement: str, python: str, manylinux: str = "x86_64-manylinux_2_36") -> list[str]:
    """Resolved 'name==version' lines, or [] when the index has no solution."""
    with tempfile.TemporaryDirectory() as tmp:
        req = Path(tmp, "r.in")
        req.write_text(requirement + "\n")
        proc = subprocess.run(
            [find_uv_bin(), "pip", "compile", str(req), "--no-config", "--quiet", "--no-header",
             "--python-version", python, "--python-platform", manylinux,
             "--only-binary", ":all:", "--no-annotate"],
            capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0:
            return []
        return [x.strip() for x in proc.stdout.splitlines() if "==" in x]


def bump(python: str) -> str:
    major, minor = python.split(".")
    return f"{major}.{int(minor) + 1}"


def check(release: Release) -> list[str]:
    diffs = []
    base = f"{release.distribution}=={release.line}.*"
    oldest_uv_python = (3, 8)  # uv cannot target older interpreters
    highest = tuple(int(p) for p in release.python_max.split("."))
    if highest >= oldest_uv_python and not resolves(base, release.python_max):
        diffs.append(f"{base}: no wheel for Python {release.python_max} (matrix says there is)")
    if resolves(base, bump(release.python_max)):
        diffs.append(f"{base}: resolves on Python {bump(release.python_max)} too (matrix max is "
                     f"{release.python_max})")
    for option in release.cuda_options:
        if option.source != "wheels":
            continue
        python = option.python_max or release.python_max
        req = f"{release.distribution}[{option.extra}]=={release.line}.*" if option.extra else base
        pins = resolves(req + "".join(f",!={x}" for x in release.exclude_with_cuda), python)
        runtime = [p for p in pins if p.startswith(("nvidia-cuda-runtime", "nvidia-cuda-runtime-"))]
        if not pins:
            diffs.append(f"{req}: does not resolve on Python {python}")
        elif runtime and not runtime[0].split("==")[1].startswith(option.major + "."):
            diffs.append(f"{req}: CUDA runtime {runtime[0]} is not CUDA {option.cuda}")
    return diffs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("framework", nargs="?", choices=FRAMEWORKS)
    parser.add_argument("--line")
    args = parser.parse_args()
    matrix = load_matrix()
    found = 0
    for name in [args.framework] if args.framework else FRAMEWORKS:
        for release in matrix.lines(name):
            if args.line and release.line != args.line:
                continue
            for diff in check(release):
                found += 1
                print(f"DIFF {name} {release.line}: {diff}")
            print(f"checked {name} {release.line}", file=sys.stderr)
    print(f"{found} difference(s)")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
