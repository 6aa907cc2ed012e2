"""Bulk SQL for the loader: buffered alias inserts and seq_id look-ups.

Why: one `execute` per alias costs ~2.5x a row of a bulk insert, and a load writes five alias
rows per new sequence (four digests and the name). Rows are buffered and inserted in bulk just
before each commit, by one statement per 50,000 rows that runs without the GIL
(`store.bulk`), which also keeps the write transaction (and so the window in which a kill
leaves a hot journal) as short as the commit. The semantics stay those of
`AliasDB.store_alias`: an alias already current for the same sequence is skipped; one current
for another sequence is re-pointed (the old row kept with is_current = 0), which the caller
reports. A re-pointed row that is committed (or in the batch being committed) is marked
non-current in the batch's own transaction, just before its rows are inserted; one of the
batch itself is written non-current. So the rows are those one `store_alias` per alias in
load order writes, the bulk insert never meets a conflicting current row, and the main thread
never writes: a write there opened a transaction that only a later commit would end, and once
SQLite spilled its cache into the database (an exclusive lock), the main thread's next
read-only look-up waited for that commit, that is for itself (a release-2 load at 1 M
sequences stopped that way after the 600 s busy timeout).

Current mappings and stored seq_ids are looked up for a group of records at once, a few
hundred per query, on read-only connections of their own: on the writer's connection a
look-up waited for the committer thread's whole `executemany` (SQLite serialises calls on one
connection). A read-only connection sees committed rows only; everything not committed is in
the writer's own maps.
"""

from __future__ import annotations

import os
import sqlite3
from urllib.parse import quote

from ..seqrepo import SeqRepo
from ..store.bulk import insert_many
from ..store.translate import api_to_db

PendingRows = tuple[list[tuple[str, str]], list[tuple[str, str, str, int]]]  # re-points, rows
PREFETCH_CHUNK = 500  # aliases per lookup query (SQLite allows 32766 parameters)
COMMIT_WAIT_S = 600.0
_ROW_COLUMNS = ("seq_id", "namespace", "alias", "is_current")
DIGEST_NAMESPACES = frozenset({"VMC", "SHA1", "MD5", "SEGUID"})  # as stored


