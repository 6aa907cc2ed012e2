"""An on-disk cache of fetched byte ranges, shared by every process and mount on the machine.

Layout under the cache directory::

    index.sqlite3          chunks → the run file holding them; runs' sizes and last use (WAL)
    runs/ab/abcdef…        one file per stored run: the chunks of one fetch, back to back
    tmp/                   run files being written

A chunk is a fixed-size, aligned piece of a remote file, keyed by (file identity, offset,
length). The file identity is the file's SHA-256 from the snapshot's manifest when there is
one (so a changed remote file, which has another digest, can never be answered from an old
entry, and files shared by two snapshots share their chunks), else the manifest's digest plus
the file's path. The chunks of one fetch are stored as one run file, because creating a file
costs far more than writing it (0.6-2.5 ms on a busy disk): a 4 MB read-ahead of 16 KB chunks
is one file, not 256. A run is also the unit of eviction (least recently used first).

Why files + a SQLite index rather than one big file under flock: a run file is written under a
temporary name and renamed, so a reader sees all of it or nothing without holding any lock,
and a reader that opened it keeps its bytes if another process evicts it meanwhile; the index
gives LRU eviction without scanning the directory, and WAL lets readers go on while one process
writes. Space is reserved in the index (evicting first) before a run file is written, and it
is renamed into place in an index transaction only if its row is still there, so the run files
never add up to more than the size limit.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import shutil
import sqlite3
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from dataclasses import dataclass

from ..store.lru import LRU

DEFAULT_CACHE_BYTES = 10 << 30
MEMORY_BYTES = 16 << 20  # recently read chunks kept in memory too (hot database pages)
CACHE_FORMAT = 3  # pragma user_version of index.sqlite3; a cache of another format is emptied
TOUCH_FLUSH_SECONDS = 2.0  # last-use times are written in batches, at most this late
TOUCH_FLUSH_COUNT = 512
ORPHAN_AGE_SECONDS = 60.0  # a run file no row names, older than this, was left by a crash
STALE_TEMP_SECONDS = 3600.0  # temporary files older than this were left by a killed writer
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)

_SCHEMA = """
create table if not exists runs (
    name text primary key,     -- file name under runs/
    size integer not null,
    last_used real not null,
    label text                 -- what it is a piece of (URL), for `cache stats`
);
create index if not exists runs_lru on runs(last_used);
create table if not exists chunks (
    name text primary key,     -- hash of (file_id, offset, length)
    file_id text not null,
    run text not null,
    run_offset integer not null,
    size integer not null
);
create index if not exists chunks_run on chunks(run);
create table if not exists etags (
    url text primary key,      -- the ETag first seen at this URL within one scope
    scope text not null,       -- the manifest (and file identity) it was seen under
    etag text not null
);
create table if not exists totals (
    k integer primary key check (k = 0),
    bytes integer not null,    -- sum of runs.size
    count integer not null     -- number of chunks
);
insert or ignore into totals values (0, 0, 0)
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
    runs: int
    files: int  # distinct remote file versions with at least one chunk
    oldest_use: float | None
    newest_use: float | None


@dataclass(frozen=True)
class ChunkKey:
    file_id: str
    offset: int
    length: int

    @functools.cached_property
    def name(self) -> str:
        text = f"{self.file_id}\0{self.offset}\0{self.length}"
        return hashlib.sha256(text.encode()).hexdigest()


