"""OCI building blocks: digests and descriptors, deterministic layers, image config and
manifest, the on-disk image-layout store, exports and the registry client."""

from __future__ import annotations

from dlenv.oci.descriptor import (
    LAYER_MEDIA_TYPES,
    MT_CONFIG,
    MT_DOCKER_LIST,
    MT_DOCKER_MANIFEST,
    MT_INDEX,
    MT_LAYER_GZIP,
    MT_LAYER_TAR,
    MT_LAYER_ZSTD,
    MT_MANIFEST,
    Descriptor,
    LayerBlob,
)

__all__ = [
    "Descriptor", "LAYER_MEDIA_TYPES", "LayerBlob", "MT_CONFIG", "MT_DOCKER_LIST",
    "MT_DOCKER_MANIFEST", "MT_INDEX", "MT_LAYER_GZIP", "MT_LAYER_TAR", "MT_LAYER_ZSTD",
    "MT_MANIFEST",
]
