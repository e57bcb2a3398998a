"""One layer of a plan, built: its tree made by kind (Debian base, user dirs, wheels, project
files, CUDA links), bytecode compiled by the image's own interpreter, and the tree written to
the store as a deterministic tar."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import BinaryIO, assert_never

from dlenv.cache import ContentCache, LazyClient, sha256_file
from dlenv.errors import BuildError
from dlenv.fsutil import inside, scratch_dir, temp_prefix
from dlenv.image.debian import fetch_debs, materialize_base
from dlenv.image.plan import LAYER_EPOCH, SHIPPED, BuildPlan, LayerPlan, shipped_file
from dlenv.image.records import Built
from dlenv.image.wheels import (
    BytecodeCache,
    Interpreter,
    compile_tree,
    host_interpreter,
    interpreter_in,
    record_bytecode,
    site_packages,
)
from dlenv.lock import LockedDeb, LockedWheel
from dlenv.oci.layer import LayerOptions, write_layer
from dlenv.oci.store import OCIStore
from dlenv.resolve.debian import deb_url
from dlenv.resolve.sdist import SdistBuilds

Progress = Callable[[str, int, int], None]  # (stage, done, total)


def byte_counter(progress: Progress, stage: str, total: int) -> Callable[[int], None]:
    """A progress callback for bytes arriving from several download threads at once."""
    done = 0
    lock = threading.Lock()

    def advance(n: int) -> None:
        nonlocal done
        with lock:
            done += n
            progress(stage, done, total)

    return advance


class LayerBuilder:
    """Builds single layers into the store; the scheduler (``NativeBuilder``) decides which
    and in what order, and hands over the wheel downloads it started."""

    def __init__(self, store: OCIStore, cache: ContentCache, rootfs_dir: Path, *,
                 ca_bundle: str | None, progress: Progress,
                 sdists: SdistBuilds | None) -> None:
        self.store = store
        self.cache = cache
        self.rootfs_dir = rootfs_dir  # unpacked bases, kept for their interpreters
        self.ca_bundle = ca_bundle
        self.progress = progress
        self.sdists = sdists  # rebuilds the wheels of source-only packages
        self._interpreters: dict[str, Interpreter | None] = {}  # by BuildPlan.interpreter
        self._interpreter_lock = threading.Lock()
        # The base layer being built now: wheel layers wait for its tree to compile bytecode.
        self.base_future: Future[Built] | None = None

    def wheel_file(self, client: LazyClient, wheel: LockedWheel,
                   advance: Callable[[int], None] | None = None) -> Path:
        """The locked wheel, verified: downloaded, or (source-only packages) built again."""
        if wheel.sdist is None:
            return self.cache.fetch(client, wheel.url, wheel.sha256, advance)
        if self.sdists is None:
            raise BuildError(f"{wheel.name} {wheel.version} is built from its sdist, and this "
                             "build has no way to build it")
        self.progress(f"building {wheel.name} {wheel.version} from source", 0, 1)
        path = self.sdists.wheel(client.get(), wheel)
        if advance:
            advance(wheel.size)
        return path

    def build(self, plan: BuildPlan, layer: LayerPlan,
              wheel_paths: Mapping[str, Future[Path]], *, pack: bool = True) -> Built:
        """Build one layer into the store. A wheel layer's tree goes to memory when there is
        room (``scratch_dir``), and again to the cache's disk if memory fills up meanwhile.
        Not ``pack``: the layer is written as its plain tar while the disk has room for it
        (``OCIStore.pack`` compresses it when the image leaves the machine)."""
        disk = self.cache.root.parent
        estimate = 3 * sum(w.size for w in layer.wheels)
        where = scratch_dir(disk, estimate) if layer.kind == "wheels" else disk
        compression = plan.compression if pack or not self.store.room_for(estimate) \
            else "none"
        try:
            return self._build_in(where, plan, layer, wheel_paths, compression)
        except OSError as exc:
            if where == disk or exc.errno != errno.ENOSPC:
                raise
            return self._build_in(disk, plan, layer, wheel_paths, compression)

    def _build_in(self, scratch: Path, plan: BuildPlan, layer: LayerPlan,
                  wheel_paths: Mapping[str, Future[Path]], compression: str) -> Built:
        with tempfile.TemporaryDirectory(prefix=temp_prefix("layer"), dir=scratch) as t:
            root = Path(t, "root")
            root.mkdir()
            owners: dict[str, tuple[int, int]] = {}
            modes: dict[str, int] = {}
            files: tuple[str, ...] = ()
            notes: tuple[str, ...] = ()
            sources: dict[str, Callable[[], BinaryIO]] = {}  # placeholders' bytes, by path
            ids = (plan.user.uid, plan.user.gid)
            if layer.kind == "debian":
                notes = self._debian(plan, layer, root)
                owners = {f"home/{plan.user.name}": ids, plan.workdir.lstrip("/"): ids}
                modes = {"tmp": 0o1777, "var/tmp": 0o1777, "root": 0o700, "etc/shadow": 0o640}
            elif layer.kind == "user-dirs":
                for d in (f"home/{plan.user.name}", plan.workdir.lstrip("/")):
                    inside(root, d).mkdir(parents=True, exist_ok=True)
                    owners[d] = ids
            elif layer.kind == "wheels":
                notes = self._wheels(plan, layer, root, wheel_paths, sources)
                files = tuple(sorted(
                    "/" + str(p.relative_to(root)) for p in root.rglob("*")
                    if p.is_file() and "__pycache__" not in p.parts))
            elif layer.kind == "files":
                owners = _copy_files(layer, root, plan.workdir.lstrip("/"), ids)
            elif layer.kind == "model":
                _copy_files(layer, root, layer.dest.lstrip("/"), None)
            elif layer.kind == "links":
                for path, target in layer.links:
                    dest = inside(root, path)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    os.symlink(target, dest)
            elif layer.kind == "launcher" or layer.kind == "server":
                dest = inside(root, SHIPPED[layer.kind][1])
                dest.parent.mkdir(parents=True)
                dest.write_bytes(shipped_file(layer.kind)[0])
                dest.chmod(0o644)
            else:
                assert_never(layer.kind)
            options = LayerOptions(epoch=LAYER_EPOCH, compression=compression,
                                   owners=owners, modes=modes, sources=sources)
            self.progress(f"writing layer: {layer.name}", 0, 1)
            with self.store.writer() as f:
                blob = write_layer(root, f, options, name=layer.name)
                self.store.commit(f, blob.descriptor.digest, blob.diff_id, blob.diff_size)
            self.progress(f"writing layer: {layer.name}", 1, 1)
            if layer.kind == "debian":
                self._keep_rootfs(layer.key(plan), root)
            return Built(blob, files, notes)

    # --- the Debian base ------------------------------------------------------------------
    def _debian(self, plan: BuildPlan, layer: LayerPlan, root: Path) -> tuple[str, ...]:
        paths = self.fetch_debs(layer.debs)
        self.progress("unpacking .debs", 0, 1)
        materialize_base(paths, layer.debs, root, plan.user, plan.workdir)
        self.progress("unpacking .debs", 1, 1)
        if not plan.bytecode:
            return ()
        interpreter = interpreter_in(root, plan.python)
        if interpreter is None:
            return (_no_bytecode(plan.python, "the standard library's"),)
        self.progress("compiling the standard library", 0, 1)
        compile_tree(interpreter, root, [f"/usr/lib/python{plan.python}",
                                         "/usr/lib/python3/dist-packages"])
        self.progress("compiling the standard library", 1, 1)
        return ()

    def fetch_debs(self, debs: Sequence[LockedDeb]) -> dict[str, Path]:
        advance = byte_counter(self.progress, "downloading .debs", sum(d.size for d in debs))
        with LazyClient(self.ca_bundle) as client:
            return fetch_debs(debs, self.cache, client, lambda d: deb_url(d, os.environ),
                              advance)

    def _keep_rootfs(self, key: str, root: Path) -> None:
        """Keep an unpacked base: its interpreter compiles the wheels' bytecode."""
        self.rootfs_dir.mkdir(parents=True, exist_ok=True)
        target = self.rootfs_dir / key
        if target.exists():
            return
        with contextlib.suppress(OSError):  # another build kept the same tree first
            os.replace(root, target)

    # --- wheels and their bytecode ----------------------------------------------------------
    def _bytecode_interpreter(self, plan: BuildPlan) -> Interpreter | None:
        """The image's Python, runnable here: the kept base tree, else a matching host one."""
        base_future = self.base_future
        if base_future is not None:
            base_future.result()  # the base layer being built keeps its tree for us
        with self._interpreter_lock:
            return self._find_interpreter(plan)

    def _find_interpreter(self, plan: BuildPlan) -> Interpreter | None:
        if plan.interpreter in self._interpreters:
            return self._interpreters[plan.interpreter]
        base = next((x for x in plan.layers if x.kind == "debian"), None)
        found = None
        if base is not None:
            key = base.key(plan)
            rootfs = self.rootfs_dir / key
            if not rootfs.exists():  # the base layer came from the cache without its tree
                with tempfile.TemporaryDirectory(prefix=temp_prefix("rootfs"),
                                                 dir=self.cache.root.parent) as t:
                    tree = Path(t, "root")
                    tree.mkdir()
                    self._debian(plan, base, tree)
                    self._keep_rootfs(key, tree)
            found = interpreter_in(rootfs, plan.python, identity=key)
        found = found or host_interpreter(plan.python)
        self._interpreters[plan.interpreter] = found
        return found

    def _wheels(self, plan: BuildPlan, layer: LayerPlan, root: Path,
                wheel_paths: Mapping[str, Future[Path]],
                sources: dict[str, Callable[[], BinaryIO]]) -> tuple[str, ...]:
        from dlenv.image.install import install_wheels  # installer: only when installing

        paths = [(w, wheel_paths[w.sha256].result()) for w in layer.wheels]
        self.progress(f"installing {layer.name}", 0, 1)
        install_wheels(paths, root, plan.python, layer.part, sources)
        self.progress(f"installing {layer.name}", 1, 1)
        if not plan.bytecode:
            return ()
        interpreter = self._bytecode_interpreter(plan)
        if interpreter is None:
            return (_no_bytecode(plan.python, "the Python packages'"),)
        self.progress(f"compiling {layer.name}", 0, 1)
        # Only a bucket of several wheels compiles again what it compiled before (one of its
        # packages changed); a layer of one wheel is rebuilt only for a new wheel, whose
        # sources are new, and keeping TensorFlow's 6,500 files cost a cold build seconds.
        cache = BytecodeCache(self.rootfs_dir.parent / "pyc" / interpreter.identity,
                              plan.python) if interpreter.identity and len(layer.wheels) > 1 \
            else None
        compile_tree(interpreter, root, [site_packages(plan.python)], cache=cache)
        record_bytecode(root, plan.python)
        self.progress(f"compiling {layer.name}", 1, 1)
        return ()

