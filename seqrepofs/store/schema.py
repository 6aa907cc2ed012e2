"""The two SQLite schemas of a SeqRepo instance, byte-compatible with biocommons.seqrepo.

The reference creates its databases with yoyo-migrations; we write the same tables, indexes,
meta/log rows and yoyo bookkeeping rows, so that the reference opens our databases (even for
writing, when yoyo finds every migration already applied) and we open its.
"""

from __future__ import annotations

import getpass
import os
import socket
import sqlite3
import uuid
from datetime import UTC, datetime
from typing import Any

from ..errors import CorruptFileError, NotASeqRepoError, SchemaVersionError, SeqRepoError

SCHEMA_VERSION = 1
SQLITE_CORRUPT = 11
SQLITE_READONLY_ROLLBACK = 776  # a hot journal that a read-only connection cannot roll back

MIGRATIONS = [
    ("00655420539ecc1c759418763d9667111f42a8e3be180b1aad57c843f3347b12", "0000-base"),
    ("f8307527fff5cfa486d1b117e221aaaee936c1a14266e74466a98ab557500f04", "0001-initial"),
]

_YOYO_DDL = [
    'CREATE TABLE "yoyo_lock" (locked INT DEFAULT 1, ctime TIMESTAMP,pid INT NOT NULL,'
    "PRIMARY KEY (locked))",
    'CREATE TABLE "_yoyo_log" ( id VARCHAR(36), migration_hash VARCHAR(64), migration_id '
    "VARCHAR(255), operation VARCHAR(10), username VARCHAR(255), hostname VARCHAR(255), comment "
    "VARCHAR(255), created_at_utc TIMESTAMP, PRIMARY KEY (id))",
    'CREATE TABLE "_yoyo_version" (version INT NOT NULL PRIMARY KEY, installed_at_utc TIMESTAMP)',
    'CREATE TABLE "_yoyo_migration" ( migration_hash VARCHAR(64), migration_id VARCHAR(255), '
    "applied_at_utc TIMESTAMP, PRIMARY KEY (migration_hash))",
]

_BASE_DDL = [
    "CREATE TABLE meta (key text not null, value text not null)",
    "CREATE UNIQUE INDEX meta_key_idx on meta(key)",
    "CREATE TABLE log (ts timestamp not null default current_timestamp, v text not null, "
    "msg text not null)",
]

FASTADIR_DDL = [
    "CREATE TABLE seqinfo (\n    seq_id text primary key,\n    len integer not null,\n"
    "    alpha text not null,\n    added timestamp not null default current_timestamp,\n"
    "    relpath text not null\n)",
    "CREATE UNIQUE INDEX seqinfo_seq_id_idx on seqinfo(seq_id)",
]

ALIASDB_DDL = [
    "CREATE TABLE seqalias (\n    seqalias_id integer primary key,\n    seq_id text not null,\n"
    "    namespace text not null,\n    alias text not null,\n"
    "    added timestamp not null default current_timestamp,\n"
    "    is_current int not null default 1\n)",
    "CREATE UNIQUE INDEX seqalias_unique_ns_alias_idx on seqalias(namespace, alias) "
    "where is_current = 1\n",
    "CREATE INDEX seqalias_seq_id_idx on seqalias(seq_id)\n",
    "CREATE INDEX seqalias_namespace_idx on seqalias(namespace)\n",
    "CREATE INDEX seqalias_alias_idx on seqalias(alias)\n",
]


# Random-key indexes a first load builds after its rows (loader.load): no look-up of the loader
# needs them, and kept up row by row they cost most of a large load (see docs/design.md).
DEFERRED_INDEXES = {
    "aliasdb": ("seqalias_seq_id_idx", "seqalias_alias_idx"),
    "fastadir": ("seqinfo_seq_id_idx",),
}


def _index_ddl(kind: str) -> dict[str, str]:
    """Index name -> the CREATE statement the reference's schema has for it."""
    out = {}
    for stmt in FASTADIR_DDL if kind == "fastadir" else ALIASDB_DDL:
        words = stmt.split()
        if "INDEX" in words[:3]:
            out[words[words.index("INDEX") + 1]] = stmt
    return out


def drop_deferred_indexes(conn: sqlite3.Connection, kind: str, schema: str = "main") -> None:
    """Drop the random-key indexes a first load builds at its end (in the caller's
    transaction); `restore_indexes` builds them again."""
    for name in DEFERRED_INDEXES[kind]:
        conn.execute(f"drop index if exists {schema}.{name}")


