"""Install locked wheels into a layer tree, and compile their bytecode for the image.

Wheels go where Debian's python3 looks for locally installed packages
(``/usr/local/lib/python3.X/dist-packages``), with console scripts in ``/usr/local/bin``
whose shebang is the image's interpreter, and with ``.dist-info`` and RECORD kept, so pip,
scanners and ``importlib.metadata`` see every package (``image/install.py`` unpacks them).

Bytecode is compiled by the image's own interpreter (run from the unpacked base through
its dynamic loader, so no container is needed) into unchecked-hash ``.pyc`` files: the
non-root user cannot write ``__pycache__`` into the image, and unchecked-hash files do not
depend on mtimes. Each compiling process imports the same modules and compiles its share of
files in a fresh interpreter, which keeps the output independent of how the files are split.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from dlenv.errors import BuildError
from dlenv.fsutil import inside, temp_prefix

INTERPRETER = "/usr/bin/python3"

# Runs inside the target interpreter: compile the listed files, report failures as a count.
_COMPILE = """
import py_compile, sys
root, mode = sys.argv[1], py_compile.PycInvalidationMode.UNCHECKED_HASH
failed = 0
for line in sys.stdin:
    src = line.rstrip("\\n")
    try:
        py_compile.compile(src, dfile=src[len(root):], doraise=True, invalidation_mode=mode)
    except Exception:
        failed += 1
print(failed)
"""


def site_packages(python: str) -> str:
    """The image path of installed wheels for Python ``python`` ('3.11')."""
    return f"/usr/local/lib/python{python}/dist-packages"


def scheme(python: str) -> dict[str, str]:
    return {"purelib": site_packages(python), "platlib": site_packages(python),
            "headers": f"/usr/local/include/python{python}", "scripts": "/usr/local/bin",
            "data": "/usr/local"}


@dataclass(frozen=True, slots=True)
class Interpreter:
    """How to run the image's Python on the build host."""

    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    description: str
    identity: str = ""  # a kept base tree's layer key: what its bytecode may be cached under

    def run(self, args: Sequence[str], stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.argv, *args], input=stdin, capture_output=True,
                              text=True, env=dict(self.env), check=False)


def _inside(rootfs: Path, rel: str) -> Path | None:
    """``rel`` below ``rootfs`` with symbolic links resolved inside the tree (an absolute
    target such as bullseye's /lib64/ld-linux-x86-64.so.2 -> /lib/... means the tree's
    /lib, not the host's), or None when it does not lead to a file."""
    try:
        path = inside(rootfs, rel, follow_last=True)
    except BuildError:
        return None
    return path if path.is_file() else None


