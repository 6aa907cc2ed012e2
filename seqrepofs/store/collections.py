"""Sequence collections of an instance: which sequences, under which names, in which order.

SeqRepo keeps sequences and aliases, but no record of the files they came from. A collection is
that record (a loaded FASTA, an assembly): its records' names as written, order, lengths and
seq_ids, with the GA4GH seqcol 1.0 digests (:mod:`seqrepofs.seqcol`). A collection's names are
its own, never aliases: two collections may give one name to different sequences.

Storage: ``collections.sqlite3`` in the instance directory, beside ``aliases.sqlite3`` and
``sequences/`` (biocommons.seqrepo never opens it). Records are keyed by (collection,
ordinal) with a unique (collection, name) index, so a 3-million-record transcriptome is read in
pages, a record is found by ordinal or name in one index probe, and nothing needs the whole
collection in memory; the level-1 digests are stored with the collection, so listing and
filtering by attribute digest are index look-ups. Recording is one SQLite transaction: a failed
or interrupted load leaves no part of a collection.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import unicodedata
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from .. import seqcol
from ..errors import InvalidInputError, ReadOnlyError, SeqRepoError
from .bulk import insert_many
from .instances import is_frozen
from .schema import connect

__all__ = [
    "FILENAME",
    "CollectionExistsError",
    "CollectionInfo",
    "CollectionStore",
    "CollectionWriter",
    "Record",
    "UnknownCollectionError",
    "check_collection_name",
]

FILENAME = "collections.sqlite3"
SCHEMA_VERSION = "1"
ATTRS = seqcol.LEVEL1_ATTRIBUTES  # one column each in `collection`, indexed but the transient
FLUSH_ROWS = 10_000
_RECORD_COLUMNS = ("collection_id", "ordinal", "name", "length", "seq_id")
NAME_MAX = 200

_SCHEMA = [
    "create table meta (key text primary key, value text not null)",
    "create table collection (id integer primary key, name text not null unique,"
    " digest text, n_records integer not null default 0,"
    " total_length integer not null default 0, source text, added text not null, "
    + ", ".join(f"{a} text" for a in ATTRS)
    + ")",
    "create index collection_digest on collection(digest)",
    *(f"create index collection_{a} on collection({a})" for a in seqcol.ARRAY_ATTRIBUTES),
    "create table record (collection_id integer not null, ordinal integer not null,"
    " name text not null, length integer not null, seq_id text not null,"
    " primary key (collection_id, ordinal)) without rowid",
    "create unique index record_name on record(collection_id, name)",
]


class CollectionExistsError(SeqRepoError, ValueError):
    """A collection of that name exists and replacing it was not asked for."""


class UnknownCollectionError(SeqRepoError, LookupError):
    """No collection has this name or digest."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def check_collection_name(name: str) -> str:
    """A collection name is a file name in a mount: printable, no whitespace, no '/'."""
    if not name:
        raise InvalidInputError("collection name must not be empty")
    for ch in name:
        if ch.isspace():
            raise InvalidInputError(f"collection name {name!r} contains whitespace")
        if ch in "/\\" or unicodedata.category(ch).startswith("C"):
            raise InvalidInputError(f"collection name {name!r} contains the character {ch!r}")
    if name.startswith("."):
        raise InvalidInputError(f"collection name {name!r} must not start with '.'")
    if len(name.encode("utf-8")) > NAME_MAX:
        raise InvalidInputError(f"collection name {name[:20]!r}… is longer than {NAME_MAX} bytes")
    return name


class Record(NamedTuple):
    """One record (a tuple: a page of a transcriptome makes thousands)."""

    ordinal: int  # 0-based position in the collection
    name: str
    length: int
    seq_id: str  # sha512t24u; the refget id is "SQ." + seq_id


@dataclass(frozen=True)
class CollectionInfo:
    """One collection's row: everything but its records."""

    id: int
    name: str
    digest: str  # seqcol level 0
    count: int
    total_length: int
    source: str | None
    added: str
    level1: dict[str, str]  # every attribute of seqcol.LEVEL1_ATTRIBUTES

    def attribute_digest(self, attribute: str) -> str | None:
        return self.level1.get(attribute)


