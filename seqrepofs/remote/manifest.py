"""The published layout's metadata: per-snapshot manifests, the index and `latest` (format v1).

A manifest lists every file of one snapshot with its size and SHA-256; each SQLite database
(`*.sqlite3`) is also cut into fixed-size chunks with a SHA-256 each, so a puller can fetch only
the chunks that differ from its own newest copy. Everything here is pure data plus hashing of
local files; fetching lives in `sources`, so `load(url)` is the one entry point other code
(lazy remote reading) needs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import ManifestError

FORMAT_VERSION = 1
MANIFEST_FORMAT = "seqrepofs-manifest"
INDEX_FORMAT = "seqrepofs-index"
# Where the metadata objects live under a published root (a directory or an S3 prefix).
META_DIR = "seqrepofs"
INDEX_KEY = f"{META_DIR}/index.json"
LATEST_KEY = f"{META_DIR}/latest"
# One SQLite page (4 KiB, the page size of every SeqRepo database): the unit in which SQLite
# changes a file. An update's new rows land in B-tree index pages spread over the whole file,
# between unchanged table pages; in scripts/bench/bench_pull.py (5% new transcripts) 55% of
# aliases.sqlite3's 4 KiB pages changed but 97% of its 16 KiB and 100% of its 64 KiB chunks.
# The cost is the manifest: ~68 bytes of JSON per chunk, 1.7% of the database's size.
CHUNK_SIZE = 4096
DB_SUFFIX = ".sqlite3"
_SKIP_SUFFIXES = ("-journal", "-wal", "-shm")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX_DIGITS = "0123456789abcdef"


def manifest_key(instance: str) -> str:
    return f"{META_DIR}/manifests/{instance}.json"


@dataclass(frozen=True)
class FileEntry:
    """One file of a snapshot: path relative to the instance, size, SHA-256, chunk digests."""

    path: str
    size: int
    sha256: str
    chunks: tuple[str, ...] = ()

    @property
    def is_database(self) -> bool:
        return bool(self.chunks) or self.path.endswith(DB_SUFFIX)


@dataclass(frozen=True)
class Manifest:
    """Everything a puller needs to rebuild one snapshot and check every byte of it."""

    instance: str
    files: tuple[FileEntry, ...]
    chunk_size: int = CHUNK_SIZE
    created: str = ""
    # the JSON it was parsed from: kept beside a pulled snapshot as it came, as re-encoding
    # an indented 9 MB manifest takes Python's pure-Python encoder 0.1-0.4 s
    source_json: bytes = field(default=b"", compare=False, repr=False)

    def by_path(self) -> dict[str, FileEntry]:
        return {f.path: f for f in self.files}

    def to_json(self) -> bytes:
        if self.source_json:
            return self.source_json
        files = []
        for f in self.files:
            item: dict[str, object] = {"path": f.path, "size": f.size, "sha256": f.sha256}
            if f.chunks:
                item["chunks"] = list(f.chunks)
            files.append(item)
        doc = {
            "format": MANIFEST_FORMAT,
            "version": FORMAT_VERSION,
            "instance": self.instance,
            "created": self.created,
            "chunk_size": self.chunk_size,
            "files": files,
        }
        return json.dumps(doc, indent=1).encode() + b"\n"


def parse(data: bytes, what: str = "manifest") -> Manifest:
    """A Manifest from its JSON; ManifestError (one line) if it is not one we can read."""
    doc = _load_json(data, what, MANIFEST_FORMAT)
    try:
        chunk_size = int(doc["chunk_size"])
        files = tuple(
            FileEntry(
                _safe_path(str(f["path"]), what),
                int(f["size"]),
                _hex(str(f["sha256"]), what),
                _hex_list(f.get("chunks", ()), what),
            )
            for f in doc["files"]
        )
        created = str(doc.get("created", ""))
        manifest = Manifest(str(doc["instance"]), files, chunk_size, created, bytes(data))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ManifestError(f"{what}: malformed ({exc.__class__.__name__}: {exc})") from None
    if chunk_size <= 0:
        raise ManifestError(f"{what}: chunk_size must be positive")
    for f in files:
        if f.chunks and len(f.chunks) != n_chunks(f.size, chunk_size):
            raise ManifestError(
                f"{what}: {f.path} has {len(f.chunks)} chunk digests for {f.size} bytes"
            )
    return manifest


@dataclass
class Index:
    """The published snapshots, oldest first, each with its manifest key."""

    snapshots: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return sorted(self.snapshots)

    def to_json(self) -> bytes:
        doc = {
            "format": INDEX_FORMAT,
            "version": FORMAT_VERSION,
            "snapshots": [{"name": n, "manifest": self.snapshots[n]} for n in self.names],
        }
        return json.dumps(doc, indent=1).encode() + b"\n"


def parse_index(data: bytes, what: str = "index") -> Index:
    doc = _load_json(data, what, INDEX_FORMAT)
    try:
        snaps = {str(s["name"]): _safe_path(str(s["manifest"]), what) for s in doc["snapshots"]}
    except (KeyError, TypeError, ValueError) as exc:
        raise ManifestError(f"{what}: malformed ({exc.__class__.__name__}: {exc})") from None
    return Index(snaps)


def _load_json(data: bytes, what: str, fmt: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        raise ManifestError(f"{what}: not valid JSON (damaged or not a seqrepofs file)") from None
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise ManifestError(f"{what}: not a {fmt} file")
    if doc.get("version") != FORMAT_VERSION:
        raise ManifestError(
            f"{what}: format version {doc.get('version')!r} is not supported by this seqrepofs "
            f"(it reads version {FORMAT_VERSION}; upgrade seqrepofs)"
        )
    return doc


def _safe_path(path: str, what: str) -> str:
    """Refuse paths that would escape the snapshot directory."""
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ManifestError(f"{what}: unsafe path {path!r}")
    return path


def _hex(value: str, what: str) -> str:
    if not _HEX64.fullmatch(value):
        raise ManifestError(f"{what}: {value!r} is not a SHA-256 hex digest")
    return value


def _hex_list(values: Any, what: str) -> tuple[str, ...]:
    """Chunk digests, checked as a whole (a 300,000-sequence manifest has 131,000 of them:
    one regex call each took most of its parsing time)."""
    digests = tuple(values)
    if not digests:
        return digests
    try:
        joined = "".join(digests)  # TypeError for anything but strings
    except TypeError:
        joined = ""
    if joined and set(map(len, digests)) == {64} and not joined.strip(_HEX_DIGITS):
        return digests
    bad = next(d for d in digests if not (isinstance(d, str) and _HEX64.fullmatch(d)))
    raise ManifestError(f"{what}: {bad!r} is not a SHA-256 hex digest")


def n_chunks(size: int, chunk_size: int) -> int:
    return (size + chunk_size - 1) // chunk_size


def chunk_digests(path: str, chunk_size: int = CHUNK_SIZE) -> tuple[str, tuple[str, ...]]:
    """SHA-256 of the whole file and of each chunk, in one read."""
    whole = hashlib.sha256()
    chunks = []
    with open(path, "rb") as fh:
        while block := fh.read(chunk_size):
            whole.update(block)
            chunks.append(hashlib.sha256(block).hexdigest())
    return whole.hexdigest(), tuple(chunks)


def file_digest(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def instance_files(instance_dir: str) -> Iterator[str]:
    """Relative paths of an instance's regular files, sorted; journals and dot files skipped."""
    found = []
    for dirpath, dirnames, filenames in os.walk(instance_dir):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.startswith(".") or name.endswith(_SKIP_SUFFIXES):
                continue
            full = os.path.join(dirpath, name)
            if os.path.isfile(full) and not os.path.islink(full):
                found.append(os.path.relpath(full, instance_dir).replace(os.sep, "/"))
    return iter(sorted(found))