class AliasWriter:
    """Alias rows of the batch in progress, handed to the committer by `take()`."""

    def __init__(
        self,
        sr: SeqRepo,
        instance_dir: str | None = None,
    ) -> None:
        self._aliases = sr.aliases
        db = sr.aliases.database
        self._conn = db.writer
        # look-ups of committed rows; the writer's connection if no instance directory is given
        self._reader = self._conn
        if instance_dir is not None:
            self._reader = _read_only(os.path.join(instance_dir, "aliases.sqlite3"))
        self._table = db.table("seqalias")
        self._select = (
            f"select alias, seq_id from {db.table('seqalias')}"
            " where is_current = 1 and namespace = ? and alias in ({})"
        )
        self._update = (
            f"update {db.table('seqalias')} set is_current = 0"
            " where namespace = ? and alias = ? and is_current = 1"
        )
        self._rows: list[tuple[str, str, str, int]] = []  # (seq_id, ns, alias, is_current)
        self._row_of: dict[tuple[str, str], int] = {}  # (ns, alias) -> index in _rows
        self._repoints: list[tuple[str, str]] = []  # (ns, alias) made non-current by the batch
        self._batch: dict[tuple[str, str], str] = {}  # (ns, alias) -> seq_id, this batch
        self._inflight: dict[tuple[str, str], str] = {}  # the batch being committed (take())
        self._looked_up: dict[tuple[str, str], str | None] = {}  # db state, from prefetch()
        # an empty database at the start: only names this load adds can be found (digest
        # aliases, which are not looked up, are left out; so are their namespaces)
        self._added = AddedKeys() if _is_empty(self._reader, self._table) else None

    @property
    def started_empty(self) -> bool:
        """The alias table had no row when this writer was made."""
        return self._added is not None

    @property
    def pending(self) -> int:
        """Alias rows added since the last commit (the loader's ALIAS_BATCH counts these)."""
        return len(self._batch)

    def add_digest_aliases(self, seq_id: str, pairs: list[tuple[str, str]]) -> None:
        """Digest aliases of a sequence new to the instance: they cannot exist yet."""
        for ns, alias in pairs:
            self._row_of[(ns, alias)] = len(self._rows)
            self._rows.append((seq_id, ns, alias, 1))
            self._batch[(ns, alias)] = seq_id

    def prefetch(self, nsaliases: list[dict[str, str]]) -> None:
        """Look up the current mappings of many aliases in a few queries (not one each)."""
        by_ns: dict[str, list[str]] = {}
        added = self._added
        for nsa in nsaliases:
            ns, al = api_to_db(nsa["namespace"], nsa["alias"])
            assert ns is not None and al is not None
            if (ns, al) not in self._batch and (ns, al) not in self._looked_up:
                self._looked_up[(ns, al)] = None
                if added is None or al in added or ns in DIGEST_NAMESPACES:
                    by_ns.setdefault(ns, []).append(al)
        for ns, names in by_ns.items():
            for i in range(0, len(names), PREFETCH_CHUNK):
                part = names[i : i + PREFETCH_CHUNK]
                sql = self._select.format(", ".join("?" * len(part)))
                for al, seq_id in self._reader.execute(sql, (ns, *part)):
                    self._looked_up[(ns, al)] = seq_id

    def add(self, seq_id: str, namespace: str, alias: str) -> tuple[bool, str | None]:
        """Make ns:alias name seq_id; returns (added, seq_id it named before if re-pointed)."""
        ns, al = api_to_db(namespace, alias)
        assert ns is not None and al is not None
        key = (ns, al)
        in_batch = key in self._batch
        if in_batch:
            current: str | None = self._batch[key]
        elif key in self._inflight:
            current = self._inflight[key]
            self._looked_up.pop(key, None)
        elif key in self._looked_up:
            current = self._looked_up.pop(key)
        else:
            current = self._aliases.current_alias(ns, al)
        if current == seq_id:
            return False, None
        if current is not None:
            at = self._row_of.get(key) if in_batch else None
            if at is not None:  # the current row is this batch's: written non-current
                old = self._rows[at]
                self._rows[at] = (old[0], old[1], old[2], 0)
            else:  # committed (or in flight): made non-current before this batch's rows
                self._repoints.append(key)
        self._row_of[key] = len(self._rows)
        self._rows.append((seq_id, ns, al, 1))
        self._batch[key] = seq_id
        if self._added is not None:
            self._added.add(al)
        return True, current

    def take(self) -> PendingRows:
        """The batch's re-points and rows not written yet, for a commit elsewhere; until
        `inflight_done`, its mappings still answer add() (the database may not show them)."""
        # rows in load order, as the reference stores them: sequences loaded together keep
        # their aliases together, which readers walking a transcript set rely on (see
        # AliasDB.seq_ids_in_order); sorting them by index key saved little of a load
        pending = (self._repoints, self._rows)
        self._rows, self._repoints, self._row_of = [], [], {}
        self._inflight, self._batch = self._batch, {}
        # the group's prefetched mappings stay valid: add() asks the batch in flight first,
        # and inflight_done() folds it in (clearing them here sent the rest of the group to
        # one query each on the writer's connection, each waiting for the committer)
        return pending

    def inflight_done(self) -> None:
        """The batch handed over by take() is committed (or abandoned): forget it.

        A mapping prefetched while it was in flight was read without it (the reader sees
        committed rows only): its answer is the batch's, now committed."""
        if self._reader is not self._conn:
            looked_up = self._looked_up
            if len(looked_up) < len(self._inflight):
                for key in looked_up.keys() & self._inflight.keys():
                    looked_up[key] = self._inflight[key]
            else:
                for key, seq_id in self._inflight.items():
                    if key in looked_up:
                        looked_up[key] = seq_id
        self._inflight = {}

    def insert(self, pending: PendingRows) -> None:
        """Write what take() handed over (on the thread that commits it): the re-pointed rows
        made non-current first, so that their new rows can be inserted."""
        repoints, rows = pending
        if repoints:
            self._conn.executemany(self._update, repoints)
        if rows:
            insert_many(self._conn, self._table, _ROW_COLUMNS, rows, or_ignore=True)

    def committed(self) -> None:
        """The batch is durable; forget it."""
        self._rows = []
        self._repoints = []
        self._row_of = {}
        self._batch.clear()
        self._inflight = {}
        self._looked_up.clear()

    rolled_back = committed

    def close(self) -> None:
        if self._reader is not self._conn:
            self._reader.close()