_INFO_COLUMNS = "id, name, digest, n_records, total_length, source, added, " + ", ".join(ATTRS)


def _info(row: tuple[Any, ...]) -> CollectionInfo:
    return CollectionInfo(
        id=row[0],
        name=row[1],
        digest=row[2],
        count=row[3],
        total_length=row[4],
        source=row[5],
        added=row[6],
        level1=dict(zip(ATTRS, row[7:], strict=True)),
    )


def _create(conn: sqlite3.Connection) -> None:
    """Create the schema if absent, in ONE transaction (a kill leaves none of it), or check
    the version of an existing one. ``conn`` is in autocommit mode (isolation_level None)."""
    conn.execute("begin immediate")
    try:
        if conn.execute("select 1 from sqlite_master where name = 'meta'").fetchone():
            got = conn.execute("select value from meta where key = 'schema_version'").fetchone()
            if got is None or got[0] != SCHEMA_VERSION:
                raise SeqRepoError(
                    f"{_conn_path(conn)}: collections database has schema version"
                    f" {got and got[0]}; this seqrepofs reads {SCHEMA_VERSION}"
                )
        else:
            for stmt in _SCHEMA:
                conn.execute(stmt)
            conn.execute("insert into meta values ('schema_version', ?)", (SCHEMA_VERSION,))
    except BaseException:
        conn.execute("rollback")
        raise
    conn.execute("commit")


def _conn_path(conn: sqlite3.Connection) -> str:
    row = conn.execute("pragma database_list").fetchone()
    return str(row[2]) if row else "?"


# ---- reading ---------------------------------------------------------------------------------


def _remote_file(instance_url: str) -> Any:
    """The published snapshot's collections database (a RemoteFile), None if it has none."""
    from ..lazy.snapshot import snapshot_for

    snap = snapshot_for(instance_url)
    return snap.file(FILENAME) if snap.has(FILENAME) else None


