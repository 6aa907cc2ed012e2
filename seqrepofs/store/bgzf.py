"""BGZF sequence files: a parallel writer and a thread-safe, caching block reader.

Why our own code rather than pysam: pysam's BGZFile compresses on one core with zlib
(about 60 MB/s here) and a pysam FastaFile handle is not thread-safe, so the reference either
re-opens files on every fetch or serialises threads on a lock. Here blocks are deflated by ISA-L
(several hundred MB/s, GIL released) on a thread pool, and read with ``os.pread`` through an
index of block offsets (.gzi), with inflated blocks shared by all threads in one LRU cache.
The files are standard BGZF with standard .fai/.gzi indexes: htslib, pysam, samtools and
biocommons.seqrepo read them, which the tests check.
"""

from __future__ import annotations

import bisect
import functools
import os
import struct
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from cachetools import LRUCache
from isal import isal_zlib

from ..errors import CorruptFileError

BLOCK_DATA_SIZE = 0xFF00  # 65280, the uncompressed block size bgzip and htslib use
LINE_WIDTH = 100  # residues per line in stored files, as the reference writes them
_SMALL_RECORD = 3000  # residues up to which bytes.join beats numpy (measured)
EOF_BLOCK = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
_HEADER = struct.Struct("<4BI2BH2BHH")  # ID1 ID2 CM FLG MTIME XFL OS XLEN SI1 SI2 SLEN BSIZE
_TRAILER = struct.Struct("<II")  # CRC32, ISIZE
PARALLEL_MIN_BLOCKS = 8  # ranges spanning this many blocks are inflated on all cores
PREFETCH_BLOCKS = 16  # blocks inflated ahead of a sequential reader (about 1 MiB)

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


def _deflate_block(data: bytes, level: int) -> bytes:
    comp = isal_zlib.compress(data, level, -15)
    bsize = len(comp) + 25  # header 18 + trailer 8, minus 1
    if bsize > 0xFFFF:  # incompressible data: store it uncompressed (level 0)
        comp = isal_zlib.compress(data, 0, -15)
        bsize = len(comp) + 25
    header = _HEADER.pack(0x1F, 0x8B, 8, 4, 0, 0, 0xFF, 6, 66, 67, 2, bsize)
    return header + comp + _TRAILER.pack(isal_zlib.crc32(data), len(data))


