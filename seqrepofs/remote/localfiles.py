"""What the local root already holds, by SHA-256: the basis for hardlinks and database deltas.

Choice: every snapshot pulled over HTTP/S3 (or published from this root) gets its manifest
kept beside it in `<root>/.seqrepofs/manifests/<instance>.json` (a dot directory, so neither
SeqRepo nor `serve-rsync` sees it). A snapshot without one (made by `snapshot` or pulled with
rsync) is hashed lazily: only a file with the same path and size as a wanted one is read, and
only when it is wanted, so a pull costs at most one read of the candidate files.
"""

from __future__ import annotations

import os
import tempfile

from ..store import instances
from .errors import ManifestError
from .manifest import DigestCache, FileEntry, Manifest, chunk_digests, parse

LOCAL_META = os.path.join(".seqrepofs", "manifests")


def local_manifest_path(root: str, name: str) -> str:
    return os.path.join(root, LOCAL_META, f"{name}.json")


def save_local_manifest(root: str, manifest: Manifest) -> None:
    """Write (atomically) the manifest kept beside a local snapshot; silently skipped when
    the root is not writable (a shared read-only root still works, only hashes lazily)."""
    path = local_manifest_path(root, manifest.instance)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    except OSError:  # read-only (EACCES, EROFS): the kept manifest is only a shortcut
        return
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(manifest.to_json())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError:  # a full disk, say: no half-written manifest is left behind
        os.unlink(tmp)


def load_local_manifest(root: str, name: str) -> Manifest | None:
    try:
        with open(local_manifest_path(root, name), "rb") as fh:
            manifest = parse(fh.read(), local_manifest_path(root, name))
    except (OSError, ManifestError):
        return None
    return manifest if manifest.instance == name else None


class LocalFiles:
    """Local snapshot files that can stand in for wanted ones (same SHA-256)."""

    def __init__(self, root: str, exclude: str | None = None) -> None:
        self.root = root
        self.cache = DigestCache()
        try:
            names = instances.list_instances(root)
        except OSError:
            names = []
        self.snapshots = [
            n for n in names if n != exclude and instances.is_instance(os.path.join(root, n))
        ]  # oldest first
        self.manifests = {n: load_local_manifest(root, n) for n in self.snapshots}
        self.by_digest: dict[str, list[str]] = {}
        for name, manifest in self.manifests.items():
            for f in manifest.files if manifest else ():
                self.by_digest.setdefault(f.sha256, []).append(os.path.join(root, name, f.path))

    def find(self, entry: FileEntry) -> str | None:
        """A local path whose content has `entry`'s digest, or None."""
        for path in reversed(self.by_digest.get(entry.sha256, [])):
            if file_size(path) == entry.size:
                return path
        for name in reversed(self.snapshots):
            if self.manifests[name] is not None:
                continue  # its digests are all in by_digest already
            path = os.path.join(self.root, name, entry.path)
            if file_size(path) == entry.size and self.cache.digest(path) == entry.sha256:
                return path
        return None

    def newest_copy(self, relpath: str) -> str | None:
        """The newest local snapshot's file at `relpath` (the basis of a database delta)."""
        for name in reversed(self.snapshots):
            path = os.path.join(self.root, name, relpath)
            if os.path.isfile(path):
                return path
        return None

    def chunks_of(self, path: str, chunk_size: int) -> tuple[str, ...]:
        """Chunk digests of a local database: from its manifest if kept, else read."""
        rel = os.path.relpath(path, self.root).split(os.sep, 1)
        manifest = self.manifests.get(rel[0]) if len(rel) == 2 else None
        if manifest is not None and manifest.chunk_size == chunk_size:
            entry = manifest.by_path().get(rel[1].replace(os.sep, "/"))
            if entry is not None and entry.chunks and entry.size == file_size(path):
                return entry.chunks
        return chunk_digests(path, chunk_size)[1]


def file_size(path: str) -> int:
    """Size of a file, -1 if it is missing or unreadable."""
    try:
        return os.stat(path).st_size
    except OSError:
        return -1