def restore_indexes(conn: sqlite3.Connection, kind: str, schema: str = "main") -> list[str]:
    """Create the schema's indexes that are missing (dropped by a first load that was killed
    before its end); returns their names. The stored SQL is the reference's, byte for byte:
    SQLite keeps the statement's text from the index name on."""
    have = {
        r[0] for r in conn.execute(f"select name from {schema}.sqlite_master where type = 'index'")
    }
    made = []
    for name, stmt in _index_ddl(kind).items():
        if name not in have:
            conn.execute(stmt.replace(f" INDEX {name} ", f" INDEX {schema}.{name} ", 1))
            made.append(name)
    return made


def create_database(conn: sqlite3.Connection, kind: str) -> None:
    """Create a fresh FastaDir ('fastadir') or alias ('aliasdb') database in one transaction."""
    tables = FASTADIR_DDL if kind == "fastadir" else ALIASDB_DDL
    log_version = "0" if kind == "fastadir" else ""
    now = datetime.now(UTC).replace(tzinfo=None)
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    host = socket.gethostname()
    with conn:
        for stmt in _YOYO_DDL + _BASE_DDL + tables:
            conn.execute(stmt)
        conn.execute("insert into log (v, msg) values (?, 'database created')", (log_version,))
        conn.execute(
            "insert into meta (key, value) values ('schema version', ?)", (str(SCHEMA_VERSION),)
        )
        conn.execute(
            'insert into "_yoyo_version" (version, installed_at_utc) values (2, ?)', (str(now),)
        )
        for mhash, mid in MIGRATIONS:
            conn.execute('insert into "_yoyo_migration" values (?, ?, ?)', (mhash, mid, str(now)))
            conn.execute(
                'insert into "_yoyo_log" values (?, ?, ?, ?, ?, ?, ?, ?)',
                (str(uuid.uuid1()), mhash, mid, "apply", user, host, None, str(now)),
            )


def check_schema_version(conn: sqlite3.Connection, path: str) -> int:
    """Read meta's schema version; raise a clear error if it is missing or not ours."""
    try:
        row = conn.execute("select value from meta where key = 'schema version'").fetchone()
    except sqlite3.DatabaseError as exc:
        if (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF == SQLITE_CORRUPT:
            raise CorruptFileError(f"{path}: damaged SQLite database: {exc}") from exc
        raise NotASeqRepoError(f"{path}: not a SeqRepo database ({exc})") from exc
    if row is None:
        raise NotASeqRepoError(f"{path}: not a SeqRepo database (no schema version in meta)")
    try:
        version = int(row[0])
    except ValueError:
        raise SchemaVersionError(f"{path}: unreadable schema version {row[0]!r}") from None
    if version != SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{path}: schema version {version}, but seqrepofs reads version {SCHEMA_VERSION}"
            " (Upgrade required)"
        )
    return version


class _ReadConnection(sqlite3.Connection):
    """A read-only connection that survives a writer killed in the middle of a commit.

    Such a writer leaves a hot rollback journal. A `mode=ro` connection cannot roll it back
    and fails every query (SQLITE_READONLY_ROLLBACK) until some read-write connection does, so
    one crashed load would make the instance unreadable to the API and to a running mount.
    Any ordinary SQLite reader (biocommons.seqrepo's, the sqlite3 shell) rolls it back on its
    first read; this connection asks a short-lived read-write connection to do exactly that,
    then retries. SQLite's locking decides whether the journal is hot, so a live writer's
    journal is never touched.
    """

    db_path = ""

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        try:
            return super().execute(sql, parameters)
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", None) != SQLITE_READONLY_ROLLBACK:
                raise
        roll_back_hot_journal(self.db_path)
        return super().execute(sql, parameters)


def roll_back_hot_journal(path: str) -> None:
    """Roll back the journal of an interrupted write, as SQLite does on a read-write read."""
    try:
        conn = sqlite3.connect(f"file:{_quote(path)}?mode=rw", uri=True, timeout=30)
        try:
            conn.execute("select count(*) from sqlite_master").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise SeqRepoError(
            f"{path}: a write was interrupted and its journal ({os.path.basename(path)}-journal)"
            f" must be rolled back, which this process cannot do ({exc}); open the instance"
            " once as a user who may write to it (e.g. `seqrepofs check`)"
        ) from None


def connect(path: str, writeable: bool, immutable: bool = False) -> sqlite3.Connection:
    """Open a database; read-only opens use a URI so they can never create or modify the file
    (the one exception: rolling back an interrupted write, see `_ReadConnection`)."""
    if writeable:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level="DEFERRED")
    else:
        uri = read_only_uri(path, immutable)
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False, factory=_ReadConnection)
        conn.db_path = path
    return conn


def read_only_uri(path: str, immutable: bool = False) -> str:
    """The SQLite URI that opens `path` read-only (`immutable`: skip locking, for snapshots)."""
    return f"file:{_quote(path)}?mode=ro" + ("&immutable=1" if immutable else "")


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")
