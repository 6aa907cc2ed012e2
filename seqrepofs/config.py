"""Environment settings shared with biocommons.seqrepo (same names, same parsing)."""

from __future__ import annotations

import os

from .errors import InvalidInputError

DEFAULT_ROOT_DIR = "/usr/local/share/seqrepo"
DEFAULT_LRU_CACHE_MAXSIZE = 1_000_000
DEFAULT_FD_CACHE_MAXSIZE = 256
DEFAULT_BLOCK_CACHE_BYTES = 64 * 1024 * 1024
# SQLite maps a read-only database up to this many bytes (SQLite clamps it to 2 GB): a lookup
# then reads B-tree pages from the page cache instead of copying each into SQLite's own cache.
DEFAULT_SQLITE_MMAP_BYTES = 1 << 31


def parse_cache_size(value: str | None, default: int | None, name: str) -> int | None:
    """Parse a cache-size variable: an integer, or 'none' (any case) for unbounded."""
    if value is None or value == "":
        return default
    if value.strip().lower() == "none":
        return None
    try:
        size = int(value)
    except ValueError:
        raise InvalidInputError(f"{name} must be an integer or 'none', not {value!r}") from None
    if size < 0:
        raise InvalidInputError(f"{name} must not be negative, not {value!r}")
    return size


def lru_cache_maxsize() -> int | None:
    return parse_cache_size(
        os.environ.get("SEQREPO_LRU_CACHE_MAXSIZE"),
        DEFAULT_LRU_CACHE_MAXSIZE,
        "SEQREPO_LRU_CACHE_MAXSIZE",
    )


def fd_cache_maxsize(constructor_value: int | None = None) -> int | None:
    """The environment wins over the constructor argument, as in the reference."""
    default = DEFAULT_FD_CACHE_MAXSIZE if constructor_value is None else constructor_value
    return parse_cache_size(
        os.environ.get("SEQREPO_FD_CACHE_MAXSIZE"), default, "SEQREPO_FD_CACHE_MAXSIZE"
    )


def sqlite_mmap_bytes() -> int:
    """SEQREPO_SQLITE_MMAP_BYTES: how much of a read-only database each connection maps.

    Mapped pages count in a process's RSS once touched (once per connection), so a long-lived
    process that walks whole databases (the daemon) sets a smaller cap than a short reader.
    """
    size = parse_cache_size(
        os.environ.get("SEQREPO_SQLITE_MMAP_BYTES"),
        DEFAULT_SQLITE_MMAP_BYTES,
        "SEQREPO_SQLITE_MMAP_BYTES",
    )
    return DEFAULT_SQLITE_MMAP_BYTES if size is None else size


def root_dir() -> str:
    return os.environ.get("SEQREPO_ROOT_DIR") or DEFAULT_ROOT_DIR
