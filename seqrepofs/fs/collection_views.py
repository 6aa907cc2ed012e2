"""The files of /collections: a sequence collection as one FASTA with its index files.

A collection (`store.collections`) may hold millions of records (a transcriptome), so no file
of it is held in memory. One streamed scan of its records gives every file's exact size and,
every BLOCK_RECORDS records, where that block starts in the FASTA (a checkpoint: 8 bytes per
1,024 records). A read of the FASTA finds its block by binary search over the checkpoints,
reads that block's records by ordinal (one index range query, kept in a bounded cache of
blocks) and renders the bytes with the block's `FastaLayout`, as an alias's `.fa` is rendered.
The index files (`.fa.fai`, `.dict`, `.chrom.sizes`, `.seqcol.json`) are read front to back
by every tool, so they are generated in order from the records, a page at a time, per open
handle (`StreamedContent`); a small one is rendered whole at open.

A collection never changes once recorded: `--replace` records the new records under a new
collection id and deletes the old one, so (instance, collection id, line width) names the
bytes of every file for good and layouts and blocks are cached under that key.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from cachetools import LRUCache

from ..errors import SeqRepoError
from ..fasta_view import DictEntry, FastaLayout, dict_text
from ..store.collections import CollectionInfo, CollectionStore
from .content import CollectionKind
from .source import Instance

BLOCK_RECORDS = 1024  # records per checkpoint and per cached block
LAYOUT_CACHE_SIZE = 256  # collections whose sizes and checkpoints are kept (process-wide)
BLOCK_CACHE_SIZE = 32  # blocks of records kept (process-wide; about 150 KB each)
PIN_RECORDS = 16_384  # a master's collection at most this long is read whole at open
SMALL_TEXT_BYTES = 1 << 20  # index files up to this size are rendered whole at open
SCAN_PAGE = 16_384  # records per page of the sizing scan
STREAM_PAGE = 4096  # records per page of a streamed index file
WINDOW_BYTES = 4 << 20  # streamed bytes kept behind the reader (re-reads, reordered reads)

_POW10 = np.array([10**k for k in range(1, 19)], dtype=np.int64)
_JSON_PLAIN_RE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")  # what json.dumps escapes
_DICT_HEADER = b"@HD\tVN:1.0\tSO:unsorted\n"
# "@SQ\tSN:" "\tLN:" "\tM5:" + 32 hex + "\tUR:ga4gh:SQ." + "\n": name, digits, seq_id apart
_DICT_FIXED = 7 + 4 + 4 + 32 + 13 + 1
_SEQCOL_SECTIONS = ("lengths", "name_length_pairs", "names", "sequences", "sorted_sequences")
# {"length":N,"name":"..."}: everything but the digits and the JSON string
_PAIR_FIXED = len(b'{"length":,"name":}')


class CollectionGoneError(SeqRepoError, LookupError):
    """The collection's records were deleted (replaced on a master) while a file was read."""


def _digits(a: np.ndarray) -> np.ndarray:
    """Decimal digits of each non-negative int64."""
    return np.searchsorted(_POW10, a, side="right").astype(np.int64) + 1


