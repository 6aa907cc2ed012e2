"""Fetching one file of a snapshot into the pull's temporary directory, resumably.

Two kinds: a whole file, appended to `<path>.part` from where an earlier try stopped (HTTP
Range), and a database assembled chunk by chunk from a local copy plus the changed chunks (Range
requests, adjacent chunks merged). A large database with no local copy (a first pull) takes the
second path with every chunk missing: one stream and one hashing thread cap a single file's
rate, so its MAX_RUN-byte pieces are fetched `--jobs` at a time, each written at its offset and
checked against its chunk digests. Every byte is checked against the manifest before the file
gets its real name; a failure keeps the `.part` for the next pull.
"""

from __future__ import annotations

import errno
import hashlib
import os
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

from .errors import DigestMismatchError, InterruptedTransferError, RemoteError
from .manifest import FileEntry
from .retry import Attempts, Retry, Transient
from .sources import NoMultirange, Source

PART = ".part"
MAX_RUN = 16 << 20  # one Range request covers at most this many bytes of adjacent chunks
SINGLE_RANGE_FACTOR = 4  # requests in flight per --jobs where each request carries one range
RANGES_PER_REQUEST = 200  # a Range header of ~5 KB: under the common 8 KB header line limit
MAX_REQUESTS = 10_000  # requests per database at most (past it, small gaps are bridged)
SPLIT_MIN = 2 * MAX_RUN  # a database this large with no local copy is fetched in parallel pieces

Progress = Callable[[int], None]


@dataclass
class Job:
    """One file to produce under `dest` (`key` is its object name in the source)."""

    entry: FileEntry
    key: str
    dest: str
    base: str | None = None  # local copy of the same database (delta jobs)
    base_chunks: dict[str, int] = field(default_factory=dict)  # digest -> chunk index in base
    chunk_size: int = 0
    parallel: int = 1  # Range requests in flight at once for the changed chunks
    multirange: bool = True  # the source takes many ranges per request (planning only)

    @property
    def is_delta(self) -> bool:
        return self.base is not None

    @property
    def by_chunks(self) -> bool:
        """Assembled from chunks (a delta, or a large database fetched in parallel pieces)."""
        return self.chunk_size > 0 and bool(self.entry.chunks)

    def missing_chunks(self) -> list[int]:
        return [i for i, d in enumerate(self.entry.chunks) if d not in self.base_chunks]

    def bytes_to_fetch(self) -> int:
        """Bytes this job would download, not counting what a resumed `.part` already has."""
        if not self.by_chunks:
            return self.entry.size
        size, cs = self.entry.size, self.chunk_size
        todo = runs(self.missing_chunks(), cs, max_runs(self.multirange))
        return sum(min(size, (b + 1) * cs) - a * cs for a, b in todo)


def run_job(job: Job, source: Source, retry: Retry, progress: Progress) -> int:
    """Produce `job.dest`; returns the bytes downloaded."""
    os.makedirs(os.path.dirname(job.dest), exist_ok=True)
    with local_io(job.dest):
        got = (
            rebuild(job, source, retry, progress)
            if job.by_chunks
            else whole(job, source, retry, progress)
        )
        os.chmod(job.dest + PART, 0o444)
        os.rename(job.dest + PART, job.dest)
    return got


def whole(job: Job, source: Source, retry: Retry, progress: Progress) -> int:
    """Download the whole file, appending to what a `.part` already holds."""
    entry, part = job.entry, job.dest + PART
    digest = hashlib.sha256()
    have = _existing(part)
    if have > entry.size:
        os.truncate(part, 0)
        have = 0
    if have:
        with open(part, "rb") as fh:
            digest = hashlib.file_digest(fh, "sha256")
    start = have
    with open(part, "ab") as out:

        def sink(block: bytes) -> None:
            out.write(block)
            digest.update(block)

        fetch_span(source, job.key, have, entry.size, sink, retry, progress)
    if digest.hexdigest() != entry.sha256:
        os.unlink(part)
        raise DigestMismatchError(
            f"{source.where(job.key)}: content does not match the manifest's SHA-256 "
            "(changed or damaged on the server); the partial file was discarded"
        )
    return entry.size - start


