"""Process tuning of the daemon: settings of the C library that bound its memory."""

from __future__ import annotations

import ctypes
import os

MALLOC_ARENAS = 2  # glibc malloc arenas the daemon may use (see cap_malloc_arenas)
_M_ARENA_MAX = -8  # glibc's mallopt() parameter number for that cap


def cap_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Let glibc's malloc use at most `arenas` arenas in this process; False where it cannot.

    Why: glibc gives each new thread an arena of its own (up to 8 per core), and the daemon's
    threads (trio's, the inflate pool's, the worker pool's) each allocate and free inflated
    blocks. Freed blocks stay in the arena of the thread that allocated them, so every arena
    keeps its share of the block cache's churn. Measured: with every read on the worker
    threads, a `samtools faidx` + `bedtools getfasta` session peaked at 143 MB, 131-136 MB with
    two arenas; cold `cat` and cold faidx times did not change beyond the noise (the threads
    mostly take turns holding the GIL, so they hardly contend for malloc).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # a C library without mallopt
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, arenas))


# Sequence records (seqinfo rows) the store may cache in the daemon. The store's default (a
# million, as the reference's) suits a short-lived reader; in a daemon that reads every file of
# a real repository it would hold ~10^6 records (hundreds of MB) for good.
STORE_RECORDS = 32768
# Bytes of each read-only database a daemon connection maps. Touched mapped pages count in the
# daemon's RSS (once per worker connection) and the OOM killer counts them too: a listing of a
# namespace of millions of aliases walks most of a 1.3 GB aliases.sqlite3 (a 1.2 M-entry
# listing and stat walk: peak RSS 819 MB mapping 2 GB, 89 MB mapping 8 MB, no slower).
STORE_MMAP_BYTES = 8 * 1024 * 1024


def bound_store_caches(records: int = STORE_RECORDS, mmap_bytes: int = STORE_MMAP_BYTES) -> None:
    """Cap the store's per-record caches and database maps in this process, unless the user
    set them (SEQREPO_LRU_CACHE_MAXSIZE, SEQREPO_SQLITE_MMAP_BYTES; read when a SeqRepo opens
    its databases: call before opening one)."""
    os.environ.setdefault("SEQREPO_LRU_CACHE_MAXSIZE", str(records))
    os.environ.setdefault("SEQREPO_SQLITE_MMAP_BYTES", str(mmap_bytes))
