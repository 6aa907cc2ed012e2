"""The files of /collections: a sequence collection as one FASTA with its index files.

The bytes and sizes are `seqrepofs.genome_layout`'s (the same mechanism renders the
whole-assembly files); this module adds what the daemon needs: the collections database of each
mounted instance, bounded caches of layouts and blocks of records shared by all handles, the
content of an open file, and index files generated front to back per handle
(`StreamedContent`; a small one is rendered whole at open).

A collection never changes once recorded: `--replace` records the new records under a new
collection id and deletes the old one, so (instance, collection id, line width) names the
bytes of every file for good and layouts and blocks are cached under that key.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Hashable, Iterator, Sequence
from datetime import UTC, datetime

import numpy as np
from cachetools import LRUCache

from ..genome_layout import Block, GenomeFileKind, GenomeLayout, NotCached, RecordsGoneError
from ..store.collections import CollectionInfo, CollectionStore, Record
from .source import Instance

LAYOUT_CACHE_SIZE = 256  # collections whose sizes and checkpoints are kept (process-wide)
BLOCK_CACHE_SIZE = 32  # blocks of 1,024 records kept (process-wide; about 150 KB each)
PIN_RECORDS = 16_384  # a master's collection at most this long is read whole at open
SMALL_TEXT_BYTES = 1 << 20  # index files up to this size are rendered whole at open
WINDOW_BYTES = 4 << 20  # streamed bytes kept behind the reader (re-reads, reordered reads)

CollectionGoneError = RecordsGoneError


class StoreRecords:
    """The records of one stored collection (`genome_layout.RecordSource`)."""

    def __init__(self, store: CollectionStore, info: CollectionInfo) -> None:
        self.store = store
        self.info = info
        self.key: Hashable = (store.path, info.id)
        self.label = f"collection {info.name}"
        self.count = info.count

    def column_pages(self, page: int) -> Iterator[tuple[list[str], list[int], list[int]]]:
        return self.store.column_pages(self.info, page)

    def records(self, start: int, limit: int) -> Sequence[Record]:
        return self.store.records(self.info, start, limit)

    def attribute_pages(self, attribute: str, page: int) -> Iterator[list[object]]:
        return self.store.iter_attribute(self.info, attribute, page)


class _SharedBlocks:
    """The daemon's bounded cache of blocks (`genome_layout.BlockCache`)."""

    def __init__(self, size: int) -> None:
        self._lru: LRUCache = LRUCache(size)
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Block | None:
        with self._lock:
            return self._lru.get(key)  # type: ignore[no-any-return]

    def put(self, key: Hashable, block: Block) -> None:
        with self._lock:
            self._lru[key] = block

    def clear(self) -> None:
        with self._lock:
            self._lru.clear()


class CollectionViews:
    """Per daemon: the collection stores of the mounted instances, and bounded caches of
    layouts (sizes, checkpoints) and blocks of records."""

    def __init__(self, width: int) -> None:
        self.width = width
        self._lock = threading.Lock()
        self._stores: dict[str, CollectionStore] = {}
        self._layouts: LRUCache = LRUCache(LAYOUT_CACHE_SIZE)
        self._blocks = _SharedBlocks(BLOCK_CACHE_SIZE)

    def store(self, instance: Instance) -> CollectionStore:
        """The instance's collections database (opened once per instance)."""
        with self._lock:
            store = self._stores.get(instance.path)
            if store is None:
                store = self._stores[instance.path] = CollectionStore(instance.path)
            return store

    def layout(self, instance: Instance, info: CollectionInfo) -> GenomeLayout:
        """The collection's layout (one scan of its records the first time)."""
        store = self.store(instance)
        key = (store.path, info.id, self.width)
        with self._lock:
            lay = self._layouts.get(key)
        if lay is None:
            lay = GenomeLayout(StoreRecords(store, info), self.width, self._blocks)
            with self._lock:
                self._layouts[key] = lay
        return lay  # type: ignore[no-any-return]

    def close(self) -> None:
        with self._lock:
            stores, self._stores = list(self._stores.values()), {}
            self._layouts.clear()
        self._blocks.clear()
        for store in stores:
            store.close()


class GenomeFasta:
    """An open whole-genome FASTA (a collection's or a whole-assembly view's): reads render
    blocks of records (`GenomeLayout.read`).

    `pinned` holds every block of a small collection of a writable master, read at open, so
    the handle keeps its bytes if the collection is replaced meanwhile.
    """

    inline = True  # reads may run on the trio thread, as an alias's .fa does

    def __init__(
        self, layout: GenomeLayout, instance: Instance, pinned: list[Block] | None = None
    ) -> None:
        self.layout = layout
        self.instance = instance
        self.pinned = pinned

    @classmethod
    def open(cls, layout: GenomeLayout, instance: Instance) -> GenomeFasta:
        pinned = None
        if not instance.frozen and layout.count <= PIN_RECORDS:
            pinned = [layout.load_block(b) for b in range(layout.blocks)]
        return cls(layout, instance, pinned)

    def read(self, tree: object, offset: int, size: int) -> bytes | np.ndarray:
        return self.layout.read(offset, size, self.instance.fetch, blocks=self.pinned)

    def read_cached(self, offset: int, size: int) -> bytes | np.ndarray | None:
        try:
            return self.layout.read(
                offset, size, self.instance.fetch_cached, cached=True, blocks=self.pinned
            )
        except NotCached:
            return None


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


def open_index(
    layout: GenomeLayout, kind: GenomeFileKind, instance: Instance, what: str
) -> bytes | StreamedContent:
    """An index file's content: rendered whole if small, else generated per handle."""
    md5s = instance.sr.sam_m5_many
    if layout.size(kind) <= SMALL_TEXT_BYTES:
        return layout.text(kind, md5s)
    return StreamedContent(layout.size(kind), lambda: layout.chunks(kind, md5s), what)
