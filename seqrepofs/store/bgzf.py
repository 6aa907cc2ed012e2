"""Reading BGZF FASTA files: a thread-safe block reader with a shared cache of inflated blocks.

Why our own reader rather than pysam: a pysam FastaFile handle is not thread-safe, so the
reference either re-opens files on every fetch or serialises threads on a lock. Here blocks are
read with ``os.pread`` through the .gzi index of block offsets (`fai`); a single block is
inflated by ISA-L, a run of blocks by one call to ISA-L's multi-member gzip reader (both check
CRCs and release the GIL); a short read may inflate a block only as far as it needs (zlib;
see PREFIX_MAX_FRACTION). Inflated blocks and short records are shared by all threads in one
LRU cache bounded in bytes, and long ranges are filled on all cores straight into the result.
The files are standard BGZF with standard .fai/.gzi indexes (`bgzf_writer` writes ours):
htslib, pysam, samtools and biocommons.seqrepo read them, which the tests check.
"""

from __future__ import annotations

import bisect
import functools
import os
import threading
import zlib
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Literal, Protocol, overload

import numpy as np
from cachetools import LRUCache
from isal import igzip, igzip_lib, isal_zlib

from ..errors import CorruptFileError, SeqRepoError
from .ascii_str import new_ascii
from .fai import FaiEntry, parse_fai, parse_gzi
from .lru import LRU
from .nowait import WouldWait, waiting_allowed

BLOCK_DATA_SIZE = 0xFF00  # 65280, the largest uncompressed block bgzip and htslib write
EOF_BLOCK = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
PARALLEL_MIN_BYTES = 512 * 1024  # longer ranges are inflated on all cores
PARALLEL_GROUP_BYTES = 1 << 20  # blocks per task when they are
STREAM_MIN_BYTES = 32 * 1024  # reads this long may be a sequential stream (e.g. FUSE `cat`)
STREAM_GAP = 256 * 1024  # ... if each starts at most this far past the previous one's end
STREAM_STREAK = 2  # ... this many times running (one random read landing near another is not)
# A read this long from a record's first residue is a stream at once: `cat`, `cp` and checksum
# tools start there, and the kernel asks this much only when its readahead saw a sequential
# reader (samtools faidx asks 64 KB a region).
STREAM_START_BYTES = 128 * 1024
SHORT_RUN_BLOCKS = 8  # shorter runs: block by block beats one igzip call
PREFETCH_BYTES = 4 << 20  # inflated ahead of a sequential reader
GROUP_BYTES = 256 * 1024  # blocks per prefetch task
# A short read whose bytes end in the first half of a block inflates the block only that far
# (zlib stops at a given output length; libdeflate and ISA-L inflate whole blocks), kept in the
# cache as that block's prefix. Measured on our 16 KB blocks: zlib costs 4 µs + 2.7 µs a KB
# out, ISA-L 27 µs a whole block, so past half a block the whole one is as cheap. A prefix is
# not checked against the block's CRC32 (see _prefix).
PREFIX_MAX_FRACTION = 0.5
PREFIX_ROUND = 1024  # a prefix is inflated to a multiple of this: a nearby read may fit in it
# A short read of a record this short (residues) caches the record (from its first residue as
# far as the blocks inflated for the read go), and its blocks only as long as there is room: a
# random reader of transcripts and proteins (~1,500 residues) wants 1/10 of each 16 KB block,
# so a cache of blocks alone spends 90% of its bytes on neighbours nobody asked for.
RECORD_MAX_RESIDUES = 8192
CACHE_ENTRY_OVERHEAD = 200  # bytes a cache entry costs beyond its data (key, node, header)
RECORD_BLOCK_HIT_RATE = 16  # see BlockReader._blocks_worth_caching


def _cached_size(data: Inflated) -> int:
    return len(data) + CACHE_ENTRY_OVERHEAD


Inflated = bytes | bytearray  # nobody mutates them

