"""Writing BGZF FASTA files: records wrapped at 100 columns, deflated on a thread pool.

Why our own writer rather than pysam's BGZFile: that compresses on one core with zlib (about
60 MB/s here). Blocks here are deflated by ISA-L on a thread pool and written in order, and the
.fai and .gzi are computed on the way, so a file is never read back to index it.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
from isal import isal_zlib

from .bgzf import BLOCK_DATA_SIZE, EOF_BLOCK
from .fai import FaiEntry

# We write blocks a quarter of the BGZF maximum: a random 100-bp read inflates 16 KB instead of
# 64 KB (3.6x less work, measured), for files about 1% larger. Any BGZF reader takes them.
WRITE_BLOCK_SIZE = BLOCK_DATA_SIZE // 4
LINE_WIDTH = 100  # residues per line in stored files, as the reference writes them
_SMALL_RECORD = 3000  # residues up to which bytes.join beats numpy (measured)
_HEADER = struct.Struct("<4BI2BH2BHH")  # ID1 ID2 CM FLG MTIME XFL OS XLEN SI1 SI2 SLEN BSIZE
_TRAILER = struct.Struct("<II")  # CRC32, ISIZE
_BLOCKS_PER_TASK = 4  # blocks deflated per writer task


def _deflate_blocks(blocks: list[bytes], level: int) -> list[bytes]:
    return [_deflate_block(b, level) for b in blocks]


def _deflate_block(data: bytes, level: int) -> bytes:
    comp = isal_zlib.compress(data, level, -15)
    bsize = len(comp) + 25  # header 18 + trailer 8, minus 1
    if bsize > 0xFFFF:  # incompressible data: store it uncompressed (level 0)
        comp = isal_zlib.compress(data, 0, -15)
        bsize = len(comp) + 25
    header = _HEADER.pack(0x1F, 0x8B, 8, 4, 0, 0, 0xFF, 6, 66, 67, 2, bsize)
    return header + comp + _TRAILER.pack(isal_zlib.crc32(data), len(data))


class BgzfFastaWriter:
    """Write FASTA records (100-column lines) to a BGZF file and compute its .fai and .gzi.

    Compression runs on a thread pool; blocks are written in order. The caller decides the final
    names: :meth:`close` writes the three files and returns, it does not rename.
    """

    def __init__(
        self, path: str, level: int = 1, threads: int = 2, block_size: int = WRITE_BLOCK_SIZE
    ) -> None:
        if not 0 < block_size <= BLOCK_DATA_SIZE:
            raise ValueError(f"BGZF block size must be 1..{BLOCK_DATA_SIZE}, not {block_size}")
        self.path = path
        self._block_size = block_size
        self._fh = open(path, "xb")  # noqa: SIM115 - closed in close()
        self._level = level
        self._pool = ThreadPoolExecutor(max_workers=max(1, threads))
        self._pending: list[Future[list[bytes]]] = []
        self._batch: list[bytes] = []
        self._written = 0  # blocks whose compressed bytes are in the file
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

    def add(self, name: str, seq: bytes | bytearray) -> None:
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
        size = self._block_size
        if len(self._buf) >= size:
            n = len(self._buf) // size * size
            whole = bytes(self._buf[:n])
            del self._buf[:n]
            for i in range(0, n, size):
                self._queue(whole[i : i + size])

    def _queue(self, block: bytes) -> None:
        self._block_starts.append((-1, self._ustart_next))
        self._ustart_next += len(block)
        self._batch.append(block)
        if len(self._batch) >= _BLOCKS_PER_TASK:
            self._submit()

    def _submit(self) -> None:
        """Hand the batched blocks to the pool (a few per task: futures cost more than 16 KB)."""
        if not self._batch:
            return
        self._pending.append(self._pool.submit(_deflate_blocks, self._batch, self._level))
        self._batch = []
        if len(self._pending) >= self._max_pending:
            self._drain(keep=self._max_pending // 2)

    def _drain(self, keep: int = 0) -> None:
        while len(self._pending) > keep:
            for comp in self._pending.pop(0).result():
                self._block_starts[self._written] = (
                    self._coffset,
                    self._block_starts[self._written][1],
                )
                self._written += 1
                self._fh.write(comp)
                self._coffset += len(comp)

    def close(self) -> tuple[bytes, bytes]:
        """Flush, fsync and close the BGZF file; return the .fai and .gzi contents."""
        if self._buf:
            self._queue(bytes(self._buf))
            self._buf.clear()
        self._submit()
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


def _wrapped_chunks(
    seq: bytes | bytearray, width: int, lines_per_chunk: int = 4096
) -> Iterator[bytes]:
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
