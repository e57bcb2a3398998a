"""A bundle is outside input: its index and members are checked before anything is kept."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from dlenv.errors import IntegrityError
from dlenv.workflows.bundle import import_bundle

SPEC = b'name = "x"\n'


def bundle(tmp_path: Path, index: dict[str, object] | bytes,
           members: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    path = tmp_path / "b.tar"
    with tarfile.open(path, "w") as tar:
        raw = index if isinstance(index, bytes) else json.dumps(index).encode()
        for item in [("bundle.json", raw), *members]:
            if isinstance(item, tarfile.TarInfo):
                tar.addfile(item)
                continue
            info = tarfile.TarInfo(item[0])
            info.size = len(item[1])
            tar.addfile(info, io.BytesIO(item[1]))
    return path


def index_of(**members: bytes) -> dict[str, object]:
    return {"version": 1, "images": [], "members": {
        name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        for name, data in members.items()}}


def test_a_good_bundle_writes_projects_only_where_it_is_told(tmp_path):
    path = bundle(tmp_path, index_of(**{"projects/x/dlenv.toml": SPEC}),
                  [("projects/x/dlenv.toml", SPEC)])
    done = import_bundle(path, cache_dir=str(tmp_path / "c"), projects_dir=tmp_path / "p")
    assert (tmp_path / "p/x/dlenv.toml").read_bytes() == SPEC and done.members == 2


@pytest.mark.parametrize("name", ["projects/../../etc/dlenv.toml", "/etc/passwd",
                                  "projects/x/../../y/dlenv.toml", "files/" + "0" * 63])
def test_an_index_naming_a_path_outside_the_layout_is_refused(tmp_path, name):
    path = bundle(tmp_path, index_of(**{name: SPEC}), [])
    with pytest.raises(IntegrityError, match=r"bundle\.json of the bundle is malformed"):
        import_bundle(path, cache_dir=str(tmp_path / "c"), projects_dir=tmp_path / "p")
    assert not (tmp_path / "p").exists()


def test_a_file_not_named_by_its_hash_is_refused(tmp_path):
    index = index_of(**{"projects/x/dlenv.toml": SPEC})
    index["members"]["files/" + "a" * 64] = {"sha256": "b" * 64, "size": 1}  # type: ignore
    with pytest.raises(IntegrityError, match="not named by its hash"):
        import_bundle(bundle(tmp_path, index, []), cache_dir=str(tmp_path / "c"))


def test_extra_links_and_changed_members_are_named(tmp_path):
    good = index_of(**{"projects/x/dlenv.toml": SPEC})
    extra = bundle(tmp_path, good, [("projects/x/dlenv.toml", SPEC), ("evil.sh", b"x")])
    with pytest.raises(IntegrityError, match=r"member 'evil\.sh' is not a file the bundle"):
        import_bundle(extra, cache_dir=str(tmp_path / "c"))
    link = tarfile.TarInfo("projects/x/dlenv.toml")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/shadow"
    with pytest.raises(IntegrityError, match="is not a file the bundle's index lists"):
        import_bundle(bundle(tmp_path, good, [link]), cache_dir=str(tmp_path / "c"))
    changed = bundle(tmp_path, good, [("projects/x/dlenv.toml", b'name = "y"\n')])
    with pytest.raises(IntegrityError, match=r"member projects/x/dlenv\.toml is not what"):
        import_bundle(changed, cache_dir=str(tmp_path / "c"), projects_dir=tmp_path / "p")
    assert not (tmp_path / "p").exists()


def test_a_file_that_is_not_a_bundle_says_so(tmp_path):
    path = tmp_path / "other.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("README")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(IntegrityError, match="not a dlenv bundle"):
        import_bundle(path, cache_dir=str(tmp_path / "c"))
    with pytest.raises(IntegrityError, match="malformed"):
        import_bundle(bundle(tmp_path, b"{", []), cache_dir=str(tmp_path / "c"))
