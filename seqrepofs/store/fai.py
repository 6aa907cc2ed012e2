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


class FaiIndex:
    """A .fai, looked up lazily. A file can index tens of thousands of records; a reader may
    want one of them (a chromosome) or most (transcripts). So the first few lookups scan the
    text, and only a reader that keeps asking pays for parsing every row once (in bulk, with
    C-level splits and int conversions, when every row has the usual five fields)."""

    SCANS_BEFORE_INDEX = 16

    def __init__(self, text: bytes, path: str) -> None:
        self.path = path
        self._text = text if text.startswith(b"\n") else b"\n" + text
        # the bulk parse, if it succeeded: plain tuples, not FaiEntry, because the garbage
        # collector stops tracking a tuple of str and int, and 50,000 tracked rows made every
        # full collection of a transcript reader's process tens of milliseconds slower
        self._entries: dict[str, tuple[str, int, int, int, int]] | None = None
        self._unsound: frozenset[str] = frozenset()  # bulk rows htslib would refuse
        self._rows: dict[bytes, bytes] | None = None  # else rows by name, parsed on use
        self._scans = 0
        self._parsed: dict[str, FaiEntry] = {}
        # the bulk entry made last: a reader asks for it twice (where is it, then read it)
        self._last: tuple[str | None, FaiEntry | None] = (None, None)

    def _index(self) -> None:
        if self._entries is not None or self._rows is not None:
            return
        body = self._text[1:].rstrip(b"\n")
        fields = body.replace(b"\n", b"\t").split(b"\t") if body else []
        if len(fields) % 5 == 0 and body.count(b"\n") + 1 == len(fields) // 5:
            try:
                names = b"\t".join(fields[0::5]).decode("ascii").split("\t")
                columns = [list(map(int, fields[k::5])) for k in range(1, 5)]
            except ValueError:  # a malformed row: keep the others readable, one by one
                pass
            else:  # reversed: the first row of a duplicated name wins, as in a scan
                rows = reversed(list(zip(names, *columns, strict=True)))
                table = {row[0]: row for row in rows}
                self._unsound = frozenset(
                    name
                    for name, length, _offset, lb, lw in table.values()
                    if lb <= 0 or lw < lb or length < 0
                )
                self._entries = table  # last: another thread may be reading it at once
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
        if self._entries is not None:
            return self._from_bulk(name)
        entry = self._parsed.get(name)
        if entry is not None:
            return entry
        if self._rows is None:
            self._scans += 1
            if self._scans > self.SCANS_BEFORE_INDEX:
                self._index()
                if self._entries is not None:
                    return self._from_bulk(name)
        try:
            row = self._row(name.encode("ascii"))
        except UnicodeEncodeError:
            return None
        if row is None:
            return None
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
        assert self._entries is not None
        last_name, last_entry = self._last
        if last_name == name:
            return last_entry
        row = self._entries.get(name)
        if row is None:
            return None
        entry = FaiEntry._make(row)
        if name in self._unsound:
            raise CorruptFileError(f"{self.path}: malformed .fai line: {entry.row()[:80]!r}")
        self._last = (name, entry)
        return entry

    def indexed(self, name: str) -> FaiEntry | None:
        """The entry if the .fai is bulk-indexed or it was looked up already; never scans the
        text, so a miss costs one dict lookup. None for a row htslib would refuse."""
        if self._entries is None:
            return self._parsed.get(name)
        return None if name in self._unsound else self._from_bulk(name)

    def __getitem__(self, name: str) -> FaiEntry:
        entry = self.get(name)
        if entry is None:
            raise KeyError(name)
        return entry

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def names(self) -> list[str]:
        self._index()
        if self._entries is not None:
            return list(reversed(self._entries))
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