class RangeCache:
    """Chunks of remote files on local disk, bounded by `max_bytes` (LRU); thread-safe, and
    safe for any number of processes using the same directory at once."""

    def __init__(
        self,
        directory: str | None = None,
        max_bytes: int = DEFAULT_CACHE_BYTES,
        memory_bytes: int = MEMORY_BYTES,
    ) -> None:
        self.directory = os.path.abspath(directory or default_cache_dir())
        self.max_bytes = max_bytes
        self._runs_dir = os.path.join(self.directory, "runs")
        self._tmp_dir = os.path.join(self.directory, "tmp")
        for d in (self.directory, self._runs_dir, self._tmp_dir):
            os.makedirs(d, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            os.path.join(self.directory, "index.sqlite3"),
            timeout=30.0,
            check_same_thread=False,
            isolation_level=None,
        )
        self._set_wal()
        self._db.execute("pragma synchronous = normal")
        with self._lock, self._transaction():
            if self._db.execute("pragma user_version").fetchone()[0] != CACHE_FORMAT:
                self._reset()
            for statement in _SCHEMA.split(";"):
                self._db.execute(statement)
        # (run, bytes) by key: a hit costs no query and no open (a warm alias lookup reads two
        # leaf pages: 2 x ~50 us from disk). Chunks never change, so a copy is never stale.
        self._memory = LRU(memory_bytes, getsizeof=lambda v: len(v[1]))
        self._touched: dict[str, float] = {}
        self._last_flush = time.monotonic()
        self._finalizer = weakref.finalize(
            self, _flush_and_close, self._db, self._touched, self._lock
        )

    def _set_wal(self) -> None:
        """WAL mode, waiting for a process that is creating the index at the same moment:
        switching the journal mode needs the file to itself, and SQLite reports "database is
        locked" at once rather than through the busy timeout."""
        deadline = time.monotonic() + 30.0
        while True:
            try:
                self._db.execute("pragma journal_mode = wal")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _reset(self) -> None:
        """Empty a cache written in another format (older seqrepofs): it is only a cache."""
        tables = [
            n for (n,) in self._db.execute("select name from sqlite_master where type = 'table'")
        ]
        for name in tables:
            self._db.execute(f'drop table "{name}"')
        for old in ("runs", "chunks"):
            shutil.rmtree(os.path.join(self.directory, old), ignore_errors=True)
        os.makedirs(self._runs_dir, exist_ok=True)
        self._db.execute(f"pragma user_version = {CACHE_FORMAT}")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("begin immediate")
        try:
            yield
        except BaseException:
            self._db.execute("rollback")
            raise
        self._db.execute("commit")

    def _path(self, run: str) -> str:
        return os.path.join(self._runs_dir, run[:2], run)

    # ---- reading --------------------------------------------------------------------------
    def get(self, key: ChunkKey) -> bytes | None:
        """The chunk's bytes, or None if it is not cached (or was evicted meanwhile)."""
        return self.get_many([key]).get(key)

    def get_many(self, keys: list[ChunkKey]) -> dict[ChunkKey, bytes]:
        """The cached ones among `keys`, with one index query and one open per run file (a
        128 KB read of 16 KB chunks costs one query and usually one open, not eight)."""
        out: dict[ChunkKey, bytes] = {}
        used: list[str] = []
        rest: list[ChunkKey] = []
        for key in keys:
            hit = self._memory.get(key)
            if hit is None:
                rest.append(key)
            else:
                out[key] = hit[1]
                used.append(hit[0])
        if rest:
            self._from_disk(rest, out, used)
        if used:
            now = time.time()
            with self._lock:
                for run in used:
                    self._touched[run] = now
                if (
                    len(self._touched) >= TOUCH_FLUSH_COUNT
                    or time.monotonic() - self._last_flush > TOUCH_FLUSH_SECONDS
                ):
                    self._flush_touches()
        return out

    def _from_disk(self, keys: list[ChunkKey], out: dict[ChunkKey, bytes], used: list[str]) -> None:
        by_name = {k.name: k for k in keys}
        names = list(by_name)
        with self._lock:
            rows = self._db.execute(
                "select name, run, run_offset from chunks"
                f" where name in ({','.join('?' * len(names))})",
                names,
            ).fetchall()
        runs: dict[str, list[tuple[int, ChunkKey]]] = {}
        for name, run, at in rows:
            runs.setdefault(run, []).append((at, by_name[name]))
        for run, pieces in runs.items():
            try:
                fd = os.open(self._path(run), os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            except FileNotFoundError:
                continue
            try:
                pieces.sort(key=lambda p: p[0])
                first = pieces[0][0]
                last_at, last_key = pieces[-1]
                span = os.pread(fd, last_at + last_key.length - first, first)
            finally:
                os.close(fd)
            for at, key in pieces:
                data = span[at - first : at - first + key.length]
                if len(data) == key.length:  # else a damaged disk: refetch
                    out[key] = data
                    self._memory.put(key, (run, data))
            used.append(run)

    def contains(self, key: ChunkKey) -> bool:
        """Whether the chunk is cached (a hint: it may be evicted right after)."""
        if key in self._memory:
            return True
        with self._lock:
            row = self._db.execute("select run from chunks where name = ?", (key.name,)).fetchone()
        return row is not None and os.path.exists(self._path(row[0]))

    def _flush_touches(self) -> None:
        """Write the batched last-use times (the caller holds the lock)."""
        self._last_flush = time.monotonic()
        if not self._touched:
            return
        rows = [(t, n) for n, t in self._touched.items()]
        self._touched.clear()
        try:
            with self._transaction():
                self._db.executemany("update runs set last_used = ? where name = ?", rows)
        except sqlite3.OperationalError:
            pass  # busy for 30 s: the order of eviction is a hint, reading goes on

    # ---- writing --------------------------------------------------------------------------
    def put(self, key: ChunkKey, data: bytes, label: str = "") -> None:
        """Store one chunk (see `put_many`)."""
        self.put_many([(key, data)], label)

    def put_many(self, items: list[tuple[ChunkKey, bytes]], label: str = "") -> None:
        """Store the chunks of one fetch (in file order). Chunks cached already are skipped;
        each stretch of the others becomes one run file. Space is reserved, evicting the
        least recently used runs, before a file is written, so the total never passes
        `max_bytes`; a run larger than the whole cache is not stored."""
        for key, data in items:
            if len(data) != key.length:
                raise ValueError(f"chunk of {len(data)} bytes for a key of {key.length}")
        runs: list[tuple[str, list[tuple[ChunkKey, bytes]]]] = []
        with self._lock:
            self._flush_touches()
            with self._transaction():
                for stretch in self._missing_stretches(items):
                    size = sum(k.length for k, _ in stretch)
                    if size > self.max_bytes:
                        continue
                    run = uuid.uuid4().hex
                    self._evict(self._victims(size, self.max_bytes))
                    self._db.execute(
                        "insert into runs values (?, ?, ?, ?)", (run, size, time.time(), label)
                    )
                    at = 0
                    for key, _data in stretch:
                        self._db.execute(
                            "insert or replace into chunks values (?, ?, ?, ?, ?)",
                            (key.name, key.file_id, run, at, key.length),
                        )
                        at += key.length
                    self._db.execute(
                        "update totals set bytes = bytes + ?, count = count + ?",
                        (size, len(stretch)),
                    )
                    runs.append((run, stretch))
        for run, stretch in runs:
            self._write(run, b"".join(d for _, d in stretch))
            for key, data in stretch:
                self._memory.put(key, (run, data))

    def _missing_stretches(
        self, items: list[tuple[ChunkKey, bytes]]
    ) -> list[list[tuple[ChunkKey, bytes]]]:
        """Consecutive items not cached yet (the caller holds the lock, in a transaction). A
        chunk whose run file is gone is dropped from the index and stored again."""
        stretches: list[list[tuple[ChunkKey, bytes]]] = []
        previous: ChunkKey | None = None
        for key, data in items:
            row = self._db.execute("select run from chunks where name = ?", (key.name,)).fetchone()
            if row is not None and os.path.exists(self._path(row[0])):
                previous = None
                continue
            if row is not None:
                self._evict([(row[0], 0)])
            follows = (
                previous is not None
                and previous.file_id == key.file_id
                and previous.offset + previous.length == key.offset
            )
            if follows:
                stretches[-1].append((key, data))
            else:
                stretches.append([(key, data)])
            previous = key
        return stretches

    def _write(self, run: str, data: bytes) -> None:
        """Write a run file under a temporary name, then rename it into place if its row is
        still there (another process may have evicted it meanwhile). The rename happens inside
        an index transaction, which eviction also takes, so a run file never exists without
        its row and the run files never add up to more than the bound."""
        path = self._path(run)
        fd, tmp = tempfile.mkstemp(dir=self._tmp_dir, prefix=run[:16] + ".")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            with self._lock, self._transaction():
                if self._db.execute("select 1 from runs where name = ?", (run,)).fetchone():
                    try:
                        os.replace(tmp, path)
                    except FileNotFoundError:  # the first run in its subdirectory
                        os.makedirs(os.path.dirname(path), exist_ok=True)
                        os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _victims(self, need: int, limit: int) -> list[tuple[str, int]]:
        """Least recently used runs to evict so that `need` more bytes fit under `limit`."""
        total = self._db.execute("select bytes from totals").fetchone()[0]
        excess = total + need - limit
        victims: list[tuple[str, int]] = []
        if excess <= 0:
            return victims
        for run, size in self._db.execute("select name, size from runs order by last_used"):
            victims.append((run, size))
            excess -= size
            if excess <= 0:
                break
        return victims

    def _evict(self, victims: list[tuple[str, int]]) -> tuple[int, int]:
        """Remove runs (file, row, chunk rows); returns (chunks, bytes) removed. The caller
        holds the lock, in a transaction."""
        chunks = freed = 0
        for run, _size in victims:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path(run))
            row = self._db.execute("select size from runs where name = ?", (run,)).fetchone()
            n = self._db.execute("delete from chunks where run = ?", (run,)).rowcount
            self._db.execute("delete from runs where name = ?", (run,))
            size = row[0] if row else 0
            self._db.execute("update totals set bytes = bytes - ?, count = count - ?", (size, n))
            chunks += n
            freed += size
        return chunks, freed

    # ---- remote file versions -------------------------------------------------------------
    def pinned_etag(self, url: str, scope: str) -> str | None:
        """The ETag this URL had when it was first fetched under `scope` (a manifest and a
        file identity): a later different one means the file was replaced meanwhile."""
        with self._lock:
            row = self._db.execute(
                "select etag from etags where url = ? and scope = ?", (url, scope)
            ).fetchone()
        return None if row is None else str(row[0])

    def pin_etag(self, url: str, scope: str, etag: str) -> str:
        """Record `etag` for `url` unless one is recorded under the same scope already (a new
        manifest starts a new scope); return the recorded one."""
        with self._lock, self._transaction():
            self._db.execute(
                "insert into etags values (?, ?, ?) on conflict(url) do update set"
                " scope = excluded.scope, etag = excluded.etag"
                " where etags.scope != excluded.scope",
                (url, scope, etag),
            )
            row = self._db.execute("select etag from etags where url = ?", (url,)).fetchone()
        return str(row[0])

    # ---- maintenance ----------------------------------------------------------------------
    def stats(self) -> CacheStats:
        with self._lock:
            self._flush_touches()
            total, count = self._db.execute("select bytes, count from totals").fetchone()
            runs, oldest, newest = self._db.execute(
                "select count(*), min(last_used), max(last_used) from runs"
            ).fetchone()
            files = self._db.execute("select count(distinct file_id) from chunks").fetchone()[0]
        return CacheStats(self.directory, count, total, runs, files, oldest, newest)

    def prune(self, max_bytes: int | None = None) -> tuple[int, int]:
        """Evict least recently used runs down to `max_bytes` (default: this cache's bound),
        drop rows whose file is gone and files no row names (left by killed processes).
        Returns (chunks removed, bytes removed)."""
        limit = self.max_bytes if max_bytes is None else max_bytes
        with self._lock:
            self._flush_touches()
            with self._transaction():
                rows = self._db.execute("select name, size from runs").fetchall()
                gone = [(n, s) for n, s in rows if not os.path.exists(self._path(n))]
                self._evict(gone)
                removed, freed = self._evict(self._victims(0, limit))
                known = {n for (n,) in self._db.execute("select name from runs")}
            freed += self._remove_orphans(known)
        return removed, freed

    def _remove_orphans(self, known: set[str]) -> int:
        freed = 0
        now = time.time()
        for sub in os.listdir(self._runs_dir):
            subdir = os.path.join(self._runs_dir, sub)
            for name in os.listdir(subdir):
                if name in known:
                    continue
                path = os.path.join(subdir, name)
                with contextlib.suppress(FileNotFoundError):
                    st = os.stat(path)
                    # a file renamed in after the rows were read is young: keep it
                    if now - st.st_mtime > ORPHAN_AGE_SECONDS:
                        os.unlink(path)
                        freed += st.st_size
        for name in os.listdir(self._tmp_dir):
            path = os.path.join(self._tmp_dir, name)
            with contextlib.suppress(FileNotFoundError):
                if now - os.stat(path).st_mtime > STALE_TEMP_SECONDS:
                    os.unlink(path)
        return freed

    def clear(self) -> tuple[int, int]:
        """Remove every chunk and every recorded ETag. Returns (chunks, bytes) removed."""
        self._memory.clear()
        with self._lock:
            self._touched.clear()
            with self._transaction():
                total, count = self._db.execute("select bytes, count from totals").fetchone()
                for (run,) in self._db.execute("select name from runs").fetchall():
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self._path(run))
                for table in ("chunks", "runs", "etags"):
                    self._db.execute(f"delete from {table}")
                self._db.execute("update totals set bytes = 0, count = 0")
        # the manifests of instances opened before (seqrepofs.lazy.snapshot)
        shutil.rmtree(os.path.join(self.directory, "manifests"), ignore_errors=True)
        return count, total

    def disk_bytes(self) -> int:
        """Bytes of the run files actually on disk (what `max_bytes` bounds), counted in an
        index transaction: files are added and evicted only inside one, so this is a true
        snapshot even while other processes write."""
        total = 0
        with self._lock, self._transaction():
            for sub in os.listdir(self._runs_dir):
                subdir = os.path.join(self._runs_dir, sub)
                for name in os.listdir(subdir):
                    with contextlib.suppress(FileNotFoundError):
                        total += os.stat(os.path.join(subdir, name)).st_size
        return total

    def close(self) -> None:
        self._finalizer()


def _flush_and_close(
    db: sqlite3.Connection, touched: dict[str, float], lock: threading.Lock
) -> None:
    with lock:
        if touched:
            rows = [(t, n) for n, t in touched.items()]
            touched.clear()
            with contextlib.suppress(sqlite3.Error):
                db.execute("begin immediate")
                db.executemany("update runs set last_used = ? where name = ?", rows)
                db.execute("commit")
        with contextlib.suppress(sqlite3.Error):
            db.close()