def _json(obj: object) -> bytes:
    """As the REST service writes JSON: ASCII, no spaces."""
    return json.dumps(obj, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def _name_columns(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(UTF-8 bytes, JSON string length) of each name; vectorised when all are plain ASCII."""
    joined = "".join(names)
    if joined.isascii():
        nbytes = np.fromiter(map(len, names), dtype=np.int64, count=len(names))
    else:
        nbytes = np.fromiter(
            (len(n.encode("utf-8")) for n in names), dtype=np.int64, count=len(names)
        )
    if _JSON_PLAIN_RE.search(joined) is None:
        return nbytes, nbytes + 2
    jlen = np.fromiter(
        (len(json.dumps(n, ensure_ascii=True)) for n in names), dtype=np.int64, count=len(names)
    )
    return nbytes, jlen


@dataclass(frozen=True)
class Block:
    """BLOCK_RECORDS consecutive records, laid out from the block's first byte."""

    first: int  # ordinal of the first record
    seq_ids: tuple[str, ...]
    layout: FastaLayout


class CollectionLayout:
    """Sizes of every file of one collection at one line width, and the FASTA's checkpoints.

    Built by one scan of the records (`scan`); holds O(records / BLOCK_RECORDS) numbers.
    """

    def __init__(
        self, store: CollectionStore, info: CollectionInfo, width: int, views: CollectionViews
    ) -> None:
        self.store = store
        self.info = info
        self.width = width
        self._views = views
        self.key = (store.path, info.id, width)
        self.count = 0
        self.sizes: tuple[int, ...] = ()
        self.fa_starts = np.zeros(1, dtype=np.int64)  # block b starts at fa_starts[b]
        self._scan()

    def _scan(self) -> None:
        w = self.width
        starts: list[np.ndarray] = []
        n = fa = fai = dct = sizes = 0
        sec = dict.fromkeys(_SEQCOL_SECTIONS, 0)
        for names, lengths, id_lens in self.store.column_pages(self.info, SCAN_PAGE):
            nb, jn = _name_columns(names)
            ln = np.asarray(lengths, dtype=np.int64)
            sb = np.asarray(id_lens, dtype=np.int64)
            rec = nb + 2 + ln + (ln + (w - 1)) // w
            ends = fa + np.cumsum(rec)
            rec_starts = ends - rec
            # checkpoints at ordinals that are multiples of BLOCK_RECORDS (pages are too)
            starts.append(rec_starts[::BLOCK_RECORDS].copy())
            nz = ln > 0
            if nz.any():
                lb = np.minimum(ln[nz], w)
                seqoff = rec_starts[nz] + nb[nz] + 2
                fai += int(
                    (
                        nb[nz]
                        + _digits(ln[nz])
                        + _digits(seqoff)
                        + _digits(lb)
                        + _digits(lb + 1)
                        + 5
                    ).sum()
                )
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
        if n != self.info.count:
            raise CollectionGoneError(
                f"collection {self.info.name}: {n} records read, {self.info.count} recorded"
                " (replaced meanwhile?)"
            )
        self.count = n
        self.fa_starts = np.concatenate([*starts, np.array([fa], dtype=np.int64)])
        seqcol = (
            2
            + sum(  # "{" "}" + per section: "name":[ elements, commas ] and ","
                len(_json(a)) + 3 + total + max(n - 1, 0) for a, total in sec.items()
            )
            + len(_SEQCOL_SECTIONS)
            - 1
        )
        dct += len(_DICT_HEADER)
        self.sizes = (fa, fai, dct, dct, sizes, seqcol)

    def size(self, kind: CollectionKind) -> int:
        return self.sizes[kind]

    @property
    def blocks(self) -> int:
        return len(self.fa_starts) - 1

    def block_of(self, offset: int) -> int:
        """The block whose FASTA bytes hold `offset` (binary search over the checkpoints)."""
        return int(np.searchsorted(self.fa_starts, offset, side="right")) - 1

    def load_block(self, b: int) -> Block:
        """Block `b`'s records from the store (one range query by ordinal)."""
        first = b * BLOCK_RECORDS
        recs = self.store.records(self.info, first, BLOCK_RECORDS)
        want = min(BLOCK_RECORDS, self.count - first)
        if len(recs) != want or (recs and recs[0].ordinal != first):
            raise CollectionGoneError(
                f"collection {self.info.name} (id {self.info.id}) has no records {first}.. "
                "any more (replaced?)"
            )
        lay = FastaLayout.build([(r.name, r.length) for r in recs], self.width)
        if lay.size != int(self.fa_starts[b + 1] - self.fa_starts[b]):
            raise RuntimeError(f"collection {self.info.name}: block {b} changed size")
        return Block(first, tuple(r.seq_id for r in recs), lay)

    def block(self, b: int) -> Block:
        return self._views.block(self, b)

    def cached_block(self, b: int) -> Block | None:
        return self._views.cached_block(self, b)

    # ---- index files, generated in order ---------------------------------------------------
    def chunks(self, kind: CollectionKind, instance: Instance) -> Iterator[bytes]:
        """The whole content of an index file, a page of records at a time."""
        if kind is CollectionKind.SEQCOL:
            yield from self._seqcol_chunks()
            return
        if kind in (CollectionKind.DICT, CollectionKind.FA_DICT):
            yield _DICT_HEADER
        w, fa = self.width, 0
        for recs in self._pages():
            if kind is CollectionKind.FAI:
                lines = []
                for r in recs:
                    header = len(r.name.encode("utf-8")) + 2
                    if r.length:
                        lb = min(r.length, w)
                        lines.append(f"{r.name}\t{r.length}\t{fa + header}\t{lb}\t{lb + 1}\n")
                    fa += header + r.length + -(-r.length // w)
                yield "".join(lines).encode("utf-8")
            elif kind is CollectionKind.CHROM_SIZES:
                yield "".join(f"{r.name}\t{r.length}\n" for r in recs).encode("utf-8")
            else:
                m5 = instance.sr.sam_m5
                yield dict_text(
                    [
                        DictEntry(r.name, r.length, m5(r.seq_id), "ga4gh:SQ." + r.seq_id)
                        for r in recs
                    ],
                    header=False,
                )

    def _pages(self) -> Iterator[list]:  # type: ignore[type-arg]
        start = 0
        while start < self.count:
            recs = self.store.records(self.info, start, STREAM_PAGE)
            if not recs or recs[0].ordinal != start:
                raise CollectionGoneError(
                    f"collection {self.info.name} (id {self.info.id}) has no records {start}.."
                    " any more (replaced?)"
                )
            yield recs
            start = recs[-1].ordinal + 1

    def _seqcol_chunks(self) -> Iterator[bytes]:
        """Level 2 as `GET /collection/{digest}?level=2` answers it, byte for byte."""
        for i, attribute in enumerate(_SEQCOL_SECTIONS):
            yield (b"{" if i == 0 else b",") + _json(attribute) + b":["
            first = True
            for page in self.store.iter_attribute(self.info, attribute, STREAM_PAGE):
                chunk = _json(page)[1:-1]
                if chunk:
                    yield chunk if first else b"," + chunk
                    first = False
            yield b"]"
        yield b"}"


class CollectionViews:
    """Per daemon: the collection stores of the mounted instances, and bounded caches of
    layouts (sizes, checkpoints) and blocks of records."""

    def __init__(self, width: int) -> None:
        self.width = width
        self._lock = threading.Lock()
        self._stores: dict[str, CollectionStore] = {}
        self._layouts: LRUCache = LRUCache(LAYOUT_CACHE_SIZE)
        self._blocks: LRUCache = LRUCache(BLOCK_CACHE_SIZE)

    def store(self, instance: Instance) -> CollectionStore:
        """The instance's collections database (opened once per instance)."""
        with self._lock:
            store = self._stores.get(instance.path)
            if store is None:
                store = self._stores[instance.path] = CollectionStore(instance.path)
            return store

    def layout(self, instance: Instance, info: CollectionInfo) -> CollectionLayout:
        store = self.store(instance)
        key = (store.path, info.id, self.width)
        with self._lock:
            lay = self._layouts.get(key)
        if lay is None:
            lay = CollectionLayout(store, info, self.width, self)
            with self._lock:
                self._layouts[key] = lay
        return lay  # type: ignore[no-any-return]

    def block(self, lay: CollectionLayout, b: int) -> Block:
        key = (lay.key, b)
        with self._lock:
            blk = self._blocks.get(key)
        if blk is None:
            blk = lay.load_block(b)
            with self._lock:
                self._blocks[key] = blk
        return blk  # type: ignore[no-any-return]

    def cached_block(self, lay: CollectionLayout, b: int) -> Block | None:
        with self._lock:
            return self._blocks.get((lay.key, b))  # type: ignore[no-any-return]

    def close(self) -> None:
        with self._lock:
            stores, self._stores = list(self._stores.values()), {}
            self._layouts.clear()
            self._blocks.clear()
        for store in stores:
            store.close()


class _NotCached(Exception):
    """A block or residue range of a read is not in memory."""


class CollectionFasta:
    """An open `/collections/<name>.fa`: reads render blocks of records.

    `pinned` holds every block of a small collection of a writable master, read at open, so
    the handle keeps its bytes if the collection is replaced meanwhile.
    """

    inline = True  # reads may run on the trio thread, as an alias's .fa does

    def __init__(
        self, layout: CollectionLayout, instance: Instance, pinned: list[Block] | None = None
    ) -> None:
        self.layout = layout
        self.instance = instance
        self.pinned = pinned

    @classmethod
    def open(cls, layout: CollectionLayout, instance: Instance) -> CollectionFasta:
        pinned = None
        if not instance.frozen and layout.count <= PIN_RECORDS:
            pinned = [layout.load_block(b) for b in range(layout.blocks)]
        return cls(layout, instance, pinned)

    def read(self, tree: object, offset: int, size: int) -> bytes | np.ndarray:
        return self._render(offset, size, cached=False)

    def read_cached(self, offset: int, size: int) -> bytes | np.ndarray | None:
        try:
            return self._render(offset, size, cached=True)
        except _NotCached:
            return None

    def _block(self, b: int, cached: bool) -> Block:
        if self.pinned is not None:
            return self.pinned[b]
        if not cached:
            return self.layout.block(b)
        blk = self.layout.cached_block(b)
        if blk is None:
            raise _NotCached
        return blk

    def _render(self, offset: int, size: int, cached: bool) -> bytes | np.ndarray:
        lay = self.layout
        end = min(offset + size, int(lay.fa_starts[-1]))
        out: list[bytes | np.ndarray] = []
        pos = offset
        inst = self.instance
        while pos < end:
            b = lay.block_of(pos)
            blk = self._block(b, cached)
            start, stop = int(lay.fa_starts[b]), int(lay.fa_starts[b + 1])
            fetch = _fetcher(inst, blk.seq_ids, cached)
            n = min(end, stop) - pos
            out.append(_render_block(blk, pos - start, pos - start + n, fetch, lay.width))
            pos += n
        if len(out) == 1:
            return out[0]
        return b"".join(out)  # type: ignore[arg-type]  # arrays are buffers


def _render_block(
    blk: Block,
    a: int,
    b: int,
    fetch: Callable[[int, int, int], bytes | np.ndarray],
    width: int,
) -> bytes | np.ndarray:
    """Bytes [a, b) of a block. Records the window covers whole (many, in a transcriptome) are
    written as header + wrapped residues without the layout's piecewise arithmetic; the
    partial first and last records, and a window inside one record, go through the layout."""
    lay = blk.layout
    first, last = lay.record_at(a), lay.record_at(b - 1)
    if first == last:
        return lay.render_buffer(a, b - a, fetch)
    offsets = lay.record_offsets
    parts: list[bytes | np.ndarray] = []
    head_end = int(offsets[first + 1])
    parts.append(lay.render_buffer(a, head_end - a, fetch))
    lengths = lay.lengths
    for r in range(first + 1, last):
        parts.append(lay.header(r))
        n = int(lengths[r])
        res = fetch(r, 0, n)
        if n <= width:
            parts.append(res)
            parts.append(b"\n")
        else:
            parts.append(_wrap(res, width))
    tail_start = int(offsets[last])
    parts.append(lay.render_buffer(tail_start, b - tail_start, fetch))
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


def _fetcher(
    inst: Instance, ids: tuple[str, ...], cached: bool
) -> Callable[[int, int, int], bytes | np.ndarray]:
    """fetch(record, start, end) for a block's layout: from the store, or from memory only."""
    if not cached:
        return lambda r, a, c: inst.fetch(ids[r], a, c)

    def fetch(r: int, a: int, c: int) -> bytes | np.ndarray:
        data = inst.fetch_cached(ids[r], a, c)
        if data is None:
            raise _NotCached
        return data

    return fetch


class StreamedContent:
    """An open index file of a large collection: generated front to back, with a window of
    the last WINDOW_BYTES kept, so sequential readers (every tool) cost one pass; a read
    before the window starts the generation over (correct, only slower)."""

    inline = False  # a page of records is a database query: worker threads only

    def __init__(self, size: int, chunks: Callable[[], Iterator[bytes]], what: str) -> None:
        self.size = size
        self._chunks = chunks
        self._what = what
        self._lock = threading.Lock()
        self._gen: Iterator[bytes] | None = None
        self._pos = 0  # bytes generated so far
        self._window: deque[tuple[int, bytes]] = deque()
        self._kept = 0

    def read(self, tree: object, offset: int, size: int) -> bytes:
        with self._lock:
            end = min(offset + size, self.size)
            if offset >= end:
                return b""
            kept_from = self._window[0][0] if self._window else self._pos
            if self._gen is None or offset < kept_from:
                self._restart()
            gen = self._gen
            assert gen is not None
            while self._pos < end:
                chunk = next(gen, None)
                if chunk is None:
                    raise RuntimeError(
                        f"{self._what}: content ends at {self._pos} bytes, stat said {self.size}"
                    )
                if chunk:
                    self._window.append((self._pos, chunk))
                    self._pos += len(chunk)
                    self._kept += len(chunk)
                self._trim(offset)
            return self._slice(offset, end)

    def read_cached(self, offset: int, size: int) -> bytes | None:
        with self._lock:
            end = min(offset + size, self.size)
            if offset >= end:
                return b""
            if not self._window or offset < self._window[0][0] or end > self._pos:
                return None
            return self._slice(offset, end)

    def _restart(self) -> None:
        self._gen = self._chunks()
        self._pos = 0
        self._window.clear()
        self._kept = 0

    def _trim(self, offset: int) -> None:
        """Drop chunks wholly before `offset` while more than WINDOW_BYTES are kept."""
        win = self._window
        while win and self._kept - len(win[0][1]) >= WINDOW_BYTES:
            start, chunk = win[0]
            if start + len(chunk) > offset:
                break
            win.popleft()
            self._kept -= len(chunk)

    def _slice(self, offset: int, end: int) -> bytes:
        parts = []
        for start, chunk in self._window:
            stop = start + len(chunk)
            if stop <= offset:
                continue
            if start >= end:
                break
            parts.append(chunk[max(0, offset - start) : end - start])
        return b"".join(parts)


def added_ns(info: CollectionInfo) -> int | None:
    """When the collection was recorded, in ns (its files' mtime on a master)."""
    try:
        when = datetime.strptime(info.added, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except (TypeError, ValueError):
        return None
    return int(when.timestamp()) * 1_000_000_000


def render_whole(layout: CollectionLayout, kind: CollectionKind, instance: Instance) -> bytes:
    data = b"".join(layout.chunks(kind, instance))
    if len(data) != layout.size(kind):
        raise RuntimeError(
            f"collection {layout.info.name}{kind.suffix}: {len(data)} bytes, stat said "
            f"{layout.size(kind)}"
        )
    return data
