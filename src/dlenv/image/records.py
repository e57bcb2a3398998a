"""Which blob each layer key gave: small records kept beside the store, so an unchanged layer
is reused without unpacking or recompressing, and checked against the store before reuse."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from dlenv.fsutil import canonical_json, write_atomic
from dlenv.oci import Descriptor, LayerBlob
from dlenv.oci.store import OCIStore, is_plain_tar


@dataclass(slots=True)
class Built:
    """A layer as the store holds it, with what the build learnt while writing it."""

    blob: LayerBlob
    files: tuple[str, ...] = ()  # regular files a wheel layer ships (to report overlaps)
    notes: tuple[str, ...] = ()


class LayerRecords:
    """``key → Built`` records in ``directory`` (one JSON file per key)."""

    def __init__(self, directory: Path, store: OCIStore) -> None:
        self.directory = directory
        self.store = store
        directory.mkdir(parents=True, exist_ok=True)

    def get(self, key: str) -> Built | None:
        """The blob a layer key gave before, when its record reads and the store still holds
        that blob intact (size and stamp; see ``OCIStore.check``); else None, and a bad
        record is dropped so the layer is built again."""
        path = self.directory / f"{key}.json"
        if not path.exists():
            return None
        try:
            built = _read(path)
        except (ValueError, KeyError, TypeError, AttributeError):
            path.unlink(missing_ok=True)
            return None
        blob = built.blob
        desc = blob.descriptor
        if self.store.check(desc.digest, desc.size, blob.diff_id):
            return built
        packed = self.store.packed_form(blob.diff_id) if is_plain_tar(blob) else None
        if packed is None:
            path.unlink(missing_ok=True)
            return None
        # The layer's tar went (``gc``), once an image that holds it was packed: its packed
        # blob is the layer.
        built.blob = replace(blob, descriptor=packed, diff_size=desc.size)
        self.put(key, built)
        return built

    def put(self, key: str, built: Built) -> None:
        write_atomic(self.directory / f"{key}.json", canonical_json({
            "descriptor": built.blob.descriptor.to_json(), "diff_id": built.blob.diff_id,
            "name": built.blob.name, "files": list(built.files),
            "notes": list(built.notes)}))

    def prune(self, *, dry_run: bool = False, doomed: frozenset[str] = frozenset()
              ) -> tuple[dict[str, int], set[str]]:
        """Drop the records whose blob the store no longer holds (or will not: ``doomed``
        digests, for a dry run); (what was dropped, with sizes; the keys that remain)."""
        dropped: dict[str, int] = {}
        live: set[str] = set()
        for path in sorted(self.directory.glob("*.json")):
            try:
                blob = _read(path).blob
                digest = blob.descriptor.digest
                present = digest not in doomed and self.store.has(digest)
                if not present and is_plain_tar(blob):  # a tar that was packed
                    packed = self.store.packed_form(blob.diff_id)
                    present = packed is not None and packed.digest not in doomed
                    if present and not dry_run:
                        self.get(path.stem)  # the record now names the packed blob
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                present = False
            if present:
                live.add(path.stem)
                continue
            dropped[path.name] = path.stat().st_size
            if not dry_run:
                path.unlink(missing_ok=True)
        return dropped, live


def _read(path: Path) -> Built:
    """The record in ``path``; ValueError, KeyError, TypeError or AttributeError when its
    text is not one."""
    data = json.loads(path.read_bytes())
    blob = LayerBlob(descriptor=Descriptor.from_json(data["descriptor"]),
                     diff_id=str(data["diff_id"]), name=str(data["name"]))
    return Built(blob, tuple(map(str, data.get("files", ()))),
                 tuple(map(str, data.get("notes", ()))))
