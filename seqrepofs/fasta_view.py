"""Byte-range arithmetic for virtual FASTA files (pure: no I/O, no sqlite, no FUSE).

A virtual FASTA file is never materialised.  Its layout (where each header and residue lives)
follows from the record names, lengths and the line width alone, so the filesystem can answer
``read(offset, size)`` by fetching only the residues that fall inside the window and inserting
newlines arithmetically.  The same arithmetic yields the ``.fai`` that ``samtools faidx`` would
write, a UCSC ``chrom.sizes`` and (given stored MD5s) the ``samtools dict`` sequence dictionary.

File format produced (what ``seqrepofs export`` writes)::

    >NAME\\n
    <W residues>\\n ... <last 1..W residues>\\n

Zero-length records are written as a bare header line; ``samtools faidx`` drops them from the
``.fai`` while ``samtools dict`` keeps them (``LN:0``), and both behaviours are mirrored here.
(``samtools faidx`` refuses to index a file whose *last* record is empty; see
:attr:`FastaLayout.htslib_indexable`.)
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = [
    "DictEntry",
    "FastaLayout",
    "HeaderPiece",
    "Segment",
    "SeqPiece",
    "decode_name",
    "dict_text",
    "encode_name",
    "fai_line",
]

# --------------------------------------------------------------------------------------------
# Name encoding
# --------------------------------------------------------------------------------------------

# Characters that pass unchanged: printable ASCII 0x21-0x7E except "%" (the escape char) and
# "/" (path separator).  Everything else (whitespace, controls, non-ASCII) is escaped so that
# the name survives both as a single path component and as a FASTA name, which samtools cuts at
# the first whitespace.
_UNSAFE_RE = re.compile(r"[^\x21-\x24\x26-\x2E\x30-\x7E]")
_ESCAPE_RUN_RE = re.compile(r"((?:%[0-9A-F]{2})+)")


def _escape(match: re.Match[str]) -> str:
    return "".join(f"%{b:02X}" for b in match.group().encode("utf-8"))


def encode_name(alias: str) -> str:
    """Percent-encode ``alias`` so it is a safe file name and a whitespace-free FASTA name.

    Unsafe characters become ``%XX`` (uppercase hex of their UTF-8 bytes); the names "." and
    ".." are fully escaped because they are not usable as directory entries.  Raises
    ValueError for the empty alias (no file or FASTA name can represent it) and for text that
    is not valid Unicode (lone surrogates).
    """
    if not alias:
        raise ValueError("cannot encode an empty alias")
    if alias == "." or alias == "..":
        return "%2E" * len(alias)
    try:
        return _UNSAFE_RE.sub(_escape, alias)
    except UnicodeEncodeError as exc:
        raise ValueError(f"alias {alias!r} is not valid Unicode: {exc}") from None


def decode_name(name: str) -> str:
    """Invert :func:`encode_name`; reject anything it would not produce.

    Strictness (uppercase hex only, no escaped safe characters, no raw unsafe characters,
    valid UTF-8) guarantees that each path maps to at most one alias, so two different paths
    can never serve the same sequence under different names.
    """
    if not name:
        raise ValueError("empty name")
    parts = _ESCAPE_RUN_RE.split(name)
    out: list[str] = []
    for i, part in enumerate(parts):
        if i % 2:  # a maximal run of %XX escapes
            try:
                out.append(bytes.fromhex(part.replace("%", "")).decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise ValueError(f"name {name!r}: escapes are not valid UTF-8 ({exc})") from None
        elif "%" in part:
            raise ValueError(f"name {name!r}: malformed escape near {part!r}")
        else:
            out.append(part)
    alias = "".join(out)
    if encode_name(alias) != name:
        raise ValueError(f"name {name!r} is not in canonical encoded form")
    return alias


# --------------------------------------------------------------------------------------------
# Index-file lines
# --------------------------------------------------------------------------------------------


def fai_line(name: str, length: int, offset: int, width: int) -> bytes:
    """One ``.fai`` line as ``samtools faidx`` writes it for our layout.

    htslib records the *first* line's length as LINEBASES, so a record that fits on one line
    (length <= width) gets ``length``/``length+1`` rather than ``width``/``width+1``.
    """
    if length <= 0:
        raise ValueError(f"{name!r}: zero-length records have no .fai line")
    line_bases = min(length, width)
    return f"{name}\t{length}\t{offset}\t{line_bases}\t{line_bases + 1}\n".encode()


class DictEntry(NamedTuple):
    """One ``@SQ`` line of a sequence dictionary (md5 comes from the store, not hashed here)."""

    name: str
    length: int
    md5: str
    uri: str | None = None
    assembly: str | None = None
    species: str | None = None
    alt_names: str | None = None  # AN: value, comma-separated, as `samtools dict -A` writes


_MD5_RE = re.compile(r"[0-9a-f]{32}")
_BAD_TAG_VALUE_RE = re.compile(r"[\t\n\r]")


def _tag(tag: str, value: str) -> str:
    if _BAD_TAG_VALUE_RE.search(value):
        raise ValueError(f"{tag} value {value!r} contains a tab or line break")
    return f"\t{tag}:{value}"


def dict_text(entries: Sequence[DictEntry], *, header: bool = True) -> bytes:
    """A sequence dictionary byte-identical to ``samtools dict`` (1.16) output.

    Tag order is SN, LN, M5, AN, UR, AS, SP; ``header=False`` mirrors ``samtools dict -H``.
    samtools keeps zero-length records (``LN:0`` with the MD5 of the empty string), so callers
    should pass every record of the FASTA, including empty ones.
    """
    lines = ["@HD\tVN:1.0\tSO:unsorted\n"] if header else []
    for e in entries:
        length = operator.index(e.length)
        if length < 0:
            raise ValueError(f"{e.name!r}: negative length {length}")
        if not _MD5_RE.fullmatch(e.md5):
            raise ValueError(f"{e.name!r}: M5 must be 32 lowercase hex digits, got {e.md5!r}")
        line = f"@SQ{_tag('SN', e.name)}\tLN:{length}\tM5:{e.md5}"
        for tag, value in (
            ("AN", e.alt_names),
            ("UR", e.uri),
            ("AS", e.assembly),
            ("SP", e.species),
        ):
            if value is not None:
                line += _tag(tag, value)
        lines.append(line + "\n")
    return "".join(lines).encode("utf-8")


# --------------------------------------------------------------------------------------------
# Layout
# --------------------------------------------------------------------------------------------


class HeaderPiece(NamedTuple):
    """Literal bytes of a header line (a slice of ``>NAME\\n``) inside the requested window."""

    record: int
    data: bytes

    @property
    def nbytes(self) -> int:
        return len(self.data)


class SeqPiece(NamedTuple):
    """Part of a record's sequence block inside the window.

    ``start``/``end`` is the 0-based half-open residue range to fetch (may be empty when the
    window holds only newlines); ``byte_start``/``byte_end`` locate the piece within the
    record's sequence block (0 = first residue).  Turn fetched residues into file bytes with
    :meth:`FastaLayout.format_piece`.
    """

    record: int
    start: int
    end: int
    byte_start: int
    byte_end: int

    @property
    def nbytes(self) -> int:
        return self.byte_end - self.byte_start


Segment = HeaderPiece | SeqPiece

_WHITESPACE_RE = re.compile(r"[ \t\n\v\f\r]")
_NEWLINE = 10
Int64Array = npt.NDArray[np.int64]


def _frozen(a: Int64Array) -> Int64Array:
    a.setflags(write=False)
    return a


@dataclass(frozen=True)
class FastaLayout:
    """Byte layout of one virtual FASTA file (records in order, fixed line width).

    Offsets are int64 arrays (compact for million-record assemblies) searched with
    ``np.searchsorted``, so locating the record at a byte offset is O(log n).
    """

    names: tuple[str, ...]
    lengths: Int64Array  # residues per record
    width: int
    record_offsets: Int64Array  # byte offset of each record's ">"
    seq_offsets: Int64Array  # byte offset of each record's first residue
    size: int  # total file size in bytes

    @classmethod
    def build(cls, records: Sequence[tuple[str, int]], width: int = 60) -> FastaLayout:
        """Lay out ``records`` (fasta_name, length) with ``width`` residues per line.

        Names must be non-empty, whitespace-free and unique: otherwise samtools would index a
        different name (or keep only the first duplicate) and the computed .fai would lie.
        """
        width = operator.index(width)
        if width < 1:
            raise ValueError(f"line width must be >= 1, got {width}")
        names = tuple(str(r[0]) for r in records)
        length_list = [operator.index(r[1]) for r in records]
        for name in names:
            if not name or _WHITESPACE_RE.search(name):
                raise ValueError(f"FASTA name {name!r} is empty or contains whitespace")
        if len(set(names)) != len(names):
            seen: set[str] = set()
            for name in names:
                if name in seen:
                    raise ValueError(f"duplicate FASTA name {name!r}")
                seen.add(name)
        lengths = np.array(length_list, dtype=np.int64).reshape(-1)
        if lengths.size and int(lengths.min()) < 0:
            raise ValueError("record lengths must be >= 0")
        header_len = np.fromiter(
            (len(n.encode("utf-8")) + 2 for n in names), dtype=np.int64, count=len(names)
        )
        seq_bytes = lengths + (lengths + (width - 1)) // width
        ends = np.cumsum(header_len + seq_bytes, dtype=np.int64)
        record_offsets = np.zeros(len(names), dtype=np.int64)
        record_offsets[1:] = ends[:-1]
        return cls(
            names=names,
            lengths=_frozen(lengths),
            width=width,
            record_offsets=_frozen(record_offsets),
            seq_offsets=_frozen(record_offsets + header_len),
            size=int(ends[-1]) if len(names) else 0,
        )

    # Arrays make the generated __eq__/__hash__ unusable; compare by content instead.
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FastaLayout):
            return NotImplemented
        return (
            self.width == other.width
            and self.names == other.names
            and np.array_equal(self.lengths, other.lengths)
        )

    def __hash__(self) -> int:
        return hash((self.width, self.names, self.size))

    def __len__(self) -> int:
        return len(self.names)

    # ---- per-record arithmetic ------------------------------------------------------------

    def seq_nbytes(self, record: int) -> int:
        """Bytes of the record's sequence block (residues plus one newline per line)."""
        length = int(self.lengths[record])
        return length + -(-length // self.width)

    def record_at(self, offset: int) -> int:
        """Index of the record whose bytes contain file offset ``offset`` (O(log n))."""
        if not 0 <= offset < self.size:
            raise IndexError(f"offset {offset} outside file of {self.size} bytes")
        return int(np.searchsorted(self.record_offsets, offset, side="right")) - 1

    def residue_to_offset(self, record: int, pos: int) -> int:
        """File byte offset of residue ``pos`` (0-based) of ``record``."""
        length = int(self.lengths[record])
        if not 0 <= pos < length:
            raise IndexError(f"residue {pos} outside record {record} of length {length}")
        line, col = divmod(pos, self.width)
        return int(self.seq_offsets[record]) + line * (self.width + 1) + col

    def header(self, record: int) -> bytes:
        """The header line ``>NAME\\n`` of ``record``."""
        return b">" + self.names[record].encode("utf-8") + b"\n"

    # ---- index files ------------------------------------------------------------------------

    @cached_property
    def _fai(self) -> bytes:
        return b"".join(
            fai_line(name, int(length), int(off), self.width)
            for name, length, off in zip(self.names, self.lengths, self.seq_offsets, strict=True)
            if length > 0
        )

    @property
    def htslib_indexable(self) -> bool:
        """Whether ``samtools faidx`` could index the rendered file itself.

        htslib (1.16 ``fai_build_core``) fails outright, indexing nothing, when the file's last
        record has no residues (or the file is empty).  Served .fai files do not depend on this,
        but an exported file with a trailing empty record cannot be re-indexed by samtools.
        """
        return bool(len(self.names)) and int(self.lengths[-1]) > 0

    def fai_text(self) -> bytes:
        """The ``.fai`` that ``samtools faidx`` writes for the rendered file (cached)."""
        return self._fai

    def chrom_sizes_text(self) -> bytes:
        """UCSC ``chrom.sizes`` (``NAME\\tLEN\\n`` for every record, empty ones included)."""
        return "".join(
            f"{name}\t{length}\n" for name, length in zip(self.names, self.lengths, strict=True)
        ).encode("utf-8")

    # ---- reading --------------------------------------------------------------------------

    @staticmethod
    def _check_window(offset: int, size: int) -> tuple[int, int]:
        offset, size = operator.index(offset), operator.index(size)
        if offset < 0 or size < 0:
            raise ValueError(f"negative offset/size ({offset}, {size})")
        return offset, size

    def segments(self, offset: int, size: int) -> Iterator[Segment]:
        """Describe file bytes ``[offset, offset+size)`` (clipped at EOF) as pieces in order.

        Yields at most one HeaderPiece and one SeqPiece per record touched, so a caller
        (possibly async) can fetch exactly the residues needed, then assemble the window with
        ``HeaderPiece.data`` and :meth:`format_piece`.
        """
        offset, size = self._check_window(offset, size)
        end = min(offset + size, self.size)
        if offset >= end:
            return
        w1 = self.width + 1
        rec = self.record_at(offset)
        pos = offset
        while pos < end:
            rec_start = int(self.record_offsets[rec])
            seq_start = int(self.seq_offsets[rec])
            seq_end = seq_start + self.seq_nbytes(rec)
            if pos < seq_start:
                hdr = self.header(rec)
                hi = min(end, seq_start)
                yield HeaderPiece(rec, hdr[pos - rec_start : hi - rec_start])
                pos = hi
            if pos < end and pos < seq_end:
                a = pos - seq_start
                b = min(end, seq_end) - seq_start
                # Residues covered by bytes [a, b): column W of each line is a newline; the
                # record's final byte is its newline whatever the column.
                line_a, col_a = divmod(a, w1)
                last = min(b, self.seq_nbytes(rec) - 1) - 1  # last non-final byte
                start = line_a * self.width + min(col_a, self.width)
                if last >= a:
                    line_z, col_z = divmod(last, w1)
                    stop = line_z * self.width + min(col_z + 1, self.width)
                else:
                    stop = start
                yield SeqPiece(rec, start, max(start, stop), a, b)
                pos = seq_start + b
            rec += 1

    def format_piece(self, piece: SeqPiece, residues: bytes | np.ndarray) -> bytes:
        """File bytes of ``piece`` given its residues ``[piece.start, piece.end)``."""
        return self._piece_array(piece, residues).tobytes()

    def _piece_array(self, piece: SeqPiece, residues: bytes | np.ndarray) -> np.ndarray:
        """File bytes of ``piece`` as a uint8 array, written in place: a partial first line, the
        whole lines as one (lines, W+1) grid whose last column is b"\\n" (no per-line Python
        loop), a partial last line, and the record's final newline."""
        want = piece.end - piece.start
        if len(residues) != want:
            raise RuntimeError(
                f"fetch for record {piece.record} ({self.names[piece.record]!r}) residues "
                f"[{piece.start}, {piece.end}) returned {len(residues)} bytes, expected {want}"
            )
        w, w1 = self.width, self.width + 1
        a, b = piece.byte_start, piece.byte_end
        out = np.empty(b - a, dtype=np.uint8)
        if b == self.seq_nbytes(piece.record):
            b -= 1  # the record's last newline may sit in any column: written by hand
            out[-1] = _NEWLINE
        res = residues if isinstance(residues, np.ndarray) else np.frombuffer(residues, np.uint8)
        pos = a  # next file byte to write (relative to the record's first residue)
        used = 0  # residues written
        col = a % w1
        if col and pos < b:  # the rest of a line begun before `a`
            take = min(b, a - col + w1) - a
            nres = max(0, min(take, w - col))
            out[:nres] = res[:nres]
            if take > nres:
                out[nres] = _NEWLINE
            pos, used = pos + take, nres
        lines = (b - pos) // w1
        if lines:
            grid = out[pos - a : pos - a + lines * w1].reshape(lines, w1)
            grid[:, :w] = res[used : used + lines * w].reshape(lines, w)
            grid[:, w] = _NEWLINE
            pos, used = pos + lines * w1, used + lines * w
        if pos < b:  # the start of a line that ends after `b`: residues only
            out[pos - a : b - a] = res[used : used + b - pos]
        return out

    def render(
        self, offset: int, size: int, fetch: Callable[[int, int, int], bytes | np.ndarray]
    ) -> bytes:
        """Exactly the file bytes ``[offset, offset+size)`` (clipped at EOF).

        ``fetch(record, start, end)`` must return residues ``[start, end)`` of ``record``; it
        is called at most once per record touched and never for an empty range.
        """
        data = self.render_buffer(offset, size, fetch)
        return data if type(data) is bytes else bytes(data)

    def render_buffer(
        self, offset: int, size: int, fetch: Callable[[int, int, int], bytes | np.ndarray]
    ) -> bytes | np.ndarray:
        """:meth:`render`'s bytes as any contiguous buffer: a window inside one record's
        sequence comes back as the array it was written into, without a copy to bytes."""
        out: list[bytes | np.ndarray] = []
        for seg in self.segments(offset, size):
            if isinstance(seg, HeaderPiece):
                out.append(seg.data)
            else:
                residues = fetch(seg.record, seg.start, seg.end) if seg.end > seg.start else b""
                out.append(self._piece_array(seg, residues))
        if len(out) == 1:
            return out[0]
        return b"".join(out)  # type: ignore[arg-type]  # arrays are buffers (PEP 688 stubs: 3.12+)