def rebuild(job: Job, source: Source, retry: Retry, progress: Progress) -> int:
    """Assemble a database: chunks a resumed `.part` has right, chunks the local copy has,
    and the rest fetched in merged Range requests. Every chunk is checked against its digest
    as it is placed, so the file is the manifest's byte for byte without reading it again."""
    entry, part, cs = job.entry, job.dest + PART, job.chunk_size
    resumed = os.path.exists(part)
    with open(part, "r+b" if resumed else "w+b") as out:
        out.truncate(entry.size)
        missing = []
        with open(job.base or os.devnull, "rb") as base:
            for i, want in enumerate(entry.chunks):
                if resumed:
                    out.seek(i * cs)
                    if hashlib.sha256(out.read(cs)).hexdigest() == want:
                        continue
                if want in job.base_chunks:
                    base.seek(job.base_chunks[want] * cs)
                    block = base.read(cs)
                    if hashlib.sha256(block).hexdigest() == want:
                        out.seek(i * cs)
                        out.write(block)
                        continue
                missing.append(i)
        fd = out.fileno()
        out.flush()

        def write_at(offset: int, block: bytes) -> None:
            os.pwrite(fd, block, offset)

        def fetch_batch(batch: list[tuple[int, int]]) -> None:
            spans = [(a * cs, min(entry.size, (b + 1) * cs)) for a, b in batch]
            fetch_spans(source, job.key, spans, write_at, retry, progress)
            for first, last in batch:
                # one read per run, not per chunk: a first pull's 16 MiB piece is 4,096 chunks
                start = first * cs
                run = memoryview(os.pread(fd, min(entry.size, (last + 1) * cs) - start, start))
                for i in range(first, last + 1):
                    got = run[i * cs - start : (i + 1) * cs - start]
                    if hashlib.sha256(got).hexdigest() != entry.chunks[i]:
                        raise DigestMismatchError(
                            f"{source.where(job.key)}: chunk {i} does not match the manifest "
                            "(changed or damaged on the server)"
                        )

        todo = runs(missing, cs, max_runs(source.multirange))
        calls = [partial(fetch_batch, batch) for batch in batches(todo, cs)]
        # one range per request (S3): more of them in flight make up for the round trips
        parallel = job.parallel if source.multirange else job.parallel * SINGLE_RANGE_FACTOR
        run_parallel(calls, parallel, retry.cancel or threading.Event())
        fetched = sum(min(entry.size, (b + 1) * cs) - a * cs for a, b in todo)
        out.flush()
    return fetched


def max_runs(multirange: bool) -> int:
    """Runs of changed chunks a database may be fetched in: MAX_REQUESTS requests' worth. Where
    a request carries one range (S3) that is MAX_REQUESTS runs; where it carries up to
    RANGES_PER_REQUEST, a 300,000-sequence update's 26,000 runs of aliases.sqlite3 are 131
    requests, and bridging their gaps would only add bytes (66 MB there, +19%)."""
    return MAX_REQUESTS * (RANGES_PER_REQUEST if multirange else 1)