class CollectionStore:
    """Read access to an instance's collections; thread-safe.

    Queries borrow a connection from a small pool (at most MAX_IDLE kept), so the number of
    open connections follows the concurrency, not the number of threads a server has had.
    An instance without ``collections.sqlite3`` has no collections (every listing is empty);
    on a writable instance collections recorded later become visible to the next call.
    """

    MAX_IDLE = 8

    def __init__(self, instance_dir: str) -> None:
        self.instance_dir = instance_dir
        self.path = os.path.join(instance_dir, FILENAME)
        self._url = "://" in instance_dir  # a published snapshot, read in place
        self.remote = _remote_file(instance_dir) if self._url else None
        self.frozen = self._url or is_frozen(instance_dir)
        self._lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []

    def _connect(self) -> sqlite3.Connection:
        if self.remote is not None:
            from ..lazy.sqlite_vfs import LazyConnection

            return LazyConnection(self.remote)  # type: ignore[return-value]  # same calls
        conn = connect(self.path, writeable=False, immutable=self.frozen)
        conn.execute("pragma busy_timeout = 10000")
        return conn

    @contextmanager
    def _borrow(self) -> Iterator[sqlite3.Connection | None]:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            if self.remote is None and (self._url or not os.path.exists(self.path)):
                yield None
                return
            conn = self._connect()
        try:
            yield conn
        finally:
            with self._lock:
                keep = len(self._idle) < self.MAX_IDLE
                if keep:
                    self._idle.append(conn)
            if not keep:
                conn.close()

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._borrow() as conn:
            if conn is None:
                return []
            return conn.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            conns, self._idle = self._idle, []
        for conn in conns:
            conn.close()

    def __enter__(self) -> CollectionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- collections ---------------------------------------------------------------------

    def count(self) -> int:
        rows = self._query("select count(*) from collection where digest is not null")
        return int(rows[0][0]) if rows else 0

    def page(self, after: str | None = None, limit: int = 1000) -> list[CollectionInfo]:
        """Collections in name order, a page at a time: those named after ``after``."""
        rows = self._query(
            f"select {_INFO_COLUMNS} from collection where digest is not null and name > ?"
            " order by name limit ?",
            (after or "", limit),
        )
        return [_info(r) for r in rows]

    def find(self, name: str) -> CollectionInfo | None:
        rows = self._query(
            f"select {_INFO_COLUMNS} from collection where name = ? and digest is not null", (name,)
        )
        return _info(rows[0]) if rows else None

    def get(self, name: str) -> CollectionInfo:
        info = self.find(name)
        if info is None:
            raise UnknownCollectionError(f"no collection named {name!r}")
        return info

    def by_digest(self, digest: str) -> CollectionInfo | None:
        """A collection with this level-0 digest (same digest = same names, sequences, order)."""
        rows = self._query(
            f"select {_INFO_COLUMNS} from collection where digest = ? order by name limit 1",
            (digest,),
        )
        return _info(rows[0]) if rows else None

    def by_id(self, cid: int) -> CollectionInfo | None:
        """The collection with row id ``cid`` (a mount's inode numbers name collections by id:
        an id names one content for good, as --replace records under a new id)."""
        rows = self._query(
            f"select {_INFO_COLUMNS} from collection where id = ? and digest is not null", (cid,)
        )
        return _info(rows[0]) if rows else None

    def first_with_digest(self, digest: str) -> CollectionInfo | None:
        """The lowest-id collection with this level-0 digest (what a by-digest listing shows)."""
        rows = self._query(
            f"select {_INFO_COLUMNS} from collection where digest = ? order by id limit 1",
            (digest,),
        )
        return _info(rows[0]) if rows else None

    def page_by_id(
        self, after: int, limit: int, distinct_digests: bool = False
    ) -> list[CollectionInfo]:
        """Collections with ids above ``after`` in id order (a stateless readdir cursor);
        ``distinct_digests``: only the lowest-id collection of each digest."""
        if distinct_digests:
            sql = (
                f"select {_INFO_COLUMNS} from collection c where digest is not null"
                " and id > ? and id = (select min(id) from collection d"
                " where d.digest = c.digest) order by id limit ?"
            )
        else:
            sql = (
                f"select {_INFO_COLUMNS} from collection where digest is not null"
                " and id > ? order by id limit ?"
            )
        return [_info(r) for r in self._query(sql, (after, limit))]

    def digests(
        self, filters: dict[str, str] | None = None, page: int = 0, page_size: int = 100
    ) -> tuple[list[str], int]:
        """(one page of distinct level-0 digests in digest order, total) whose level-1
        digests equal every ``filters`` value (attribute -> digest)."""
        where, params = ["digest is not null"], []
        for attr, value in (filters or {}).items():
            if attr not in seqcol.LEVEL1_ATTRIBUTES:
                raise InvalidInputError(
                    f"cannot filter by {attr!r}; filters: {', '.join(seqcol.LEVEL1_ATTRIBUTES)}"
                )
            where.append(f"{attr} = ?")
            params.append(value)
        cond = " and ".join(where)
        total = self._query(
            f"select count(distinct digest) from collection where {cond}", tuple(params)
        )
        rows = self._query(
            f"select distinct digest from collection where {cond} order by digest limit ? offset ?",
            (*params, page_size, page * page_size),
        )
        return [r[0] for r in rows], int(total[0][0]) if total else 0

    def attribute_digests(
        self, attribute: str, page: int = 0, page_size: int = 100
    ) -> tuple[list[str], int]:
        """(one page of the distinct level-1 digests of ``attribute``, total)."""
        if attribute not in seqcol.ARRAY_ATTRIBUTES:
            raise UnknownCollectionError(f"no attribute {attribute!r}")
        cond = f"digest is not null and {attribute} is not null"
        total = self._query(f"select count(distinct {attribute}) from collection where {cond}")
        rows = self._query(
            f"select distinct {attribute} from collection where {cond} order by 1 limit ? offset ?",
            (page_size, page * page_size),
        )
        return [r[0] for r in rows], int(total[0][0]) if total else 0

    # ---- records -------------------------------------------------------------------------

    def records(self, coll: CollectionInfo, start: int = 0, limit: int = 1000) -> list[Record]:
        """Records ``start`` .. ``start + limit - 1`` (by ordinal) of a collection."""
        rows = self._query(
            "select ordinal, name, length, seq_id from record where collection_id = ?"
            " and ordinal >= ? order by ordinal limit ?",
            (coll.id, start, limit),
        )
        return list(map(Record._make, rows))

    def record_at(self, coll: CollectionInfo, ordinal: int) -> Record | None:
        rows = self._query(
            "select ordinal, name, length, seq_id from record where collection_id = ?"
            " and ordinal = ?",
            (coll.id, ordinal),
        )
        return Record(*rows[0]) if rows else None

    def record_named(self, coll: CollectionInfo, name: str) -> Record | None:
        rows = self._query(
            "select ordinal, name, length, seq_id from record where collection_id = ? and name = ?",
            (coll.id, name),
        )
        return Record(*rows[0]) if rows else None

    def iter_records(self, coll: CollectionInfo, page: int = 10_000) -> Iterator[Record]:
        """Every record in order, read a page at a time (memory bounded by the page)."""
        start = 0
        while True:
            recs = self.records(coll, start, page)
            yield from recs
            if len(recs) < page:
                return
            start = recs[-1].ordinal + 1

    def column_pages(
        self, coll: CollectionInfo, page: int = 65_536
    ) -> Iterator[tuple[list[str], list[int], list[int]]]:
        """(names, lengths, seq_id lengths) of the records in order, a page at a time on one
        cursor (one index walk for the whole collection; memory bounded by the page)."""
        with self._borrow() as conn:
            if conn is None:
                return
            cur = conn.execute(
                "select name, length, length(seq_id) from record where collection_id = ?"
                " order by ordinal",
                (coll.id,),
            )
            while rows := cur.fetchmany(page):
                names, lengths, id_lengths = zip(*rows, strict=True)
                yield list(names), list(lengths), list(id_lengths)

    def layout_columns(self, coll: CollectionInfo) -> tuple[array[int], array[int]]:
        """(lengths, UTF-8 byte lengths of the names) in record order, as int64 arrays.

        What a whole-collection FASTA's byte layout needs (offsets follow from these and the
        line width) in 16 bytes a record; the names themselves are read by ordinal
        (:meth:`record_at`, :meth:`records`) when a header is rendered.
        """
        lengths, name_bytes = array("q"), array("q")
        start = 0
        while rows := self._query(
            "select ordinal, length, name from record where collection_id = ?"
            " and ordinal >= ? order by ordinal limit ?",
            (coll.id, start, 10_000),
        ):
            lengths.extend(r[1] for r in rows)
            name_bytes.extend(len(r[2].encode("utf-8")) for r in rows)
            start = rows[-1][0] + 1
        return lengths, name_bytes

    # ---- seqcol objects ------------------------------------------------------------------

    def level2(self, coll: CollectionInfo) -> dict[str, list[Any]]:
        """The level-2 object (the five array attributes), built from the records."""
        names: list[str] = []
        lengths: list[int] = []
        seqs: list[str] = []
        for r in self.iter_records(coll):
            names.append(r.name)
            lengths.append(r.length)
            seqs.append("SQ." + r.seq_id)
        return seqcol.level2(names, lengths, seqs)

    def iter_attribute(
        self, coll: CollectionInfo, attribute: str, page: int = 10_000
    ) -> Iterator[list[Any]]:
        """The level-2 value of one array attribute, in pages of elements (bounded memory:
        a 3-million-record collection is streamed, never built)."""
        if attribute not in seqcol.ARRAY_ATTRIBUTES:
            raise UnknownCollectionError(f"no attribute {attribute!r}")
        if attribute == "sorted_sequences":
            # one sorted scan (no index by seq_id), on a connection of its own: a streamed
            # response may be iterated from several threads
            conn = self._connect()
            try:
                cur = conn.execute(
                    "select seq_id from record where collection_id = ? order by seq_id", (coll.id,)
                )
                while rows := cur.fetchmany(page):
                    yield ["SQ." + r[0] for r in rows]
            finally:
                conn.close()
            return
        pick = {
            "names": lambda r: r.name,
            "lengths": lambda r: r.length,
            "sequences": lambda r: "SQ." + r.seq_id,
            "name_length_pairs": lambda r: seqcol.name_length_pair(r.name, r.length),
        }[attribute]
        start = 0
        while recs := self.records(coll, start, page):
            yield [pick(r) for r in recs]
            start = recs[-1].ordinal + 1

    def attribute_owner(self, attribute: str, digest: str) -> CollectionInfo | None:
        """A collection whose ``attribute`` has this level-1 digest (any: they are equal)."""
        if attribute not in seqcol.LEVEL1_ATTRIBUTES:
            return None
        rows = self._query(
            f"select {_INFO_COLUMNS} from collection where {attribute} = ?"
            " and digest is not null limit 1",
            (digest,),
        )
        return _info(rows[0]) if rows else None

    def compare(
        self, a: CollectionInfo, b: CollectionInfo | Mapping[str, Sequence[Any]]
    ) -> dict[str, Any]:
        """The seqcol comparison of stored ``a`` with stored or given (level-2) ``b``.

        Equal to :func:`seqcol.compare` of the two level-2 objects, in bounded memory:
        attributes with equal level-1 digests are equal arrays (answered from the digests);
        the others are compared in SQLite temporary tables keyed by each element's canonical
        JSON, filtered and walked in order on disk.
        """
        b_info = b if isinstance(b, CollectionInfo) else None
        a_keys = list(seqcol.ARRAY_ATTRIBUTES)
        b_keys = list(seqcol.ARRAY_ATTRIBUTES) if b_info else list(b)  # type: ignore[arg-type]
        if b_info is not None:
            b_count = {k: b_info.count for k in b_keys}
        else:
            b_count = {k: len(b[k]) for k in sorted(b_keys)}  # type: ignore[index]
        result = seqcol.compare_counts({k: a.count for k in a_keys}, b_count)
        common = result["attributes"]["a_and_b"]
        todo = []
        for k in common:
            if b_info is not None and a.level1[k] == b_info.level1[k]:
                result["array_elements"]["a_and_b_count"][k] = a.count
                result["array_elements"]["a_and_b_same_order"][k] = True if a.count else None
            else:
                todo.append(k)
        if not todo:
            return result
        conn = self._connect()
        try:
            for side in ("a", "b"):  # k without a type: no affinity, values kept as given
                conn.execute(f"create temp table k{side} (attr text, ord integer, k)")
            for k in todo:
                self._fill_keys(conn, "ka", k, self.iter_attribute(a, k))
                source = self.iter_attribute(b_info, k) if b_info is not None else _pages(b[k])  # type: ignore[index]
                self._fill_keys(conn, "kb", k, source)
            conn.execute("create index temp.ka_k on ka(attr, k)")
            conn.execute("create index temp.kb_k on kb(attr, k)")
            for k in todo:
                count, order = _compare_on_disk(conn, k)
                result["array_elements"]["a_and_b_count"][k] = count
                result["array_elements"]["a_and_b_same_order"][k] = order
        finally:
            conn.close()
        return result

    @staticmethod
    def _fill_keys(
        conn: sqlite3.Connection, table: str, attr: str, pages: Iterable[Sequence[Any]]
    ) -> None:
        ordinal = 0
        for page in pages:
            conn.executemany(
                f"insert into temp.{table} values (?, ?, ?)",
                [(attr, ordinal + i, _sql_key(x)) for i, x in enumerate(page)],
            )
            ordinal += len(page)

    def attribute(self, attribute: str, digest: str) -> list[Any] | None:
        """The level-2 value of an attribute given its level-1 digest (None if unknown);
        the transient ``sorted_name_length_pairs`` has none."""
        owner = self.attribute_owner(attribute, digest)
        if owner is None or attribute not in seqcol.ARRAY_ATTRIBUTES:
            return None
        return [x for page in self.iter_attribute(owner, attribute) for x in page]


