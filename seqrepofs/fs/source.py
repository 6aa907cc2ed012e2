"""What is mounted: one SeqRepo instance, or a root of instances (snapshots, master, latest).

Everything here is synchronous; `ops` calls it from worker threads, except a snapshot's file
reads, which run on the trio thread. The store handles are thread-safe for reading
(per-thread sqlite connections, pread-based BGZF reads). This module only adapts the store API
to directory-shaped questions; it knows nothing about FUSE.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, NamedTuple, TypeVar, cast

from cachetools import LRUCache, TTLCache

from ..assemblies import AssemblyCatalog, catalog_for, invalidate
from ..fasta_view import encode_name
from ..lazy.options import LazyOptions
from ..seqrepo import SEQ_SCHEMA, SeqRepo, is_snapshot_url
from ..store.instances import is_frozen, is_instance, list_instances
from ..store.nowait import WouldWait, waiting_allowed
from ..store.translate import api_namespaces, api_to_db, db_to_api

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

# Mutable instances (master) are re-read this often; snapshots are cached for good.
MUTABLE_TTL = 1.0
ALIAS_CACHE_SIZE = 65536  # name -> current row, per instance
ROW_CACHE_SIZE = 65536  # row id -> row, per instance (rows never change)
# A database changed less than this long before we looked may change again within the same
# mtime tick (coarse kernel clocks), so assembly views built then are rebuilt once it settles.
RACY_NS = 2_000_000_000
_DB_FILES = ("aliases.sqlite3", os.path.join("sequences", "db.sqlite3"))
_COLLECTIONS_DB = "collections.sqlite3"
_MISSING = object()
T = TypeVar("T")


class AliasRow(NamedTuple):
    """One alias row as a namespace directory shows it (a tuple: listings make millions)."""

    rowid: int  # seqalias_id: the row, for good (the readdir cursor and the inode number)
    alias: str  # as the directory shows it (API form in API namespaces)
    stem: str  # its file name stem (encode_name)
    stored_alias: str
    seq_id: str
    length: int
    added_ns: int  # when the row was written (a master's file mtime)


@dataclass(frozen=True, slots=True)
class StoredRow:
    """One alias row as stored (current or not)."""

    namespace: str
    alias: str
    seq_id: str
    length: int
    added_ns: int


@dataclass(frozen=True, slots=True)
class NamespaceMap:
    """How a directory name maps onto a stored namespace (identity or an API translation)."""

    dirname: str
    stored: str

    @property
    def identity(self) -> bool:
        return self.dirname == self.stored

    def to_dir(self, stored_alias: str) -> str | None:
        """The alias as this directory shows it, or None if it does not belong here."""
        if self.identity:
            return stored_alias
        for ns, alias in db_to_api(self.stored, stored_alias):
            if ns == self.dirname:
                return alias
        return None

    def to_stored(self, alias: str) -> str | None:
        """The stored alias for a directory alias; None unless it maps back exactly."""
        if self.identity:
            return alias
        _ns, stored = api_to_db(self.dirname, alias)
        if stored is None or self.to_dir(stored) != alias:
            return None
        return stored


def _db_mtime_ns(path: str) -> int:
    return max(os.stat(os.path.join(path, rel)).st_mtime_ns for rel in _DB_FILES)


def _db_signature(path: str) -> tuple[object, ...]:
    """Changes whenever a database of the instance is written (and once more as it settles).

    (mtime, size, inode) of both databases and of the collections database if there is one,
    plus whether the newest mtime is older than RACY_NS: a commit within the same mtime tick as
    the last look changes no stat field, but then the signature taken during that tick is
    "unsettled" and the next settled one differs.
    """
    stats = [os.stat(os.path.join(path, rel)) for rel in _DB_FILES]
    try:  # optional: an instance without collections has no collections database
        stats.append(os.stat(os.path.join(path, _COLLECTIONS_DB)))
    except FileNotFoundError:
        pass
    newest = max(st.st_mtime_ns for st in stats)
    settled = time.time_ns() - newest >= RACY_NS
    return (*((st.st_mtime_ns, st.st_size, st.st_ino) for st in stats), settled)


class Instance:
    """One SeqRepo instance opened read-only, answering the questions the tree asks."""

    def __init__(self, path: str, lazy: LazyOptions | None = None) -> None:
        """`path`: an instance directory, or a published snapshot's URL, read in place
        through the cache `lazy` names (a snapshot: frozen, like a local one)."""
        if is_snapshot_url(path):
            self.sr = SeqRepo(path, **(lazy or LazyOptions()).kwargs())
            self.path = self.sr.root_dir
            self.frozen = True
            self._remote_mtime_ns: int | None = _created_ns(self.sr)
        else:
            self.path = os.path.realpath(path)
            self.frozen = is_frozen(self.path)
            self.sr = SeqRepo(self.path)
            self._remote_mtime_ns = None
        self._lock = threading.Lock()
        self._aliases: LRUCache | TTLCache = (
            LRUCache(ALIAS_CACHE_SIZE) if self.frozen else TTLCache(ALIAS_CACHE_SIZE, MUTABLE_TTL)
        )
        self._rows: LRUCache = LRUCache(ROW_CACHE_SIZE)
        self._meta: dict[str, object] | TTLCache = {} if self.frozen else TTLCache(8, MUTABLE_TTL)
        self._views_signature: object = None
        self._computing: dict[str, threading.Lock] = {}
        self._nsmaps: dict[str, tuple[float, NamespaceMap]] = {}  # namespace(): dirs found
        self._has_ns: LRUCache | TTLCache = (
            LRUCache(1024) if self.frozen else TTLCache(1024, MUTABLE_TTL)
        )

    def _memo(self, key: str, compute: Callable[[], T]) -> T:
        """Instance-wide facts: computed once for a snapshot, re-read every second for master."""
        with self._lock:
            value = self._meta.get(key, _MISSING)
            computing = self._computing.setdefault(key, threading.Lock())
        if value is _MISSING:
            # one computation at a time: a second asker waits for the first (on the event
            # loop it does not: the first may be waiting on a loader's lock)
            with _held(computing):
                with self._lock:
                    value = self._meta.get(key, _MISSING)
                if value is _MISSING:
                    value = compute()
                    with self._lock:
                        self._meta[key] = value
        return cast(T, value)

    @property
    def remote(self) -> bool:
        """Read in place from a published snapshot's URL (every uncached fact is a request)."""
        return self._remote_mtime_ns is not None

    @property
    def mtime_ns(self) -> int:
        """One timestamp for every file of the instance, so index files never look stale."""
        if self._remote_mtime_ns is not None:
            return self._remote_mtime_ns
        return self._memo("mtime", lambda: _db_mtime_ns(self.path))

    def stored_namespaces(self) -> list[str]:
        return self._memo("stored", self.sr.aliases.namespaces)

    def namespace_dirs(self) -> list[str]:
        """Directory names: stored namespaces plus their API names, those a path can hold."""

        def compute() -> list[str]:
            out = []
            for name in api_namespaces(self.stored_namespaces()):
                try:
                    encode_name(name)
                except ValueError:
                    continue
                out.append(name)
            return out

        return self._memo("dirs", compute)

    def namespace(self, dirname: str) -> NamespaceMap | None:
        """How directory `dirname` maps onto a stored namespace, None if it is no namespace
        directory. Every lookup of a file asks this of its directory, so a directory found is
        remembered (for good in a snapshot, MUTABLE_TTL in master: as the facts it comes
        from); one per namespace directory, names that are none are not kept."""
        hit = self._nsmaps.get(dirname)
        now = time.monotonic()
        if hit is not None and (self.frozen or hit[0] > now):
            return hit[1]
        nsmap = self._namespace(dirname)
        if nsmap is not None:
            self._nsmaps[dirname] = (now + MUTABLE_TTL, nsmap)
        return nsmap

    def _namespace(self, dirname: str) -> NamespaceMap | None:
        """`namespace`, resolved by probing the one stored name it can mean (memoised), not
        by listing every namespace: over a snapshot URL the listing is a round trip per
        namespace, the probe one or two."""
        with self._lock:
            listed = self._meta.get("stored", _MISSING)
        if listed is not _MISSING:  # listed already: no query at all
            stored = cast(list[str], listed)
            if dirname in stored:
                return NamespaceMap(dirname, dirname)
            if dirname not in self.namespace_dirs():
                return None
            ns, _ = api_to_db(dirname, None)
            return NamespaceMap(dirname, ns) if ns in stored else None
        if self._has_stored(dirname):
            return NamespaceMap(dirname, dirname)
        ns, _ = api_to_db(dirname, None)
        if ns is None or ns == dirname or dirname not in api_namespaces([ns]):
            return None  # no API name of a namespace (the same test namespace_dirs makes)
        try:
            encode_name(dirname)
        except ValueError:
            return None
        return NamespaceMap(dirname, ns) if self._has_stored(ns) else None

    def _has_stored(self, name: str) -> bool:
        """Whether stored namespace `name` has current aliases (one indexed query, memoised
        like the listing: for good in a snapshot, a second in master)."""
        with self._lock:
            known = self._has_ns.get(name)
        if known is None:
            known = self.sr.aliases.has_namespace(name)
            with self._lock:
                self._has_ns[name] = known
        return known

    def lookup(self, nsmap: NamespaceMap, alias: str) -> AliasRow | None:
        """The current row an alias of a directory names (one indexed query, cached)."""
        key = (nsmap.dirname, alias)
        with self._lock:
            if key in self._aliases:
                return self._aliases[key]
        row = None
        stored = nsmap.to_stored(alias)
        if stored is not None:
            found = self.sr.aliases.current_row(nsmap.stored, stored, SEQ_SCHEMA)
            if found is not None:
                rowid, seq_id, length, added = found
                row = AliasRow(
                    rowid, alias, encode_name(alias), stored, seq_id, length, self._added_ns(added)
                )
        with self._lock:
            self._aliases[key] = row
        return row

    def row(self, rowid: int) -> StoredRow | None:
        """Alias row `rowid`, current or not (rows never change: cached for good)."""
        with self._lock:
            if rowid in self._rows:
                return self._rows[rowid]
        found = self.sr.aliases.row_by_id(rowid, SEQ_SCHEMA)
        row = None
        if found is not None:
            ns, alias, seq_id, length, added = found
            row = StoredRow(ns, alias, seq_id, length, self._added_ns(added))
        with self._lock:
            self._rows[rowid] = row
        return row

    def page(self, nsmap: NamespaceMap, after: int, limit: int) -> list[AliasRow]:
        """Up to `limit` current aliases of a directory with row ids above `after`, in row
        order (keyset paged on the row id: one integer resumes a listing anywhere).

        Aliases that do not belong to the directory (a VMC alias without GS_ in ga4gh/) or
        cannot be a file name (empty) are skipped, so a page is short only at the end.
        """
        out: list[AliasRow] = []
        added_ns = self._added_ns
        while len(out) < limit:
            rows = self.sr.aliases.current_rows_after(nsmap.stored, after, limit, SEQ_SCHEMA)
            for rowid, stored_alias, seq_id, length, added in rows:
                alias = nsmap.to_dir(stored_alias)
                stem = None if alias is None else _stem(alias)
                if alias is None or stem is None:
                    continue
                out.append(
                    AliasRow(rowid, alias, stem, stored_alias, seq_id, length, added_ns(added))
                )
            if len(rows) < limit:
                break
            after = rows[-1][0]
        return out

    def _added_ns(self, added: object) -> int:
        """A row's `added` timestamp (UTC text, as SQLite writes it) in ns; the instance's
        mtime if unreadable."""
        ns = _timestamp_ns(added) if isinstance(added, str) else None
        return self.mtime_ns if ns is None else ns

    def fetch(self, seq_id: str, start: int, end: int) -> bytes:
        return self.sr.sequences.fetch_bytes(seq_id, start, end)

    def fetch_cached(self, seq_id: str, start: int, end: int) -> bytes | np.ndarray | None:
        """The residues if already in memory (no I/O, safe on the event loop), else None."""
        return self.sr.sequences.fetch_cached(seq_id, start, end)

    def assemblies(self, width: int) -> AssemblyCatalog:
        """The whole-assembly views of the instance at line width `width`.

        Views are cached on the SeqRepo (seqrepofs.assemblies). A snapshot never changes. For a
        writable instance the databases' signature is re-read at most once a second (as every
        other fact of master is) and the cached views are dropped when it changes.
        """
        if not self.frozen:
            sig = self._memo("views", lambda: _db_signature(self.path))
            with self._lock:
                stale = self._views_signature not in (None, sig)
                self._views_signature = sig
            if stale:  # outside our lock: it waits for a view being built to finish
                invalidate(self.sr)
        return catalog_for(self.sr, width)

    def total_residues(self) -> int:
        """About how many residues the instance holds (statfs's size). For a snapshot URL the
        published sequence files' compressed size: summing seqinfo would fetch its whole table
        (`df`, and `umount`'s check, ask for statfs)."""
        snap = self.sr.snapshot
        if snap is not None:
            return sum(s.size for p, s in snap.specs.items() if p.endswith(".fa.bgz"))
        return int(self._memo("residues", lambda: self.sr.sequences.stats()["tot_length"] or 0))

    def close(self) -> None:
        self.sr.close()


