"""Install locked wheels below a layer root. The ``installer`` library does the unpacking;
dlenv only decides where (the image's paths below the root, ``wheels.scheme``) and what
happens when two wheels ship the same file (the later one in layer order wins, as with pip).
Imported only where a wheel layer is built: installer and isal cost every start of dlenv
30 ms to import.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import warnings
import zipfile
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.records import Hash, RecordEntry, parse_record_file
from installer.sources import WheelFile
from installer.utils import Scheme, copyfileobj_with_hashing
from isal import isal_zlib

from dlenv.errors import BuildError
from dlenv.image.plan import LARGE_FILE, WheelPart
from dlenv.image.wheels import INTERPRETER, scheme
from dlenv.lock import LockedWheel

INSTALLER_NAME = b"dlenv\n"
DAMAGED = "the wheel is damaged or not a valid wheel; run 'dlenv lock' again or report it " \
    "to its maintainers"


class _Elsewhere(io.RawIOBase):
    """What a split wheel's other layer reads for one of its large files: not the content
    (that layer does not ship it), only its line of the wheel's RECORD."""

    def __init__(self, entry: RecordEntry) -> None:
        self.entry = entry


class _LayerDestination(SchemeDictionaryDestination):
    """Writes below a layer root and remembers which paths a later wheel replaced. For a
    split wheel's ``part``, "large" writes only the large files (each checked against the
    wheel's RECORD, since the other part lists it from there), no scripts, no metadata;
    "rest" writes the others and lists the large ones in RECORD as the wheel does."""

    def __init__(self, python: str, root: Path, part: WheelPart = "",
                 deferred: dict[str, Callable[[], BinaryIO]] | None = None) -> None:
        super().__init__(scheme(python), interpreter=INTERPRETER, script_kind="posix",
                         destdir=str(root), overwrite_existing=True)
        self.replaced: list[str] = []
        self.part = part
        self.expected: set[str] = set()  # "large": the RECORD hashes of what it writes
        self.large: dict[str, RecordEntry] = {}  # "large": the members' RECORD lines
        self.wheel = ""  # the file name of the wheel being installed
        self.deferred = deferred
        self._root = str(root)
        self._made: set[str] = set()  # directories made (or found) already

    def write_script(self, name: str, module: str, attr: str, section: Any) -> RecordEntry:
        if self.part == "large":
            return RecordEntry(name, None, None)  # the other part writes the scripts
        return super().write_script(name, module, attr, section)

    def finalize_installation(self, scheme: Scheme, record_file_path: str,
                              records: Any) -> None:
        if self.part != "large":  # RECORD belongs to the part with the metadata
            super().finalize_installation(scheme, record_file_path, records)

    def write_to_fs(self, scheme: Scheme, path: str, stream: BinaryIO,
                    is_executable: bool) -> RecordEntry:
        """installer's own method, with the same checks on plain strings: its pathlib objects
        (several per file) took a third of TensorFlow's install (25,000 files)."""
        if isinstance(stream, _Elsewhere):
            return RecordEntry(path, stream.entry.hash_, stream.entry.size)
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
        raw = getattr(stream, "raw", None)
        if self.deferred is not None and self.part == "large" and isinstance(raw, _Inflater):
            # A placeholder of its size: the layer's tar reads the member from the wheel,
            # checked there (CRC, size, RECORD hash), so its bytes never pass through this
            # tree (for CUDA's 4 GB of libraries, a write to memory and a read back).
            record = self.large[raw.info.filename]
            with open(target, "wb") as f:
                f.truncate(raw.info.file_size)
            if is_executable:
                os.chmod(target, 0o755)
            self.deferred[os.path.relpath(target, self._root)] = partial(
                _member, raw.path, raw.info, record, self.wheel)
            return RecordEntry(path, record.hash_, record.size)
        with open(target, "wb") as f:
            digest, size = copyfileobj_with_hashing(stream, f, self.hash_algorithm)
        if is_executable:
            os.chmod(target, 0o755)  # the layer keeps only whether a file is executable
        if self.part == "large" and digest not in self.expected:
            raise ValueError(f"{path} does not match the wheel's RECORD")
        return RecordEntry(path, Hash(self.hash_algorithm, digest), size)


class _Inflater(io.RawIOBase):
    """One deflated zip member, inflated by isal (zipfile has no hook for another inflater;
    isal inflates TensorFlow's wheel about 2.4 times faster than zlib), CRC-checked."""

    def __init__(self, path: str, info: zipfile.ZipInfo, record: RecordEntry | None = None,
                 wheel: str = "") -> None:
        self.path = path
        self.f = open(path, "rb")  # noqa: SIM115 - closed in close()
        self.info = info
        self.record = record  # the RECORD line its bytes must hash to, checked at the end
        self.wheel = wheel  # read for a layer's tar: its errors name the wheel
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
        self.sha = hashlib.sha256() if self.record is not None else None
        self.pending = memoryview(b"")  # inflated, not yet read: a view, so reads never copy

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
                self.pending = memoryview(self.inflate.flush())
                if not self.pending:
                    self._check()
                    return 0
                break
            raw = self.f.read(min(self.left, 1 << 20))
            if not raw:
                raise zipfile.BadZipFile(f"{self.info.filename}: truncated")
            self.left -= len(raw)
            self.pending = memoryview(self.inflate.decompress(raw))
        chunk = self.pending[:len(view)]
        n = len(chunk)
        view[:n] = chunk
        self.crc = isal_zlib.crc32(chunk, self.crc)
        if self.sha is not None:
            self.sha.update(chunk)
        self.size += n
        self.pending = self.pending[n:]
        return n

    def _check(self) -> None:
        problem = ""
        if self.size != self.info.file_size or self.crc != self.info.CRC:
            problem = f"{self.info.filename}: bad CRC or size"
        elif self.sha is not None and self.record is not None and self.record.hash_ and \
                self.record.hash_.value != _record_hash(self.sha.digest()):
            problem = f"{self.info.filename} does not match the wheel's RECORD"
        if problem and self.wheel:
            raise BuildError(f"cannot install {self.wheel}: {problem}", fix=DAMAGED)
        if problem:
            raise zipfile.BadZipFile(problem)

    def close(self) -> None:
        self.f.close()
        super().close()


