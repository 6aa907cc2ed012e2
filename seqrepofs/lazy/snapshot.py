"""One published snapshot opened in place: its files as RemoteFiles over one shared cache.

`open_snapshot(URL)` is what `SeqRepo(URL)`, `mount URL`, `serve URL` and `export URL` share:
the manifest (fetched once, then kept in the cache directory: a published instance never
changes, so a later open needs no request at all, and a warm cache keeps working with the
server down), one `RangeCache` per cache directory per process, and one `RemoteFile` per
published file, made on first use. `latest` is resolved through the server each time.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit

from ..errors import CorruptFileError, InvalidInputError
from .range_cache import DEFAULT_CACHE_BYTES, RangeCache, default_cache_dir, parse_size
from .remote_file import CHUNK_BYTES, DEFAULT_HTTP_TIMEOUT, FileSpec, RemoteFile
from .specs import file_specs, manifest_digest
from .sqlite_vfs import DB_CHUNK_BYTES

if TYPE_CHECKING:
    from ..remote.manifest import Manifest

ENV_CACHE_DIR = "SEQREPOFS_CACHE_DIR"  # the defaults of SeqRepo(URL); the commands' options win
ENV_CACHE_SIZE = "SEQREPOFS_CACHE_SIZE"
ENV_HTTP_TIMEOUT = "SEQREPOFS_HTTP_TIMEOUT"
# Fetched from each database as a snapshot is opened, in one request each, both in parallel:
# SQLite's open and the store's schema check read its header and first pages one by one.
DATABASES = ("aliases.sqlite3", "sequences/db.sqlite3")
DATABASE_HEAD_BYTES = 64 * 1024
MANIFEST_DIR = "manifests"  # under the cache directory: manifests of instances opened before

_CACHES: dict[tuple[int, str], RangeCache] = {}
_CACHES_LOCK = threading.Lock()
_OPENED: weakref.WeakValueDictionary[str, RemoteSnapshot] = weakref.WeakValueDictionary()


def shared_cache(directory: str | None = None, max_bytes: int | None = None) -> RangeCache:
    """The process's RangeCache for `directory` (one per directory, re-made after fork); a
    later call with another size bound changes the bound."""
    path = cache_directory(directory)
    size = _env_size() if max_bytes is None else max_bytes
    with _CACHES_LOCK:
        key = (os.getpid(), path)
        cache = _CACHES.get(key)
        if cache is None:
            cache = _CACHES[key] = RangeCache(path, size)
        else:
            cache.max_bytes = size
        return cache


def _env_size() -> int:
    text = os.environ.get(ENV_CACHE_SIZE)
    if not text:
        return DEFAULT_CACHE_BYTES
    try:
        return parse_size(text)
    except ValueError as exc:
        raise InvalidInputError(f"{ENV_CACHE_SIZE}: {exc}") from None


def _env_timeout() -> float:
    text = os.environ.get(ENV_HTTP_TIMEOUT)
    if not text:
        return DEFAULT_HTTP_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise InvalidInputError(f"{ENV_HTTP_TIMEOUT}: {text!r} is not a positive number of seconds")
    return value


@dataclass
class RemoteSnapshot:
    """A published snapshot: its instance name, files and the cache they are read through."""

    url: str  # the instance's URL (`latest` resolved)
    name: str
    specs: dict[str, FileSpec]
    cache: RangeCache
    http_timeout: float
    created: str = ""  # the manifest's creation time (ISO 8601, UTC)
    _files: dict[str, RemoteFile] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def has(self, path: str) -> bool:
        return path in self.specs

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no fetch of any of its files (nor that fetch's cache write) is in flight;
        False on timeout. For handing the cache to another process."""
        with self._lock:
            files = list(self._files.values())
        return all(rf.wait_idle(timeout) for rf in files)

    def file(self, path: str) -> RemoteFile:
        """The RemoteFile of a published file (`aliases.sqlite3`, `sequences/…`), made once:
        databases in 4 KiB chunks without read-ahead, other files in 16 KiB chunks."""
        with self._lock:
            rf = self._files.get(path)
            if rf is not None:
                return rf
            spec = self.specs.get(path)
            if spec is None:
                raise CorruptFileError(f"{self.url}/{path}: not in the snapshot's manifest")
            if path.endswith(".sqlite3"):
                rf = RemoteFile(
                    spec,
                    self.cache,
                    chunk_size=DB_CHUNK_BYTES,
                    http_timeout=self.http_timeout,
                    read_ahead=0,
                    whole_file_below=0,
                )
            else:
                rf = RemoteFile(
                    spec, self.cache, chunk_size=CHUNK_BYTES, http_timeout=self.http_timeout
                )
            self._files[path] = rf
            return rf


def open_snapshot(
    url: str,
    *,
    cache_dir: str | None = None,
    cache_size: int | None = None,
    http_timeout: float | None = None,
) -> RemoteSnapshot:
    """The snapshot published at `url` (`…/PREFIX/INSTANCE` or `…/PREFIX/latest`)."""
    cache = shared_cache(cache_dir, cache_size)
    timeout = _env_timeout() if http_timeout is None else http_timeout
    snapshot_url, manifest, data = load_manifest(url, cache.directory, timeout)
    specs = file_specs(snapshot_url, manifest, manifest_digest(data))
    snap = RemoteSnapshot(snapshot_url, manifest.instance, specs, cache, timeout, manifest.created)
    with _CACHES_LOCK:
        _OPENED[snapshot_url] = snap
    for path in DATABASES:  # both at once, before SQLite asks for them page after page
        if snap.has(path):
            snap.file(path).prefetch(0, DATABASE_HEAD_BYTES)
    return snap


