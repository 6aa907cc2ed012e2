"""The two indexes beside a BGZF FASTA file: the .fai (where each record's residues start and
how its lines are laid out) and the .gzi (where each BGZF block starts, compressed and not).

A .fai may list tens of thousands of records, so it is read lazily (see `FaiIndex`); a .gzi is
copied into arrays in one go.
"""

from __future__ import annotations

import struct
import sys
from array import array
from typing import NamedTuple

import numpy as np

from ..errors import CorruptFileError


class FaiEntry(NamedTuple):
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

    @property
    def end_offset(self) -> int:
        """Uncompressed offset just past the record's last residue."""
        return self.byte_range(self.length - 1, self.length)[1] if self.length else self.offset

    def sound(self) -> bool:
        """Whether the layout makes sense (htslib refuses the others)."""
        return self.line_bases > 0 and self.line_width >= self.line_bases and self.length >= 0

    def residues_before(self, u: int) -> int:
        """How many of the record's residues lie before uncompressed byte `u` (>= offset)."""
        lines, column = divmod(u - self.offset, self.line_width)
        return lines * self.line_bases + min(column, self.line_bases)


class _BulkRows:
    """Every row of a .fai in sorted arrays: about 32 bytes a row plus the name, where a dict of
    tuples took ~300 (327 MB for the 1,000,000 rows of a real-size snapshot's 84 files, held
    by a reader's bounded cache of open files). A lookup is one binary search."""

    __slots__ = ("names", "columns", "unsound", "order")

    def __init__(self, names: np.ndarray, columns: np.ndarray) -> None:
        order = np.argsort(names, kind="stable")  # stable: a duplicated name's first row wins
        self.names = names[order]
        # one row per record (length, offset, line_bases, line_width), contiguous
        self.columns = np.ascontiguousarray(columns[:, order].T)
        length, _offset, lb, lw = columns[:, order]
        self.unsound = (lb <= 0) | (lw < lb) | (length < 0)  # rows htslib would refuse
        self.order = order

    def find(self, key: bytes) -> int:
        """Index of the first row named `key`, or -1."""
        if len(key) > self.names.dtype.itemsize or not key or key.endswith(b"\0"):
            return -1
        names = self.names
        i = int(names.searchsorted(key))
        return i if i < len(names) and names[i] == key else -1

    def entry(self, i: int, name: str) -> FaiEntry:
        return FaiEntry(name, *self.columns[i].tolist())

    def names_in_order(self) -> list[str]:
        """Each name once, in the order of its first row."""
        firsts = np.ones(len(self.names), dtype=bool)
        firsts[1:] = self.names[1:] != self.names[:-1]
        rows = np.sort(self.order[firsts])
        by_row = np.empty(len(self.names), dtype=self.names.dtype)
        by_row[self.order] = self.names
        return [n.decode("ascii") for n in by_row[rows]]


def _bulk_parse(body: bytes) -> _BulkRows | None:
    """All rows at once with numpy's C loops, when every row has the usual five fields of ASCII
    names and integers; None otherwise (the caller then keeps rows by name)."""
    fields = body.replace(b"\n", b"\t").split(b"\t") if body else []
    if not fields or len(fields) % 5 or body.count(b"\n") + 1 != len(fields) // 5:
        return None
    try:
        names = np.array(fields[0::5], dtype=np.bytes_)
        if not all(n.isascii() for n in fields[0::5]):
            return None
        columns = np.array([fields[k::5] for k in range(1, 5)], dtype=np.bytes_).astype(np.int64)
    except (ValueError, OverflowError):  # a malformed row: keep the others readable, one by one
        return None
    return _BulkRows(names, columns)


