"""Install locked wheels into a layer tree, and compile their bytecode for the image.

Wheels go where Debian's python3 looks for locally installed packages
(``/usr/local/lib/python3.X/dist-packages``), with console scripts in ``/usr/local/bin``
whose shebang is the image's interpreter, and with ``.dist-info`` and RECORD kept, so pip,
scanners and ``importlib.metadata`` see every package. The ``installer`` library does the
unpacking; dlenv only decides where (the image's paths below a layer root) and what happens
when two wheels ship the same file (the later one in layer order wins, as with pip).

Bytecode is compiled by the image's own interpreter (run from the unpacked base through
its dynamic loader, so no container is needed) into unchecked-hash ``.pyc`` files: the
non-root user cannot write ``__pycache__`` into the image, and unchecked-hash files do not
depend on mtimes. Each compiling process imports the same modules and compiles its share of
files in a fresh interpreter, which keeps the output independent of how the files are split.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.records import Hash, RecordEntry
from installer.sources import WheelFile
from installer.utils import Scheme, copyfileobj_with_hashing
from isal import isal_zlib

from dlenv.errors import BuildError
from dlenv.fsutil import inside
from dlenv.lock import LockedWheel

INTERPRETER = "/usr/bin/python3"
INSTALLER_NAME = b"dlenv\n"

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


class _LayerDestination(SchemeDictionaryDestination):
    """Writes below a layer root and remembers which paths a later wheel replaced."""

    def __init__(self, python: str, root: Path) -> None:
        super().__init__(scheme(python), interpreter=INTERPRETER, script_kind="posix",
                         destdir=str(root), overwrite_existing=True)
        self.replaced: list[str] = []
        self._root = str(root)
        self._made: set[str] = set()  # directories made (or found) already

    def write_to_fs(self, scheme: Scheme, path: str, stream: BinaryIO,
                    is_executable: bool) -> RecordEntry:
        """installer's own method, with the same checks on plain strings: its pathlib objects
        (several per file) took a third of TensorFlow's install (25,000 files)."""
        base = os.path.abspath(self.scheme_dict[scheme])
        image_path = os.path.abspath(os.path.join(base, path))
        if not image_path.startswith(base + os.sep):
            raise ValueError(f"Attempting to write {path} outside of the target directory")
        target = os.path.join(self._root, image_path.lstrip(os.sep))
        if os.path.lexists(target):
            self.replaced.append(image_path)
        parent = os.path.dirname(target)
        if parent not in self._made:
            os.makedirs(parent, exist_ok=True)
            self._made.add(parent)
        with open(target, "wb") as f:
            digest, size = copyfileobj_with_hashing(stream, f, self.hash_algorithm)
        if is_executable:
            os.chmod(target, 0o755)  # the layer keeps only whether a file is executable
        return RecordEntry(path, Hash(self.hash_algorithm, digest), size)


class _Inflater(io.RawIOBase):
    """One deflated zip member, inflated by isal (zipfile has no hook for another inflater;
    isal inflates TensorFlow's wheel about 2.4 times faster than zlib), CRC-checked."""

    def __init__(self, path: str, info: zipfile.ZipInfo) -> None:
        self.f = open(path, "rb")  # noqa: SIM115 - closed in close()
        self.info = info
        self._rewind()

    def _rewind(self) -> None:
        self.f.seek(self.info.header_offset)
        header = self.f.read(30)
        if header[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile(f"bad local header for {self.info.filename}")
        skip = int.from_bytes(header[26:28], "little") + int.from_bytes(header[28:30], "little")
        self.f.seek(skip, io.SEEK_CUR)
        self.left = self.info.compress_size
        self.inflate = isal_zlib.decompressobj(-15)
        self.crc = 0
        self.size = 0
        self.pending = b""

    # installer reads a script's first line and seeks back to rewrite its shebang.
    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.size

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = {io.SEEK_SET: 0, io.SEEK_CUR: self.size,
                  io.SEEK_END: self.info.file_size}[whence] + offset
        if target < self.size:
            self._rewind()
        scratch = bytearray(1 << 16)
        while self.size < target:
            if not self.readinto(memoryview(scratch)[:min(len(scratch), target - self.size)]):
                break
        return self.size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while not self.pending:
            if self.left == 0:
                self.pending = self.inflate.flush()
                if not self.pending:
                    self._check()
                    return 0
                break
            raw = self.f.read(min(self.left, 1 << 20))
            if not raw:
                raise zipfile.BadZipFile(f"{self.info.filename}: truncated")
            self.left -= len(raw)
            self.pending = self.inflate.decompress(raw)
        n = min(len(view), len(self.pending))
        view[:n] = self.pending[:n]
        self.crc = isal_zlib.crc32(self.pending[:n], self.crc)
        self.size += n
        self.pending = self.pending[n:]
        return n

    def _check(self) -> None:
        if self.size != self.info.file_size or self.crc != self.info.CRC:
            raise zipfile.BadZipFile(f"{self.info.filename}: bad CRC or size")

    def close(self) -> None:
        self.f.close()
        super().close()


class _FastZip(zipfile.ZipFile):
    """A read-only ZipFile whose deflated members inflate through isal."""

    def __init__(self, path: Path, name: str) -> None:
        super().__init__(path)
        self.path = str(path)
        self.filename = name  # the cache names files by hash; installer parses this name

    def open(self, name: Any, mode: Any = "r", pwd: Any = None, *,
             force_zip64: bool = False) -> Any:
        info = name if isinstance(name, zipfile.ZipInfo) else self.getinfo(name)
        if mode != "r" or info.compress_type != zipfile.ZIP_DEFLATED:
            return super().open(name, mode, pwd, force_zip64=force_zip64)
        return io.BufferedReader(_Inflater(self.path, info), 1 << 20)


def install_wheels(wheels: Sequence[tuple[LockedWheel, Path]], root: Path,
                   python: str) -> list[str]:
    """Install ``wheels`` (in name order) below ``root``; return image paths shipped twice."""
    destination = _LayerDestination(python, root)
    for locked, path in sorted(wheels, key=lambda x: x[0].name):
        try:
            with _FastZip(path, locked.filename) as archive:
                install(WheelFile(archive), destination, {"INSTALLER": INSTALLER_NAME})
        except Exception as exc:  # installer raises plain exceptions for a broken wheel
            raise BuildError(f"cannot install {locked.filename}: {exc}",
                             fix="the wheel is damaged or not a valid wheel; run "
                                 "'dlenv lock' again or report it to its maintainers") from exc
    return sorted(set(destination.replaced))


@dataclass(frozen=True, slots=True)
class Interpreter:
    """How to run the image's Python on the build host."""

    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    description: str

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


def interpreter_in(rootfs: Path, python: str) -> Interpreter | None:
    """The base's own interpreter, run through its own dynamic loader, if it starts here."""
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
        description=f"the base's python{python}")
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


def compile_tree(interpreter: Interpreter, root: Path, dirs: Iterable[str],
                 workers: int | None = None) -> CompileReport:
    """Compile every .py below ``root``/``dirs`` to unchecked-hash .pyc with image paths.

    Files that do not compile (Python 2 leftovers, templates) are counted and skipped, as
    pip does.
    """
    files = python_files(root, dirs)
    if not files:
        return CompileReport(0, 0)
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
    return CompileReport(compiled=len(files) - failed, failed=failed)


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
