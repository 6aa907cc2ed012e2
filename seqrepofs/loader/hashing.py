"""Digests computed off the main thread for large chunks, inline for small ones.

Why: hashlib releases the GIL on large buffers, so one worker thread hashes a chromosome's
chunks while the main thread parses and stores (Python code and SQLite, which need the GIL).
Handing a few kilobytes to a thread costs more than hashing them, so small records are hashed
inline; a record switches to the worker at its first large chunk and stays there, keeping the
chunks of one digest in order.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

from ..digests import Digests, StreamingDigester

OFFLOAD_MIN = 256 << 10  # chunks at least this large are hashed on the worker
MAX_QUEUED = 6  # chunks in flight to the worker (each also held by its record)


class DigestWorker:
    """One background hashing thread shared by all records of a load."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="digest")
        self._inflight: deque[Future[None]] = deque()

    def submit_update(self, digester: StreamingDigester, chunk: bytes) -> None:
        while len(self._inflight) >= MAX_QUEUED:
            self._inflight.popleft().result()
        while self._inflight and self._inflight[0].done():
            self._inflight.popleft().result()
        self._inflight.append(self._pool.submit(digester.update, chunk))

    def submit_finish(self, digester: StreamingDigester) -> Future[Digests]:
        return self._pool.submit(digester.finish)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class RecordDigest:
    """The digests of one record, fed chunk by chunk; `result()` waits if hashed remotely."""

    __slots__ = ("_digester", "_worker", "_remote", "_future", "_done")

    def __init__(self, worker: DigestWorker | None) -> None:
        self._digester = StreamingDigester()
        self._worker = worker
        self._remote = False
        self._future: Future[Digests] | None = None
        self._done: Digests | None = None

    def update(self, chunk: bytes) -> None:
        if self._worker is not None and (self._remote or len(chunk) >= OFFLOAD_MIN):
            self._remote = True
            self._worker.submit_update(self._digester, chunk)
        else:
            self._digester.update(chunk)

    def finish(self) -> None:
        if self._remote:
            assert self._worker is not None
            self._future = self._worker.submit_finish(self._digester)
        else:
            self._done = self._digester.finish()

    def result(self) -> Digests:
        if self._done is None:
            assert self._future is not None, "finish() not called"
            self._done = self._future.result()
            self._future = None
        return self._done
