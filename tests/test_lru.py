"""store/lru.py: the byte bound, least recently used first, and entries put low dropped first."""

from __future__ import annotations

from seqrepofs.store.lru import LRU


def test_low_entries_are_dropped_before_any_other() -> None:
    cache = LRU(10, getsizeof=len)
    cache.put("r1", b"aa")
    cache.put("b1", b"bbbb", low=True)
    cache.put("r2", b"cc")
    cache.put("b2", b"dd", low=True)
    assert cache.currsize == 10 and len(cache) == 4
    assert cache.get("b1") == b"bbbb"  # a hit moves it to the end of the low entries
    cache.put("r3", b"ee")  # 12 > 10: the least recently used low entry goes (b2)
    assert "b2" not in cache and "b1" in cache and cache.currsize == 10
    cache.put("r4", b"ffff")  # the last low entry goes, then no record is needed
    assert "b1" not in cache and [k for k in ("r1", "r2", "r3", "r4") if k in cache] == [
        "r1",
        "r2",
        "r3",
        "r4",
    ]
    assert cache.currsize == 10
    cache.put("r5", b"g")  # no low entries left: the least recently used record goes
    assert "r1" not in cache and cache.currsize == 9


def test_a_key_moves_between_tiers_without_being_counted_twice() -> None:
    cache = LRU(100, getsizeof=len)
    cache.put("k", b"abc", low=True)
    cache.put("k", b"abcd")
    assert cache.currsize == 4 and len(cache) == 1 and cache.get("k") == b"abcd"
    cache.put("k", b"ab", low=True)
    assert cache.currsize == 2 and cache.pop("k") == b"ab" and cache.currsize == 0
    assert cache.get("k") is None and "k" not in cache
    cache.put("x", b"x", low=True)
    cache.clear()
    assert len(cache) == 0 and cache.currsize == 0 and cache.get("x") is None


def test_an_entry_larger_than_the_bound_is_not_kept() -> None:
    cache = LRU(3, getsizeof=len)
    cache.put("a", b"ab")
    cache.put("big", b"abcd", low=True)
    assert "big" not in cache and cache.get("a") == b"ab"
