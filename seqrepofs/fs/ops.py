"""The pyfuse3 request handlers: translate kernel requests into `Tree` calls.

Every handler runs on the single trio thread, so listings, opens that query sqlite and other
work that may wait run in a small pool of long-lived worker threads (`_io`). The pool is a
ThreadPoolExecutor rather than `trio.to_thread`: trio retires idle threads after 10 s, and the
store keeps one sqlite connection per thread it has seen, so short-lived threads would leak
connections in a daemon that runs for months. The pool size is the capacity limit.

File reads are the exception: they run on the trio thread (see `ReadPlacement`), because the
hop to a worker and back costs more than the read. So do lookups of alias files and the
rebuilding of nodes from their inode numbers, as far as they need no waiting (`_store`): one
indexed query, where the hop cost more than the query.

No request may take the daemon down: each handler turns `FsError` into its errno and any
other exception into EIO, logged with the path.
"""

from __future__ import annotations

import bisect
import errno
import functools
import itertools
import logging
import os
import sqlite3
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import numpy as np
import outcome
import pyfuse3
import trio

from ..errors import SeqRepoError
from ..lazy.errors import RemoteChangedError, RemoteReadError
from ..store.nowait import WouldWait, no_waiting
from .content import CollectionKind, FileKind
from .identity import MAX_COLLECTION_ID, MAX_ROWID, ROOT_INODE
from .nodes import FILE_MODE, LONG_TIMEOUT, CollectionsDir, NamespaceDir, Node
from .tree import BY_DIGEST, BytesContent, Content, FsError, ListedAlias, Tree

log = logging.getLogger("seqrepofs.fs")

T = TypeVar("T")
Handler = TypeVar("Handler", bound=Callable[..., Awaitable[Any]])
SLOW_READ_WAIT = 0.001  # reads waiting this long on storage on average (seconds) ...
READER_WINDOW = 16  # ... while, among this many latest reads, ...
MIN_HANDLE_CHANGES = 3  # ... the file handle changed this often (several readers at once) ...
SLOW_READ_BACKOFF = 10.0  # ... go to the worker threads for this long
WAIT_WEIGHT = 1 / 16  # weight of the latest read in that average
# On the trio thread, only reads at least this long try the inflated blocks alone first: a
# stream's reads (`cat`: 256 KB) mostly find the prefetcher's blocks there, and that copy is
# the cheaper one; shorter reads (samtools faidx: 4-68 KB) rarely do, and a failed try cost a
# cold faidx of the benchmark's regions 16% of the trio thread's time (py-spy).
CACHED_FIRST_BYTES = 128 * 1024
BLKSIZE = 16 * 1024  # st_blksize; htslib's hFILE sizes its buffer by it (capped at 32 KB)
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_TRUNC | os.O_APPEND | os.O_CREAT
# readdir positions: 0 ".", 1 "..", small listings from 3; an alias file's entry is at
# FIRST_ENTRY + (row id << 2 | file kind), so one position names the place to resume.
FIRST_ENTRY = 3
_SUFFIXES = tuple(kind.suffix.encode() for kind in FileKind)
_COLLECTION_SUFFIXES = tuple(kind.suffix.encode() for kind in CollectionKind)
# /collections positions: by-digest at FIRST_ENTRY, file kind k of collection id c at
# FIRST_ENTRY + 1 + (c << 3 | k)
_KIND_BITS = 3
_BUSY = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED: a writer holds the database (primary codes)


@dataclass
class DirHandle:
    """An open directory. A namespace listing holds the last page it read (one page per
    open directory, whatever the listing's length), as the kernel asks in small pieces."""

    node: Node
    small: list[Node] | None = None  # root/instance listings, fixed at opendir
    page: list[ListedAlias] = field(default_factory=list)
    page_after: int = -1  # the page holds the rows with ids above this, up to its last
    bases: tuple[int, ...] = ()  # inode number bases of the listed files (identity)
    ahead: Future[list[ListedAlias]] | None = None  # the page after `page`, being read
    lock: trio.Lock = field(default_factory=trio.Lock)


@dataclass
class FileHandle:
    node: Node
    content: Content


