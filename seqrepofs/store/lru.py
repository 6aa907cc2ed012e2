"""A thread-safe least-recently-used cache whose hits take no lock.

Why not cachetools' LRUCache behind a lock (what this replaced): a hit there is a lock and
several Python-level calls, and every read does a few hits (alias, file, block), which was a
measurable share of a 100-bp read. Here a hit is an OrderedDict ``get`` and ``move_to_end``,
each atomic under the GIL; only inserts and evictions take the lock. Written by hand because
no well-kept library offers that trade.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class LRU:
    """Values by key, least recently used dropped first.

    `maxsize` bounds the sum of ``getsizeof(value)`` (1 per entry by default); None means
    unbounded and 0 disables the cache. None cannot be stored (``get`` uses it for a miss).
    Entries put with ``low=True`` are dropped before any other, least recently used first: a
    cache of what readers asked for (short records) and of what it came from (whole blocks,
    each worth many records) keeps the former when both do not fit.
    """

    def __init__(self, maxsize: int | None, getsizeof: Callable[[Any], int] | None = None) -> None:
        self.maxsize = maxsize
        self._getsizeof = getsizeof
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._low: OrderedDict[Hashable, Any] = OrderedDict()  # dropped first
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        value = self._data.get(key)
        if value is None:
            if not self._low:
                return None
            value = self._low.get(key)
            if value is None:
                return None
            try:
                self._low.move_to_end(key)
            except KeyError:  # evicted by another thread in between: still a valid hit
                pass
            return value
        try:
            self._data.move_to_end(key)
        except KeyError:
            pass
        return value

    def put(self, key: Hashable, value: Any, low: bool = False) -> None:
        if self.maxsize == 0 or value is None:
            return
        size = self._getsizeof(value) if self._getsizeof else 1
        if self.maxsize is not None and size > self.maxsize:
            return
        getsizeof = self._getsizeof
        with self._lock:
            if key in self._data or key in self._low:
                self._drop(key)
            (self._low if low else self._data)[key] = value
            self._size += size
            if self.maxsize is not None and self._size > self.maxsize:
                while self._size > self.maxsize:
                    _key, dropped = (self._low or self._data).popitem(last=False)
                    self._size -= getsizeof(dropped) if getsizeof else 1

    def _drop(self, key: Hashable) -> Any:
        value = self._data.pop(key, None)
        if value is None:
            value = self._low.pop(key, None)
        if value is not None:
            self._size -= self._getsizeof(value) if self._getsizeof else 1
        return value

    def pop(self, key: Hashable) -> Any:
        with self._lock:
            return self._drop(key)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._low.clear()
            self._size = 0

    def __contains__(self, key: Hashable) -> bool:
        return key in self._data or key in self._low

    def __len__(self) -> int:
        return len(self._data) + len(self._low)

    @property
    def currsize(self) -> int:
        return self._size