def runs(
    indexes: list[int], chunk_size: int, max_runs: int = MAX_REQUESTS
) -> list[tuple[int, int]]:
    """(first, last) runs of the chunks to fetch, one Range request each: adjacent chunks
    merged (up to MAX_RUN bytes a run). Past `max_runs` runs the smallest gaps between them are
    bridged too: a few unchanged chunks cost less than thousands of tiny requests on a link
    with latency."""
    gaps = [(b - a - 1, k) for k, (a, b) in enumerate(zip(indexes, indexes[1:], strict=False))]
    real = [g for g in gaps if g[0] > 0]
    bridged = {k for _gap, k in sorted(real)[: max(0, len(real) + 1 - max_runs)]}
    out: list[tuple[int, int]] = []
    per_run = max(1, MAX_RUN // chunk_size)
    for k, i in enumerate(indexes):
        joins = k > 0 and (i == indexes[k - 1] + 1 or k - 1 in bridged)
        if out and joins and i - out[-1][0] < per_run:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return out


def batches(todo: list[tuple[int, int]], chunk_size: int) -> list[list[tuple[int, int]]]:
    """Runs grouped for one request each (many ranges in one Range header where the server
    allows it): at most RANGES_PER_REQUEST runs and MAX_RUN bytes a group."""
    out: list[list[tuple[int, int]]] = []
    size = 0
    for first, last in todo:
        n = (last - first + 1) * chunk_size
        if not out or len(out[-1]) >= RANGES_PER_REQUEST or size + n > MAX_RUN:
            out.append([])
            size = 0
        out[-1].append((first, last))
        size += n
    return out


def fetch_spans(
    source: Source,
    key: str,
    spans: list[tuple[int, int]],
    write_at: Callable[[int, bytes], object],
    retry: Retry,
    progress: Progress,
) -> None:
    """Byte ranges [start, end) of `key`, written where they belong: in one request per try
    when the source takes many ranges at once, else one range after the other. A cut answer
    is resumed for the ranges (and the parts of ranges) still missing."""
    todo = [[a, b] for a, b in spans]
    attempts = Attempts(retry, source.where(key))
    while todo:
        if len(todo) == 1 or not source.multirange:
            for start, end in todo:
                sink = _Positioned(write_at, start)
                fetch_span(source, key, start, end, sink, retry, progress)
            return
        missing = sum(b - a for a, b in todo)
        try:
            with source.stream_ranges(key, [(a, b) for a, b in todo]) as pieces:
                k = 0
                for offset, block in pieces:
                    if retry.cancel is not None and retry.cancel.is_set():
                        raise InterruptedTransferError("interrupted")
                    write_at(offset, block)
                    progress(len(block))
                    while k < len(todo) and todo[k][1] <= offset:
                        k += 1
                    if k < len(todo) and todo[k][0] >= offset:
                        todo[k][0] = max(todo[k][0], min(todo[k][1], offset + len(block)))
            todo = [s for s in todo if s[0] < s[1]]
            if todo:
                raise Transient(f"{source.where(key)}: multipart answer cut short")
        except NoMultirange:
            continue  # the source now says no: one range at a time
        except Transient as exc:
            todo = [s for s in todo if s[0] < s[1]]
            attempts.failed(exc, progressed=sum(b - a for a, b in todo) < missing)


class _Positioned:
    """A sink that writes consecutive blocks from `offset` on."""

    def __init__(self, write_at: Callable[[int, bytes], object], offset: int) -> None:
        self.write_at, self.offset = write_at, offset

    def __call__(self, block: bytes) -> None:
        self.write_at(self.offset, block)
        self.offset += len(block)


def fetch_span(
    source: Source,
    key: str,
    start: int,
    end: int,
    sink: Callable[[bytes], object],
    retry: Retry,
    progress: Progress,
) -> None:
    """Bytes [start, end) of `key` into `sink`, resuming with Range after each failure."""
    attempts = Attempts(retry, source.where(key))
    pos = start
    while pos < end:
        before = pos
        try:
            with source.stream(key, pos, end) as blocks:
                for block in blocks:
                    if retry.cancel is not None and retry.cancel.is_set():
                        raise InterruptedTransferError("interrupted")
                    block = block[: end - pos]
                    sink(block)
                    pos += len(block)
                    progress(len(block))
                    if pos >= end:
                        break
            if pos < end:
                raise Transient(
                    f"{source.where(key)}: body cut short ({pos - start} of {end - start} bytes)"
                )
        except Transient as exc:
            attempts.failed(exc, progressed=pos > before)


def _existing(path: str) -> int:
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0


class local_io:
    """Local write failures (full disk above all) as one clear line naming the file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> Literal[False]:
        if isinstance(exc, OSError) and not isinstance(exc, RemoteError):
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise RemoteError(f"no space left on the device writing {self.path}") from None
            raise RemoteError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        return False


class Counter:
    """A thread-safe byte counter that also feeds a progress bar."""

    def __init__(self, bar: object | None = None) -> None:
        self.total = 0
        self._lock = threading.Lock()
        self._bar = bar

    def __call__(self, n: int) -> None:
        with self._lock:
            self.total += n
            if self._bar is not None:
                self._bar.update(n)  # type: ignore[attr-defined]


def run_parallel(calls: Sequence[Callable[[], object]], n: int, cancel: threading.Event) -> None:
    """Run `calls` on up to `n` daemon threads, in order; the first error stops the rest and
    is raised here (an interruption only if nothing else went wrong). Cancelled from outside
    with calls left, it raises InterruptedTransferError: a caller must never take a partial
    result for a whole one (a database rebuilt with chunks missing would be renamed as done).

    Daemon threads, so Ctrl-C ends the process at once even while one waits on a stalled
    connection; what it wrote stays in its `.part` for the next pull.
    """
    todo: queue.SimpleQueue[Callable[[], object]] = queue.SimpleQueue()
    for call in calls:
        todo.put(call)
    errors: list[BaseException] = []

    def work() -> None:
        while not cancel.is_set():
            try:
                call = todo.get_nowait()
            except queue.Empty:
                return
            try:
                call()
            except BaseException as exc:  # noqa: B036 - handed to the calling thread
                errors.append(exc)
                cancel.set()
                return

    threads = [threading.Thread(target=work, daemon=True) for _ in range(min(n, len(calls)))]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.2)
    if errors:
        first = next((e for e in errors if not isinstance(e, InterruptedTransferError)), errors[0])
        raise first
    if not todo.empty():  # cancelled from outside (another job failed, Ctrl-C): not done
        raise InterruptedTransferError("cancelled before every part was fetched")
