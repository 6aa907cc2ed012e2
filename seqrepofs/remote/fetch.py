"""Fetching one file of a snapshot into the pull's temporary directory, resumably.

Two kinds: a whole file, appended to `<path>.part` from where an earlier try stopped (HTTP
Range), and a database rebuilt chunk by chunk from a local copy plus the changed chunks (Range
requests, adjacent chunks merged). Every byte is checked against the manifest before the file
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

from .errors import DigestMismatchError, InterruptedPullError, RemoteError
from .manifest import FileEntry
from .retry import Attempts, Retry, Transient
from .sources import Source

PART = ".part"
MAX_RUN = 16 << 20  # one Range request covers at most this many bytes of adjacent chunks
MAX_REQUESTS = 10_000  # Range requests per database at most (past it, small gaps are bridged)

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

    @property
    def is_delta(self) -> bool:
        return self.base is not None

    def missing_chunks(self) -> list[int]:
        return [i for i, d in enumerate(self.entry.chunks) if d not in self.base_chunks]

    def bytes_to_fetch(self) -> int:
        """Bytes this job would download, not counting what a resumed `.part` already has."""
        if not self.is_delta:
            return self.entry.size
        size, cs = self.entry.size, self.chunk_size
        return sum(min(size, (b + 1) * cs) - a * cs for a, b in runs(self.missing_chunks(), cs))


def run_job(job: Job, source: Source, retry: Retry, progress: Progress) -> int:
    """Produce `job.dest`; returns the bytes downloaded."""
    os.makedirs(os.path.dirname(job.dest), exist_ok=True)
    with local_io(job.dest):
        got = (
            rebuild(job, source, retry, progress)
            if job.is_delta
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
    and the rest fetched in merged Range requests; then check the whole file's digest."""
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

        def fetch_run(first: int, last: int) -> None:
            start, end = first * cs, min(entry.size, (last + 1) * cs)
            pos = [start]

            def sink(block: bytes) -> None:
                os.pwrite(fd, block, pos[0])
                pos[0] += len(block)

            fetch_span(source, job.key, start, end, sink, retry, progress)
            for i in range(first, last + 1):
                got = os.pread(fd, min(cs, entry.size - i * cs), i * cs)
                if hashlib.sha256(got).hexdigest() != entry.chunks[i]:
                    raise DigestMismatchError(
                        f"{source.where(job.key)}: chunk {i} does not match the manifest "
                        "(changed or damaged on the server)"
                    )

        out.flush()
        todo = runs(missing, cs)
        calls = [partial(fetch_run, a, b) for a, b in todo]
        run_parallel(calls, job.parallel, retry.cancel or threading.Event())
        fetched = sum(min(entry.size, (b + 1) * cs) - a * cs for a, b in todo)
        out.flush()
    with open(part, "rb") as check:
        if hashlib.file_digest(check, "sha256").hexdigest() != entry.sha256:
            raise DigestMismatchError(
                f"{source.where(job.key)}: rebuilt file does not match the manifest's SHA-256"
            )
    return fetched


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
                        raise InterruptedPullError("interrupted")
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
    is raised here (an interruption only if nothing else went wrong).

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
        first = next((e for e in errors if not isinstance(e, InterruptedPullError)), errors[0])
        raise first
