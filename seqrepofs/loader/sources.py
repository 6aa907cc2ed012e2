"""Open a FASTA input (a path or `-` for stdin) as a stream of decompressed bytes.

The format is decided by magic bytes, never by the file name: plain text, gzip, BGZF (a gzip
variant, decompressed the same way), bzip2. Other compressed or archive formats get a clear
error instead of being parsed as garbage.
"""

from __future__ import annotations

import bz2
import io
import queue
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from isal import isal_zlib

from .errors import LoadError

STDIN = "-"
_MAGIC_LEN = 18
_UNSUPPORTED = {
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"PK\x03\x04": "zip",
    b"BAM\x01": "BAM",
}


@dataclass
class Source:
    """A decompressed input stream and what it was."""

    name: str  # the path as given, or "<stdin>"
    kind: str  # plain, gzip, bgzf or bzip2
    stream: BinaryIO
    _raw: BinaryIO

    def close(self) -> None:
        try:
            self.stream.close()
        finally:
            if self._raw is not sys.stdin.buffer:
                self._raw.close()


class _Prefixed(io.RawIOBase):
    """A non-seekable stream with bytes already read from it put back in front."""

    def __init__(self, prefix: bytes, rest: BinaryIO) -> None:
        self._prefix = prefix
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._prefix:
            n = min(len(buf), len(self._prefix))
            buf[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._rest.read(len(buf))
        buf[: len(data)] = data
        return len(data)


class GzipMembers:
    """Gzip data of any number of members (BGZF included) inflated by ISA-L, streaming.

    Why not `isal.igzip`: on a truncated file it raises before returning the data it did
    inflate, so the error could not name the record and line where the data stops. Here
    `read1` hands out every byte before raising EOFError.
    """

    def __init__(self, raw: BinaryIO, in_size: int = 1 << 18) -> None:
        self._raw = raw
        self._in_size = in_size
        self._d: Any = None  # the current member's decompressor; None between members
        self._buf = b""  # compressed bytes read but not yet inflated

    def read1(self, n: int) -> bytes:
        while True:
            if self._d is None:
                if not self._buf:
                    self._buf = self._raw.read(self._in_size)
                    if not self._buf:
                        return b""  # clean end, at a member boundary
                self._d = isal_zlib.decompressobj(31)
            out = self._d.decompress(self._buf, n)
            if self._d.eof:
                self._buf = self._d.unused_data
                self._d = None
            else:
                self._buf = self._d.unconsumed_tail
                if not self._buf:
                    self._buf = self._raw.read(self._in_size)
                    if not self._buf and not out:
                        raise EOFError(
                            "compressed file ended before the end-of-stream marker was reached"
                        )
            if out:
                return out

    read = read1

    def close(self) -> None:
        self._d = None


def detect(magic: bytes) -> str:
    """The format of data starting with `magic` (plain unless a known signature matches)."""
    if magic[:2] == b"\x1f\x8b":
        is_bgzf = len(magic) >= 16 and magic[3] & 4 and magic[12:14] == b"BC"
        return "bgzf" if is_bgzf else "gzip"
    if magic[:3] == b"BZh":
        return "bzip2"
    for sig, kind in _UNSUPPORTED.items():
        if magic.startswith(sig):
            return kind
    return "plain"


def _read_magic(fh: BinaryIO) -> bytes:
    magic = b""
    while len(magic) < _MAGIC_LEN:
        piece = fh.read(_MAGIC_LEN - len(magic))
        if not piece:
            break
        magic += piece
    return magic


def _open_file(path: str) -> BinaryIO:
    try:
        return open(path, "rb")  # noqa: SIM115 - closed by the caller
    except FileNotFoundError:
        raise LoadError("no such file", path=path) from None
    except IsADirectoryError:
        raise LoadError("is a directory, not a FASTA file", path=path) from None
    except OSError as exc:
        raise LoadError(f"cannot open: {exc.strerror or exc}", path=path) from None


def check_openable(path: str) -> None:
    """Raise the LoadError that opening `path` would (stdin always opens)."""
    if path != STDIN:
        _open_file(path).close()


def open_source(path: str) -> Source:
    """Open `path` (or stdin for `-`) and return its decompressed byte stream."""
    name = "<stdin>" if path == STDIN else path
    raw: BinaryIO = sys.stdin.buffer if path == STDIN else _open_file(path)
    try:
        magic = _read_magic(raw)
        if raw.seekable():
            raw.seek(0)
            base: BinaryIO = raw
        else:
            base = io.BufferedReader(_Prefixed(magic, raw), buffer_size=1 << 20)
    except OSError as exc:
        if raw is not sys.stdin.buffer:
            raw.close()
        raise LoadError(f"cannot read: {exc.strerror or exc}", path=name) from None
    kind = detect(magic)
    if kind in ("gzip", "bgzf"):
        stream: BinaryIO = GzipMembers(base)  # type: ignore[assignment]
    elif kind == "bzip2":
        stream = bz2.BZ2File(base, mode="rb")  # type: ignore[assignment]
    elif kind == "plain":
        stream = base
    else:
        if raw is not sys.stdin.buffer:
            raw.close()
        raise LoadError(f"{kind} data is not supported; decompress or extract it first", path=name)
    return Source(name, kind, stream, raw)


class _ReadFailed:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetch(stream: BinaryIO, chunk_size: int, depth: int = 3) -> Iterator[bytes]:
    """Yield `stream`'s bytes in chunks read (and decompressed) ahead on a thread.

    File reads and ISA-L/bz2 decompression release the GIL, so they overlap with parsing.
    A read error is raised at the point of the stream where it happened.
    """
    q: queue.Queue[bytes | _ReadFailed | None] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    read1 = getattr(stream, "read1", stream.read)

    def run() -> None:
        # read1 returns what one decompression step gives, so the data before a truncation
        # is delivered (and the error located) instead of lost with a failing read(4 MiB)
        pieces: list[bytes] = []
        size = 0
        try:
            while not stop.is_set():
                piece = read1(chunk_size - size)
                if piece:
                    pieces.append(piece)
                    size += len(piece)
                if size >= chunk_size or (not piece and pieces):
                    _put(pieces[0] if len(pieces) == 1 else b"".join(pieces))
                    pieces, size = [], 0
                if not piece:
                    _put(None)
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            if pieces:
                _put(b"".join(pieces))
            _put(_ReadFailed(exc))

    def _put(item: bytes | _ReadFailed | None) -> None:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    thread = threading.Thread(target=run, name="fasta-read", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is None:
                return
            if isinstance(item, _ReadFailed):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join(timeout=1.0)  # a read blocked on a silent pipe must not hang the caller
