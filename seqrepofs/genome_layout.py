"""A whole-genome FASTA of any number of records, and its index files, rendered on demand.

One mechanism for every multi-record file: a sequence collection's (`/collections/<name>.fa`,
records from the collections database) and a whole-assembly view's (`/GRCh38.ucsc.fa`,
records from an assembly report). A record is (name, length, seq_id); the bytes follow from
the records and the line width alone (`fasta_view`'s layout: `>NAME`, `width` residues a line).

A collection may hold millions of records (a transcriptome), so nothing here holds them all.
One streamed scan of the records (`RecordSource.column_pages`) gives every file's exact size and,
every BLOCK_RECORDS records, where that block starts in the FASTA (a checkpoint: 8 bytes per
1,024 records). A read finds its block by binary search over the checkpoints, takes that
block's records (by ordinal, from a bounded cache) and renders them with the block's
`FastaLayout`. The index files (`.fa.fai`, `.dict`, `.chrom.sizes`, the level-2 seqcol JSON) are
generated in record order, a page of records at a time (`chunks`).
"""

from __future__ import annotations

import enum
import json
import re
import threading
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from . import seqcol
from .errors import SeqRepoError
from .fasta_view import DictEntry, FastaLayout, dict_text

__all__ = [
    "BLOCK_RECORDS",
    "Block",
    "GenomeFileKind",
    "GenomeLayout",
    "ListRecords",
    "NotCached",
    "RecordSource",
    "RecordsGoneError",
]

BLOCK_RECORDS = 1024  # records per checkpoint and per block
SCAN_PAGE = 16_384  # records per page of the sizing scan (a multiple of BLOCK_RECORDS)
TEXT_PAGE = 4096  # records per page of a generated index file

_POW10 = np.array([10**k for k in range(1, 19)], dtype=np.int64)
_JSON_PLAIN_RE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")  # what json.dumps escapes
DICT_HEADER = b"@HD\tVN:1.0\tSO:unsorted\n"
# "@SQ\tSN:" "\tLN:" "\tM5:" + 32 hex + "\tUR:ga4gh:SQ." + "\n": name, digits, seq_id apart
_DICT_FIXED = 7 + 4 + 4 + 32 + 13 + 1
SEQCOL_SECTIONS = seqcol.ARRAY_ATTRIBUTES  # in the order the REST level-2 answer has them
# {"length":N,"name":"..."}: everything but the digits and the JSON string
_PAIR_FIXED = len(b'{"length":,"name":}')


class GenomeFileKind(enum.IntEnum):
    """The files of a whole-genome FASTA (the value is a collection's readdir sub-position)."""

    FASTA = 0
    FAI = 1
    DICT = 2
    FA_DICT = 3
    CHROM_SIZES = 4
    SEQCOL = 5

    @property
    def suffix(self) -> str:
        return _SUFFIX[self]


_SUFFIX = {
    GenomeFileKind.FASTA: ".fa",
    GenomeFileKind.FAI: ".fa.fai",
    GenomeFileKind.DICT: ".dict",
    GenomeFileKind.FA_DICT: ".fa.dict",
    GenomeFileKind.CHROM_SIZES: ".chrom.sizes",
    GenomeFileKind.SEQCOL: ".seqcol.json",
}


class RecordsGoneError(SeqRepoError, LookupError):
    """The records were deleted (a collection replaced on a master) while being read."""


class NotCached(Exception):
    """A block or residue range of a read is not in memory (`GenomeLayout.read(cached=True)`)."""