_POOL: tuple[int, ThreadPoolExecutor] | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """One inflate pool per process (re-made after fork: threads do not survive it)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL[0] != os.getpid():
            workers = max(
                2,
                len(os.sched_getaffinity(0))
                if hasattr(os, "sched_getaffinity")
                else (os.cpu_count() or 2),
            )
            _POOL = (os.getpid(), ThreadPoolExecutor(workers, thread_name_prefix="inflate"))
        return _POOL[1]


def _groups(indexes: list[int], uoffsets: Sequence[int], size: int) -> list[list[int]]:
    """Split consecutive block indexes into runs covering about `size` inflated bytes each."""
    groups: list[list[int]] = []
    for i in indexes:
        if groups and uoffsets[i] - uoffsets[groups[-1][0]] < size and groups[-1][-1] == i - 1:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _block_end(bf: BgzfFastaFile, index: int) -> int:
    return bf.coffsets[index + 1] if index + 1 < len(bf.coffsets) else bf.size


def _inflate_run_whole(bf: BgzfFastaFile, indexes: list[int], raw: memoryview) -> bytes | None:
    """Inflate consecutive blocks in one call (a run of BGZF blocks is a multi-member gzip
    stream; igzip checks each member's CRC and size, with the GIL released). None if anything
    is off: the caller then goes block by block to name the damaged one."""
    if not _run_headers_agree(bf, indexes, raw):
        return None
    try:
        data = igzip.decompress(raw)
    except (OSError, ValueError, EOFError, isal_zlib.error):  # type: ignore[misc]  # isal stub
        return None
    last = indexes[-1]
    if last + 1 < len(bf.uoffsets) and len(data) != bf.uoffsets[last + 1] - bf.uoffsets[indexes[0]]:
        return None
    return data


def _inflate_run(bf: BgzfFastaFile, indexes: list[int], raw: memoryview) -> dict[int, bytes] | None:
    """:func:`_inflate_run_whole`, split at the .gzi's block starts."""
    data = _inflate_run_whole(bf, indexes, raw)
    if data is None:
        return None
    u0 = bf.uoffsets[indexes[0]]
    bounds = [bf.uoffsets[i] - u0 for i in indexes] + [len(data)]
    return {i: data[bounds[k] : bounds[k + 1]] for k, i in enumerate(indexes)}


def _run_headers_agree(bf: BgzfFastaFile, indexes: list[int], raw: memoryview) -> bool:
    """Every block of the run starts with a BGZF header whose BSIZE spans it exactly, as htslib
    needs (a gzip reader would inflate past a damaged BSIZE without noticing)."""
    c0 = bf.coffsets[indexes[0]]
    for i in indexes:
        at = bf.coffsets[i] - c0
        length = _block_end(bf, i) - bf.coffsets[i]
        try:
            bsize = block_size(raw[at : at + 18])
        except ValueError:
            return False
        if bsize != length and not (i + 1 == len(bf.coffsets) and bsize < length):
            return False  # only the file's last block may be followed by more (the EOF block)
    return True


def block_size(head: bytes | memoryview) -> int:
    """The total size of the BGZF block whose header `head` starts (its BSIZE field + 1)."""
    if len(head) < 18 or head[:4] != b"\x1f\x8b\x08\x04" or head[10:16] != b"\x06\x00BC\x02\x00":
        raise ValueError("not a BGZF block header")
    return head[16] + 256 * head[17] + 1


def _ascii(residues: Inflated | np.ndarray, path: str) -> str:
    try:
        return str(residues, "ascii")  # type: ignore[arg-type]  # arrays are buffers
    except UnicodeDecodeError as exc:
        raise CorruptFileError(f"{path}: a byte that is not ASCII in sequence data") from exc


def _copy_residues(
    out: np.ndarray,
    start: int,
    entry: FaiEntry,
    data: Inflated,
    dstart: int,
    a: int,
    b: int,
    ascii_only: bool = False,
) -> int:
    """Copy the residues among uncompressed bytes [a, b) to their place in `out` (whose first
    element is residue `start`); `data` holds the bytes from offset `dstart`. Returns how many.

    Whole lines go as one strided numpy copy (no per-line Python, GIL released); every line's
    terminator is checked, so a file that does not follow its .fai raises ValueError.
    """
    lb, lw = entry.line_bases, entry.line_width
    src = np.frombuffer(data, dtype=np.uint8)[a - dstart : b - dstart]
    if len(src) != b - a:
        raise ValueError(f"{len(src)} bytes where {b - a} were expected")
    if ascii_only and len(src) and int(src.max()) >= 128:
        raise ValueError("a byte that is not ASCII")
    pos = first = entry.residues_before(a) - start
    i = 0
    column = (a - entry.offset) % lw
    if column:  # the end of a line begun before `a`
        i = min(lw - column, len(src))
        k = max(0, min(lb - column, i))
        out[pos : pos + k] = src[:k]
        pos += k
    full = (len(src) - i) // lw
    if full:
        lines = src[i : i + full * lw].reshape(full, lw)
        if lw > lb and not (lines[:, lw - 1] == 10).all():
            raise ValueError(f"a line is not {lb} residues long")
        out[pos : pos + full * lb].reshape(full, lb)[:] = lines[:, :lb]
        pos += full * lb
        i += full * lw
    if i < len(src):  # the start of a line that goes on past `b`
        k = min(len(src) - i, lb)
        out[pos : pos + k] = src[i : i + k]
        pos += k
    return pos - first


class RandomAccess(Protocol):
    """What the reader needs of an open sequence file."""

    @property
    def size(self) -> int: ...

    def pread(self, offset: int, size: int, ahead_end: int | None = None) -> bytes:
        """`ahead_end`: where the data the reader is after ends (its record's last block),
        so a remote file reads no further ahead than that."""
        ...


class FileOpener(Protocol):
    """Where sequence files come from: the one seam between the reader and storage.

    `LocalFiles` opens paths on disk; a published snapshot read in place supplies one whose
    files are RemoteFiles (seqrepofs.lazy.snapshot). A file that is not there raises
    FileNotFoundError (with its name), as a local one does.
    """

    def open(self, path: str) -> RandomAccess: ...

    def read_whole(self, path: str) -> bytes: ...

    def read_wholes(self, paths: Sequence[str]) -> list[bytes]:
        """Several small files whole (a file's .fai and .gzi): a remote opener fetches them at
        once rather than one round trip after the other."""
        ...

    def size(self, path: str) -> int: ...


class _OpenFile:
    """An fd closed only when nobody uses it any more, so eviction never races a pread."""

    __slots__ = ("fd", "size")

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        self.size = os.fstat(self.fd).st_size

    def pread(self, offset: int, size: int, ahead_end: int | None = None) -> bytes:
        return os.pread(self.fd, size, offset)  # the kernel's read-ahead is its own

    def __del__(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


class LocalFiles:
    """Sequence files on a local (or mounted) filesystem."""

    def open(self, path: str) -> RandomAccess:
        return _OpenFile(path)

    def read_whole(self, path: str) -> bytes:
        with open(path, "rb") as fh:
            return fh.read()

    def read_wholes(self, paths: Sequence[str]) -> list[bytes]:
        return [self.read_whole(path) for path in paths]

    def size(self, path: str) -> int:
        return os.stat(path).st_size


LOCAL_FILES = LocalFiles()


class BgzfFastaFile:
    """A read-only view of one stored .fa.bgz with its .fai and .gzi (loaded once)."""

    def __init__(self, path: str, files: FileOpener = LOCAL_FILES) -> None:
        self.path = path
        try:
            fai, gzi = files.read_wholes([path + ".fai", path + ".gzi"])
            self.fai = parse_fai(fai, path + ".fai")
            self.coffsets, self.uoffsets = parse_gzi(gzi, path + ".gzi")
        except FileNotFoundError as exc:
            raise CorruptFileError(f"{exc.filename}: index file is missing") from exc
        try:
            self.size = files.size(path)
        except FileNotFoundError as exc:
            raise CorruptFileError(f"{path}: sequence file is missing") from exc


class BlockReader:
    """Reads residue ranges from BGZF FASTA files; thread-safe, bounded caches.

    `fd_cache_size` bounds open files (0: open per read), `block_cache_bytes` bounds inflated
    blocks kept in memory, so sequential readers inflate each block once.
    """

    def __init__(
        self, fd_cache_size: int | None, block_cache_bytes: int, files: FileOpener = LOCAL_FILES
    ) -> None:
        self._opener = files
        self._lock = threading.Lock()
        self._fd_cache_size = fd_cache_size
        self._files = LRU(max(fd_cache_size, 1) * 4 if fd_cache_size is not None else None)
        self._fds = None if fd_cache_size == 0 else LRU(fd_cache_size)
        # inflated blocks by (path, index), block prefixes by (path, ~index), short records'
        # residues by (path, name): one byte bound for all, blocks and prefixes dropped first
        self._blocks = LRU(max(block_cache_bytes, 1), getsizeof=_cached_size)
        self._inflight: dict[tuple[str, int], Future[dict[int, Inflated]]] = {}
        self._last_block: LRUCache[str, tuple[int, int]] = LRUCache(maxsize=1024)  # last, streak
        self._ahead: LRUCache[str, int] = LRUCache(maxsize=1024)
        self._last_record_block: dict[str, int] = {}  # see _record
        self._record_block_reads = 0  # blocks short-record reads needed (decayed), and how
        self._record_block_hits = 0  # many were cached: is caching theirs worth it?

    def file(self, path: str) -> BgzfFastaFile:
        bf = self._files.get(path)
        if bf is None:
            bf = BgzfFastaFile(path, self._opener)
            self._files.put(path, bf)
        return bf

    def indexed_entry(self, path: str, name: str) -> FaiEntry | None:
        """Record `name`'s .fai entry if `path` is open and its .fai has it parsed already (every
        row once bulk-indexed); no I/O, no scan."""
        bf = self._files.get(path)
        return None if bf is None else bf.fai.indexed(name)

    def _open(self, path: str) -> RandomAccess:
        if self._fds is None:
            return self._opener.open(path)
        of = self._fds.get(path)
        if of is None:
            of = self._opener.open(path)
            self._fds.put(path, of)
        return of

    def block(
        self, bf: BgzfFastaFile, index: int, cache: bool = True, need: int | None = None
    ) -> Inflated:
        """The inflated block, from the cache, from a prefetch in flight, or inflated now.

        `need`: the caller wants only the block's first `need` bytes; if they lie in its first
        half, a prefix of the block may be returned (see `_prefix`)."""
        key = (bf.path, index)
        data = self._blocks.get(key)
        if data is not None:
            return data
        pending = None
        if self._inflight:  # else no prefetch can hold it (one started now: inflated twice)
            with self._lock:
                data = self._blocks.get(key)  # a prefetch may have finished meanwhile
                pending = self._inflight.get(key) if data is None else None
            if data is not None:
                return data
        if pending is None and need is not None and index + 1 < len(bf.uoffsets):
            full = bf.uoffsets[index + 1] - bf.uoffsets[index]
            if need <= full * PREFIX_MAX_FRACTION:
                return self._prefix(bf, index, need, full, cache)
        if pending is not None:
            if not pending.done() and not waiting_allowed():
                raise WouldWait(bf.path)
            data = pending.result().get(index)  # a failed prefetch leaves it out: retry below
            if data is not None:
                return data
        raw, base = self._read_compressed(bf, index, index)
        data = self._inflate_block(bf, index, raw, base)
        if cache:
            self._blocks.put(key, data, low=True)
            if (bf.path, ~index) in self._blocks:
                self._blocks.pop((bf.path, ~index))  # a prefix of it is of no more use
        return data

    def _prefetch(
        self, bf: BgzfFastaFile, first: int, last: int, record_end: int, starts: bool = False
    ) -> None:
        """After a run of sequential reads, or one long read from a record's start (`starts`),
        inflate the next megabytes on other cores ahead of need, up to the block holding byte
        `record_end - 1` of the record being read (the file's next record is not what the
        reader asked for). Random readers (samtools faidx asks 64 KB per region) never
        trigger it."""
        uoffsets = bf.uoffsets
        with self._lock:
            previous, streak = self._last_block.get(bf.path, (-1, 0))
            follows = previous >= 0 and 0 <= uoffsets[first] - uoffsets[previous] <= STREAM_GAP
            streak = STREAM_STREAK if starts else streak + 1 if follows else 0
            self._last_block[bf.path] = (last, streak)
            if streak < STREAM_STREAK:
                return
            stop = bisect.bisect_left(uoffsets, uoffsets[last] + PREFETCH_BYTES, lo=last + 1)
            stop = min(stop, bisect.bisect_left(uoffsets, record_end, lo=last + 1))
            ahead = self._ahead.get(bf.path, -1)  # submitted already, up to this block
            begin = max(last + 1, ahead + 1) if ahead <= stop else last + 1
            wanted = [
                i
                for i in range(begin, stop)
                if (bf.path, i) not in self._blocks and (bf.path, i) not in self._inflight
            ]
            self._ahead[bf.path] = stop - 1
            for group in _groups(wanted, uoffsets, GROUP_BYTES):
                fut = _pool().submit(self._inflate_group, bf, group, True, True, record_end)
                for i in group:
                    self._inflight[(bf.path, i)] = fut

    def _inflate_group(
        self,
        bf: BgzfFastaFile,
        indexes: list[int],
        cache: bool,
        lenient: bool = False,
        record_end: int | None = None,
    ) -> dict[int, Inflated]:
        """Inflate consecutive blocks read with one pread; `lenient` (prefetch) stops at the
        first damaged or unreadable block (a snapshot URL's server down) instead of raising,
        so only a reader that needs it sees the error."""
        out: dict[int, Inflated] = {}
        try:
            try:
                raw, base = self._read_compressed(bf, indexes[0], indexes[-1], record_end)
                whole = _inflate_run(bf, indexes, raw) if len(indexes) > SHORT_RUN_BLOCKS else None
                if whole is not None:
                    out.update(whole)
                else:  # a short run, or a damaged one: block by block, naming the bad one
                    for i in indexes:
                        out[i] = self._inflate_block(bf, i, raw, base)
            except SeqRepoError:  # damaged, or (a snapshot URL) not fetched: a reader that
                if not lenient:  # needs these blocks reads them itself and sees why
                    raise
            if cache:
                for i, data in out.items():
                    self._blocks.put((bf.path, i), data, low=True)
            return out
        finally:
            if lenient:
                with self._lock:
                    for i in indexes:
                        self._inflight.pop((bf.path, i), None)

    def _read_compressed(
        self, bf: BgzfFastaFile, first: int, last: int, record_end: int | None = None
    ) -> tuple[memoryview, int]:
        """Compressed bytes of blocks first..last (one pread) and the file offset they start at.
        `record_end`: the end (uncompressed) of the record being read, past which a remote file
        need not read ahead."""
        start = bf.coffsets[first]
        end = bf.coffsets[last + 1] if last + 1 < len(bf.coffsets) else bf.size
        ahead_end = None
        if record_end is not None:
            j = bisect.bisect_right(bf.uoffsets, record_end - 1)
            ahead_end = bf.coffsets[j] if j < len(bf.coffsets) else bf.size
        try:
            of = self._open(bf.path)
        except FileNotFoundError as exc:
            raise CorruptFileError(f"{bf.path}: sequence file is missing") from exc
        if end > of.size:
            bad = next(i for i in range(first, last + 1) if _block_end(bf, i) > of.size)
            where = "starts" if bf.coffsets[bad] >= of.size else "ends"
            at = bf.coffsets[bad] if where == "starts" else _block_end(bf, bad)
            raise CorruptFileError(
                f"{bf.path}: truncated: block {bad} {where} at byte {at}"
                f" but the file has {of.size} bytes"
            )
        try:
            raw = of.pread(start, end - start, ahead_end)
        except OSError as exc:
            raise CorruptFileError(f"{bf.path}: cannot read block {first}: {exc}") from exc
        if len(raw) != end - start:
            raise CorruptFileError(f"{bf.path}: truncated while reading block {first}")
        return memoryview(raw), start

    def _prefix(self, bf: BgzfFastaFile, index: int, need: int, full: int, cache: bool) -> bytes:
        """At least the first `need` bytes of block `index` (of `full` bytes), from the cache's
        prefix of that block or inflated only that far now.

        A prefix is checked as far as it goes (the deflate stream must be valid up to there and
        yield the bytes asked for) but not against the block's CRC32, which covers the whole
        block: reads that go further, whole-block and multi-block reads, prefetching and
        `seqrepofs check` inflate whole blocks and check it."""
        pkey = (bf.path, ~index)  # a negative index: a prefix, never taken for a whole block
        data = self._blocks.get(pkey)
        if data is not None and len(data) >= need:
            return data
        length = min(full, -(-need // PREFIX_ROUND) * PREFIX_ROUND)
        raw, base = self._read_compressed(bf, index, index)
        start = bf.coffsets[index]
        try:
            bsize = block_size(raw[:18])
            if bsize > len(raw):
                raise ValueError(f"block size {bsize} runs past the next block")
            data = zlib.decompressobj(-15).decompress(raw[18 : bsize - 8], length)
        except ValueError as exc:
            raise CorruptFileError(
                f"{bf.path}: damaged BGZF block {index} at byte {start}: {exc}"
            ) from exc
        except zlib.error as exc:
            raise CorruptFileError(
                f"{bf.path}: BGZF block {index} at byte {start} does not inflate ({exc})"
            ) from exc
        if len(data) != length:
            raise CorruptFileError(
                f"{bf.path}: BGZF block {index} at byte {start} inflates to {len(data)} bytes;"
                f" the .gzi says {full}"
            )
        if cache:
            self._blocks.put(pkey, data, low=True)
        return data

    def _inflate_block(self, bf: BgzfFastaFile, index: int, raw: memoryview, base: int) -> Inflated:
        """Inflate one block of `raw`; ISA-L checks the block's CRC32 and size (on our 16 KB
        blocks 27 µs against libdeflate's 34, measured at 1 M sequences)."""
        start = bf.coffsets[index]
        block = raw[start - base : _block_end(bf, index) - base]
        try:
            bsize = block_size(block[:18])
            if bsize > len(block):
                raise ValueError(f"block size {bsize} runs past the next block")
            return igzip_lib.decompress(block[:bsize], igzip_lib.DECOMP_GZIP)
        except ValueError as exc:
            raise CorruptFileError(
                f"{bf.path}: damaged BGZF block {index} at byte {start}: {exc}"
            ) from exc
        except (igzip_lib.IsalError, EOFError) as exc:  # type: ignore[misc]  # isal stub
            raise CorruptFileError(
                f"{bf.path}: BGZF block {index} at byte {start} does not inflate or fails its"
                " CRC/size check"
            ) from exc

    def fetch_cached(self, path: str, name: str, start: int, end: int) -> bytes | np.ndarray | None:
        """The residues (a uint8 array) if every block needed is already inflated, else None;
        never blocks.

        Lets an event loop (the FUSE daemon's) answer reads that prefetching already served
        without a thread hop.
        """
        if end <= start:
            return b""
        record = self._blocks.get((path, name))
        if record is not None and end <= len(record):
            return record[start:end]
        bf = self._files.get(path)
        entry = bf.fai.get(name) if bf is not None else None
        if bf is None or entry is None or end > entry.length:
            return None
        ufirst, uend = entry.byte_range(start, end)
        first = bisect.bisect_right(bf.uoffsets, ufirst) - 1
        last = bisect.bisect_right(bf.uoffsets, uend - 1) - 1
        pieces = []
        for i in range(first, last + 1):
            data = self._blocks.get((bf.path, i))
            if data is None:
                return None
            pieces.append((i, data))
        # One join and one strided copy: numpy's per-call cost exceeds a 16 KB block's work.
        data = b"".join([d for _i, d in pieces]) if len(pieces) > 1 else pieces[0][1]
        dstart = bf.uoffsets[first]
        out = np.empty(end - start, dtype=np.uint8)
        try:
            filled = _copy_residues(out, start, entry, data, dstart, ufirst, uend)
        except ValueError:
            return None  # let the full path diagnose it
        if filled != end - start:
            return None
        if uend - ufirst >= STREAM_MIN_BYTES:
            self._prefetch(bf, first, last, entry.end_offset)
        return out

    @overload
    def fetch(
        self, path: str, name: str, start: int, end: int, as_str: Literal[False] = ...
    ) -> bytes: ...
    @overload
    def fetch(self, path: str, name: str, start: int, end: int, as_str: Literal[True]) -> str: ...
    @overload
    def fetch(self, path: str, name: str, start: int, end: int, as_str: bool) -> bytes | str: ...

    def fetch(
        self, path: str, name: str, start: int, end: int, as_str: bool = False
    ) -> bytes | str:
        """Residues [start, end) of record `name` (already clipped to its length).

        Long ranges are inflated on all cores straight into one output buffer (and not cached
        if they would fill the cache); short sequential reads prefetch the blocks that follow.
        `as_str` decodes to a str without another whole-length copy of the bytes.
        """
        if end <= start:
            return "" if as_str else b""
        record = self._blocks.get((path, name))
        if record is not None and end <= len(record):
            return _ascii(record[start:end], path) if as_str else record[start:end]
        bf = self._files.get(path) or self.file(path)
        entry = bf.fai.get(name)
        if entry is None:
            raise CorruptFileError(f"{path}.fai: has no record {name}")
        if end > entry.length:
            raise CorruptFileError(f"{path}: .fai says {name} has {entry.length} residues")
        if entry.length <= RECORD_MAX_RESIDUES:
            record = self._record(bf, entry, end)
            return _ascii(record[start:end], path) if as_str else record[start:end]
        ufirst, uend = entry.byte_range(start, end)
        first = bisect.bisect_right(bf.uoffsets, ufirst) - 1
        last = bisect.bisect_right(bf.uoffsets, uend - 1) - 1
        if uend - ufirst >= PARALLEL_MIN_BYTES:
            if not waiting_allowed():  # its blocks are read on the inflate threads
                raise WouldWait(path)
            return self._fetch_parallel(bf, entry, start, end, ufirst, uend, first, last, as_str)
        crlf = entry.line_width - entry.line_bases > 1
        stream = uend - ufirst >= STREAM_MIN_BYTES  # a streaming reader, e.g. a FUSE `cat`: the
        # blocks after this read start inflating on other cores while this one's do here
        starts = start == 0 and uend - ufirst >= STREAM_START_BYTES
        early = stream and waiting_allowed()  # else only once this read did not raise WouldWait
        if early:
            self._prefetch(bf, first, last, entry.end_offset, starts)
        if first == last:  # most reads: one block, no join
            seq: Inflated = self._residues(bf, ufirst, uend, first, crlf)
        else:
            blocks = range(first, last + 1)
            # blocks a prefetch is inflating are waited for in _residues, not inflated twice
            missing = [
                i
                for i in blocks
                if (bf.path, i) not in self._blocks and (bf.path, i) not in self._inflight
            ]
            if len(missing) > 1:  # one pread per run of missing blocks (one inflate if long)
                for run in _groups(missing, bf.uoffsets, PARALLEL_MIN_BYTES):
                    self._inflate_group(bf, run, cache=True, record_end=entry.end_offset)
            seq = b"".join([self._residues(bf, ufirst, uend, i, crlf) for i in blocks])
        if len(seq) != end - start:
            raise CorruptFileError(
                f"{path}: {name}:{start}-{end} read {len(seq)} residues; file or index damaged"
            )
        if stream and not early:
            self._prefetch(bf, first, last, entry.end_offset, starts)
        if as_str:
            return _ascii(seq, path)
        return seq if type(seq) is bytes else bytes(seq)

    def _record(self, bf: BgzfFastaFile, entry: FaiEntry, end: int) -> bytes:
        """A short record's residues from its first, at least to `end`: as far as the blocks
        inflated for them go (see RECORD_MAX_RESIDUES), cached as one entry, so a later read
        within them is one slice.

        The blocks are inflated only as far as needed, unless reads follow each other through
        the file (records read back in load order): then the next record is in the same block,
        so the whole block is inflated. Blocks are cached too, but dropped before any record
        (`LRU` put with low=True): a random reader of a large repository touches more blocks
        than the cache holds, and would otherwise lose the records to them."""
        _name, length, ufirst, lb, lw = entry
        lines, column = divmod(end - 1, lb)
        uneed = ufirst + lines * lw + column + 1  # just past residue end - 1
        lines, column = divmod(length - 1, lb)
        urecord_end = ufirst + lines * lw + column + 1
        uoffsets = bf.uoffsets
        first = bisect.bisect_right(uoffsets, ufirst) - 1
        last = bisect.bisect_right(uoffsets, uneed - 1) - 1
        # no lock: a race between two readers of one file at worst mis-guesses `keep`
        previous = self._last_record_block.get(bf.path, -2)
        if len(self._last_record_block) >= 1024:
            self._last_record_block.clear()
        self._last_record_block[bf.path] = last
        keep = previous <= first <= previous + 1
        pieces = []
        for i in range(first, last + 1):
            bstart = uoffsets[i]
            data = self._blocks.get((bf.path, i))
            self._record_block_reads += 1
            if data is not None:
                self._record_block_hits += 1
            elif keep:
                data = self.block(bf, i)
            else:
                data = self.block(bf, i, self._blocks_worth_caching(), uneed - bstart)
            pieces.append(data[max(ufirst - bstart, 0) : urecord_end - bstart])
        text = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        whole = uoffsets[last] + len(data) >= urecord_end
        seq = text.replace(b"\n", b"")
        if lw - lb > 1:
            seq = seq.replace(b"\r", b"")
        if (len(seq) != length) if whole else (len(seq) < end or len(seq) > length):
            raise CorruptFileError(
                f"{bf.path}: {entry.name} read {len(seq)} residues where the .fai says"
                f" {length}; file or index damaged"
            )
        record = seq if type(seq) is bytes else bytes(seq)
        self._blocks.put((bf.path, entry.name), record)
        return record

    def _blocks_worth_caching(self) -> bool:
        """Whether a short-record read should cache the block it inflated: while the cache has
        room, then while at least 1 in RECORD_BLOCK_HIT_RATE of such reads found their block
        cached (and 1 miss in that many regardless, to notice a change). Caching a block in a
        full cache costs ~2 µs (insert, evict), a hit saves ~20 (read, inflate): random reads
        of the 100 k instance hit 20–30% of the time, of the 1 M one 3%."""
        blocks = self._blocks
        if blocks.maxsize is None or blocks.currsize + BLOCK_DATA_SIZE < blocks.maxsize:
            return True
        reads, hits = self._record_block_reads, self._record_block_hits
        if reads >= 4096:  # decay: what the last few thousand reads did
            self._record_block_reads, self._record_block_hits = reads // 2, hits // 2
        return hits * RECORD_BLOCK_HIT_RATE >= reads or reads % RECORD_BLOCK_HIT_RATE == 0

    def _residues(
        self, bf: BgzfFastaFile, ufirst: int, uend: int, i: int, crlf: bool = False
    ) -> Inflated:
        """The residues block `i` holds of the byte range [ufirst, uend), newlines removed."""
        bstart = bf.uoffsets[i]
        data = self._blocks.get((bf.path, i)) or self.block(bf, i, need=uend - bstart)
        if not data:
            raise CorruptFileError(f"{bf.path}: empty BGZF block {i} inside the data")
        text = data[max(ufirst - bstart, 0) : uend - bstart].replace(b"\n", b"")
        return text.replace(b"\r", b"") if crlf else text

    def _fetch_parallel(
        self,
        bf: BgzfFastaFile,
        entry: FaiEntry,
        start: int,
        end: int,
        ufirst: int,
        uend: int,
        first: int,
        last: int,
        as_str: bool,
    ) -> str | bytes:
        """Fill one buffer of end - start residues from runs of blocks on every core.

        Each run's place in the output follows from the record's fixed line layout, so runs
        need nothing from each other. The buffer is np.empty, not a zeroed bytearray: its pages
        are first touched by the copies, on both cores; a str result is filled in place (see
        ascii_str) rather than decoded from a second buffer. Long reads bypass the block cache (one
        chromosome would flush it); streaming readers are served by prefetching instead.
        """
        made = new_ascii(end - start) if as_str else None  # a str filled in place
        out = made[1] if made else np.empty(end - start, dtype=np.uint8)
        groups = _groups(list(range(first, last + 1)), bf.uoffsets, PARALLEL_GROUP_BYTES)
        fill = functools.partial(self._fill, bf, entry, start, ufirst, uend, out, bool(made))
        filled = sum(_pool().map(fill, groups))
        if filled != end - start:
            raise CorruptFileError(
                f"{bf.path}: {entry.name}:{start}-{end} read {filled} residues;"
                " file or index damaged"
            )
        if made:
            return made[0]
        return _ascii(out, bf.path) if as_str else out.tobytes()

    def _fill(
        self,
        bf: BgzfFastaFile,
        entry: FaiEntry,
        start: int,
        ufirst: int,
        uend: int,
        out: np.ndarray,
        ascii_only: bool,
        group: list[int],
    ) -> int:
        """Inflate a run of blocks in one call (a run of BGZF blocks is a multi-member gzip
        stream, each member's CRC checked) and copy its residues into place."""
        raw, base = self._read_compressed(bf, group[0], group[-1], entry.end_offset)
        gstart = bf.uoffsets[group[0]]
        data: Inflated | None = _inflate_run_whole(bf, group, raw) if len(group) > 1 else None
        if data is None:  # one block, or a damaged run: block by block, naming the bad one
            data = b"".join([self._inflate_block(bf, i, raw, base) for i in group])
        gend = gstart + len(data)
        if group[-1] + 1 < len(bf.uoffsets) and gend != bf.uoffsets[group[-1] + 1]:
            raise CorruptFileError(
                f"{bf.path}: blocks {group[0]}-{group[-1]} inflate to {len(data)} bytes;"
                " the .gzi says otherwise"
            )
        a, b = max(ufirst, gstart), min(uend, gend)
        try:
            return _copy_residues(out, start, entry, data, gstart, a, b, ascii_only)
        except ValueError as exc:
            raise CorruptFileError(
                f"{bf.path}: blocks {group[0]}-{group[-1]} do not fit the line layout .fai"
                f" gives {entry.name} ({exc})"
            ) from exc

    def drop(self, path: str) -> None:
        """Forget a file (e.g. after a damaged read), so a repaired file is read afresh."""
        self._files.pop(path)
        if self._fds is not None:
            self._fds.pop(path)
        with self._lock:
            self._last_block.pop(path, None)
            self._ahead.pop(path, None)
