"""The loader's bulk paths: rows inserted by one JSON statement (store/bulk.py) are those
`executemany` writes; look-ups skipped in a load into an empty database change nothing."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from seqrepofs import SeqRepo
from seqrepofs.digests import digests
from seqrepofs.loader import load
from seqrepofs.loader.aliases import AddedKeys
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


def test_added_keys_has_no_false_absent_and_few_false_maybe() -> None:
    keys = AddedKeys(capacity=1000)  # not a power of two; grows past its first filter 5 times
    present = [f"NM_{i:09d}.1" for i in range(50_000)]
    for k in present:
        keys.add(k)
    assert all(k in keys for k in present)
    absent = sum(f"XM_{i:09d}.1" in keys for i in range(50_000))
    assert absent < 10  # a few in a million expected; 0.02% allowed


def new_instance(path: Path) -> Path:
    SeqRepo(path, writeable=True).close()
    return path


def _current_rows(inst: Path, skip: set[str]) -> list[tuple[str, str, str, int]]:
    conn = sqlite3.connect(inst / "aliases.sqlite3")
    rows = conn.execute(
        "select namespace, alias, seq_id, is_current from seqalias order by seqalias_id"
    ).fetchall()
    conn.close()
    return [r for r in rows if r[2] not in skip]


def test_a_load_into_an_empty_database_finds_its_own_committed_rows(tmp_path: Path) -> None:
    """Names and sequences seen again several groups and batches later (re-points, same
    sequence under a new name, the same record twice) give the same rows whether the database
    was empty at the start (look-ups skipped for keys the load has not added) or not."""
    rng = random.Random(7)
    seqs = ["".join(rng.choices("ACGT", k=40)) for _ in range(400)]
    lines = []
    for i in range(1500):
        name = f"N{rng.randrange(600)}.1" if i % 3 else f"U{i}.1"
        lines.append(f">{name}\n{seqs[rng.randrange(len(seqs))]}\n")
    fa = tmp_path / "a.fa"
    fa.write_text("".join(lines))
    empty = new_instance(tmp_path / "empty")
    used = new_instance(tmp_path / "used")
    (tmp_path / "other.fa").write_text(">OTHER.1\nMMMMMMMM\n")
    load(str(used), [str(tmp_path / "other.fa")], "other")
    other = digests(b"MMMMMMMM").seq_id
    a = load(str(empty), [str(fa)], "test", batch_size=97)
    b = load(str(used), [str(fa)], "test", batch_size=97)
    assert (a.seqs_added, a.aliases_added, len(a.repointed)) == (
        b.seqs_added,
        b.aliases_added,
        len(b.repointed),
    )
    assert a.repointed and a.seqs_added < 400  # the input did repeat itself
    assert _current_rows(empty, set()) == _current_rows(used, {other})