class DigestCache:
    """SHA-256s by inode, so files hardlinked between snapshots are read once per run."""

    def __init__(self) -> None:
        self._seen: dict[tuple[int, int, int, int], str] = {}

    def digest(self, path: str) -> str:
        st = os.stat(path)
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if key not in self._seen:
            self._seen[key] = file_digest(path)
        return self._seen[key]


def build(
    instance_dir: str,
    name: str,
    chunk_size: int = CHUNK_SIZE,
    cache: DigestCache | None = None,
) -> Manifest:
    """Hash a local instance into its manifest (databases chunked)."""
    cache = cache or DigestCache()
    entries = []
    for rel in instance_files(instance_dir):
        full = os.path.join(instance_dir, rel)
        size = os.path.getsize(full)
        if rel.endswith(DB_SUFFIX):
            sha, chunks = chunk_digests(full, chunk_size)
            entries.append(FileEntry(rel, size, sha, chunks))
        else:
            entries.append(FileEntry(rel, size, cache.digest(full)))
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return Manifest(name, tuple(entries), chunk_size, stamp)


def load(url: str, instance: str | None = None, *, endpoint_url: str | None = None) -> Manifest:
    """The manifest of `instance` (default: `latest`) published at `url` (http(s), s3, file)."""
    from .sources import open_source

    with open_source(url, endpoint_url=endpoint_url) as source:
        return source.manifest(instance or source.latest())