@dataclass(frozen=True)
class FaiEntry:
    """One .fai row: where a record's residues start and how its lines are laid out."""

    name: str
    length: int
    offset: int
    line_bases: int
    line_width: int

    def row(self) -> str:
        return f"{self.name}\t{self.length}\t{self.offset}\t{self.line_bases}\t{self.line_width}\n"

    def byte_range(self, start: int, end: int) -> tuple[int, int]:
        """Uncompressed byte range holding residues [start, end) (end > start)."""
        lb, lw = self.line_bases, self.line_width
        first = self.offset + (start // lb) * lw + start % lb
        last = self.offset + ((end - 1) // lb) * lw + (end - 1) % lb
        return first, last + 1


class BgzfFastaWriter:
    """Write FASTA records (100-column lines) to a BGZF file and compute its .fai and .gzi.

    Compression runs on a thread pool; blocks are written in order. The caller decides the final
    names: :meth:`close` writes the three files and returns, it does not rename.
    """

    def __init__(self, path: str, level: int = 1, threads: int = 2) -> None:
        self.path = path
        self._fh = open(path, "xb")  # noqa: SIM115 - closed in close()
        self._level = level
        self._pool = ThreadPoolExecutor(max_workers=max(1, threads))
        self._pending: list[Future[bytes]] = []
        self._max_pending = max(4, 4 * threads)
        self._buf = bytearray()
        self._uoffset = 0  # uncompressed bytes handed to blocks so far (incl. buffered)
        self._coffset = 0
        self._block_starts: list[tuple[int, int]] = []  # (compressed, uncompressed) per block
        self._ustart_next = 0
        self.fai: list[FaiEntry] = []
        self._names: set[str] = set()

    def __contains__(self, name: str) -> bool:
        return name in self._names

    def add(self, name: str, seq: bytes) -> None:
        """Append one record; `seq` is the residues without newlines."""
        if name in self._names:
            return
        header = b">" + name.encode("ascii") + b"\n"
        self._write(header)
        offset = self._uoffset
        if seq:
            bases = min(len(seq), LINE_WIDTH)  # htslib takes the first line's length
            self.fai.append(FaiEntry(name, len(seq), offset, bases, bases + 1))
        if len(seq) <= _SMALL_RECORD:  # numpy's per-call overhead dominates short records
            lines = [seq[i : i + LINE_WIDTH] for i in range(0, len(seq), LINE_WIDTH)]
            self._write(b"\n".join(lines) + b"\n" if lines else b"")
        else:
            for chunk in _wrapped_chunks(seq, LINE_WIDTH):
                self._write(chunk)
        self._names.add(name)

    def _write(self, data: bytes | memoryview) -> None:
        self._buf += data
        self._uoffset += len(data)
        while len(self._buf) >= BLOCK_DATA_SIZE:
            block = bytes(self._buf[:BLOCK_DATA_SIZE])
            del self._buf[:BLOCK_DATA_SIZE]
            self._submit(block)

    def _submit(self, block: bytes) -> None:
        self._block_starts.append((-1, self._ustart_next))
        self._ustart_next += len(block)
        self._pending.append(self._pool.submit(_deflate_block, block, self._level))
        if len(self._pending) >= self._max_pending:
            self._drain(keep=self._max_pending // 2)

    def _drain(self, keep: int = 0) -> None:
        done = len(self._block_starts) - len(self._pending)
        while len(self._pending) > keep:
            comp = self._pending.pop(0).result()
            self._block_starts[done] = (self._coffset, self._block_starts[done][1])
            done += 1
            self._fh.write(comp)
            self._coffset += len(comp)

    def close(self) -> tuple[bytes, bytes]:
        """Flush, fsync and close the BGZF file; return the .fai and .gzi contents."""
        if self._buf:
            self._submit(bytes(self._buf))
            self._buf.clear()
        self._drain()
        self._pool.shutdown()
        self._fh.write(EOF_BLOCK)
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        fai = "".join(e.row() for e in self.fai).encode("ascii")
        pairs = self._block_starts[1:]
        gzi = struct.pack("<Q", len(pairs)) + b"".join(struct.pack("<QQ", c, u) for c, u in pairs)
        return fai, gzi

    def abort(self) -> None:
        self._pool.shutdown(cancel_futures=True)
        self._fh.close()


def _wrapped_chunks(seq: bytes, width: int, lines_per_chunk: int = 4096) -> Iterator[bytes]:
    """Yield `seq` as newline-terminated lines of `width`, a few thousand lines at a time."""
    step = width * lines_per_chunk
    view = memoryview(seq)
    for start in range(0, len(seq), step):
        piece = np.frombuffer(view[start : start + step], dtype=np.uint8)
        full = len(piece) // width
        out = np.empty((full, width + 1), dtype=np.uint8)
        out[:, :width] = piece[: full * width].reshape(full, width)
        out[:, width] = 10
        data = out.tobytes()
        rest = piece[full * width :]
        if len(rest):
            data += rest.tobytes() + b"\n"
        yield data


class FaiIndex:
    """A .fai, parsed lazily: a file can index tens of thousands of records and a reader
    usually needs a few, so rows are split once and each is parsed on first use."""

    def __init__(self, text: bytes, path: str) -> None:
        self.path = path
        self._rows: dict[str, bytes] = {}
        for row in text.split(b"\n"):
            name, sep, _rest = row.partition(b"\t")
            if sep:
                self._rows.setdefault(name.decode("ascii", "replace"), row)
            elif row.strip():
                raise CorruptFileError(f"{path}: malformed .fai line: {row[:80]!r}")
        self._parsed: dict[str, FaiEntry] = {}

    def get(self, name: str) -> FaiEntry | None:
        entry = self._parsed.get(name)
        if entry is None:
            row = self._rows.get(name)
            if row is None:
                return None
            fields = row.split(b"\t")
            try:
                length, offset, lb, lw = (int(f) for f in fields[1:5])
            except ValueError:
                raise CorruptFileError(f"{self.path}: malformed .fai line: {row[:80]!r}") from None
            if len(fields) < 5 or lb <= 0 or lw < lb:
                raise CorruptFileError(f"{self.path}: malformed .fai line: {row[:80]!r}")
            entry = self._parsed[name] = FaiEntry(name, length, offset, lb, lw)
        return entry

    def __getitem__(self, name: str) -> FaiEntry:
        entry = self.get(name)
        if entry is None:
            raise KeyError(name)
        return entry

    def __contains__(self, name: object) -> bool:
        return name in self._rows

    def __len__(self) -> int:
        return len(self._rows)

    def names(self) -> list[str]:
        return list(self._rows)


def parse_fai(text: bytes, path: str) -> FaiIndex:
    return FaiIndex(text, path)


def parse_gzi(data: bytes, path: str) -> tuple[list[int], list[int]]:
    """Return (compressed, uncompressed) block start offsets, including the implicit (0, 0)."""
    if len(data) < 8:
        raise CorruptFileError(f"{path}: truncated .gzi index")
    (count,) = struct.unpack_from("<Q", data)
    if len(data) != 8 + 16 * count:
        raise CorruptFileError(f"{path}: .gzi index has {len(data)} bytes for {count} entries")
    pairs = np.frombuffer(data, dtype="<u8", offset=8).reshape(count, 2) if count else None
    coffs = [0] + ([int(x) for x in pairs[:, 0]] if pairs is not None else [])
    uoffs = [0] + ([int(x) for x in pairs[:, 1]] if pairs is not None else [])
    return coffs, uoffs


class _OpenFile:
    """An fd closed only when nobody uses it any more, so eviction never races a pread."""

    __slots__ = ("fd", "size")

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        self.size = os.fstat(self.fd).st_size

    def __del__(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


class BgzfFastaFile:
    """A read-only view of one stored .fa.bgz with its .fai and .gzi (loaded once)."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            with open(path + ".fai", "rb") as fh:
                self.fai = parse_fai(fh.read(), path + ".fai")
            with open(path + ".gzi", "rb") as fh:
                self.coffsets, self.uoffsets = parse_gzi(fh.read(), path + ".gzi")
        except FileNotFoundError as exc:
            raise CorruptFileError(f"{exc.filename}: index file is missing") from exc
        try:
            self.size = os.stat(path).st_size
        except FileNotFoundError as exc:
            raise CorruptFileError(f"{path}: sequence file is missing") from exc


class BlockReader:
    """Reads residue ranges from BGZF FASTA files; thread-safe, bounded caches.

    `fd_cache_size` bounds open files (0: open per read), `block_cache_bytes` bounds inflated
    blocks kept in memory, so sequential readers inflate each block once.
    """

    def __init__(self, fd_cache_size: int | None, block_cache_bytes: int) -> None:
        self._lock = threading.Lock()
        self._fd_cache_size = fd_cache_size
        self._files: LRUCache[str, BgzfFastaFile] | dict[str, BgzfFastaFile] = (
            LRUCache(maxsize=max(fd_cache_size, 1) * 4) if fd_cache_size is not None else {}
        )
        self._fds: LRUCache[str, _OpenFile] | dict[str, _OpenFile] | None = (
            None
            if fd_cache_size == 0
            else (LRUCache(maxsize=fd_cache_size) if fd_cache_size is not None else {})
        )
        self._blocks: LRUCache[tuple[str, int], bytes] = LRUCache(
            maxsize=max(block_cache_bytes, 1), getsizeof=len
        )
        self._inflight: dict[tuple[str, int], Future[bytes]] = {}
        self._last_block: LRUCache[str, int] = LRUCache(maxsize=1024)

    def file(self, path: str) -> BgzfFastaFile:
        with self._lock:
            bf = self._files.get(path)
        if bf is None:
            bf = BgzfFastaFile(path)
            with self._lock:
                self._files[path] = bf
        return bf

    def _open(self, path: str) -> _OpenFile:
        if self._fds is None:
            return _OpenFile(path)
        with self._lock:
            of = self._fds.get(path)
        if of is None:
            of = _OpenFile(path)
            with self._lock:
                self._fds[path] = of
        return of

    def block(self, bf: BgzfFastaFile, index: int, cache: bool = True) -> bytes:
        """The inflated block, from the cache, from a prefetch in flight, or inflated now."""
        key = (bf.path, index)
        with self._lock:
            data = self._blocks.get(key)
            pending = self._inflight.get(key) if data is None else None
        if data is not None:
            return data
        if pending is not None:
            return pending.result()
        data = self._inflate(bf, index)
        if cache and len(data) <= self._blocks.maxsize:
            with self._lock:
                self._blocks[key] = data
        return data

    def _prefetch(self, bf: BgzfFastaFile, last: int) -> None:
        """After a sequential read, inflate the next blocks on other cores ahead of need."""
        with self._lock:
            previous = self._last_block.get(bf.path)
            self._last_block[bf.path] = last
            if previous is None or not previous <= last <= previous + 2:
                return
            wanted = [
                i
                for i in range(last + 1, min(last + 1 + PREFETCH_BLOCKS, len(bf.coffsets)))
                if (bf.path, i) not in self._blocks and (bf.path, i) not in self._inflight
            ]
            futures = {i: _pool().submit(self._inflate_into_cache, bf, i) for i in wanted}
            for i, fut in futures.items():
                self._inflight[(bf.path, i)] = fut

    def _inflate_into_cache(self, bf: BgzfFastaFile, index: int) -> bytes:
        key = (bf.path, index)
        try:
            data = self._inflate(bf, index)
            with self._lock:
                self._blocks[key] = data
            return data
        finally:
            with self._lock:
                self._inflight.pop(key, None)

    def _inflate(self, bf: BgzfFastaFile, index: int) -> bytes:
        start = bf.coffsets[index]
        end = bf.coffsets[index + 1] if index + 1 < len(bf.coffsets) else bf.size
        try:
            of = self._open(bf.path)
        except FileNotFoundError as exc:
            raise CorruptFileError(f"{bf.path}: sequence file is missing") from exc
        if end > of.size:
            where = "starts" if start >= of.size else "ends"
            raise CorruptFileError(
                f"{bf.path}: truncated: block {index} {where} at byte"
                f" {start if start >= of.size else end} but the file has {of.size} bytes"
            )
        try:
            raw = os.pread(of.fd, min(end, of.size) - start, start)
        except OSError as exc:
            raise CorruptFileError(f"{bf.path}: cannot read block {index}: {exc}") from exc
        try:
            *_, xlen, si1, si2, _slen, bsize = _HEADER.unpack_from(raw)
            if raw[:2] != b"\x1f\x8b" or (si1, si2) != (66, 67) or xlen != 6:
                raise ValueError("not a BGZF block header")
            crc, isize = _TRAILER.unpack_from(raw, bsize + 1 - 8)
            data = isal_zlib.decompress(raw[18 : bsize + 1 - 8], -15)
        except (struct.error, ValueError, isal_zlib.error) as exc:
            raise CorruptFileError(
                f"{bf.path}: damaged BGZF block {index} at byte {start}: {exc}"
            ) from exc
        if len(data) != isize or isal_zlib.crc32(data) != crc:
            raise CorruptFileError(
                f"{bf.path}: BGZF block {index} at byte {start} fails its CRC/size check"
            )
        return data

    def fetch_cached(self, path: str, name: str, start: int, end: int) -> bytes | None:
        """The residues if every block needed is already inflated, else None; never blocks.

        Lets an event loop (the FUSE daemon's) answer reads that prefetching already served
        without a thread hop.
        """
        if end <= start:
            return b""
        with self._lock:
            bf = self._files.get(path)
        entry = bf.fai.get(name) if bf is not None else None
        if bf is None or entry is None or end > entry.length:
            return None
        ufirst, uend = entry.byte_range(start, end)
        first = bisect.bisect_right(bf.uoffsets, ufirst) - 1
        last = bisect.bisect_right(bf.uoffsets, uend - 1) - 1
        pieces = []
        with self._lock:
            for i in range(first, last + 1):
                data = self._blocks.get((bf.path, i))
                if data is None:
                    return None
                pieces.append((i, data))
        out = []
        for i, data in pieces:
            bstart = bf.uoffsets[i]
            out.append(data[max(ufirst - bstart, 0) : uend - bstart].replace(b"\n", b""))
        seq = b"".join(out)
        if len(seq) != end - start:
            return None  # let the full path diagnose it
        if uend - ufirst >= BLOCK_DATA_SIZE // 2:
            self._prefetch(bf, last)
        return seq

    def fetch(self, path: str, name: str, start: int, end: int) -> bytes:
        """Residues [start, end) of record `name` (already clipped to its length).

        Long ranges are inflated on all cores (and not cached, so one chromosome read does not
        flush the cache); short sequential reads prefetch the blocks that follow.
        """
        if end <= start:
            return b""
        bf = self.file(path)
        entry = bf.fai.get(name)
        if entry is None:
            raise CorruptFileError(f"{path}: record {name} is not in its .fai index")
        if end > entry.length:
            raise CorruptFileError(f"{path}: .fai says {name} has {entry.length} residues")
        ufirst, uend = entry.byte_range(start, end)
        first = bisect.bisect_right(bf.uoffsets, ufirst) - 1
        last = bisect.bisect_right(bf.uoffsets, uend - 1) - 1
        blocks = range(first, last + 1)
        if len(blocks) >= PARALLEL_MIN_BLOCKS:
            cache = len(blocks) * BLOCK_DATA_SIZE * 2 <= self._blocks.maxsize
            piece = functools.partial(self._residues, bf, ufirst, uend, cache)
            pieces = list(_pool().map(piece, blocks))
        else:
            pieces = [self._residues(bf, ufirst, uend, True, i) for i in blocks]
            if uend - ufirst >= BLOCK_DATA_SIZE // 2:  # a streaming reader, e.g. a FUSE `cat`
                self._prefetch(bf, last)
        seq = b"".join(pieces) if len(pieces) > 1 else pieces[0]
        if len(seq) != end - start:
            raise CorruptFileError(
                f"{path}: {name}:{start}-{end} read {len(seq)} residues; file or index damaged"
            )
        return seq

    def _residues(self, bf: BgzfFastaFile, ufirst: int, uend: int, cache: bool, i: int) -> bytes:
        """The residues block `i` holds of the byte range [ufirst, uend), newlines removed."""
        data = self.block(bf, i, cache)
        bstart = bf.uoffsets[i]
        if not data:
            raise CorruptFileError(f"{bf.path}: empty BGZF block {i} inside the data")
        text = data[max(ufirst - bstart, 0) : uend - bstart]
        text = text.replace(b"\n", b"")
        return text.replace(b"\r", b"") if b"\r" in text else text

    def drop(self, path: str) -> None:
        """Forget a file (e.g. after a damaged read), so a repaired file is read afresh."""
        with self._lock:
            self._files.pop(path, None)
            self._last_block.pop(path, None)
            if self._fds is not None:
                self._fds.pop(path, None)