def _sql_key(x: Any) -> Any:
    """An SQLite value equal exactly when the JSON values are equal in Python: strings and
    numbers as themselves (1 == 1.0 == True, '1' != 1, as in Python), the rest (objects,
    arrays, null) as canonical JSON bytes, which never equal a string or a number."""
    if isinstance(x, str | float) or (isinstance(x, int) and -(1 << 63) <= x < 1 << 63):
        return x
    return seqcol.canonical(x)  # objects, arrays, null, integers SQLite cannot hold


def _pages(items: Sequence[Any], size: int = 10_000) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _compare_on_disk(conn: sqlite3.Connection, attr: str) -> tuple[int, bool | None]:
    """(a_and_b count, same order) of one attribute held in temp tables ka and kb."""
    filtered = {
        side: f"select k from {side} where attr = ? and exists (select 1 from {other}"
        f" where {other}.attr = ? and {other}.k = {side}.k) order by ord"
        for side, other in (("ka", "kb"), ("kb", "ka"))
    }
    n = {
        side: conn.execute(f"select count(*) from ({sql})", (attr, attr)).fetchone()[0]
        for side, sql in filtered.items()
    }
    overlap = min(n.values())
    if n["ka"] + n["kb"] == 0 or n["ka"] != n["kb"]:
        return overlap, None
    walk_a = conn.execute(filtered["ka"], (attr, attr))
    walk_b = conn.execute(filtered["kb"], (attr, attr))
    while True:
        ra, rb = walk_a.fetchmany(FLUSH_ROWS), walk_b.fetchmany(FLUSH_ROWS)
        if ra != rb:
            return overlap, False
        if not ra:
            return overlap, True