class FaiIndex:
    """A .fai, looked up lazily. A file can index tens of thousands of records; a reader may
    want one of them (a chromosome) or most (transcripts). So the first few lookups scan the
    text, and only a reader that keeps asking pays for parsing every row once (in bulk, into
    compact sorted arrays, when every row has the usual five fields)."""

    SCANS_BEFORE_INDEX = 16

    def __init__(self, text: bytes, path: str) -> None:
        self.path = path
        self._text = text if text.startswith(b"\n") else b"\n" + text
        self._bulk: _BulkRows | None = None  # the bulk parse, if it succeeded
        self._rows: dict[bytes, bytes] | None = None  # else rows by name, parsed on use
        self._scans = 0
        self._parsed: dict[str, FaiEntry] = {}
        # the bulk entry made last: a reader asks for it twice (where is it, then read it)
        self._last: tuple[str | None, FaiEntry | None] = (None, None)

    def _index(self) -> None:
        if self._bulk is not None or self._rows is not None:
            return
        bulk = _bulk_parse(self._text[1:].rstrip(b"\n"))
        if bulk is not None:
            self._bulk = bulk  # first: a reader that then finds no text asks the bulk rows
            self._text = b""
            self._parsed = {}
            return
        lines = reversed(self._text.split(b"\n"))
        self._rows = {r.partition(b"\t")[0]: r for r in lines if r}

    def _row(self, key: bytes) -> bytes | None:
        if self._rows is not None:
            return self._rows.get(key)
        at = self._text.find(b"\n" + key + b"\t")
        if at < 0:
            return None
        end = self._text.find(b"\n", at + 1)
        return self._text[at + 1 : end if end >= 0 else len(self._text)]

    def get(self, name: str) -> FaiEntry | None:
        if self._bulk is not None:
            return self._from_bulk(name)
        entry = self._parsed.get(name)
        if entry is not None:
            return entry
        if self._rows is None:
            self._scans += 1
            if self._scans > self.SCANS_BEFORE_INDEX:
                self._index()
                if self._bulk is not None:
                    return self._from_bulk(name)
        try:
            row = self._row(name.encode("ascii"))
        except UnicodeEncodeError:
            return None
        if row is None:
            # another thread may have bulk-indexed (and dropped the text) meanwhile
            return self._from_bulk(name) if self._bulk is not None else None
        fields = row.split(b"\t")
        try:
            entry = FaiEntry(name, *(int(f) for f in fields[1:5]))
        except (ValueError, TypeError):
            raise CorruptFileError(f"{self.path}: malformed .fai line: {row[:80]!r}") from None
        if not entry.sound():
            raise CorruptFileError(f"{self.path}: malformed .fai line: {row[:80]!r}")
        self._parsed[name] = entry
        return entry

    def _from_bulk(self, name: str) -> FaiEntry | None:
        bulk = self._bulk
        assert bulk is not None
        last_name, last_entry = self._last
        if last_name == name:
            return last_entry
        try:
            i = bulk.find(name.encode("ascii"))
        except UnicodeEncodeError:
            return None
        if i < 0:
            return None
        entry = bulk.entry(i, name)
        if bulk.unsound[i]:
            raise CorruptFileError(f"{self.path}: malformed .fai line: {entry.row()[:80]!r}")
        self._last = (name, entry)
        return entry

    def indexed(self, name: str) -> FaiEntry | None:
        """The entry if the .fai is bulk-indexed or it was looked up already; never scans the
        text, so a miss costs one dict lookup or binary search. None for a row htslib would
        refuse."""
        if self._bulk is None:
            return self._parsed.get(name)
        try:
            return self._from_bulk(name)
        except CorruptFileError:
            return None

    def __getitem__(self, name: str) -> FaiEntry:
        entry = self.get(name)
        if entry is None:
            raise KeyError(name)
        return entry

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def names(self) -> list[str]:
        self._index()
        if self._bulk is not None:
            return self._bulk.names_in_order()
        assert self._rows is not None
        return [k.decode("ascii", "replace") for k in reversed(self._rows)]

    def __len__(self) -> int:
        return len(self.names())


def parse_fai(text: bytes, path: str) -> FaiIndex:
    return FaiIndex(text, path)


def parse_gzi(data: bytes, path: str) -> tuple[array[int], array[int]]:
    """Return (compressed, uncompressed) block start offsets, including the implicit (0, 0).

    array('Q') rather than lists: a 3 Gb genome has 190,000 blocks, and copying the file's
    bytes into an array costs microseconds where building int lists cost tens of milliseconds.
    """
    if len(data) < 8:
        raise CorruptFileError(f"{path}: truncated .gzi index")
    (count,) = struct.unpack_from("<Q", data)
    if len(data) != 8 + 16 * count:
        raise CorruptFileError(f"{path}: .gzi index has {len(data)} bytes for {count} entries")
    pairs = array("Q")
    pairs.frombytes(memoryview(data)[8:])
    if sys.byteorder != "little":
        pairs.byteswap()
    coffs, uoffs = array("Q", [0]), array("Q", [0])
    coffs.extend(pairs[0::2])
    uoffs.extend(pairs[1::2])
    return coffs, uoffs