class AddedKeys:
    """The keys (str) this load has added, as a Bloom filter: never a false "absent", about 2
    in a million false "maybe" a filter, 8 bytes a key.

    Why: a load into an empty database looked up every name and seq_id in SQLite (a query per
    256 records, ~10 us a key, and on the main thread); there, only what this load added can be
    found, so a key the filter has not seen needs no query. A false "maybe" costs a query that
    may wait for the committer's commit: at 4 bytes a key and 3 positions (~0.1% of keys)
    that was ~160 queries and ~3 s of a 300 k load's main thread. Bounded memory where a set of
    the keys would take ~100 bytes each (1 M sequences: 15 MB against 200 MB). A filter is full
    at `capacity` keys; the next one is twice as large.
    """

    def __init__(self, capacity: int = 1 << 18) -> None:
        self._filters: list[tuple[bytearray, int]] = []
        self._capacity = capacity
        self._left = 0

    def add(self, key: str) -> None:
        if self._left == 0:
            nbits = 1 << (self._capacity * 64 - 1).bit_length()  # a power of two: masks work
            self._filters.append((bytearray(nbits // 8), nbits - 1))
            self._left = self._capacity
            self._capacity *= 2
        self._left -= 1
        bits, m = self._filters[-1]
        h = hash(key)  # a str caches its hash: no rehashing of the text
        s = (h >> 32) | 1  # five positions by double hashing
        for i in (h & m, (h + s) & m, (h + 2 * s) & m, (h + 3 * s) & m, (h + 4 * s) & m):
            bits[i >> 3] |= 1 << (i & 7)

    def __contains__(self, key: str) -> bool:
        h = hash(key)
        s = (h >> 32) | 1
        for bits, m in self._filters:  # unrolled: most keys asked about are absent, and stop
            i = h & m  # at the first clear bit
            if not bits[i >> 3] >> (i & 7) & 1:
                continue
            i = (h + s) & m
            if not bits[i >> 3] >> (i & 7) & 1:
                continue
            i = (h + 2 * s) & m
            if not bits[i >> 3] >> (i & 7) & 1:
                continue
            i = (h + 3 * s) & m
            if not bits[i >> 3] >> (i & 7) & 1:
                continue
            i = (h + 4 * s) & m
            if bits[i >> 3] >> (i & 7) & 1:
                return True
        return False


def _is_empty(conn: sqlite3.Connection, table: str) -> bool:
    return conn.execute(f"select 1 from {table} limit 1").fetchone() is None


def _read_only(path: str) -> sqlite3.Connection:
    # the committer thread may hold the write lock through a slow commit (fsyncs on a busy
    # disk): wait for it rather than fail the load after SQLite's default 5 s
    return sqlite3.connect(
        f"file:{quote(path)}?mode=ro", uri=True, timeout=COMMIT_WAIT_S, check_same_thread=False
    )


class SeqIdLookup:
    """Which seq_ids are committed already, many per query, on a read-only connection.

    Why a second connection: it sees exactly the committed rows, and FastaDir knows the
    uncommitted ones, so together they answer "stored?" without one query per record.
    """

    def __init__(self, instance_dir: str) -> None:
        self._conn = _read_only(os.path.join(instance_dir, "sequences", "db.sqlite3"))
        # an empty database at the start: only what this load adds can be committed
        self._added = AddedKeys() if _is_empty(self._conn, "seqinfo") else None

    @property
    def started_empty(self) -> bool:
        """seqinfo had no row when this look-up was made."""
        return self._added is not None

    def added(self, seq_id: str) -> None:
        """This load stores `seq_id` (it may be committed from now on)."""
        if self._added is not None:
            self._added.add(seq_id)

    def committed(self, seq_ids: list[str]) -> set[str]:
        found: set[str] = set()
        if self._added is not None:
            added = self._added
            seq_ids = [s for s in seq_ids if s in added]
        for i in range(0, len(seq_ids), PREFETCH_CHUNK):
            part = seq_ids[i : i + PREFETCH_CHUNK]
            sql = f"select seq_id from seqinfo where seq_id in ({', '.join('?' * len(part))})"
            found.update(r[0] for r in self._conn.execute(sql, part))
        return found

    def close(self) -> None:
        self._conn.close()