def _guarded(describe: str) -> Callable[[Handler], Handler]:
    """Map errors of a handler: FsError -> its errno, anything else -> EIO (logged with path).

    `describe` names the first argument: "inode", "fh" (file handle), "dir" (dir handle) or
    "parent" (parent inode + name).
    """

    def deco(fn: Handler) -> Handler:
        @functools.wraps(fn)
        async def wrapper(self: Operations, *args: Any) -> Any:
            try:
                return await fn(self, *args)
            except pyfuse3.FUSEError:
                raise
            except FsError as exc:
                log.debug("%s %s: %s", fn.__name__, self._describe(describe, args), exc)
                raise pyfuse3.FUSEError(exc.errno) from None
            except (RemoteReadError, RemoteChangedError) as exc:  # logged once per cause
                log.debug("%s %s: %s", fn.__name__, self._describe(describe, args), exc)
                raise pyfuse3.FUSEError(errno.EIO) from None
            except SeqRepoError as exc:  # damaged files and databases: the message names them
                log.error("%s %s: %s", fn.__name__, self._describe(describe, args), exc)
                raise pyfuse3.FUSEError(errno.EIO) from None
            except Exception:
                log.exception("%s %s: internal error", fn.__name__, self._describe(describe, args))
                raise pyfuse3.FUSEError(errno.EIO) from None

        return cast(Handler, wrapper)  # same parameters, same result

    return deco