def cache_directory(cache_dir: str | None = None) -> str:
    """The cache directory a snapshot URL is read through: `cache_dir`, else
    $SEQREPOFS_CACHE_DIR, else the default under the XDG cache home."""
    return os.path.abspath(cache_dir or os.environ.get(ENV_CACHE_DIR) or default_cache_dir())


def load_manifest(
    url: str, cache_dir: str | None = None, http_timeout: float | None = None
) -> tuple[str, Manifest, bytes]:
    """(instance URL, manifest, its bytes) of the snapshot at `url`. An instance's manifest
    is kept in the cache directory once fetched (a published instance never changes), so a
    later open makes no request; `latest` is asked of the server every time. Checks a URL
    without opening a cache (the mount command, before it forks its daemon)."""
    from ..remote.errors import ManifestError, RemoteNotFoundError
    from ..remote.manifest import manifest_key, parse

    directory = cache_directory(cache_dir)
    base = url.rstrip("/")
    root, _, last = base.rpartition("/")
    if not last or "://" not in root or not urlsplit(root).netloc + urlsplit(root).path:
        raise InvalidInputError(
            f"{url!r}: give a snapshot URL, …/PREFIX/INSTANCE or …/PREFIX/latest"
        )
    name = unquote(last)
    manifest = None
    data = None if name == "latest" else _saved_manifest(directory, f"{root}/{quote(name)}")
    if data is not None:
        try:
            manifest = parse(data, f"{root}/{manifest_key(name)} (cached copy)")
        except ManifestError:
            manifest = None  # a damaged copy: fetch it again
    if manifest is None:
        try:
            timeout = _env_timeout() if http_timeout is None else http_timeout
            name, data = _fetch_manifest(root, name, timeout)
        except RemoteNotFoundError as exc:
            if name == "latest":
                raise
            raise RemoteNotFoundError(
                f"{base}: no snapshot {name!r} published under {root} ({exc}); give"
                " …/PREFIX/INSTANCE or …/PREFIX/latest"
            ) from None
        manifest = parse(data, f"{root}/{manifest_key(name)}")
        if manifest.instance == name:
            _save_manifest(directory, f"{root}/{quote(name)}", data)
    if manifest.instance != name:
        raise ManifestError(
            f"{root}/{manifest_key(name)}: describes {manifest.instance}, not {name}"
        )
    assert data is not None
    return f"{root}/{quote(name)}", manifest, data


def snapshot_for(url: str) -> RemoteSnapshot:
    """The snapshot at `url` as this process opened it last (same cache and timeout), else
    opened now with the environment's settings: for parts of the store that are handed only
    an instance's location (the collections database)."""
    with _CACHES_LOCK:
        snap = _OPENED.get(url.rstrip("/"))
    return snap if snap is not None else open_snapshot(url)


def _fetch_manifest(root: str, name: str, timeout: float) -> tuple[str, bytes]:
    """`latest` resolved, and the manifest's bytes; retried as a pull is, within `timeout`."""
    from ..remote.manifest import manifest_key
    from ..remote.retry import Retry
    from ..remote.sources import open_source

    retry = Retry(
        attempts=3,
        max_backoff=2.0,
        deadline=timeout,
        connect_timeout=min(10.0, timeout),
        io_timeout=timeout,
    )
    with open_source(root, retry=retry) as source:
        if name == "latest":
            name = source.latest()
        return name, source.get(manifest_key(name))


def _manifest_path(directory: str, url: str) -> str:
    digest = hashlib.sha256(url.encode()).hexdigest()
    return os.path.join(directory, MANIFEST_DIR, digest + ".json")


def _saved_manifest(directory: str, url: str) -> bytes | None:
    try:
        with open(_manifest_path(directory, url), "rb") as fh:
            return fh.read()
    except OSError:
        return None


def _save_manifest(directory: str, url: str, data: bytes) -> None:
    """Keep the manifest for the next open (written whole or not at all); a cache that
    cannot be written only costs the next open a request."""
    path = _manifest_path(directory, url)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError:
        pass


class SnapshotFiles:
    """The sequence files of a snapshot for the BGZF reader (store.bgzf.FileOpener): paths
    under the snapshot's URL map to its published files."""

    def __init__(self, snapshot: RemoteSnapshot) -> None:
        self.snapshot = snapshot
        self._prefix = snapshot.url.rstrip("/") + "/"

    def open(self, path: str) -> RemoteFile:
        rel = path[len(self._prefix) :] if path.startswith(self._prefix) else None
        if rel is None or not self.snapshot.has(rel):
            raise FileNotFoundError(errno.ENOENT, "not in the snapshot's manifest", path)
        return self.snapshot.file(rel)

    def read_whole(self, path: str) -> bytes:
        rf = self.open(path)
        return rf.pread(0, rf.size)

    def read_wholes(self, paths: Sequence[str]) -> list[bytes]:
        """All at once: every file's fetch starts before the first is waited for."""
        files = [self.open(path) for path in paths]
        for rf in files:
            rf.prefetch(0, rf.size)
        return [rf.pread(0, rf.size) for rf in files]

    def size(self, path: str) -> int:
        return self.open(path).size
