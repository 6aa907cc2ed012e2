"""Reads that must not wait on the network.

The FUSE daemon answers requests on one event-loop thread. A read of a snapshot URL whose bytes
are in the range cache is cheapest there, but one that would fetch may wait up to
--http-timeout and would hold up every other request. So the loop tries a read inside
`no_waiting()`: the remote file and the BGZF reader raise `WouldWait` instead of waiting on a
fetch, and the loop hands the read to a worker thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_state = threading.local()


class WouldWait(Exception):
    """A read inside `no_waiting()` needed bytes not fetched yet."""


@contextmanager
def no_waiting() -> Iterator[None]:
    """Reads on this thread raise WouldWait rather than wait on the network."""
    _state.forbidden = True
    try:
        yield
    finally:
        _state.forbidden = False


def waiting_allowed() -> bool:
    return not getattr(_state, "forbidden", False)
