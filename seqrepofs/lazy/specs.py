"""FileSpecs of one published snapshot, from its manifest (the layout of `seqrepofs publish`).

`snapshot_specs(URL)` resolves a snapshot URL (`…/PREFIX/INSTANCE` or `…/PREFIX/latest`) with
the publish layer's reader; `file_specs` only needs the manifest's fields (path, size, sha256,
chunks; the manifest's chunk_size), however the manifest was fetched.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol
from urllib.parse import quote, unquote

from .remote_file import FileSpec


class ManifestEntry(Protocol):
    @property
    def path(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def sha256(self) -> str: ...
    @property
    def chunks(self) -> tuple[str, ...]: ...


class ManifestLike(Protocol):
    @property
    def files(self) -> Sequence[ManifestEntry]: ...
    @property
    def chunk_size(self) -> int: ...


def manifest_digest(manifest_bytes: bytes) -> str:
    """The manifest's own identity (SHA-256 of its bytes as published)."""
    return hashlib.sha256(manifest_bytes).hexdigest()


def file_specs(snapshot_url: str, manifest: ManifestLike, digest: str) -> dict[str, FileSpec]:
    """path → FileSpec for every file of the snapshot published at `snapshot_url`
    (`…/PREFIX/INSTANCE`; `latest` already resolved to the instance's name)."""
    base = snapshot_url.rstrip("/")
    return {
        f.path: FileSpec(
            url=f"{base}/{quote(f.path, safe='/')}",
            size=f.size,
            sha256=f.sha256,
            chunk_size=manifest.chunk_size if f.chunks else None,
            chunk_digests=tuple(f.chunks),
            manifest_digest=digest,
            path=f.path,
        )
        for f in manifest.files
    }


def snapshot_specs(
    snapshot_url: str, *, endpoint_url: str | None = None
) -> tuple[str, dict[str, FileSpec]]:
    """(instance name, path → FileSpec) of the snapshot at `snapshot_url`: the last path
    component names the instance, or is `latest` (resolved through the published `latest`
    object). One small request for `latest` if needed, one for the manifest."""
    from ..remote.manifest import manifest_key, parse
    from ..remote.sources import open_source

    url = snapshot_url.rstrip("/")
    root, _, name = url.rpartition("/")
    if not name or "://" not in root:
        raise ValueError(f"{snapshot_url!r}: give a snapshot URL, …/PREFIX/INSTANCE or …/latest")
    name = unquote(name)
    with open_source(root, endpoint_url=endpoint_url) as source:
        if name == "latest":
            name = source.latest()
        key = manifest_key(name)
        data = source.get(key)
        manifest = parse(data, source.where(key))
    return name, file_specs(f"{root}/{quote(name)}", manifest, manifest_digest(data))