def _copy_files(layer: LayerPlan, root: Path, base: str,
                ids: tuple[int, int] | None) -> dict[str, tuple[int, int]]:
    """Copy ``layer.files`` from ``layer.source`` to ``base`` in the layer, checking each
    against the hash it was planned with; the owners of what was made (``ids``, or root's
    where None: a served model stays read-only for the image's user)."""
    assert layer.source is not None
    source = Path(layer.source)
    owners = {base: ids} if ids else {}
    inside(root, base).mkdir(parents=True)
    for f in layer.files:
        dest = inside(root, f"{base}/{f.path}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        rel = f"{base}/{f.path}"
        if ids:
            parts = rel.split("/")
            for i in range(len(parts) - 1, 1, -1):
                owners["/".join(parts[:i])] = ids
            owners[rel] = ids
        if f.link is not None:
            os.symlink(f.link, dest)
            continue
        shutil.copyfile(source / f.path, dest)
        if sha256_file(dest) != f.sha256:
            raise BuildError(f"{source / f.path} changed while the image was built",
                             fix="build again when the file is no longer being written")
        os.chmod(dest, 0o755 if f.executable else 0o644)
    return owners


def _no_bytecode(python: str, what: str) -> str:
    return (f"{what} bytecode was not compiled: no python{python} of the image runs on this "
            "build host; each container compiles what it imports, at every start")
