"""AliasDB: `aliases.sqlite3`, mapping (namespace, alias) to seq_id with history.

Add-only: an alias is never deleted; re-pointing it at another sequence marks the old row
`is_current = 0` and inserts a new current row, as the reference does.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ..errors import ReadOnlyError
from .database import BATCH_PARAMETERS, Database
from .fastadir import parse_added
from .translate import api_to_db, db_to_api

_COLUMNS = ("seqalias_id", "seq_id", "alias", "added", "is_current", "namespace")
AHEAD_ROWS = 512  # alias rows one read-ahead query covers (~100 sequences at five rows each)
AHEAD_GAP = 64  # a lookup this few rows past the previous one is walking the table forward


# Where the walk of the namespaces over a snapshot URL is cut into stretches walked in parallel.
_WALK_BOUNDS = tuple("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


class AliasDB:
    """Alias lookups; thread-safe for reading."""

    def __init__(
        self,
        db_path: str,
        writeable: bool = False,
        translate_ncbi_namespace: Any = None,
        check_same_thread: bool = True,
        *,
        attach_to: Database | None = None,
        database: Database | None = None,
    ) -> None:
        """`database`: an opened Database to read from instead of `db_path` (a published
        snapshot's, read in place)."""
        self._db_path = db_path
        self._writeable = writeable
        self._db = database or Database(db_path, "aliasdb", writeable, attach_to=attach_to)
        self._location_sql: dict[str, tuple[str, str]] = {}
        self._t = self._db.table("seqalias")
        self._walks: dict[str, _Walk] = {}  # by namespace, see seq_ids_in_order
        self._ahead_ok: bool | None = None

    @property
    def database(self) -> Database:
        return self._db

    def find_aliases(
        self,
        seq_id: str | None = None,
        namespace: str | None = None,
        alias: str | None = None,
        current_only: bool = True,
        translate_ncbi_namespace: Any = None,
    ) -> Iterator[dict[str, Any]]:
        """Rows as dicts, each followed by its API-named copies (refseq, ga4gh, …).

        An argument containing `%` matches with LIKE, as in the reference.
        """
        namespace, alias = api_to_db(namespace, alias)
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (("namespace", namespace), ("alias", alias), ("seq_id", seq_id)):
            if value is None:
                continue
            clauses.append(f"{column} {'like' if '%' in value else '='} ?")
            params.append(value)
        if current_only:
            clauses.append("is_current = 1")
        sql = f"select {', '.join(_COLUMNS)} from {self._t}"
        if clauses:
            sql += " where " + " and ".join(clauses)
        sql += " order by seq_id, namespace, alias"
        for row in self._db.iterate(sql, params):
            record = dict(zip(_COLUMNS, row, strict=True))
            record["added"] = parse_added(record["added"])
            yield record
            for ns, al in db_to_api(record["namespace"], record["alias"]):
                yield {**record, "namespace": ns, "alias": al}

    def fetch_aliases(self, seq_id: str, current_only: bool = True) -> list[dict[str, Any]]:
        return list(self.find_aliases(seq_id=seq_id, current_only=current_only))

    def seq_ids_for(self, alias: str, namespace: str | None) -> list[tuple[str, str]]:
        """Distinct (seq_id, stored namespace) pairs of current rows for an exact alias."""
        namespace, alias_db = api_to_db(namespace, alias)
        assert alias_db is not None
        # No DISTINCT in SQL: it costs a temporary b-tree per lookup; rows are few.
        if namespace is None:
            sql = f"select seq_id, namespace from {self._t} where alias = ? and is_current = 1"
            rows = self._db.query(sql, (alias_db,))
        else:
            sql = (
                f"select seq_id, namespace from {self._t}"
                " where namespace = ? and alias = ? and is_current = 1"
            )
            rows = self._db.query(sql, (namespace, alias_db))
        return list(dict.fromkeys(rows)) if len(rows) > 1 else rows

    def seq_ids_in_order(self, alias: str, namespace: str | None) -> list[tuple[str, str]]:
        """seq_ids_for, for a reader who asks for aliases in the order they were stored.

        Sequences loaded together have their aliases stored together, and are often read back
        in that order (a transcript set). Once three lookups in a row in a namespace each land
        a few rows after the one before, one range query reads the namespace's current
        aliases in the next AHEAD_ROWS rows (~2 us a row against ~10 us a lookup), and
        lookups answer from them until one misses. Exact because a (namespace, alias) has at
        most one current row (a unique index). Only on read-only opens, which cache answers
        anyway (SeqRepo's location cache): a writer's own re-pointing would go unseen. A bare
        alias (no namespace) may name rows of several namespaces: it is looked up on its own.
        """
        if namespace is None:
            return self.seq_ids_for(alias, namespace)
        ns_db, alias_db = api_to_db(namespace, alias)
        assert ns_db is not None and alias_db is not None
        walk = self._walks.get(ns_db)
        if walk is None:
            if len(self._walks) >= 8:  # a reader of many namespaces: start afresh
                self._walks.clear()
            walk = self._walks[ns_db] = _Walk()
        hit = walk.ahead.get(alias_db)
        if hit is not None:
            walk.step(hit[1])
            return [(hit[0], ns_db)]
        rows = self._db.query(
            f"select seqalias_id, seq_id from {self._t}"
            " where namespace = ? and alias = ? and is_current = 1",
            (ns_db, alias_db),
        )
        if len(rows) != 1:
            return [(seq_id, ns_db) for _rowid, seq_id in rows]
        rowid, seq_id = rows[0]
        if walk.step(rowid) >= 2 and self._may_read_ahead():
            found = self._db.query(
                f"select alias, seq_id, seqalias_id from {self._t} where seqalias_id > ?"
                " and seqalias_id <= ? and namespace = ? and is_current = 1",
                (rowid, rowid + AHEAD_ROWS, ns_db),
            )
            walk.ahead = {a: (s, r) for a, s, r in found}
        return [(seq_id, ns_db)]

    def _may_read_ahead(self) -> bool:
        """Only where the unique index makes a current (namespace, alias) row unique."""
        if self._ahead_ok is None:
            rows = self._db.query(
                f"select 1 from {self._db.table('sqlite_master')} where type = 'index'"
                " and name = 'seqalias_unique_ns_alias_idx'"
            )
            self._ahead_ok = bool(rows) and not self._writeable
        return self._ahead_ok

    def locations_for(
        self, alias: str, namespace: str | None, seq_schema: str
    ) -> list[tuple[str, str, int, str]]:
        """(seq_id, stored namespace, length, relpath) of current rows for an exact alias, in
        one query joining the sequence database attached as `seq_schema` (read-only opens)."""
        namespace, alias_db = api_to_db(namespace, alias)
        assert alias_db is not None
        by_ns, bare = self._location_sql.get(seq_schema) or self._make_location_sql(seq_schema)
        if namespace is None:
            return self._db.query(bare, (alias_db,))
        return self._db.query(by_ns, (namespace, alias_db))

    def _make_location_sql(self, seq_schema: str) -> tuple[str, str]:
        sql = (
            f"select a.seq_id, a.namespace, s.len, s.relpath from {self._t} a"
            f" join {seq_schema}.seqinfo s on s.seq_id = a.seq_id where "
        )
        pair = (
            sql + "a.namespace = ? and a.alias = ? and a.is_current = 1",
            sql + "a.alias = ? and a.is_current = 1",
        )
        self._location_sql[seq_schema] = pair
        return pair

    def namespaces(self) -> list[str]:
        """Stored namespaces that have current aliases.

        Hops through the namespace index, one probe per namespace: `select distinct ... where
        is_current = 1` reads every row (seconds and the whole table's pages at 10^7 rows).
        """
        if self._db.remote is not None:
            return self._namespaces_remote()
        probe = (
            f"select namespace from {self._t} indexed by seqalias_namespace_idx"
            " where namespace > ? order by namespace limit 1"
        )
        rows = self._db.query(
            f"select namespace from {self._t} indexed by seqalias_namespace_idx"
            " order by namespace limit 1"
        )
        out: list[str] = []
        while rows:
            namespace = rows[0][0]
            if self.has_namespace(namespace):
                out.append(namespace)
            rows = self._db.query(probe, (namespace,))
        return out

    def _namespaces_remote(self) -> list[str]:
        """The walk over a snapshot URL, where each hop waits a round trip for an index page:
        the name space is cut at _WALK_BOUNDS into stretches walked in parallel (each on its
        own thread and connection), and each namespace found is checked for current aliases on
        yet another while its stretch goes on: the round trips in series are those of the
        longest stretch (usually one or two namespaces), not two or more per namespace."""
        t = f"{self._t} indexed by seqalias_namespace_idx"
        bounds: list[str | None] = [None, *_WALK_BOUNDS, None]

        def first(conditions: list[tuple[str, str | None]]) -> list[Any]:
            """The first namespace meeting the conditions whose value is not None."""
            kept = [(cond, value) for cond, value in conditions if value is not None]
            where = " where " + " and ".join(c for c, _ in kept) if kept else ""
            sql = f"select namespace from {t}{where} order by namespace limit 1"
            return self._db.query(sql, tuple(v for _, v in kept))

        def stretch(lo: str | None, hi: str | None) -> list[tuple[str, Future[bool]]]:
            out: list[tuple[str, Future[bool]]] = []
            rows = first([("namespace >= ?", lo), ("namespace < ?", hi)])
            while rows:
                namespace = rows[0][0]
                out.append((namespace, checks.submit(self.has_namespace, namespace)))
                rows = first([("namespace > ?", namespace), ("namespace < ?", hi)])
            return out

        with (
            ThreadPoolExecutor(16, thread_name_prefix="namespaces") as pool,
            ThreadPoolExecutor(8, thread_name_prefix="namespace-checks") as checks,
        ):
            parts = list(pool.map(stretch, bounds[:-1], bounds[1:]))
            return [namespace for part in parts for namespace, fut in part if fut.result()]

    def has_namespace(self, namespace: str) -> bool:
        rows = self._db.query(
            f"select 1 from {self._t} where namespace = ? and is_current = 1 limit 1", (namespace,)
        )
        return bool(rows)

    def aliases_page(self, namespace: str, after: str | None, limit: int) -> list[tuple[str, str]]:
        """Current (alias, seq_id) of a stored namespace in alias order, strictly after `after`.

        Keyset paging on the (namespace, alias) index: a namespace of a million aliases lists
        in linear time and constant memory.
        """
        if after is None:
            sql = (
                f"select alias, seq_id from {self._t} where namespace = ? and is_current = 1"
                " order by alias limit ?"
            )
            return self._db.query(sql, (namespace, limit))
        sql = (
            f"select alias, seq_id from {self._t} where namespace = ? and is_current = 1"
            " and alias > ? order by alias limit ?"
        )
        return self._db.query(sql, (namespace, after, limit))

    def current_alias(self, namespace: str, alias: str) -> str | None:
        rows = self._db.query(
            f"select seq_id from {self._t} where namespace = ? and alias = ? and is_current = 1",
            (namespace, alias),
        )
        return rows[0][0] if rows else None

    def aliases_of(self, seq_id: str) -> list[tuple[str, str]]:
        """Current stored (namespace, alias) pairs of one sequence."""
        return self._db.query(
            f"select namespace, alias from {self._t} where seq_id = ? and is_current = 1"
            " order by namespace, alias",
            (seq_id,),
        )

    def current_aliases_in(self, namespace: str, seq_ids: Sequence[str]) -> dict[str, list[str]]:
        """Current stored aliases in one namespace of many sequences, in a few queries."""
        found: dict[str, list[str]] = {}
        for at in range(0, len(seq_ids), BATCH_PARAMETERS):
            part = seq_ids[at : at + BATCH_PARAMETERS]
            marks = ",".join("?" * len(part))
            # `+namespace`: probe the seq_id index per id; otherwise SQLite walks the
            # (namespace, alias) index through every alias of the namespace
            rows = self._db.query(
                f"select seq_id, alias from {self._t} where seq_id in ({marks})"
                " and +namespace = ? and is_current = 1",
                (*part, namespace),
            )
            for seq_id, alias in rows:
                found.setdefault(seq_id, []).append(alias)
        for aliases in found.values():
            aliases.sort()
        return found

    def store_alias(self, seq_id: str, namespace: str, alias: str) -> int:
        """Add or re-point an alias; returns its seqalias_id (idempotent for the same seq)."""
        if not self._writeable:
            raise ReadOnlyError(f"{self._db_path}: cannot store aliases in a read-only AliasDB")
        ns, al = api_to_db(namespace, alias)
        assert ns is not None and al is not None
        conn = self._db.writer
        try:
            cur = conn.execute(
                f"insert into {self._t} (seq_id, namespace, alias) values (?, ?, ?)",
                (seq_id, ns, al),
            )
            return int(cur.lastrowid or 0)
        except sqlite3.IntegrityError:
            pass
        row = conn.execute(
            f"select seqalias_id, seq_id from {self._t}"
            " where namespace = ? and alias = ? and is_current = 1",
            (ns, al),
        ).fetchone()
        if row[1] == seq_id:
            return int(row[0])
        conn.execute(f"update {self._t} set is_current = 0 where seqalias_id = ?", (row[0],))
        cur = conn.execute(
            f"insert into {self._t} (seq_id, namespace, alias) values (?, ?, ?)", (seq_id, ns, al)
        )
        return int(cur.lastrowid or 0)

    # ---- rows by id, joined with the sequence length (read-only opens, `seq_schema` attached)
    def current_rows_after(
        self, namespace: str, after_rowid: int, limit: int, seq_schema: str
    ) -> list[tuple[int, str, str, int, str]]:
        """(seqalias_id, alias, seq_id, len, added) of a stored namespace's current rows with
        seqalias_id > after_rowid, in id order: a keyset page whose cursor is one integer.

        The namespace index holds (namespace, rowid), so the range is an index seek.
        """
        return self._db.query(
            f"select a.seqalias_id, a.alias, a.seq_id, s.len, a.added from {self._t} a"
            f" indexed by seqalias_namespace_idx join {seq_schema}.seqinfo s"
            " on s.seq_id = a.seq_id where a.namespace = ? and a.seqalias_id > ?"
            " and a.is_current = 1 order by a.seqalias_id limit ?",
            (namespace, after_rowid, limit),
        )

    def row_by_id(self, rowid: int, seq_schema: str) -> tuple[str, str, str, int, str] | None:
        """(namespace, alias, seq_id, len, added) of one row, current or not: a row never
        changes once written (re-pointing adds a row), so its id names it for good."""
        rows = self._db.query(
            f"select a.namespace, a.alias, a.seq_id, s.len, a.added from {self._t} a"
            f" join {seq_schema}.seqinfo s on s.seq_id = a.seq_id where a.seqalias_id = ?",
            (rowid,),
        )
        return rows[0] if rows else None

    def current_row(
        self, namespace: str, alias: str, seq_schema: str
    ) -> tuple[int, str, int, str] | None:
        """(seqalias_id, seq_id, len, added) of the current row of a stored (namespace, alias)."""
        rows = self._db.query(
            f"select a.seqalias_id, a.seq_id, s.len, a.added from {self._t} a"
            f" join {seq_schema}.seqinfo s on s.seq_id = a.seq_id"
            " where a.namespace = ? and a.alias = ? and a.is_current = 1",
            (namespace, alias),
        )
        return rows[0] if rows else None

    def __contains__(self, seq_id: object) -> bool:
        rows = self._db.query(f"select 1 from {self._t} where seq_id = ? limit 1", (seq_id,))
        return bool(rows)

    def stats(self) -> dict[str, Any]:
        row = self._db.query(
            f"select count(*), sum(is_current), count(distinct seq_id),"
            f" count(distinct namespace), min(added), max(added) from {self._t}"
        )[0]
        keys = ("n_aliases", "n_current", "n_sequences", "n_namespaces", "min_ts", "max_ts")
        return dict(zip(keys, row, strict=True))

    def schema_version(self) -> int:
        return int(
            self._db.query(
                f"select value from {self._db.table('meta')} where key = 'schema version'"
            )[0][0]
        )

    def commit(self) -> None:
        self._db.commit()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> AliasDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def path(self) -> str:
        return self._db.path if self._db.remote is not None else os.path.abspath(self._db_path)


class _Walk:
    """A reader's progress through one namespace's rows, and the rows read ahead of it."""

    __slots__ = ("ahead", "last_rowid", "forward")

    def __init__(self) -> None:
        self.ahead: dict[str, tuple[str, int]] = {}  # alias -> (seq_id, row)
        self.last_rowid = -1
        self.forward = 0

    def step(self, rowid: int) -> int:
        """Note a lookup's row; how many lookups in a row have each been a few rows forward."""
        close = 0 < rowid - self.last_rowid <= AHEAD_GAP
        self.forward = self.forward + 1 if close else 0
        self.last_rowid = rowid
        return self.forward