class ReadPlacement:
    """Where a file read that needs storage runs: on the trio thread, or in the worker pool.

    On the trio thread by default. A read there costs a pread of page-cached or local-disk BGZF
    blocks and their inflation (tens of microseconds per block); the hop to a worker thread and
    back costs about 100 us of CPU in futex wake-ups, more than the read (measured: `samtools
    faidx` of 20,000 regions through the mount 3.5-4.5 s with the hop, 2.3-2.5 s without; four
    parallel readers 3.4 s and 2.3 s). On a cold local disk a read waits about 0.05-0.1 ms.
    But reads that wait on slow storage (a network filesystem) hold up every other request,
    so when the running mean wait reaches SLOW_READ_WAIT while several readers take turns
    (their file handles interleave), reads go to the worker pool for SLOW_READ_BACKOFF, then
    are tried here again. A lone reader stays here however long it waits: it has nobody to
    hold up, and the hop would only add to its wait (a cold `samtools faidx` of the 20,000
    regions with every read in the pool took 5.1 s instead of 3.8 s). Reads of a writable
    instance (a live master) always go to the pool: they may query SQLite while a loader holds
    its lock. A read of a snapshot URL (`remote`) runs here only as far as it needs no fetch
    (store.nowait): one that would wait on the network (up to --http-timeout) raises WouldWait
    and goes to the pool, as inline it would hold up every other request of the mount, cached
    reads of other processes included; reads the range cache answers stay here, without the
    hop (docs/lazy.md).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, remote: bool = False) -> None:
        self._clock = clock
        self.remote = remote
        self._pool_until = 0.0
        self._mean_wait = 0.0
        self._readers: deque[int] = deque(maxlen=READER_WINDOW)  # file handles, latest last

    def inline(self) -> bool:
        return self._clock() >= self._pool_until

    def waited(self, seconds: float, reader: int) -> None:
        """Report how long an inline read of file handle `reader` waited (its wall time less
        its CPU time)."""
        self._readers.append(reader)
        self._mean_wait += (max(seconds, 0.0) - self._mean_wait) * WAIT_WEIGHT
        if self._mean_wait >= SLOW_READ_WAIT and self._interleaved():
            log.info(
                "reads waited %.1f ms on storage on average: worker threads read for %.0f s",
                self._mean_wait * 1e3,
                SLOW_READ_BACKOFF,
            )
            self._pool_until = self._clock() + SLOW_READ_BACKOFF
            self._mean_wait = 0.0
            self._readers.clear()

    def _interleaved(self) -> bool:
        """Whether the latest reads came from several readers at once: their handles alternate,
        where readers one after another (samtools per chromosome) change handle once."""
        readers = self._readers
        changes = sum(1 for a, b in itertools.pairwise(readers) if a != b)
        return changes >= MIN_HANDLE_CHANGES


class Operations(pyfuse3.Operations):
    """A read-only pyfuse3 filesystem over a `Tree`."""

    supports_dot_lookup = False
    enable_writeback_cache = False
    enable_acl = False

    def __init__(self, tree: Tree, threads: int = 4) -> None:
        super().__init__()
        self.tree = tree
        self._pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="seqrepofs-io")
        self._files: dict[int, FileHandle] = {}
        self._dirs: dict[int, DirHandle] = {}
        self._fh = itertools.count(1)
        self._uid, self._gid = os.getuid(), os.getgid()
        self._statfs: pyfuse3.StatvfsData | None = None
        remote = getattr(getattr(tree.source, "sr", None), "snapshot", None) is not None
        self.placement = ReadPlacement(remote=remote)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.tree.close()

    # ---- helpers ----------------------------------------------------------------------------
    async def _io(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking store work in the worker pool without blocking the trio loop."""
        return await self._wait(self._pool.submit(fn, *args))

    async def _store(self, fn: Callable[..., T], *args: Any) -> T:
        """Run store work on the trio thread if it can finish without waiting, else in the pool.

        An alias lookup is one indexed row query (cached for a second on a master): tens of
        microseconds, less than the hop to a worker and back. On a master a loader may hold
        the database's lock, so the work runs inside `no_waiting()`: the loop's connections
        answer SQLITE_BUSY at once (busy_timeout 0) and the instance's locks are only tried;
        either raises, and the work is run again in a worker, where it may wait (it only
        reads, so running it again is harmless). A snapshot URL's queries may fetch pages:
        always in the pool. Reads that wait on slow storage (ReadPlacement) send lookups to
        the pool too.
        """
        if not self.placement.remote and self.placement.inline():
            try:
                with no_waiting():
                    return fn(*args)
            except WouldWait:
                pass
            except sqlite3.OperationalError as exc:
                if (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF not in _BUSY:
                    raise
        return await self._io(fn, *args)

    async def _wait(self, future: Future[T]) -> T:
        """The result of work submitted to the pool, awaited without blocking the trio loop."""
        task = trio.lowlevel.current_task()
        token = trio.lowlevel.current_trio_token()

        def done(fut: Future[T]) -> None:
            try:
                token.run_sync_soon(trio.lowlevel.reschedule, task, outcome.capture(fut.result))
            except trio.RunFinishedError:
                pass

        future.add_done_callback(done)
        # wait_task_rescheduled unwraps the outcome: returns the value or raises its error
        return await trio.lowlevel.wait_task_rescheduled(  # type: ignore[no-any-return]
            lambda _raise_cancel: trio.lowlevel.Abort.FAILED
        )

    async def _node(self, inode: int) -> Node:
        """The node an inode number names: from the bounded cache, else rebuilt from the
        number (it may read the alias row): on the trio thread if that needs no waiting and
        no more than a query or two (`Tree.quick`), else in a worker."""
        node = self.tree.cached(inode)
        if node is None:
            if self.tree.quick(inode):
                node = await self._store(self.tree.node, inode)
            else:
                node = await self._io(self.tree.node, inode)
        return node

    def _describe(self, kind: str, args: Sequence[Any]) -> str:
        try:
            if kind == "inode":
                return self.tree.describe(args[0])
            if kind == "fh":
                fh = self._files.get(args[0])
                return fh.node.path if fh else f"fh {args[0]}"
            if kind == "dir":
                dh = self._dirs.get(args[0])
                return dh.node.path if dh else f"dir fh {args[0]}"
            if kind == "none":
                return "/"
            if kind == "parent":
                parent = self.tree.describe(args[0]).rstrip("/")
                return f"{parent}/{os.fsdecode(args[1])}"
        except Exception:  # noqa: BLE001 - describing must never fail
            pass
        return "?"

    def attrs(self, node: Node, ino: int) -> pyfuse3.EntryAttributes:
        a = pyfuse3.EntryAttributes()
        a.st_ino = ino
        a.generation = 0
        a.entry_timeout = node.entry_timeout
        a.attr_timeout = node.attr_timeout
        a.st_mode = node.mode
        a.st_nlink = node.nlink
        a.st_uid = self._uid
        a.st_gid = self._gid
        a.st_rdev = 0
        a.st_size = node.size
        a.st_blksize = BLKSIZE
        a.st_blocks = (node.size + 511) // 512
        a.st_atime_ns = a.st_mtime_ns = a.st_ctime_ns = node.mtime_ns
        return a

    # ---- names ------------------------------------------------------------------------------
    @_guarded("parent")
    async def lookup(
        self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        parent = await self._node(parent_inode)
        try:
            text = name.decode("utf-8")
        except UnicodeDecodeError:
            raise FsError(errno.ENOENT) from None
        if isinstance(parent, NamespaceDir):
            node = await self._store(self.tree.lookup, parent, text)
        else:  # instance and root directories may open an instance or build assembly views
            node = await self._io(self.tree.lookup, parent, text)
        ino = self.tree.ino(node)
        self.tree.remember(ino, node)
        return self.attrs(node, ino)

    async def forget(self, inode_list: Sequence[tuple[int, int]]) -> None:
        """Nothing to free: a node is rebuilt from its inode number whenever it is asked
        about (identity), so the daemon keeps no per-inode state for the kernel's counts."""

    @_guarded("inode")
    async def getattr(self, inode: int, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        return self.attrs(await self._node(inode), inode)

    @_guarded("inode")
    async def readlink(self, inode: int, ctx: pyfuse3.RequestContext) -> bytes:
        node = await self._node(inode)
        return os.fsencode(await self._io(self.tree.readlink, node))

    @_guarded("inode")
    async def access(self, inode: int, mode: int, ctx: pyfuse3.RequestContext) -> bool:
        await self._node(inode)
        if mode & os.W_OK:
            raise FsError(errno.EROFS)
        return True

    # ---- directories ------------------------------------------------------------------------
    @_guarded("inode")
    async def opendir(self, inode: int, ctx: pyfuse3.RequestContext) -> int:
        node = await self._node(inode)
        if not node.is_dir:
            raise FsError(errno.ENOTDIR)
        if isinstance(node, NamespaceDir):
            handle = DirHandle(node, bases=await self._io(self.tree.listing_bases, node))
        elif isinstance(node, CollectionsDir):
            handle = DirHandle(node, bases=self.tree.collection_bases(node))
        else:
            handle = DirHandle(node, small=await self._io(self.tree.small_listing, node))
        fh = next(self._fh)
        self._dirs[fh] = handle
        return fh

    @_guarded("dir")
    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        """Positions: 0 ".", 1 "..", then children (see FIRST_ENTRY)."""
        handle = self._dirs.get(fh)
        if handle is None:
            raise FsError(errno.EBADF)
        async with handle.lock:
            for pos in range(start_id, 2):
                if not self._reply_dot(token, handle.node, "." * (pos + 1), pos + 1):
                    return
            if handle.small is not None:
                for i in range(max(start_id, FIRST_ENTRY) - FIRST_ENTRY, len(handle.small)):
                    if not self._reply(token, handle.small[i], i + FIRST_ENTRY + 1):
                        return
                return
            if isinstance(handle.node, CollectionsDir):
                await self._readdir_collections(handle, handle.node, start_id, token)
            else:
                await self._readdir_paged(handle, start_id, token)

    async def _readdir_collections(
        self, handle: DirHandle, node: CollectionsDir, start_id: int, token: Any
    ) -> None:
        """/collections: `by-digest`, then six files per collection, a page of collections
        (by id) at a time; the position names the place to resume, as in a namespace."""
        if start_id <= FIRST_ENTRY and not node.by_digest:
            sub = await self._io(self.tree.lookup, node, BY_DIGEST)
            if not self._reply(token, sub, FIRST_ENTRY + 1):
                return
        key = max(start_id, FIRST_ENTRY + 1) - FIRST_ENTRY - 1
        cid_min, kind_min = key >> _KIND_BITS, key & ((1 << _KIND_BITS) - 1)
        attrs = self.attrs(node, 0)
        attrs.st_mode = FILE_MODE
        attrs.st_nlink = 1
        attrs.attr_timeout = LONG_TIMEOUT  # a collection id's files never change
        bases, reply = handle.bases, pyfuse3.readdir_reply
        while cid_min <= MAX_COLLECTION_ID:
            page = await self._io(self.tree.collection_page, node, cid_min - 1)
            if not page:
                return
            for entry in page:
                attrs.st_atime_ns = attrs.st_mtime_ns = attrs.st_ctime_ns = entry.mtime_ns
                for kind in range(kind_min if entry.cid == cid_min else 0, len(bases)):
                    size = entry.sizes[kind]
                    if size < 0:
                        continue
                    attrs.st_ino = bases[kind] | entry.cid
                    attrs.st_size = size
                    attrs.st_blocks = (size + 511) // 512
                    pos = FIRST_ENTRY + 1 + (entry.cid << _KIND_BITS | kind)
                    name = entry.stem + _COLLECTION_SUFFIXES[kind]
                    if not reply(token, name, attrs, pos + 1):
                        return
            cid_min, kind_min = page[-1].cid + 1, 0

    async def _readdir_paged(self, handle: DirHandle, start_id: int, token: Any) -> None:
        """A namespace listing from the entry at `start_id` on, a page of rows at a time.

        The hot loop of a large listing: one attributes object is filled in per entry
        (readdir_reply copies it into the kernel's buffer at once), no node is built.
        """
        key = max(start_id, FIRST_ENTRY) - FIRST_ENTRY
        row_min, kind_min = key >> 2, key & 3
        attrs = self.attrs(handle.node, 0)
        attrs.st_mode = FILE_MODE
        attrs.st_nlink = 1
        attrs.attr_timeout = LONG_TIMEOUT  # an alias file never changes (nodes.AliasFile)
        bases, reply = handle.bases, pyfuse3.readdir_reply
        replied = 0
        while row_min <= MAX_ROWID:
            try:
                entries = await self._rows_from(handle, row_min)
            except Exception:
                if not replied:
                    raise
                # entries already sit in the kernel's buffer: deliver them, fail next call
                log.exception("readdir: fetching a page failed after %d entries", replied)
                return
            if not entries:
                return
            for entry in entries:
                rowid, sizes = entry.rowid, entry.sizes
                attrs.st_atime_ns = attrs.st_mtime_ns = attrs.st_ctime_ns = entry.mtime_ns
                for kind in range(kind_min if rowid == row_min else 0, 4):
                    size = sizes[kind]
                    if size < 0:
                        continue
                    attrs.st_ino = bases[kind] | rowid
                    attrs.st_size = size
                    attrs.st_blocks = (size + 511) // 512
                    pos = FIRST_ENTRY + (rowid << 2 | kind)
                    if not reply(token, entry.stem + _SUFFIXES[kind], attrs, pos + 1):
                        return
                    replied += 1
            row_min, kind_min = entries[-1].rowid + 1, 0

    async def _rows_from(self, handle: DirHandle, row_min: int) -> list[ListedAlias]:
        """The listed aliases with row ids from `row_min` on: the held page's tail if it
        covers `row_min`, else the next page read from the index (and held).

        The page after it is read in a worker meanwhile, while the kernel builds its inodes
        and dentries for the entries just given (on the other core): one more page held.
        """
        page = handle.page
        if page and handle.page_after < row_min <= page[-1].rowid:
            return page[bisect.bisect_left(page, row_min, key=lambda e: e.rowid) :]
        assert isinstance(handle.node, NamespaceDir)
        after, ahead = row_min - 1, handle.ahead
        handle.ahead = None
        if ahead is not None and page and page[-1].rowid == after:
            page = await self._wait(ahead)
        else:
            if ahead is not None:
                ahead.cancel()
            page = await self._io(self.tree.alias_page, handle.node, after)
        handle.page, handle.page_after = page, after
        if page:  # read the next page while the kernel takes this one in
            handle.ahead = self._pool.submit(self.tree.alias_page, handle.node, page[-1].rowid)
        return page

    def _reply(self, token: Any, node: Node, next_id: int) -> bool:
        """Offer one entry (the kernel's reference to it needs no bookkeeping here)."""
        attrs = self.attrs(node, self.tree.ino(node))
        return bool(pyfuse3.readdir_reply(token, node.name.encode("utf-8"), attrs, next_id))

    def _reply_dot(self, token: Any, node: Node, name: str, next_id: int) -> bool:
        """Offer "." or ".." (the kernel takes no reference for them)."""
        attrs = self.attrs(node, self.tree.ino(node))
        return bool(pyfuse3.readdir_reply(token, name.encode(), attrs, next_id))

    async def releasedir(self, fh: int) -> None:
        handle = self._dirs.pop(fh, None)
        if handle is not None and handle.ahead is not None:
            handle.ahead.cancel()  # if already running, its page is dropped when done

    # ---- files ------------------------------------------------------------------------------
    @_guarded("inode")
    async def open(self, inode: int, flags: int, ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        node = await self._node(inode)
        if node.is_dir:
            raise FsError(errno.EISDIR)
        if flags & WRITE_FLAGS:
            raise FsError(errno.EROFS)
        content = self.tree.open_pure(node)
        if content is None:
            content = await self._io(self.tree.open, node)
        fh = next(self._fh)
        self._files[fh] = FileHandle(node, content)
        # keep_cache: a snapshot's files never change; never direct_io, so mmap works
        # keep_cache: an alias file's bytes never change, nor do a snapshot's; never
        # direct_io, so mmap works
        return pyfuse3.FileInfo(fh=fh, keep_cache=node.immutable, direct_io=False)

    @_guarded("fh")
    async def read(  # type: ignore[override]  # any buffer will do: pyfuse3 copies it
        self, fh: int, off: int, size: int
    ) -> bytes | np.ndarray:
        handle = self._files.get(fh)
        if handle is None:
            raise FsError(errno.EBADF)
        if isinstance(handle.content, BytesContent):
            return handle.content.read(self.tree, off, size)
        inline = handle.node.frozen and handle.content.inline and self.placement.inline()
        # Blocks the prefetcher already inflated are served from memory alone, without a hop
        # to a worker; other reads go where ReadPlacement says.
        if not inline or size >= CACHED_FIRST_BYTES:
            data = handle.content.read_cached(off, size)
            if data is not None:
                return data
        if not inline:
            return await self._io(handle.content.read, self.tree, off, size)
        if self.placement.remote:
            try:
                with no_waiting():
                    return handle.content.read(self.tree, off, size)
            except WouldWait:
                return await self._io(handle.content.read, self.tree, off, size)
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return handle.content.read(self.tree, off, size)
        finally:
            waited = (time.perf_counter() - wall) - (time.thread_time() - cpu)
            self.placement.waited(waited, fh)

    async def release(self, fh: int) -> None:
        self._files.pop(fh, None)

    @_guarded("none")
    async def statfs(self, ctx: pyfuse3.RequestContext) -> pyfuse3.StatvfsData:
        if self._statfs is None:
            total = await self._io(self.tree.total_residues)
            s = pyfuse3.StatvfsData()
            s.f_bsize = BLKSIZE
            s.f_frsize = 4096
            s.f_blocks = max(1, (total * 61 // 60 + 4095) // 4096)  # about the FASTA bytes
            s.f_bfree = s.f_bavail = 0
            s.f_files = 0  # unknown without counting every alias
            s.f_ffree = s.f_favail = 0
            s.f_namemax = 255
            self._statfs = s
        return self._statfs

    # ---- everything that would write ---------------------------------------------------------
    async def setattr(self, *args: Any, **kwargs: Any) -> pyfuse3.EntryAttributes:
        raise pyfuse3.FUSEError(errno.EROFS)

    async def write(self, *args: Any, **kwargs: Any) -> int:
        raise pyfuse3.FUSEError(errno.EROFS)

    async def create(
        self, *args: Any, **kwargs: Any
    ) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        raise pyfuse3.FUSEError(errno.EROFS)

    async def mknod(self, *args: Any, **kwargs: Any) -> pyfuse3.EntryAttributes:
        raise pyfuse3.FUSEError(errno.EROFS)

    async def mkdir(self, *args: Any, **kwargs: Any) -> pyfuse3.EntryAttributes:
        raise pyfuse3.FUSEError(errno.EROFS)

    async def symlink(self, *args: Any, **kwargs: Any) -> pyfuse3.EntryAttributes:
        raise pyfuse3.FUSEError(errno.EROFS)

    async def link(self, *args: Any, **kwargs: Any) -> pyfuse3.EntryAttributes:
        raise pyfuse3.FUSEError(errno.EROFS)

    async def unlink(self, *args: Any, **kwargs: Any) -> None:
        raise pyfuse3.FUSEError(errno.EROFS)

    async def rmdir(self, *args: Any, **kwargs: Any) -> None:
        raise pyfuse3.FUSEError(errno.EROFS)

    async def rename(self, *args: Any, **kwargs: Any) -> None:
        raise pyfuse3.FUSEError(errno.EROFS)

    async def setxattr(self, *args: Any, **kwargs: Any) -> None:
        raise pyfuse3.FUSEError(errno.EROFS)

    async def removexattr(self, *args: Any, **kwargs: Any) -> None:
        raise pyfuse3.FUSEError(errno.EROFS)


__all__ = ["ROOT_INODE", "Operations"]
