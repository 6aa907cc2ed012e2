"""store/bulk.py: rows inserted by one JSON statement are exactly those `executemany` writes."""

from __future__ import annotations

import sqlite3

import pytest

from seqrepofs.store import bulk
from seqrepofs.store.schema import ALIASDB_DDL

ROWS = [
    ("seqA", "NCBI", "NM_000001.1", 1),
    ("seqB", "MD5", "0123abcd" * 4, 1),
    ("seqC", "Ensembl", 'odd "quoted" \\ name\u00e9\u4e2d', 0),
    ("seqA", "NCBI", "NM_000002.1", 1),
]


def _aliases() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    for stmt in ALIASDB_DDL:
        conn.execute(stmt)
    return conn


def _rows(conn: sqlite3.Connection) -> list[tuple[object, ...]]:
    return conn.execute(
        "select seqalias_id, seq_id, namespace, alias, is_current, typeof(is_current)"
        " from seqalias order by seqalias_id"
    ).fetchall()


@pytest.mark.parametrize("chunk", [1, 3, 1000])
def test_same_rows_and_ids_as_executemany(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    monkeypatch.setattr(bulk, "CHUNK_ROWS", chunk)
    cols = ("seq_id", "namespace", "alias", "is_current")
    ours, ref = _aliases(), _aliases()
    bulk.insert_many(ours, "seqalias", cols, ROWS * 3, or_ignore=True)
    ref.executemany(
        "insert or ignore into seqalias (seq_id, namespace, alias, is_current) values (?,?,?,?)",
        ROWS * 3,
    )
    assert _rows(ours) == _rows(ref)
    # current duplicates ignored (the partial unique index), non-current ones kept; ids in order
    assert [r[0] for r in _rows(ours)] == [1, 2, 3, 4, 5, 6]


def test_integers_nulls_and_a_conflict_leave_nothing() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("create table t (a integer primary key, b text, c real)")
    bulk.insert_many(conn, "t", ("a", "b", "c"), [(1, None, 1.5), (2, "x", None)])
    assert conn.execute("select a, b, c, typeof(a) from t").fetchall() == [
        (1, None, 1.5, "integer"),
        (2, "x", None, "integer"),
    ]
    with pytest.raises(sqlite3.IntegrityError):
        bulk.insert_many(conn, "t", ("a", "b", "c"), [(3, "y", 0.0), (1, "dup", 0.0)])
    assert conn.execute("select count(*) from t").fetchone() == (2,)  # the statement is undone