def _member(path: str, info: zipfile.ZipInfo, record: RecordEntry, wheel: str) -> BinaryIO:
    """A deferred member's bytes, checked against its CRC, size and RECORD line at the end."""
    return io.BufferedReader(_Inflater(path, info, record, wheel), 1 << 20)


def _record_hash(digest: bytes) -> str:
    """A digest as RECORD writes it (urlsafe base64, unpadded)."""
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class _FastZip(zipfile.ZipFile):
    """A read-only ZipFile whose deflated members inflate through isal; for one part of a
    split wheel (``split``), installer sees only the large members ("large"), or the large
    ones as their RECORD lines ("rest")."""

    def __init__(self, path: Path, name: str) -> None:
        super().__init__(path)
        self.path = str(path)
        self.filename = name  # the cache names files by hash; installer parses this name
        self.part: WheelPart = ""
        self.large: dict[str, RecordEntry] = {}

    def split(self, part: WheelPart, source: WheelFile) -> dict[str, RecordEntry]:
        """Take ``part`` of the wheel; its large members, by name."""
        lines = source.read_dist_info("RECORD").splitlines()
        records = {r.path: r for r in (RecordEntry.from_elements(*x)
                                       for x in parse_record_file(lines))}
        self.part, self.large = part, {
            info.filename: records[info.filename] for info in self.filelist
            if _is_large(info, records.get(info.filename), source)}
        return self.large

    def infolist(self) -> list[zipfile.ZipInfo]:
        if self.part == "large":
            return [info for info in self.filelist if info.filename in self.large]
        return super().infolist()

    def open(self, name: Any, mode: Any = "r", pwd: Any = None, *,
             force_zip64: bool = False) -> Any:
        info = name if isinstance(name, zipfile.ZipInfo) else self.getinfo(name)
        if self.part == "rest" and info.filename in self.large:
            return _Elsewhere(self.large[info.filename])
        if mode != "r" or info.compress_type != zipfile.ZIP_DEFLATED:
            return super().open(name, mode, pwd, force_zip64=force_zip64)
        return io.BufferedReader(_Inflater(self.path, info), 1 << 20)


def _is_large(info: zipfile.ZipInfo, record: RecordEntry | None, source: WheelFile) -> bool:
    """Whether a member goes to a split wheel's layer of large files: a big file that is
    installed as it is (no Python source to compile, no script whose first line is
    rewritten, no metadata), whose RECORD line says what the other part lists for it."""
    name = info.filename
    return (info.file_size >= LARGE_FILE and not name.endswith((".py", "/"))
            and record is not None and record.hash_ is not None
            and record.hash_.name == "sha256" and record.size == info.file_size
            and name.split("/", 1)[0] != source.dist_info_dir
            and not name.startswith(f"{source.data_dir}/scripts/")
            and "__pycache__" not in name.split("/"))


def install_wheels(wheels: Sequence[tuple[LockedWheel, Path]], root: Path,
                   python: str, part: WheelPart = "",
                   deferred: dict[str, Callable[[], BinaryIO]] | None = None) -> list[str]:
    """Install ``wheels`` (in name order; ``part`` of a split wheel) below ``root``; return
    image paths shipped twice. With ``deferred``, the "large" part's members are written as
    placeholders of their size, and ``deferred`` gets, by path below ``root``, what opens
    each one's checked bytes in the wheel (``LayerOptions.sources``)."""
    # installer skips the bytecode some wheels ship in __pycache__ (dlenv compiles its own,
    # for the image's interpreter) and warns on stderr each time: the skip is right, the
    # warning is noise in the user's terminal. A process-wide filter (layers install in
    # several threads; catch_warnings is not thread-safe), set again on each call because
    # whoever imported this module may have restored the filters since.
    warnings.filterwarnings("ignore", message=r"Skip installing .*__pycache__",
                            category=RuntimeWarning)
    destination = _LayerDestination(python, root, part, deferred)
    for locked, path in sorted(wheels, key=lambda x: x[0].name):
        destination.wheel = locked.filename
        try:
            with _FastZip(path, locked.filename) as archive:
                source = WheelFile(archive)
                if part:
                    large = destination.large = archive.split(part, source)
                    destination.expected = {r.hash_.value for r in large.values() if r.hash_}
                install(source, destination,
                        {} if part == "large" else {"INSTALLER": INSTALLER_NAME})
        except OSError:
            raise  # the disk, not the wheel (a full scratch directory is tried again on disk)
        except Exception as exc:  # installer raises plain exceptions for a broken wheel
            raise BuildError(f"cannot install {locked.filename}: {exc}", fix=DAMAGED) from exc
    return sorted(set(destination.replaced))
