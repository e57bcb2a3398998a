"""Install locked wheels below a layer root. The ``installer`` library does the unpacking;
dlenv only decides where (the image's paths below the root, ``wheels.scheme``) and what
happens when two wheels ship the same file (the later one in layer order wins, as with pip).
Imported only where a wheel layer is built: installer and isal cost every start of dlenv
30 ms to import.
"""

from __future__ import annotations

import io
import os
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.records import Hash, RecordEntry
from installer.sources import WheelFile
from installer.utils import Scheme, copyfileobj_with_hashing
from isal import isal_zlib

from dlenv.errors import BuildError
from dlenv.image.wheels import INTERPRETER, scheme
from dlenv.lock import LockedWheel

INSTALLER_NAME = b"dlenv\n"


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
    # installer skips the bytecode some wheels ship in __pycache__ (dlenv compiles its own,
    # for the image's interpreter) and warns on stderr each time: the skip is right, the
    # warning is noise in the user's terminal. A process-wide filter (layers install in
    # several threads; catch_warnings is not thread-safe), set again on each call because
    # whoever imported this module may have restored the filters since.
    warnings.filterwarnings("ignore", message=r"Skip installing .*__pycache__",
                            category=RuntimeWarning)
    destination = _LayerDestination(python, root)
    for locked, path in sorted(wheels, key=lambda x: x[0].name):
        try:
            with _FastZip(path, locked.filename) as archive:
                install(WheelFile(archive), destination, {"INSTALLER": INSTALLER_NAME})
        except OSError:
            raise  # the disk, not the wheel (a full scratch directory is tried again on disk)
        except Exception as exc:  # installer raises plain exceptions for a broken wheel
            raise BuildError(f"cannot install {locked.filename}: {exc}",
                             fix="the wheel is damaged or not a valid wheel; run "
                                 "'dlenv lock' again or report it to its maintainers") from exc
    return sorted(set(destination.replaced))
