"""Many rows into a table in one SQLite statement, with the GIL released for all of them.

Why: `executemany` binds each row in Python and releases and re-takes the GIL around each
row's step. In a process whose main thread is busy in Python (the loader parsing and hashing),
every re-take waits for that thread to let go: a committer thread inserting 500,000 alias rows
that way spent 15 s of wall time on 4 s of CPU. Here the rows go to SQLite as one JSON text,
and one `INSERT ... SELECT ... FROM json_each(?)` steps through them in C. Rows are inserted
in the order given (json_each yields array order), so new rowids follow it, as they would with
`executemany`. Values must be str, int, float or None.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import orjson

CHUNK_ROWS = 50_000  # rows per statement: bounds the JSON text and SQLite's parse of it


def insert_many(
    conn: sqlite3.Connection,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    or_ignore: bool = False,
) -> None:
    """Insert `rows` (tuples in `columns` order) into `table`, in order."""
    if not rows:
        return
    verb = "insert or ignore" if or_ignore else "insert"
    picks = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(columns)))
    sql = f"{verb} into {table} ({', '.join(columns)}) select {picks} from json_each(?)"
    for at in range(0, len(rows), CHUNK_ROWS):
        part = rows[at : at + CHUNK_ROWS]
        try:
            # orjson: 2.2x the json module's speed on these rows, and this holds the GIL; text,
            # not bytes (SQLite's JSON functions refuse a BLOB)
            conn.execute(sql, (orjson.dumps(part).decode(),))
        except sqlite3.OperationalError as exc:  # an SQLite built without JSON functions
            if "json" not in str(exc):
                raise
            marks = ", ".join("?" * len(columns))
            conn.executemany(f"{verb} into {table} ({', '.join(columns)}) values ({marks})", part)
