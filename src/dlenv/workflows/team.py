"""The team configuration's one piece of I/O beyond files: a team file published at a URL.
Its own module, because every command reads the configuration before it runs and the
project workflows import the whole spec, lock and image stack."""

from __future__ import annotations

import functools
from pathlib import Path

from dlenv.errors import ConfigError


@functools.lru_cache(maxsize=8)
def published_config(url: str, cache_dir: str | None = None) -> Path:
    """A team file published at ``url`` (``DLENV_CONFIG``): fetched over HTTPS (plain HTTP
    only from this machine) into the cache once per command (the CLI and the project both
    read the configuration), at most 1 MiB; when the network fails, the last copy."""
    import hashlib
    import urllib.parse

    import httpx

    from dlenv.cache import default_cache_dir, host_bundle, http_client
    from dlenv.fsutil import write_atomic

    host = urllib.parse.urlsplit(url).hostname or ""
    if not url.startswith("https://") and host not in ("127.0.0.1", "localhost", "::1"):
        raise ConfigError(f"DLENV_CONFIG: {url} is not https; a team file decides mirrors and "
                          "policies, so it is read only over TLS",
                          fix="publish it over https, or download it and name its path")
    copy = default_cache_dir(cache_dir) / "team" / (
        hashlib.sha256(url.encode()).hexdigest()[:16] + ".toml")
    try:
        with http_client(host_bundle()) as client:
            r = client.get(url)
            r.raise_for_status()
        if len(r.content) > 1 << 20:
            raise ConfigError(f"DLENV_CONFIG: {url} is larger than 1 MiB",
                              fix="a team file is a few lines")
        copy.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(copy, r.content)
    except httpx.HTTPError as exc:
        if not copy.is_file():
            raise ConfigError(f"DLENV_CONFIG: {url} cannot be read ({exc}), and no earlier "
                              "copy is kept", fix="check the network, or name a file") from None
    return copy
