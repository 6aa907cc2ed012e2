"""An on-disk cache of fetched byte ranges, shared by every process and mount on the machine.

Layout under the cache directory::

    index.sqlite3          which chunks exist, their sizes and last use (WAL mode)
    chunks/ab/abcdef…      one file per cached chunk, named by the hash of its key

A chunk is keyed by (file identity, offset, length). The file identity is the file's SHA-256
from the snapshot's manifest when the manifest gives one (so a changed remote file, which has
another digest, can never be answered from an old entry, and files shared by two snapshots
share their chunks), else the manifest's digest plus the file's path.

Why files + a SQLite index, not one big file under flock: a chunk file is written to a temporary
name and renamed, so a reader sees all of a chunk or none of it without holding any lock, and
a reader that opened a chunk keeps its bytes even if another process evicts it meanwhile. The
index gives least-recently-used eviction without scanning the directory; WAL lets readers go on
while one process writes. Space is reserved in the index (evicting first) before a chunk file
is written, so the chunks on disk never add up to more than the size limit.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sqlite3
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass

DEFAULT_CACHE_BYTES = 10 << 30
TOUCH_FLUSH_SECONDS = 2.0  # last-use times are written in batches, at most this late
TOUCH_FLUSH_COUNT = 512
STALE_TEMP_SECONDS = 3600.0  # temporary files older than this were left by a killed writer
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)

_SCHEMA = """
create table if not exists chunks (
    name text primary key,     -- file name under chunks/: hash of (file_id, offset, length)
    file_id text not null,
    offset integer not null,
    size integer not null,
    last_used real not null,
    label text                 -- what it is a piece of (URL), for `cache stats`
);
create index if not exists chunks_lru on chunks(last_used);
create table if not exists etags (
    url text primary key,      -- the ETag first seen at this URL, for this file identity
    file_id text not null,
    etag text not null
);
create table if not exists totals (
    k integer primary key check (k = 0),
    bytes integer not null,
    count integer not null
);
insert or ignore into totals values (0, 0, 0);
"""


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "seqrepofs")


def parse_size(text: str) -> int:
    """Bytes of a size like `500M`, `10G`, `1.5GiB` or `4096` (binary multiples)."""
    m = _SIZE.match(text)
    if m is None:
        raise ValueError(f"{text!r} is not a size (e.g. 500M, 10G)")
    power = " kmgt".index(m[2].lower() or " ")
    return int(float(m[1]) * (1024**power))


@dataclass(frozen=True)
class CacheStats:
    directory: str
    chunks: int
    bytes: int
    files: int  # distinct file identities with at least one chunk
    oldest_use: float | None
    newest_use: float | None


@dataclass(frozen=True)
class ChunkKey:
    file_id: str
    offset: int
    length: int

    @property
    def name(self) -> str:
        text = f"{self.file_id}\0{self.offset}\0{self.length}"
        return hashlib.sha256(text.encode()).hexdigest()


class RangeCache:
    """Chunks of remote files on local disk, bounded by `max_bytes` (LRU); thread-safe, and
    safe for any number of processes using the same directory at once."""

    def __init__(self, directory: str | None = None, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.directory = os.path.abspath(directory or default_cache_dir())
        self.max_bytes = max_bytes
        self._chunks_dir = os.path.join(self.directory, "chunks")
        self._tmp_dir = os.path.join(self.directory, "tmp")
        for d in (self.directory, self._chunks_dir, self._tmp_dir):
            os.makedirs(d, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            os.path.join(self.directory, "index.sqlite3"),
            timeout=30.0, check_same_thread=False, isolation_level=None,
        )
        self._db.execute("pragma journal_mode = wal")
        self._db.execute("pragma synchronous = normal")
        self._init_schema()
        self._touched: dict[str, float] = {}
        self._last_flush = time.monotonic()
        self._finalizer = weakref.finalize(self, _flush_and_close, self._db, self._touched,
                                           self._lock)

    def _init_schema(self) -> None:
        with self._lock:
            self._db.execute("begin immediate")
            try:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute("commit")
            except BaseException:
                self._db.execute("rollback")
                raise

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("begin immediate")
        try:
            yield
        except BaseException:
            self._db.execute("rollback")
            raise
        self._db.execute("commit")

    def _path(self, name: str) -> str:
        return os.path.join(self._chunks_dir, name[:2], name)

    # ---- reading --------------------------------------------------------------------------
    def get(self, key: ChunkKey) -> bytes | None:
        """The chunk's bytes, or None if it is not cached (or was evicted meanwhile)."""
        name = key.name
        try:
            with open(self._path(name), "rb") as fh:
                data = fh.read(key.length + 1)
        except FileNotFoundError:
            return None
        if len(data) != key.length:  # cannot happen with rename; a damaged disk: refetch
            return None
        with self._lock:
            self._touched[name] = time.time()
            if (len(self._touched) >= TOUCH_FLUSH_COUNT
                    or time.monotonic() - self._last_flush > TOUCH_FLUSH_SECONDS):
                self._flush_touches()
        return data

    def contains(self, key: ChunkKey) -> bool:
        """Whether the chunk is cached (a hint: it may be evicted right after)."""
        return os.path.exists(self._path(key.name))

    def _flush_touches(self) -> None:
        """Write the batched last-use times (the caller holds the lock)."""
        self._last_flush = time.monotonic()
        if not self._touched:
            return
        rows = [(t, n) for n, t in self._touched.items()]
        self._touched.clear()
        try:
            with self._transaction():
                self._db.executemany("update chunks set last_used = ? where name = ?", rows)
        except sqlite3.OperationalError:
            pass  # busy for 30 s: the order of eviction is a hint, reading goes on

    # ---- writing --------------------------------------------------------------------------
    def put(self, key: ChunkKey, data: bytes, label: str = "") -> None:
        """Store one chunk (see `put_many`)."""
        self.put_many([(key, data)], label)

    def put_many(self, items: list[tuple[ChunkKey, bytes]], label: str = "") -> None:
        """Store chunks (those of one fetch) in one index transaction. Space is reserved,
        evicting the least recently used chunks, before the files are written, so the total
        never passes `max_bytes`; a chunk larger than the whole cache is not stored."""
        for key, data in items:
            if len(data) != key.length:
                raise ValueError(f"chunk of {len(data)} bytes for a key of {key.length}")
        todo: list[tuple[ChunkKey, bytes]] = []
        with self._lock:
            self._flush_touches()
            with self._transaction():
                for key, data in items:
                    if key.length > self.max_bytes or self._reserve(key, label):
                        continue
                    todo.append((key, data))
        for key, data in todo:
            self._write(key.name, data)
        if not todo:
            return
        # Another process may have evicted a row while its file was being written: a file
        # must not outlive its row, or the disk would hold more than the index says.
        names = [k.name for k, _ in todo]
        with self._lock:
            kept = {n for (n,) in self._db.execute(
                f"select name from chunks where name in ({','.join('?' * len(names))})", names
            )}
        for name in set(names) - kept:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path(name))

    def _reserve(self, key: ChunkKey, label: str) -> bool:
        """Add the chunk's row, evicting to make room; True if it was there already (the
        caller holds the lock, in a transaction)."""
        name = key.name
        if self._db.execute("select 1 from chunks where name = ?", (name,)).fetchone():
            if os.path.exists(self._path(name)):
                return True
            self._remove_rows([name], [key.length])
        victims = self._victims(key.length, self.max_bytes)
        for vname, _size in victims:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path(vname))
        self._remove_rows([v for v, _ in victims], [s for _, s in victims])
        self._db.execute(
            "insert into chunks values (?, ?, ?, ?, ?, ?)",
            (name, key.file_id, key.offset, key.length, time.time(), label),
        )
        self._db.execute("update totals set bytes = bytes + ?, count = count + 1", (key.length,))
        return False

    def _write(self, name: str, data: bytes) -> None:
        """Write a chunk file under a temporary name and rename it: all of it or nothing."""
        path = self._path(name)
        fd, tmp = tempfile.mkstemp(dir=self._tmp_dir, prefix=name[:16] + ".")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            try:
                os.replace(tmp, path)
            except FileNotFoundError:  # first chunk in its subdirectory
                os.makedirs(os.path.dirname(path), exist_ok=True)
                os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def _victims(self, need: int, limit: int) -> list[tuple[str, int]]:
        """Least recently used chunks to evict so that `need` more bytes fit under `limit`."""
        total = self._db.execute("select bytes from totals").fetchone()[0]
        excess = total + need - limit
        victims: list[tuple[str, int]] = []
        if excess <= 0:
            return victims
        for vname, size in self._db.execute(
            "select name, size from chunks order by last_used"
        ):
            victims.append((vname, size))
            excess -= size
            if excess <= 0:
                break
        return victims

    def _remove_rows(self, names: list[str], sizes: list[int]) -> None:
        if not names:
            return
        self._db.executemany("delete from chunks where name = ?", [(n,) for n in names])
        self._db.execute(
            "update totals set bytes = bytes - ?, count = count - ?", (sum(sizes), len(names))
        )

    # ---- remote file versions -------------------------------------------------------------
    def pinned_etag(self, url: str, file_id: str) -> str | None:
        """The ETag this URL had when its chunks for `file_id` were first fetched."""
        with self._lock:
            row = self._db.execute(
                "select etag from etags where url = ? and file_id = ?", (url, file_id)
            ).fetchone()
        return None if row is None else str(row[0])

    def pin_etag(self, url: str, file_id: str, etag: str) -> str:
        """Record `etag` for `url` unless one is recorded already; return the recorded one."""
        with self._lock, self._transaction():
            self._db.execute(
                "insert into etags values (?, ?, ?) on conflict(url) do update set"
                " file_id = excluded.file_id, etag = excluded.etag"
                " where etags.file_id != excluded.file_id",
                (url, file_id, etag),
            )
            row = self._db.execute("select etag from etags where url = ?", (url,)).fetchone()
        return str(row[0])

    # ---- maintenance ----------------------------------------------------------------------
    def stats(self) -> CacheStats:
        with self._lock:
            self._flush_touches()
            total, count = self._db.execute("select bytes, count from totals").fetchone()
            files, oldest, newest = self._db.execute(
                "select count(distinct file_id), min(last_used), max(last_used) from chunks"
            ).fetchone()
        return CacheStats(self.directory, count, total, files, oldest, newest)

    def prune(self, max_bytes: int | None = None) -> tuple[int, int]:
        """Evict least recently used chunks down to `max_bytes` (default: this cache's bound),
        drop rows whose file is gone and files no row names (left by killed processes).
        Returns (chunks removed, bytes removed)."""
        limit = self.max_bytes if max_bytes is None else max_bytes
        removed = freed = 0
        with self._lock:
            self._flush_touches()
            with self._transaction():
                rows = self._db.execute("select name, size from chunks").fetchall()
                gone = [(n, s) for n, s in rows if not os.path.exists(self._path(n))]
                self._remove_rows([n for n, _ in gone], [s for _, s in gone])
                victims = self._victims(0, limit)
                for vname, size in victims:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self._path(vname))
                    removed += 1
                    freed += size
                self._remove_rows([v for v, _ in victims], [s for _, s in victims])
                known = {n for n, _ in rows} - {v for v, _ in victims}
            removed_orphans, freed_orphans = self._remove_orphans(known)
        return removed + removed_orphans, freed + freed_orphans

    def _remove_orphans(self, known: set[str]) -> tuple[int, int]:
        removed = freed = 0
        now = time.time()
        for sub in os.listdir(self._chunks_dir):
            subdir = os.path.join(self._chunks_dir, sub)
            for name in os.listdir(subdir):
                if name not in known:
                    path = os.path.join(subdir, name)
                    with contextlib.suppress(FileNotFoundError):
                        # a file renamed in after our snapshot of the rows is young: keep it
                        if now - os.stat(path).st_mtime > 60:
                            freed += os.stat(path).st_size
                            os.unlink(path)
                            removed += 1
        for name in os.listdir(self._tmp_dir):
            path = os.path.join(self._tmp_dir, name)
            with contextlib.suppress(FileNotFoundError):
                if now - os.stat(path).st_mtime > STALE_TEMP_SECONDS:
                    os.unlink(path)
        return removed, freed

    def clear(self) -> tuple[int, int]:
        """Remove every chunk and every recorded ETag. Returns (chunks, bytes) removed."""
        with self._lock:
            self._touched.clear()
            with self._transaction():
                total, count = self._db.execute("select bytes, count from totals").fetchone()
                names = [n for (n,) in self._db.execute("select name from chunks")]
                for name in names:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self._path(name))
                self._db.execute("delete from chunks")
                self._db.execute("delete from etags")
                self._db.execute("update totals set bytes = 0, count = 0")
        return count, total

    def disk_bytes(self) -> int:
        """Bytes of the chunk files actually on disk (what `max_bytes` bounds)."""
        total = 0
        for sub in os.listdir(self._chunks_dir):
            subdir = os.path.join(self._chunks_dir, sub)
            for name in os.listdir(subdir):
                with contextlib.suppress(FileNotFoundError):
                    total += os.stat(os.path.join(subdir, name)).st_size
        return total

    def close(self) -> None:
        self._finalizer()


def _flush_and_close(db: sqlite3.Connection, touched: dict[str, float],
                     lock: threading.Lock) -> None:
    with lock:
        if touched:
            rows = [(t, n) for n, t in touched.items()]
            touched.clear()
            with contextlib.suppress(sqlite3.Error):
                db.execute("begin immediate")
                db.executemany("update chunks set last_used = ? where name = ?", rows)
                db.execute("commit")
        with contextlib.suppress(sqlite3.Error):
            db.close()