@contextmanager
def _held(lock: threading.Lock) -> Iterator[None]:
    """Hold `lock`; inside `no_waiting()` (the FUSE event loop) raise WouldWait rather than
    wait for a thread that holds it, which may itself be waiting on a loader's lock."""
    if waiting_allowed():
        lock.acquire()
    elif not lock.acquire(blocking=False):
        raise WouldWait("lock held by a worker")
    try:
        yield
    finally:
        lock.release()


@functools.lru_cache(maxsize=1024)
def _timestamp_ns(text: str) -> int | None:
    """Rows of one load share a few timestamps: parsed once each (bounded cache)."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000


def _stem(alias: str) -> str | None:
    """The file name stem of an alias, None if no file name can hold it (empty)."""
    try:
        return encode_name(alias)
    except ValueError:
        return None


def is_root(path: str) -> bool:
    """A root holds instances: dated snapshots and/or master (and usually `latest`)."""
    if not os.path.isdir(path) or is_instance(path):
        return False
    return bool(list_instances(path)) or is_instance(os.path.join(path, "master"))


class Root:
    """A SeqRepo root: instances are listed from disk on every call, so new snapshots appear."""

    def __init__(self, path: str) -> None:
        self.path = os.path.realpath(path)
        self._instances: dict[str, Instance] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        """Instance directory names: snapshots (oldest first), then master."""
        names = [n for n in list_instances(self.path) if is_instance(os.path.join(self.path, n))]
        if is_instance(os.path.join(self.path, "master")):
            names.append("master")
        return names

    def has(self, name: str) -> bool:
        if name != "master" and name not in list_instances(self.path):
            return False
        return is_instance(os.path.join(self.path, name))

    def instance(self, name: str) -> Instance:
        """The opened instance (opened once, kept: a root holds few instances). Opening one
        reads its databases, so it is never done inside `no_waiting()` (WouldWait)."""
        with _held(self._lock):
            inst = self._instances.get(name)
            if inst is None:
                if not waiting_allowed():
                    raise WouldWait(f"instance {name} is not open yet")
                inst = Instance(os.path.join(self.path, name))
                self._instances[name] = inst
            return inst

    def latest(self) -> str | None:
        """Target of `latest` as a name inside the root, or None if it names no instance."""
        link = os.path.join(self.path, "latest")
        try:
            target = os.readlink(link)
        except OSError:
            return None
        if not target:
            return None
        resolved = os.path.realpath(link)
        name = os.path.basename(resolved)
        if os.path.dirname(resolved) != self.path or not self.has(name):
            return None
        return name

    def mtime_ns(self) -> int:
        return os.stat(self.path).st_mtime_ns

    def close(self) -> None:
        with self._lock:
            for inst in self._instances.values():
                inst.close()
            self._instances.clear()


def open_source(path: str, lazy: LazyOptions | None = None) -> Instance | Root:
    """An instance directory mounts as one tree; a root mounts as one directory per instance;
    a published snapshot's URL mounts as one tree, read in place (through `lazy`'s cache)."""
    if is_snapshot_url(path):
        return Instance(path, lazy)
    return Instance(path) if is_instance(path) else Root(path)


def _created_ns(sr: SeqRepo) -> int:
    """A published snapshot's one timestamp: when its manifest says it was made (the files'
    own times are not published)."""
    created = sr.snapshot.created if sr.snapshot is not None else ""
    ns = _timestamp_ns(created.replace("Z", "+00:00")) if created else None
    return ns or 0