def interpreter_in(rootfs: Path, python: str, identity: str = "") -> Interpreter | None:
    """The base's own interpreter, run through its own dynamic loader, if it starts here
    (``identity``: the layer key of a kept base tree, under which its bytecode is cached)."""
    loader = _inside(rootfs, "usr/lib64/ld-linux-x86-64.so.2")
    binary = _inside(rootfs, f"usr/bin/python{python}")
    if loader is None or binary is None:
        return None
    libs = f"{rootfs}/usr/lib/x86_64-linux-gnu:{rootfs}/usr/lib"
    candidate = Interpreter(
        argv=(str(loader), "--library-path", libs, str(binary)),
        # A fixed hash seed: before 3.11, marshal writes a frozenset constant (``x in {...}``)
        # in hash order, so a random seed gave different .pyc bytes on every build.
        env=(("PYTHONHOME", f"{rootfs}/usr"), ("PYTHONDONTWRITEBYTECODE", "1"),
             ("PYTHONNOUSERSITE", "1"), ("PYTHONHASHSEED", "0"), ("LC_ALL", "C.UTF-8")),
        description=f"the base's python{python}", identity=identity)
    try:
        probe = candidate.run(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
    except OSError:
        return None
    return candidate if probe.returncode == 0 and probe.stdout.strip() == python else None


def host_interpreter(python: str) -> Interpreter | None:
    """This Python, when it is the image's minor version (same bytecode format)."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" != python:
        return None
    return Interpreter(argv=(sys.executable, "-I"), env=(("PYTHONDONTWRITEBYTECODE", "1"),),
                       description=f"the build host's python{python}")


@dataclass(frozen=True, slots=True)
class CompileReport:
    compiled: int
    failed: int


def python_files(root: Path, dirs: Iterable[str]) -> list[str]:
    out = []
    for d in dirs:
        top = root / d.lstrip("/")
        if top.is_dir():
            out += [str(p) for p in top.rglob("*.py") if p.is_file() and not p.is_symlink()]
    return sorted(out)


class BytecodeCache:
    """Compiled .pyc files by what decides their bytes: the interpreter (the directory: one
    per kept base tree), a file's image path and its source. A hit is the file that
    interpreter writes, so layers and their digests are the same with or without the cache;
    each entry starts with its own sha256, and one that does not match is compiled again.
    A wheel added to a bucket of small packages no longer recompiles the others, nor does a
    second environment the packages it shares. (Written here: pip and uv cache wheels, not
    bytecode compiled by another interpreter for an image.)"""

    def __init__(self, directory: Path, python: str) -> None:
        self.directory = directory
        self.tag = f"cpython-{python.replace('.', '')}"  # what py_compile names it there

    def pyc_path(self, source: str) -> str:
        head, name = os.path.split(source)
        return os.path.join(head, "__pycache__", f"{name[:-3]}.{self.tag}.pyc")

    def restore(self, root: str, files: Sequence[str]) -> list[tuple[str, Path]]:
        """Write the cached .pyc of each file that has one; return the others, each with
        the entry its .pyc goes to once compiled."""
        missing = []
        for source in files:
            with open(source, "rb") as f:
                key = hashlib.sha256(source[len(root):].encode() + b"\0" + f.read()).hexdigest()
            entry = self.directory / key[:2] / key
            try:
                kept = entry.read_bytes()
            except OSError:
                kept = b""
            if len(kept) > 32 and hashlib.sha256(kept[32:]).digest() == kept[:32]:
                target = self.pyc_path(source)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "wb") as f:
                    f.write(kept[32:])
            else:
                missing.append((source, entry))
        return missing

    def keep(self, compiled: Iterable[tuple[str, Path]]) -> None:
        for source, entry in compiled:
            try:
                data = Path(self.pyc_path(source)).read_bytes()
            except FileNotFoundError:
                continue  # it did not compile
            entry.parent.mkdir(parents=True, exist_ok=True)
            # Renamed into place but not fsynced (thousands of files a cold build, and an
            # fsync each cost seconds here): an entry a crash leaves short fails its hash.
            temp = entry.with_name(f"{temp_prefix('pyc')}{entry.name}")
            temp.write_bytes(hashlib.sha256(data).digest() + data)
            os.replace(temp, entry)


def compile_tree(interpreter: Interpreter, root: Path, dirs: Iterable[str],
                 workers: int | None = None, cache: BytecodeCache | None = None
                 ) -> CompileReport:
    """Compile every .py below ``root``/``dirs`` to unchecked-hash .pyc with image paths
    (those ``cache`` holds are copied from it, and it keeps the new ones).

    Files that do not compile (Python 2 leftovers, templates) are counted and skipped, as
    pip does.
    """
    every = python_files(root, dirs)
    todo = cache.restore(str(root), every) if cache else [(f, Path()) for f in every]
    files = [source for source, _ in todo]
    if not files:
        return CompileReport(len(every), 0)
    n = max(1, min(workers or os.cpu_count() or 1, len(files) // 200 + 1))
    shares = [files[i::n] for i in range(n)]

    def one(share: list[str]) -> int:
        proc = interpreter.run(["-c", _COMPILE, str(root)], "\n".join(share) + "\n")
        if proc.returncode != 0:
            raise BuildError(f"compiling bytecode with {interpreter.description} failed: "
                             f"{proc.stderr.strip()[-400:]}",
                             fix="build with --no-bytecode, or report this to dlenv")
        return int(proc.stdout.strip() or 0)

    with ThreadPoolExecutor(max_workers=n) as pool:
        failed = sum(pool.map(one, shares))
    if cache:
        cache.keep(todo)
    return CompileReport(compiled=len(every) - failed, failed=failed)


def record_bytecode(root: Path, python: str) -> None:
    """Add compiled .pyc files to each installed wheel's RECORD, as pip does.

    RECORD paths are relative to site-packages; a .pyc has no hash there (it is derived).
    """
    site = root / site_packages(python).lstrip("/")
    tag = f"cpython-{python.replace('.', '')}"
    for record in sorted(site.glob("*.dist-info/RECORD")):
        lines = record.read_text(encoding="utf-8").splitlines()
        listed = {line.rsplit(",", 2)[0] for line in lines}
        extra = []
        for entry in sorted(listed):
            if not entry.endswith(".py"):
                continue
            head, _, name = entry.rpartition("/")
            pyc = f"{head}/__pycache__/{name[:-3]}.{tag}.pyc" if head else \
                f"__pycache__/{name[:-3]}.{tag}.pyc"
            if pyc not in listed and (site / pyc).is_file():
                extra.append(f"{pyc},,")
        if extra:
            record.write_text("\n".join([*lines, *extra]) + "\n", encoding="utf-8")
