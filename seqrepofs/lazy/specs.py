"""FileSpecs of one published snapshot, from its manifest (the layout of `seqrepofs publish`).

Written against the manifest's fields (path, size, sha256, chunks; the manifest's chunk_size)
rather than its class, so this layer does not depend on how the manifest is fetched.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol
from urllib.parse import quote

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
