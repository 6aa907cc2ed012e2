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
        order = _name_order(names)
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


_MAX_DIGITS = 18  # a .fai integer of more digits could overflow int64: the row-by-row path
_CHUNK_ROWS = 1 << 15  # rows gathered at once (bounds the temporary arrays of a huge .fai)
_POW10 = 10 ** np.arange(_MAX_DIGITS, dtype=np.int64)


def _name_order(names: np.ndarray) -> np.ndarray:
    """Stable sorting order of fixed-width names (a duplicated name's first row first).

    Sorting the names' first 8 bytes as integers is a few times faster than sorting the
    strings, and is the same order when no two names share them (digests, as stored names
    are); otherwise the strings are sorted."""
    width = names.dtype.itemsize
    if width >= 8 and len(names) > 1:
        heads = np.ascontiguousarray(names.view(np.uint8).reshape(-1, width)[:, :8])
        keys = heads.view(">u8").ravel()
        order = np.argsort(keys)  # not stable: fine when no two keys are equal
        if (keys[order[1:]] != keys[order[:-1]]).all():
            return order
    return np.argsort(names, kind="stable")


def _bulk_parse(body: bytes) -> _BulkRows | None:
    """All rows at once, by array arithmetic on the file's bytes (no per-row Python: a 20,000-row
    .fai in a few ms instead of ~20), when every row is five tab-separated fields, an ASCII name
    and four unsigned decimal integers; None otherwise (the caller then keeps rows by name and
    judges each when it is asked for, so one malformed row does not hide the others)."""
    if not body or b"\0" in body:
        return None
    a = np.frombuffer(body + b"0", dtype=np.uint8)  # the last byte: a digit 0 to pad with
    if int(a.max()) >= 128:
        return None
    newlines = np.flatnonzero(a == 10)
    n = len(newlines) + 1
    tab_at = np.flatnonzero(a == 9)
    if len(tab_at) != 4 * n:
        return None
    tabs = tab_at.reshape(n, 4).T  # row i's tabs if every line has four
    starts = np.empty(n, dtype=np.int64)
    starts[0] = 0
    starts[1:] = newlines + 1
    ends = np.empty(n, dtype=np.int64)
    ends[:-1] = newlines
    ends[-1] = len(body)
    name_widths = tabs[0] - starts
    # 4n tabs in all, and row i's four inside line i: then every line has exactly four
    if name_widths.min() < 1 or not (tabs[3] < ends).all():
        return None
    columns = np.empty((4, n), dtype=np.int64)
    names = np.empty(n, dtype=f"S{int(name_widths.max())}")
    for r0 in range(0, n, _CHUNK_ROWS):
        r = slice(r0, min(n, r0 + _CHUNK_ROWS))
        for k in range(4):
            field_end = tabs[k + 1, r] if k < 3 else ends[r]
            values = _integers(a, tabs[k, r] + 1, field_end)
            if values is None:
                return None
            columns[k, r] = values
        names[r] = _names(a, starts[r], name_widths[r])
    return _BulkRows(names, columns)


def _integers(a: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray | None:
    """The decimal integers a[start:end], digit by digit from the last (a[-1] is a 0 to pad
    short ones with); None if a field is empty, too long or holds a byte that is not a digit."""
    widths = ends - starts
    width = int(widths.max())
    if widths.min() < 1 or width > _MAX_DIGITS:
        return None
    value = np.zeros(len(ends), dtype=np.int64)
    pad = len(a) - 1
    for j in range(width):  # the j-th digit from the right, a column of every row at once
        digit = a[np.where(widths > j, ends - 1 - j, pad)] - 48  # uint8: a non-digit wraps > 9
        if int(digit.max()) > 9:
            return None
        value += digit * _POW10[j]
    return value


def _names(a: np.ndarray, starts: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Names a[start : start + width] as fixed-width bytes, NUL-padded (names hold no NUL)."""
    width = int(widths.max())
    at = starts[:, None] + np.arange(width)
    if int(widths.min()) == width:  # the usual case: every name as long (digests)
        chars = a[at]
    else:
        chars = np.where(np.arange(width) < widths[:, None], a[np.minimum(at, len(a) - 1)], 0)
    return chars.astype(np.uint8, copy=False).view(f"S{width}").ravel()


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
