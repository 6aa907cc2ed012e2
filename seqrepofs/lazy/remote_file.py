"""A read-only, random-access file over a URL, served from the on-disk range cache.

`pread(offset, size)` answers from cached chunks; missing chunks are fetched with Range
requests, adjacent ones coalesced into one request, independent runs in parallel, and each
fetched range checked against what the manifest says of the file (size, ETag, SHA-256 of the
whole file or of the manifest's chunks, wherever a fetch covers one). A reader that goes on
where it stopped is read ahead in larger ranges in the background. No reader waits longer
than `http_timeout`; a fault is logged once per cause, not once per read.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..store.nowait import WouldWait, waiting_allowed
from .errors import RemoteChangedError, RemoteReadError
from .range_cache import ChunkKey, RangeCache
from .transport import Origin, open_origin

log = logging.getLogger(__name__)

CHUNK_BYTES = 16 * 1024  # the cache's unit for sequence files (docs/lazy.md)
WHOLE_FILE_BYTES = 1 << 20  # smaller files (.fai, .gzi) are fetched whole, checked by SHA-256
MAX_REQUEST_BYTES = 8 << 20  # a coalesced run is cut into requests of at most this
READ_AHEAD_BYTES = 4 << 20  # fetched ahead of a sequential reader
SEQUENTIAL_STREAK = 2  # reads that each start where the previous ended, before reading ahead
REORDER_BYTES = 256 * 1024  # ... or at most this far before the furthest end read so far
DEFAULT_HTTP_TIMEOUT = 30.0


@dataclass(frozen=True)
class FileSpec:
    """What the snapshot's manifest says about one published file."""

    url: str
    size: int
    sha256: str | None = None
    chunk_size: int | None = None  # the manifest's database chunks, each with a digest
    chunk_digests: tuple[str, ...] = ()
    etag: str | None = None
    manifest_digest: str | None = None
    path: str = ""

    @property
    def file_id(self) -> str:
        """The cache's name for this version of the file: its content digest when known."""
        if self.sha256:
            return f"sha256:{self.sha256.lower()}"
        if self.manifest_digest:
            return f"manifest:{self.manifest_digest}/{self.path}"
        return f"url:{self.url}#{self.size}"

    @property
    def etag_scope(self) -> str:
        """Within what the ETag first seen at this URL must stay the same: this manifest's
        view of this file. A republished snapshot (a new manifest) may legitimately change
        ETags (files copied, servers moved); within one manifest a new ETag is a new file."""
        return f"{self.manifest_digest or ''}|{self.file_id}"


@dataclass
class FetchStats:
    """Requests made and bytes received by one RemoteFile (for tests and benchmarks)."""

    requests: int = 0
    bytes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, nbytes: int) -> None:
        with self.lock:
            self.requests += 1
            self.bytes += nbytes


class _FaultLog:
    """Logs a fault the first time its cause is seen; a success on that host re-arms it, so
    an outage is logged once however many reads it fails."""

    MAX_CAUSES = 256

    def __init__(self) -> None:
        self._seen: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def fault(self, url: str, reason: str) -> None:
        key = (urlsplit(url).netloc, reason)
        with self._lock:
            if key in self._seen:
                return
            if len(self._seen) >= self.MAX_CAUSES:
                self._seen.clear()
            self._seen.add(key)
        log.warning("%s: %s (further reads failing the same way are not logged)", url, reason)

    def success(self, url: str) -> None:
        host = urlsplit(url).netloc
        with self._lock:
            if self._seen:
                self._seen = {k for k in self._seen if k[0] != host}


FAULTS = _FaultLog()
_POOLS: dict[str, tuple[int, ThreadPoolExecutor]] = {}
_POOLS_LOCK = threading.Lock()


def _pool(kind: str) -> ThreadPoolExecutor:
    """Fetch threads per process (made again after fork); read-ahead has its own pool so it
    never delays a reader's own requests."""
    with _POOLS_LOCK:
        entry = _POOLS.get(kind)
        if entry is None or entry[0] != os.getpid():
            workers = 8 if kind == "demand" else 2
            entry = _POOLS[kind] = (os.getpid(), ThreadPoolExecutor(workers, f"fetch-{kind}"))
        return entry[1]


