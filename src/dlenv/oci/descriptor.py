"""Media types, the content descriptor (digest, size, media type) and a layer blob.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
MT_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
LAYER_MEDIA_TYPES = {"gzip": MT_LAYER_GZIP, "zstd": MT_LAYER_ZSTD, "none": MT_LAYER_TAR}


@dataclass(frozen=True, slots=True, kw_only=True)
class Descriptor:
    media_type: str
    digest: str  # "sha256:<hex>"
    size: int
    annotations: dict[str, str] = field(default_factory=dict, hash=False)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest,
                               "size": self.size}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Descriptor:
        return cls(media_type=data["mediaType"], digest=data["digest"], size=int(data["size"]),
                   annotations=dict(data.get("annotations", {})))

    @property
    def hex(self) -> str:
        return self.digest.split(":", 1)[1]


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerBlob:
    """A written layer: its compressed blob and its uncompressed diff id."""

    descriptor: Descriptor
    diff_id: str
    name: str = ""  # what the layer holds, for summaries and history
    diff_size: int = 0  # the uncompressed tar's length (0: not known)