class Rec(Protocol):
    @property
    def ordinal(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def length(self) -> int: ...
    @property
    def seq_id(self) -> str: ...


class RecordSource(Protocol):
    """Where the records come from; `key` names the same records for good."""

    key: Hashable
    label: str
    count: int

    def column_pages(self, page: int) -> Iterator[tuple[list[str], list[int], list[int]]]:
        """(names, lengths, seq_id lengths) of every record in order, a page at a time."""
        ...

    def records(self, start: int, limit: int) -> Sequence[Rec]:
        """Records start .. start + limit - 1 by ordinal."""
        ...

    def attribute_pages(self, attribute: str, page: int) -> Iterator[list[Any]]:
        """A seqcol level-2 array attribute, a page of elements at a time."""
        ...


@dataclass(frozen=True, slots=True)
class ListRecord:
    ordinal: int
    name: str
    length: int
    seq_id: str


class ListRecords:
    """Records held in memory (an assembly view's, a few hundred)."""

    def __init__(self, records: Sequence[tuple[str, int, str]], key: Hashable, label: str):
        self._records = [ListRecord(i, *r) for i, r in enumerate(records)]
        self.key = key
        self.label = label
        self.count = len(self._records)

    def column_pages(self, page: int) -> Iterator[tuple[list[str], list[int], list[int]]]:
        for start in range(0, self.count, page):
            part = self._records[start : start + page]
            yield [r.name for r in part], [r.length for r in part], [len(r.seq_id) for r in part]

    def records(self, start: int, limit: int) -> Sequence[Rec]:
        return self._records[start : start + limit]

    def attribute_pages(self, attribute: str, page: int) -> Iterator[list[Any]]:
        recs = self._records
        values = seqcol.level2(
            [r.name for r in recs], [r.length for r in recs], ["SQ." + r.seq_id for r in recs]
        )[attribute]
        for start in range(0, len(values), page):
            yield list(values[start : start + page])


@dataclass(frozen=True)
class Block:
    """BLOCK_RECORDS consecutive records, laid out from the block's first byte."""

    first: int  # ordinal of the first record
    seq_ids: tuple[str, ...]
    layout: FastaLayout


class BlockCache(Protocol):
    def get(self, key: Hashable) -> Block | None: ...
    def put(self, key: Hashable, block: Block) -> None: ...


class KeepAll:
    """Every block kept (records held in memory anyway)."""

    def __init__(self) -> None:
        self._blocks: dict[Hashable, Block] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Block | None:
        with self._lock:
            return self._blocks.get(key)

    def put(self, key: Hashable, block: Block) -> None:
        with self._lock:
            self._blocks[key] = block


Fetch = Callable[[str, int, int], "bytes | np.ndarray | None"]


def _digits(a: np.ndarray) -> np.ndarray:
    """Decimal digits of each non-negative int64."""
    return np.searchsorted(_POW10, a, side="right").astype(np.int64) + 1


def _name_columns(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(UTF-8 bytes, JSON string length) of each name; vectorised when all are plain ASCII."""
    joined = "".join(names)
    count = len(names)
    if joined.isascii():
        nbytes = np.fromiter(map(len, names), dtype=np.int64, count=count)
    else:
        nbytes = np.fromiter((len(n.encode("utf-8")) for n in names), dtype=np.int64, count=count)
    if _JSON_PLAIN_RE.search(joined) is None:
        return nbytes, nbytes + 2
    jlen = np.fromiter((len(json.dumps(n)) for n in names), dtype=np.int64, count=count)
    return nbytes, jlen


class GenomeLayout:
    """Sizes of every file of one record source at one line width, the FASTA's checkpoints,
    and the bytes of each file on demand. Holds O(records / BLOCK_RECORDS) numbers."""

    def __init__(self, records: RecordSource, width: int, cache: BlockCache | None = None) -> None:
        if width < 1:
            raise ValueError(f"line width must be >= 1, got {width}")
        self.records = records
        self.width = width
        self.key = (records.key, width)
        self._cache: BlockCache = KeepAll() if cache is None else cache
        self.count = 0
        self.sizes: tuple[int, ...] = ()
        self.fa_starts = np.zeros(1, dtype=np.int64)  # block b starts at fa_starts[b]
        self._scan()

    def _scan(self) -> None:
        w = self.width
        starts: list[np.ndarray] = []
        n = fa = fai = dct = sizes = 0
        sec = dict.fromkeys(SEQCOL_SECTIONS, 0)
        for names, lengths, id_lens in self.records.column_pages(SCAN_PAGE):
            nb, jn = _name_columns(names)
            ln = np.asarray(lengths, dtype=np.int64)
            sb = np.asarray(id_lens, dtype=np.int64)
            rec = nb + 2 + ln + (ln + (w - 1)) // w
            ends = fa + np.cumsum(rec)
            rec_starts = ends - rec
            starts.append(rec_starts[::BLOCK_RECORDS].copy())  # pages start at a multiple
            nz = ln > 0  # samtools writes no .fai row for an empty record
            if nz.any():
                lb = np.minimum(ln[nz], w)
                seqoff = rec_starts[nz] + nb[nz] + 2
                row = nb[nz] + _digits(ln[nz]) + _digits(seqoff) + _digits(lb) + _digits(lb + 1)
                fai += int((row + 5).sum())
            dl = _digits(ln)
            dct += int((_DICT_FIXED + nb + dl + sb).sum())
            sizes += int((nb + dl + 2).sum())
            sec["lengths"] += int(dl.sum())
            sec["name_length_pairs"] += int((_PAIR_FIXED + dl + jn).sum())
            sec["names"] += int(jn.sum())
            sec["sequences"] += int((sb + 5).sum())
            sec["sorted_sequences"] += int((sb + 5).sum())
            fa = int(ends[-1])
            n += len(names)
        if n != self.records.count:
            raise RecordsGoneError(
                f"{self.records.label}: {n} records read, {self.records.count} recorded"
                " (replaced meanwhile?)"
            )
        self.count = n
        self.fa_starts = np.concatenate([*starts, np.array([fa], dtype=np.int64)])
        # {"a":[e,e],"b":[...],...}: braces, and per section its key, ":[", "]", commas
        seqcol_size = 2 + len(sec) - 1
        seqcol_size += sum(
            len(seqcol.json_bytes(a)) + 3 + t + max(n - 1, 0) for a, t in sec.items()
        )
        self.sizes = (fa, fai, dct + len(DICT_HEADER), dct + len(DICT_HEADER), sizes, seqcol_size)

    def size(self, kind: GenomeFileKind = GenomeFileKind.FASTA) -> int:
        return self.sizes[kind]

    # ---- blocks of records -------------------------------------------------------------------
    @property
    def blocks(self) -> int:
        return len(self.fa_starts) - 1

    def block_of(self, offset: int) -> int:
        """The block whose FASTA bytes hold `offset` (binary search over the checkpoints)."""
        return int(np.searchsorted(self.fa_starts, offset, side="right")) - 1

    def load_block(self, b: int) -> Block:
        """Block `b`'s records from the source (by ordinal)."""
        first = b * BLOCK_RECORDS
        recs = self.records.records(first, BLOCK_RECORDS)
        want = min(BLOCK_RECORDS, self.count - first)
        if len(recs) != want or (recs and recs[0].ordinal != first):
            raise RecordsGoneError(
                f"{self.records.label}: no records {first}.. any more (replaced?)"
            )
        lay = FastaLayout.build([(r.name, r.length) for r in recs], self.width)
        if lay.size != int(self.fa_starts[b + 1] - self.fa_starts[b]):
            raise RecordsGoneError(f"{self.records.label}: block {b} changed size")
        return Block(first, tuple(r.seq_id for r in recs), lay)

    def block(self, b: int) -> Block:
        blk = self._cache.get((self.key, b))
        if blk is None:
            blk = self.load_block(b)
            self._cache.put((self.key, b), blk)
        return blk

    def cached_block(self, b: int) -> Block | None:
        return self._cache.get((self.key, b))

    def record_start(self, ordinal: int) -> int:
        """File offset of record `ordinal`'s header."""
        b, i = divmod(ordinal, BLOCK_RECORDS)
        return int(self.fa_starts[b]) + int(self.block(b).layout.record_offsets[i])

    # ---- the FASTA ---------------------------------------------------------------------------
    def read(
        self,
        offset: int,
        size: int,
        fetch: Fetch,
        *,
        cached: bool = False,
        blocks: Sequence[Block] | None = None,
    ) -> bytes | np.ndarray:
        """FASTA bytes [offset, offset+size) (clipped at EOF) as any contiguous buffer.

        `fetch(seq_id, start, end)` gives residues; with `cached`, blocks and residues must be
        in memory already (`fetch` returns None when they are not) or NotCached is raised.
        `blocks`: every block, held by the caller (a handle that keeps its bytes).
        """
        if offset < 0 or size < 0:
            raise ValueError(f"negative offset/size ({offset}, {size})")
        end = min(offset + size, int(self.fa_starts[-1]))
        out: list[bytes | np.ndarray] = []
        pos = offset
        while pos < end:
            b = self.block_of(pos)
            if blocks is not None:
                blk = blocks[b]
            elif cached:
                found = self.cached_block(b)
                if found is None:
                    raise NotCached
                blk = found
            else:
                blk = self.block(b)
            start, stop = int(self.fa_starts[b]), int(self.fa_starts[b + 1])
            n = min(end, stop) - pos
            out.append(_render_block(blk, pos - start, pos - start + n, fetch, self.width))
            pos += n
        if len(out) == 1:
            return out[0]
        return b"".join(out)  # type: ignore[arg-type]  # arrays are buffers

    # ---- index files, generated in record order ----------------------------------------------
    def chunks(
        self, kind: GenomeFileKind, md5s: Callable[[list[str]], list[str]] | None = None
    ) -> Iterator[bytes]:
        """The whole content of an index file, a page of records at a time. The `.dict` needs
        `md5s(seq_ids)` (the SAM M5 of each, a page at a time: one query per page, not per
        record); its UR is `ga4gh:SQ.<seq_id>`."""
        if kind is GenomeFileKind.FASTA:
            raise ValueError("the FASTA is read by ranges (read)")
        if kind is GenomeFileKind.SEQCOL:
            yield from self._seqcol_chunks()
            return
        if kind in (GenomeFileKind.DICT, GenomeFileKind.FA_DICT):
            if md5s is None:
                raise ValueError("a .dict needs the sequences' MD5s")
            yield DICT_HEADER
        w, fa = self.width, 0
        for recs in self._pages():
            if kind is GenomeFileKind.FAI:
                # fasta_view.fai_line's rows, a page at a time: offsets by numpy, one f-string
                # a row (a 3 M-record .fai is 118 MB)
                names = [r.name for r in recs]
                ln = np.fromiter((r.length for r in recs), dtype=np.int64, count=len(recs))
                header = _name_columns(names)[0] + 2
                ends = fa + np.cumsum(header + ln + (ln + (w - 1)) // w)
                seqoff = ends - ln - (ln + (w - 1)) // w
                lb = np.minimum(ln, w)
                rows = zip(names, ln.tolist(), seqoff.tolist(), lb.tolist(), strict=True)
                text = "".join(f"{n}\t{x}\t{o}\t{b}\t{b + 1}\n" for n, x, o, b in rows if x)
                yield text.encode("utf-8")
                fa = int(ends[-1])
            elif kind is GenomeFileKind.CHROM_SIZES:
                yield "".join(f"{r.name}\t{r.length}\n" for r in recs).encode("utf-8")
            else:
                assert md5s is not None
                m5 = md5s([r.seq_id for r in recs])
                entries = [
                    DictEntry(r.name, r.length, m, "ga4gh:SQ." + r.seq_id)
                    for r, m in zip(recs, m5, strict=True)
                ]
                yield dict_text(entries, header=False)

    def text(
        self, kind: GenomeFileKind, md5s: Callable[[list[str]], list[str]] | None = None
    ) -> bytes:
        """A whole index file (for small ones); checked against the size stat shows."""
        data = b"".join(self.chunks(kind, md5s))
        if len(data) != self.size(kind):
            raise RuntimeError(
                f"{self.records.label}{kind.suffix}: {len(data)} bytes, sized {self.size(kind)}"
            )
        return data

    def _pages(self) -> Iterator[Sequence[Rec]]:
        start = 0
        while start < self.count:
            recs = self.records.records(start, TEXT_PAGE)
            if not recs or recs[0].ordinal != start:
                raise RecordsGoneError(
                    f"{self.records.label}: no records {start}.. any more (replaced?)"
                )
            yield recs
            start = recs[-1].ordinal + 1

    def _seqcol_chunks(self) -> Iterator[bytes]:
        """Level 2 as `GET /collection/{digest}?level=2` answers it, byte for byte."""
        yield from seqcol.level2_json(
            SEQCOL_SECTIONS, lambda attribute: self.records.attribute_pages(attribute, TEXT_PAGE)
        )


def _render_block(blk: Block, a: int, b: int, fetch: Fetch, width: int) -> bytes | np.ndarray:
    """Bytes [a, b) of a block. Records the window covers whole (many, in a transcriptome) are
    written as header + wrapped residues without the layout's piecewise arithmetic; the
    partial first and last records, and a window inside one record, go through the layout."""
    lay, ids = blk.layout, blk.seq_ids

    def residues(r: int, start: int, stop: int) -> bytes | np.ndarray:
        data = fetch(ids[r], start, stop)
        if data is None:
            raise NotCached
        return data

    first, last = lay.record_at(a), lay.record_at(b - 1)
    if first == last:
        return lay.render_buffer(a, b - a, residues)
    offsets, lengths = lay.record_offsets, lay.lengths
    head_end = int(offsets[first + 1])
    parts: list[bytes | np.ndarray] = [lay.render_buffer(a, head_end - a, residues)]
    for r in range(first + 1, last):
        parts.append(lay.header(r))
        n = int(lengths[r])
        if not n:
            continue  # an empty record is its header line alone
        res = residues(r, 0, n)
        if n <= width:
            parts.append(res)
            parts.append(b"\n")
        else:
            parts.append(_wrap(res, width))
    tail_start = int(offsets[last])
    parts.append(lay.render_buffer(tail_start, b - tail_start, residues))
    return b"".join(parts)  # type: ignore[arg-type]  # arrays are buffers


def _wrap(residues: bytes | np.ndarray, width: int) -> np.ndarray:
    """Whole-record residues as FASTA lines of `width`, newline-terminated."""
    arr = residues if isinstance(residues, np.ndarray) else np.frombuffer(residues, np.uint8)
    n = len(arr)
    full, rest = divmod(n, width)
    out = np.empty(n + full + (1 if rest else 0), dtype=np.uint8)
    grid = out[: full * (width + 1)].reshape(full, width + 1)
    grid[:, :width] = arr[: full * width].reshape(full, width)
    grid[:, width] = 10
    if rest:
        out[full * (width + 1) : -1] = arr[full * width :]
        out[-1] = 10
    return out