class RemoteFile:
    """Random-access reads of one published file; thread-safe."""

    def __init__(
        self,
        spec: FileSpec,
        cache: RangeCache,
        *,
        chunk_size: int = CHUNK_BYTES,
        http_timeout: float = DEFAULT_HTTP_TIMEOUT,
        read_ahead: int = READ_AHEAD_BYTES,
        whole_file_below: int = WHOLE_FILE_BYTES,
        origin: Origin | None = None,
    ) -> None:
        self.spec = spec
        self.url = spec.url
        self.size = spec.size
        self.cache = cache
        self.http_timeout = http_timeout
        self.read_ahead = read_ahead
        small = 0 < spec.size <= whole_file_below
        self.chunk_size = spec.size if small else chunk_size
        self.stats = FetchStats()
        self._origin = origin or open_origin(spec.url, http_timeout)
        self._file_id = spec.file_id
        self._etag: str | None = spec.etag
        self._etag_looked_up = spec.etag is not None
        self._lock = threading.Lock()
        self._inflight: dict[int, Future[dict[int, bytes]]] = {}
        self._last_end = -1
        self._streak = 0
        self._ahead_until = -1  # chunk index read ahead up to (exclusive)

    def _key(self, index: int) -> ChunkKey:
        start = index * self.chunk_size
        return ChunkKey(self._file_id, start, min(self.chunk_size, self.size - start))

    # ---- reading --------------------------------------------------------------------------
    def pread(self, offset: int, size: int, ahead_end: int | None = None) -> bytes:
        """Bytes [offset, offset + size), fewer only past the end of the file. `ahead_end`:
        where what the reader is after ends (a BGZF reader: its record's last block), so a
        sequential reader is not read ahead past it."""
        if offset < 0 or size < 0:
            raise ValueError(f"{self.url}: negative offset or size ({offset}, {size})")
        end = min(offset + size, self.size)
        if offset >= end:
            return b""
        deadline = time.monotonic() + self.http_timeout
        first, last = offset // self.chunk_size, (end - 1) // self.chunk_size
        keys = {i: self._key(i) for i in range(first, last + 1)}
        found = self.cache.get_many(list(keys.values()))
        have = {i: found[k] for i, k in keys.items() if k in found}
        missing = [i for i in keys if i not in have]
        if missing and not waiting_allowed():
            raise WouldWait(self.url)
        for _attempt in range(3):  # a chunk evicted between two looks is looked up again
            if not missing:
                break
            waits, cached = self._submit(missing, "demand")
            missing = []
            found = self.cache.get_many([keys[i] for i in cached]) if cached else {}
            for i in cached:
                if keys[i] in found:
                    have[i] = found[keys[i]]
                else:
                    missing.append(i)
            for i, fut in waits.items():
                if i not in have:
                    have.update(self._wait(fut, deadline))
            if not missing:
                break
        else:
            raise RemoteReadError(
                self.url,
                "the cache evicts chunks faster than they are read"
                " (is --cache-size far too small?)",
            )
        self._maybe_read_ahead(offset, end, last, ahead_end)
        parts = [have[i] for i in range(first, last + 1)]
        base = first * self.chunk_size
        return b"".join(parts)[offset - base : end - base]

    def prefetch(self, offset: int, size: int) -> None:
        """Start fetching the uncached chunks of [offset, offset + size) and return at once;
        a later pread of them waits for that fetch instead of making its own. A fault is left
        for the pread to see (and is logged once, as any)."""
        end = min(offset + size, self.size)
        if offset < 0 or offset >= end:
            return
        first, last = offset // self.chunk_size, (end - 1) // self.chunk_size
        self._submit(list(range(first, last + 1)), "demand")

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no fetch (nor its cache write) is in flight; False on timeout. For a
        caller about to hand the cache to another reader (another process, a test)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._inflight:
                    return True
            time.sleep(0.005)
        return False

    def _wait(self, fut: Future[dict[int, bytes]], deadline: float) -> dict[int, bytes]:
        try:
            return fut.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            reason = f"timed out after {self.http_timeout:g} s"
            FAULTS.fault(self.url, reason)
            raise RemoteReadError(self.url, reason) from None

    def _submit(
        self, indexes: list[int], kind: str
    ) -> tuple[dict[int, Future[dict[int, bytes]]], list[int]]:
        """Fetch the chunks `indexes` (sorted), adjacent ones in one request each. Returns the
        future answering each chunk (one already in flight is shared, not fetched twice) and
        the chunks another thread cached since the caller looked."""
        out: dict[int, Future[dict[int, bytes]]] = {}
        cached: list[int] = []
        per_request = max(1, MAX_REQUEST_BYTES // self.chunk_size)
        runs: list[list[int]] = []
        with self._lock:
            for i in indexes:
                fut = self._inflight.get(i)
                if fut is not None:
                    out[i] = fut
                elif self.cache.contains(self._key(i)):
                    cached.append(i)
                elif runs and runs[-1][-1] == i - 1 and len(runs[-1]) < per_request:
                    runs[-1].append(i)
                else:
                    runs.append([i])
            for run in runs:
                fut = Future()
                _pool(kind).submit(self._fetch_run, run, fut)
                for i in run:
                    self._inflight[i] = fut
                    out[i] = fut
        return out, cached

    def _maybe_read_ahead(self, offset: int, end: int, last: int, limit: int | None) -> None:
        """After reads that each start where the previous one ended, fetch the next
        `read_ahead` bytes in the background (once per window, not once per read), not past
        byte `limit`."""
        with self._lock:
            # threads reading one stream (the BGZF reader inflates on two) finish their preads
            # in any order: a read a little behind the furthest end still counts as sequential
            behind = self._last_end - offset
            if 0 <= behind <= REORDER_BYTES:
                self._streak += 1
                self._last_end = max(self._last_end, end)
            else:
                self._streak = 0
                self._last_end = end
            if self._streak < SEQUENTIAL_STREAK or self.read_ahead <= 0:
                return
            n_chunks = -(-min(self.size, self.size if limit is None else limit) // self.chunk_size)
            window = max(1, self.read_ahead // self.chunk_size)
            if self._ahead_until - last > window // 2:
                return  # still well ahead of the reader
            begin = max(last + 1, self._ahead_until)
            stop = min(n_chunks, last + 1 + window)
            self._ahead_until = stop
        self._submit(list(range(begin, stop)), "ahead")

    # ---- fetching -------------------------------------------------------------------------
    def _fetch_run(self, run: list[int], fut: Future[dict[int, bytes]]) -> None:
        """Fetch and check a run; its readers get the bytes as soon as they are checked, and
        only then are they written to the cache (file creation costs milliseconds on a busy
        disk; a cache that cannot be written, e.g. a full disk, is logged, reads go on)."""
        try:
            try:
                out = self._fetch_run_checked(run)
            except (RemoteReadError, RemoteChangedError) as exc:
                FAULTS.fault(self.url, exc.reason)
                fut.set_exception(exc)
                return
            except BaseException as exc:  # a bug must reach the reader, not a dead thread
                fut.set_exception(exc)
                return
            fut.set_result(out)
            try:
                self.cache.put_many([(self._key(i), out[i]) for i in run], self.url)
            except (OSError, sqlite3.Error) as exc:
                FAULTS.fault(self.cache.directory, f"cannot write the cache: {exc}")
        finally:
            with self._lock:
                for i in run:
                    self._inflight.pop(i, None)

    def _fetch_run_checked(self, run: list[int]) -> dict[int, bytes]:
        start = run[0] * self.chunk_size
        end = min((run[-1] + 1) * self.chunk_size, self.size)
        deadline = time.monotonic() + self.http_timeout
        piece = self._origin.fetch(start, end, self._expected_etag(), deadline)
        self.stats.add(len(piece.data))
        if piece.total_size is not None and piece.total_size != self.size:
            raise RemoteChangedError(
                self.url, f"it is {piece.total_size} bytes where the manifest says {self.size}"
            )
        if len(piece.data) != end - start:
            raise RemoteReadError(self.url, f"got {len(piece.data)} bytes of {end - start}")
        self._check_etag(piece.etag)
        self._check_digests(start, piece.data)
        FAULTS.success(self.url)
        out: dict[int, bytes] = {}
        for i in run:
            a = i * self.chunk_size - start
            out[i] = piece.data[a : a + self.chunk_size]
        return out

    def _expected_etag(self) -> str | None:
        if not self._etag_looked_up:
            self._etag = self.cache.pinned_etag(self.url, self.spec.etag_scope)
            self._etag_looked_up = True
        return self._etag

    def _check_etag(self, etag: str | None) -> None:
        """The first ETag seen is pinned (in the cache index, for every process, per manifest:
        see FileSpec.etag_scope); a different one later means the file was replaced."""
        if etag is None:
            return
        expected = self._expected_etag()
        if expected is None:
            expected = self.cache.pin_etag(self.url, self.spec.etag_scope, etag)
            with self._lock:
                self._etag = expected
        if etag != expected:
            raise RemoteChangedError(self.url, f"ETag {etag} where {expected} was expected")

    def _check_digests(self, start: int, data: bytes) -> None:
        """Check every manifest digest whose range this fetch covers completely."""
        spec = self.spec
        end = start + len(data)
        if spec.sha256 and start == 0 and end == self.size:
            if hashlib.sha256(data).hexdigest() != spec.sha256.lower():
                raise RemoteChangedError(self.url, "its SHA-256 differs from the manifest's")
        cs = spec.chunk_size
        if not cs or not spec.chunk_digests:
            return
        for j in range(-(-start // cs), len(spec.chunk_digests)):
            a, b = j * cs, min((j + 1) * cs, self.size)
            if b > end:
                break
            if hashlib.sha256(data[a - start : b - start]).hexdigest() != spec.chunk_digests[j]:
                raise RemoteChangedError(
                    self.url, f"bytes {a}-{b - 1} differ from the manifest's chunk digest"
                )
