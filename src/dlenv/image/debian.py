"""Unpack the locked Debian packages of a native base, like a distroless image.

Unpacking does what dpkg and the maintainer scripts would have done that matters at run
time: the dpkg status database (so scanners see every package), merged /usr, the CA bundle,
the time zone, the users, and the dynamic linker cache. No maintainer script runs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dlenv.cache import ContentCache, LazyClient
from dlenv.errors import BuildError
from dlenv.fsutil import inside
from dlenv.lock import LockedDeb
from dlenv.spec import User

MERGED = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


def fetch_debs(debs: Sequence[LockedDeb], cache: ContentCache, client: LazyClient,
               url: Callable[[LockedDeb], str],
               progress: Callable[[int], None] | None = None) -> dict[str, Path]:
    """Download the locked .debs in parallel into the cache; return name -> verified path."""
    def one(deb: LockedDeb) -> tuple[str, Path]:
        return deb.name, cache.fetch(client, url(deb), deb.sha256, progress)

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(pool.map(one, debs))


def _target_path(name: str) -> str:
    """Path of a data.tar member in a merged-/usr tree ('./bin/sh' -> 'usr/bin/sh')."""
    rel = name.removeprefix("./").rstrip("/")
    head = rel.split("/", 1)[0]
    if head in MERGED:
        rel = "usr/" + rel
    return rel


def _unpack(deb: Path, root: Path) -> list[str]:
    """Unpack one .deb's data into root; return the paths dpkg would list for it."""
    listed = []
    from debian.debfile import DebFile  # 60 ms to import: only where a .deb is read

    with DebFile(str(deb)) as package:
        tar = package.data.tgz()
        for member in tar:
            original = "/" + member.name.removeprefix("./").rstrip("/")
            listed.append("/." if original == "/" else original)
            rel = _target_path(member.name)
            if not rel or rel in MERGED:
                continue
            dest = inside(root, rel)  # never through a link out of the tree
            if member.isdir():
                if dest.is_symlink():
                    continue  # a directory merged into another (e.g. lib64 -> usr/lib64)
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.is_symlink() or dest.exists():
                if dest.is_dir() and not dest.is_symlink():
                    continue
                dest.unlink()
            if member.issym():
                os.symlink(member.linkname, dest)
            elif member.islnk():
                os.link(inside(root, _target_path(member.linkname)), dest)
            elif member.isfile():
                source = tar.extractfile(member)
                assert source is not None
                with dest.open("wb") as f:
                    shutil.copyfileobj(source, f)
                os.chmod(dest, member.mode & 0o7777)
    return ["/." if p == "/" else p for p in listed]


def _control(deb: Path) -> str:
    from debian.debfile import DebFile  # 60 ms to import: only where a .deb is read

    with DebFile(str(deb)) as package:
        text = package.control.get_content("control", encoding="utf-8")
    assert isinstance(text, str)
    return text.strip()


def write_users(root: Path, user: User) -> None:
    etc = root / "etc"
    etc.mkdir(exist_ok=True)
    for name, text in user.account_files().items():
        (etc / name).write_text(text)
    os.chmod(etc / "shadow", 0o640)


def materialize_base(debs: Mapping[str, Path], locked: Sequence[LockedDeb], root: Path,
                     user: User, workdir: str) -> None:
    """Unpack ``debs`` into ``root`` and write what their maintainer scripts would have."""
    for d in ("usr/bin", "usr/sbin", "usr/lib", "usr/lib64"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for name in ("bin", "sbin", "lib", "lib64"):
        os.symlink(f"usr/{name}", root / name)
    info = root / "var/lib/dpkg/info"
    info.mkdir(parents=True, exist_ok=True)
    status = []
    for deb in sorted(locked, key=lambda d: d.name):
        path = debs[deb.name]
        control = _control(path)
        fields = dict(re.findall(r"^(Package|Version|Architecture): (.+)$", control, re.M))
        if (fields.get("Package"), fields.get("Version"), fields.get("Architecture")) != \
                (deb.name, deb.version, deb.architecture):
            raise BuildError(f"{deb.filename} is {fields.get('Package')} "
                             f"{fields.get('Version')} ({fields.get('Architecture')}), but the "
                             f"lock names it {deb.name} {deb.version} ({deb.architecture})",
                             fix="the lock was edited; run 'dlenv lock' to rewrite it")
        listed = _unpack(path, root)
        key = deb.name + (":amd64" if "Multi-Arch: same" in control else "")
        (info / f"{key}.list").write_text("\n".join(listed) + "\n")
        lines = control.splitlines()
        status.append("\n".join([lines[0], "Status: install ok installed", *lines[1:]]))
    (root / "var/lib/dpkg/status").write_text("\n\n".join(status) + "\n")
    _post_install(root, user, workdir)


def _post_install(root: Path, user: User, workdir: str) -> None:
    # ca-certificates' postinst: one bundle of every shipped certificate.
    certs = sorted((root / "usr/share/ca-certificates").rglob("*.crt"))
    bundle = root / "etc/ssl/certs/ca-certificates.crt"
    bundle.parent.mkdir(parents=True, exist_ok=True)
    bundle.write_bytes(b"".join(c.read_bytes().rstrip(b"\n") + b"\n" for c in certs))
    ssl_dir = root / "usr/lib/ssl"
    if ssl_dir.is_dir() and not (ssl_dir / "cert.pem").exists():
        os.symlink("/etc/ssl/certs/ca-certificates.crt", ssl_dir / "cert.pem")
    # tzdata's postinst: UTC.
    (root / "etc/timezone").write_text("Etc/UTC\n")
    localtime = root / "etc/localtime"
    localtime.unlink(missing_ok=True)
    os.symlink("/usr/share/zoneinfo/Etc/UTC", localtime)
    write_users(root, user)
    # pip as the image's user: site-packages belong to root, so `pip install` puts packages
    # in ~/.local (the home volume of development containers) and leaves the locked ones
    # alone, instead of stopping at Debian's "externally managed" marker; login shells (ssh)
    # find the commands it installs.
    (root / "etc/pip.conf").write_text("[global]\nbreak-system-packages = true\n")
    profile_d = root / "etc/profile.d"
    profile_d.mkdir(parents=True, exist_ok=True)
    (profile_d / "dlenv-local-bin.sh").write_text(
        'case ":$PATH:" in *":$HOME/.local/bin:"*) ;; *) PATH="$HOME/.local/bin:$PATH" ;; '
        'esac\nexport PATH\n')
    for d, mode in (("tmp", 0o1777), ("var/tmp", 0o1777), ("root", 0o700),
                    (f"home/{user.name}", 0o755), (workdir.lstrip("/"), 0o755)):
        path = inside(root, d)  # the spec names the workdir: it must stay in the tree
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, mode)
    # libc-bin's trigger: the dynamic linker cache, for libraries outside the default paths.
    proc = subprocess.run(["ldconfig", "-r", str(root)], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise BuildError(f"ldconfig failed for the base: {proc.stderr.strip()}")
    shutil.rmtree(root / "var/cache/ldconfig", ignore_errors=True)