# ---- writing ---------------------------------------------------------------------------------


class PendingCollection:
    """A collection being recorded (its row exists with a NULL digest until finished)."""

    def __init__(self, cid: int, name: str, replace: bool) -> None:
        self.id = cid
        self.name = name
        self.replace = replace
        self.unchanged = False  # finish() found the same collection under the name
        self.digests = seqcol.CollectionDigests()
        self.rows: list[tuple[int, int, str, int, str]] = []
        self.pairs: list[tuple[int, str]] = []
        self.info: CollectionInfo | None = None


class CollectionWriter:
    """Records collections in ONE transaction: nothing is visible until :meth:`commit`, and
    :meth:`rollback` (or closing without commit) leaves the database as it was.

    The caller holds the instance's writer lock (the loader does) and commits after the
    sequences the records name are committed, so no committed record names an absent sequence.
    """

    def __init__(self, instance_dir: str) -> None:
        if is_frozen(instance_dir):
            raise ReadOnlyError(f"{instance_dir}: instance is read-only (a snapshot?)")
        self.path = os.path.join(instance_dir, FILENAME)
        self._created = not os.path.exists(self.path)  # removed again if nothing is committed
        self._conn = sqlite3.connect(self.path, isolation_level=None)
        self._conn.execute("pragma busy_timeout = 10000")
        _create(self._conn)
        self._conn.execute("create temp table if not exists pair (cid integer, d text)")
        self._conn.execute("begin immediate")
        self._open = True
        self._committed = False
        self.recorded: list[CollectionInfo] = []

    def exists(self, name: str) -> CollectionInfo | None:
        row = self._conn.execute(
            f"select {_INFO_COLUMNS} from collection where name = ?", (name,)
        ).fetchone()
        return _info(row) if row else None

    def begin(
        self, name: str, *, replace: bool = False, source: str | None = None
    ) -> PendingCollection:
        """Start recording ``name``. Its row carries a placeholder name (a real one never
        starts with '.') until :meth:`finish` settles what happens to an existing ``name``."""
        check_collection_name(name)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        cur = self._conn.execute(
            "insert into collection (name, source, added) values"
            " ('.pending-' || (select coalesce(max(id), 0) + 1 from collection), ?, ?)",
            (source, now),
        )
        assert cur.lastrowid is not None
        return PendingCollection(cur.lastrowid, name, replace)

    def add(self, p: PendingCollection, name: str, length: int, seq_id: str) -> None:
        """Append one record (ordinal = records so far)."""
        p.rows.append((p.id, p.digests.count, name, length, seq_id))
        p.pairs.append((p.id, p.digests.add(name, length, seq_id)))
        if len(p.rows) >= FLUSH_ROWS:
            self._flush(p)

    def _flush(self, p: PendingCollection) -> None:
        if not p.rows:
            return
        try:
            insert_many(self._conn, "record", _RECORD_COLUMNS, p.rows)
        except sqlite3.IntegrityError:
            # the statement left nothing: insert row by row to the clash, which names it
            try:
                self._conn.executemany("insert into record values (?, ?, ?, ?, ?)", p.rows)
            except sqlite3.IntegrityError:
                raise self._duplicate(p) from None
            raise AssertionError("a duplicate record name that only a bulk insert saw") from None
        insert_many(self._conn, "temp.pair", ("cid", "d"), p.pairs)
        p.rows.clear()
        p.pairs.clear()

    def _duplicate(self, p: PendingCollection) -> InvalidInputError:
        """Name the first record whose name an earlier record of the collection has (rows of
        the failed batch before the clash are in the table, in order)."""
        for _cid, ordinal, name, _len, _sid in p.rows:
            row = self._conn.execute(
                "select min(ordinal) from record where collection_id = ? and name = ?"
                " and ordinal < ?",
                (p.id, name, ordinal),
            ).fetchone()
            if row is not None and row[0] is not None:
                return InvalidInputError(
                    f"collection {p.name!r}: duplicate record name {name!r}"
                    f" (records {row[0] + 1} and {ordinal + 1})"
                )
        return InvalidInputError(  # pragma: no cover
            f"collection {p.name!r}: duplicate record names"
        )

    def finish(self, p: PendingCollection) -> CollectionInfo:
        """Compute the digests (the sorted attributes are sorted by SQLite, on disk), then
        settle the name: a new name is taken; an existing collection with the same digest is
        kept as it is (this one is dropped; ``p.unchanged``); one with other records is
        replaced if ``replace`` was given, else CollectionExistsError."""
        self._flush(p)
        if p.digests.count == 0:
            raise InvalidInputError(f"collection {p.name!r} has no records")
        seq_ids = (
            r[0]
            for r in self._conn.execute(
                "select seq_id from record where collection_id = ? order by seq_id", (p.id,)
            )
        )
        pairs = (
            r[0]
            for r in self._conn.execute("select d from temp.pair where cid = ? order by d", (p.id,))
        )
        level1 = p.digests.finish(seq_ids, pairs)
        self._conn.execute("delete from temp.pair where cid = ?", (p.id,))
        digest = seqcol.digest_from_level1(level1)
        old = self.exists(p.name)
        if old is not None and old.digest == digest:
            self._delete(p.id)
            p.info, p.unchanged = old, True
            return old
        if old is not None and not p.replace:
            raise CollectionExistsError(
                f"collection {p.name!r} exists with other records (digest {old.digest}, now"
                f" {digest}); use --replace to replace it or --collection to give another name"
            )
        if old is not None:
            self._delete(old.id)
        self._conn.execute(
            "update collection set name = ?, digest = ?, n_records = ?, total_length = ?, "
            + ", ".join(f"{a} = ?" for a in ATTRS)
            + " where id = ?",
            (
                p.name,
                digest,
                p.digests.count,
                p.digests.total_length,
                *(level1[a] for a in ATTRS),
                p.id,
            ),
        )
        row = self._conn.execute(
            f"select {_INFO_COLUMNS} from collection where id = ?", (p.id,)
        ).fetchone()
        p.info = _info(row)
        self.recorded.append(p.info)
        return p.info

    def record(
        self,
        name: str,
        records: list[tuple[str, int, str]],
        *,
        replace: bool = False,
        source: str | None = None,
    ) -> CollectionInfo:
        """Record a whole collection given as (name, length, seq_id) tuples."""
        p = self.begin(name, replace=replace, source=source)
        for rec in records:
            self.add(p, *rec)
        return self.finish(p)

    def remove(self, name: str) -> bool:
        old = self.exists(name)
        if old is None:
            return False
        self._delete(old.id)
        return True

    def _delete(self, cid: int) -> None:
        self._conn.execute("delete from record where collection_id = ?", (cid,))
        self._conn.execute("delete from collection where id = ?", (cid,))

    def commit(self) -> None:
        if self._open:
            self._conn.execute("commit")
            self._open = False
            self._committed = True

    def rollback(self) -> None:
        if self._open:
            self._conn.execute("rollback")
            self._open = False
            self.recorded.clear()

    def close(self) -> None:
        """Roll back what is not committed; a database this writer created and never
        committed to is removed, so a refused first load leaves the instance as it was."""
        self.rollback()
        self._conn.close()
        if self._created and not self._committed:
            for suffix in ("", "-journal"):
                try:
                    os.remove(self.path + suffix)
                except FileNotFoundError:
                    pass

    def __enter__(self) -> CollectionWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.commit()
        self.close()
