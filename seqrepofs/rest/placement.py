"""Where a request's blocking store work runs: on the event loop, or in the thread pool.

A refget request does a few indexed SQLite queries and perhaps one BGZF block read: tens of
microseconds on page-cached data. Handing that to a worker thread and back (anyio's pool, two
GIL hand-overs, futex wake-ups) cost more than the work itself, and threads taking turns on the
GIL stretch the slowest requests (docs/performance.md, "REST at 1 M"). So by default (`auto`)
requests on a snapshot are answered on the event loop, as the FUSE daemon answers its reads
(`fs.ops.ReadPlacement`), with the same two escapes:

* a local snapshot whose reads start to wait on storage (a running mean wait of SLOW_WAIT, as
  on a network filesystem) while several clients take turns goes to the threads for BACKOFF
  seconds, so one slow read does not hold up every other connection; a lone client stays on
  the loop, where the hop would only add to its wait. A wait counts if the thread blocked (a
  voluntary context switch: being preempted on a busy machine is not waiting) while no
  request ran in a thread (it would have been the GIL);
* a snapshot URL is tried on the loop inside `no_waiting()`: a request that would fetch raises
  `WouldWait` and is run again in a thread (handlers only read, so a rerun is harmless). So
  are, on any snapshot, bodies over `inline_max_residues` and the first read of each sequence
  file (it parses the file's .fai).

A live (writable) master always uses the threads: its reads may wait on a loader's lock.
`threads` and `loop` force one side (`loop` still hands snapshot-URL fetches to threads).
"""

from __future__ import annotations

import itertools
import logging
import resource
import time
from collections import deque
from collections.abc import Callable, Hashable

log = logging.getLogger(__name__)

MODES = ("auto", "loop", "threads")
SLOW_WAIT = 0.001  # requests waiting this long on storage on average (seconds) ...
CLIENT_WINDOW = 16  # ... while, among this many latest requests, ...
MIN_CLIENT_CHANGES = 3  # ... the connection changed this often (several clients at once) ...
BACKOFF = 10.0  # ... go to the worker threads for this long
WAIT_WEIGHT = 1 / 16  # weight of the latest request in that average


class Placement:
    """The process's choice between the event loop and the thread pool (see module doc)."""

    def __init__(
        self,
        mode: str,
        frozen: bool,
        remote: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"reads must be one of {', '.join(MODES)}, not {mode!r}")
        self.remote = remote
        self.enabled = mode == "loop" or (mode == "auto" and frozen)
        self._clock = clock
        self._threads_until = 0.0
        self._mean_wait = 0.0
        self._clients: deque[Hashable] = deque(maxlen=CLIENT_WINDOW)
        # requests now in the thread pool (changed on the event loop only): while there are
        # any, a request on the loop may have waited for the GIL, which is not storage
        self.in_threads = 0

    def on_loop(self) -> bool:
        return self.enabled and self._clock() >= self._threads_until

    def waited(self, seconds: float, client: Hashable) -> None:
        """Report how long a request answered on the loop waited (wall less CPU time)."""
        self._clients.append(client)
        self._mean_wait += (max(seconds, 0.0) - self._mean_wait) * WAIT_WEIGHT
        if self._mean_wait >= SLOW_WAIT and self._interleaved():
            log.info(
                "requests waited %.1f ms on storage on average: worker threads answer for %.0f s",
                self._mean_wait * 1e3,
                BACKOFF,
            )
            self._threads_until = self._clock() + BACKOFF
            self._mean_wait = 0.0
            self._clients.clear()

    def _interleaved(self) -> bool:
        changes = sum(1 for a, b in itertools.pairwise(self._clients) if a != b)
        return changes >= MIN_CLIENT_CHANGES


def blocked_time(
    before: resource.struct_rusage, after: resource.struct_rusage, wall: float
) -> float:
    """How long a request on the loop thread waited: its wall time less its CPU time, if the
    thread blocked (a voluntary context switch: storage, a lock); 0 if it was only preempted,
    which on a busy machine costs as much wall time but would go as well in a thread."""
    if after.ru_nvcsw == before.ru_nvcsw:
        return 0.0
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return max(wall - cpu, 0.0)
