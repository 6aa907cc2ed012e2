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
    """

    def __init__(
        self, maxsize: int | None, getsizeof: Callable[[Any], int] | None = None
    ) -> None:
        self.maxsize = maxsize
        self._getsizeof = getsizeof
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        value = self._data.get(key)
        if value is not None:
            try:
                self._data.move_to_end(key)
            except KeyError:  # evicted by another thread in between: still a valid hit
                pass
        return value

    def put(self, key: Hashable, value: Any) -> None:
        if self.maxsize == 0 or value is None:
            return
        size = self._getsizeof(value) if self._getsizeof else 1
        if self.maxsize is not None and size > self.maxsize:
            return
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._size -= self._getsizeof(old) if self._getsizeof else 1
            self._data[key] = value
            self._size += size
            if self.maxsize is not None:
                while self._size > self.maxsize:
                    _key, dropped = self._data.popitem(last=False)
                    self._size -= self._getsizeof(dropped) if self._getsizeof else 1

    def pop(self, key: Hashable) -> Any:
        with self._lock:
            value = self._data.pop(key, None)
            if value is not None:
                self._size -= self._getsizeof(value) if self._getsizeof else 1
            return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._size = 0

    def __contains__(self, key: Hashable) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    @property
    def currsize(self) -> int:
        return self._size
