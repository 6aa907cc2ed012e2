"""SQLite access shared by FastaDir and AliasDB: per-thread read connections, one writer.

A Database is a local file, or a database of a published snapshot read in place
(`remote=`, a `seqrepofs.lazy.RemoteFile`): then each thread's connection is a
`LazyConnection`, which answers the same SQL and raises the same error types.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .. import config
from ..errors import CorruptFileError, NotASeqRepoError, ReadOnlyError
from .instances import is_frozen
from .nowait import waiting_allowed
from .schema import check_schema_version, connect, create_database, read_only_uri

if TYPE_CHECKING:
    from ..lazy.remote_file import RemoteFile


# ids bound into one `in (...)` query of a batched read: far below SQLite's parameter limit
# (32,766), large enough that a page of records costs one query per table
BATCH_PARAMETERS = 1024


class Database:
    """One SQLite file: a connection per thread when read-only, one connection when writable.

    Read-only connections use ``mode=ro`` (and ``immutable=1`` for frozen snapshots, which skips
    locking), so reading can never modify or create a file. A writable Database may be shared
    with another one through ATTACH so that one transaction covers both files.
    """

    def __init__(
        self,
        path: str,
        kind: str,
        writeable: bool,
        attach_to: Database | None = None,
        schema: str = "main",
        *,
        remote: RemoteFile | None = None,
    ) -> None:
        self.path = remote.url if remote is not None else path
        self.kind = kind
        self.writeable = writeable
        self.schema = schema
        self._local = threading.local()
        # Per-thread connections; those of threads that have ended are closed when the next
        # thread opens one, so short-lived worker threads do not leak file descriptors.
        self._all: dict[int, tuple[weakref.ref[threading.Thread], Any]] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._read_attachments: list[tuple[str, bool, str]] = []
        self._remote_attachments: list[tuple[RemoteFile, str]] = []
        self._writer: sqlite3.Connection | None = None
        self.remote = remote
        if remote is not None:  # a published snapshot's database: read-only, never changes
            if writeable:
                raise ReadOnlyError(f"{self.path}: a published snapshot is read-only")
            self.immutable = True
            check_schema_version(self.conn(), self.path)  # type: ignore[arg-type]
            return
        exists = os.path.exists(path) and os.path.getsize(path) > 0
        if not exists and not writeable:
            raise NotASeqRepoError(f"{path}: database not found; not a SeqRepo instance")
        if writeable:
            if attach_to is not None:
                conn = attach_to.writer
                if not exists:
                    tmp = connect(path, writeable=True)
                    create_database(tmp, kind)
                    tmp.close()
                conn.execute(f"attach database ? as {schema}", (path,))
            else:
                conn = connect(path, writeable=True)
                if not exists:
                    create_database(conn, kind)
            self._writer = conn
            self._owns_writer = attach_to is None
        self.immutable = not writeable and is_frozen(_instance_dir(path, kind))
        check_schema_version(self.conn(), path) if schema == "main" else self._check_attached()

    def _check_attached(self) -> None:
        tmp = connect(self.path, writeable=False)
        try:
            check_schema_version(tmp, self.path)
        finally:
            tmp.close()

    @property
    def writer(self) -> sqlite3.Connection:
        if self._writer is None:
            raise ReadOnlyError(f"{self.path}: opened read-only")
        return self._writer

    def conn(self) -> Any:
        """The connection for the calling thread (a sqlite3.Connection, or a LazyConnection
        for a remote database: both answer execute() the same way)."""
        if self._writer is not None:
            return self._writer
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise ValueError(f"{self.path}: database is closed")
            if self.remote is not None:
                from ..lazy.sqlite_vfs import LazyConnection

                conn = LazyConnection(self.remote)
                for rf, schema in self._remote_attachments:
                    conn.attach(rf, schema)
            else:
                conn = connect(self.path, writeable=False, immutable=self.immutable)
                if not waiting_allowed():  # the FUSE loop: a writer's lock is BUSY at once
                    conn.execute("pragma busy_timeout = 0")
                conn.execute("pragma query_only = 1")
                conn.execute(f"pragma mmap_size = {config.sqlite_mmap_bytes()}")
                for path, immutable, schema in self._read_attachments:
                    _attach(conn, path, immutable, schema)
            self._local.conn = conn
            me = threading.current_thread()
            with self._lock:
                dead = [k for k, (t, _c) in self._all.items() if not _alive(t())]
                stale = [self._all.pop(k)[1] for k in dead]
                self._all[id(me)] = (weakref.ref(me), conn)
            for old in stale:
                _close_quietly(old)
        return conn

    def attach_database(self, other: Database, schema: str) -> None:
        """attach_read_only for another Database, local or remote (both must be alike)."""
        if other.remote is None and self.remote is None:
            self.attach_read_only(other.path, other.immutable, schema)
            return
        if other.remote is None or self.remote is None:
            raise ValueError(f"{self.path}: cannot join a local and a remote database")
        self._remote_attachments.append((other.remote, schema))
        with self._lock:
            conns = [c for _t, c in self._all.values()]
        for conn in conns:
            conn.attach(other.remote, schema)

    def attach_read_only(self, path: str, immutable: bool, schema: str) -> None:
        """Make another database readable as `schema` on every read connection, so one query
        can join both (a SeqRepo's alias and sequence databases). Call before sharing."""
        if self._writer is not None:
            raise ValueError(f"{self.path}: attach_read_only is for read-only databases")
        self._read_attachments.append((path, immutable, schema))
        with self._lock:
            conns = [c for _t, c in self._all.values()]
        for conn in conns:
            _attach(conn, path, immutable, schema)

    def table(self, name: str) -> str:
        return f"{self.schema}.{name}"

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        try:
            return self.conn().execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            err = damaged(exc, self.path)
            if err is None:
                raise
            raise err from exc

    def iterate(self, sql: str, params: tuple | list = ()) -> Iterator[tuple]:
        """Rows one at a time (for large results); damage is reported like query()'s."""
        try:
            # not `yield from`: closing this generator would close the cursor, which raises
            # once the connection is closed (a reader that stopped early, then closed)
            for row in self.conn().execute(sql, params):  # noqa: UP028
                yield row
        except sqlite3.DatabaseError as exc:
            err = damaged(exc, self.path)
            if err is None:
                raise
            raise err from exc

    def commit(self) -> None:
        if self._writer is not None:
            self._writer.commit()

    def rollback(self) -> None:
        if self._writer is not None:
            self._writer.rollback()

    def close(self, on_close: Callable[[], None] | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        with self._lock:
            conns = [c for _t, c in self._all.values()]
            self._all = {}
        for conn in conns:
            _close_quietly(conn)
        if self._writer is not None and self._owns_writer:
            self._writer.close()
        self._writer = None


_DAMAGED_CODES = (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB


def damaged(exc: sqlite3.DatabaseError, path: str) -> CorruptFileError | None:
    """A damaged database file as CorruptFileError naming the file (SQLite's message does not),
    or None for other errors (locked, I/O, …)."""
    if (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF not in _DAMAGED_CODES:
        return None
    return CorruptFileError(f"{path}: damaged SQLite database: {exc}")


def _alive(thread: threading.Thread | None) -> bool:
    return thread is not None and thread.is_alive()


def _close_quietly(conn: Any) -> None:
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - sqlite3's or apsw's (a LazyConnection): closing anyway
        pass


def _attach(conn: sqlite3.Connection, path: str, immutable: bool, schema: str) -> None:
    conn.execute(f"attach database ? as {schema}", (read_only_uri(path, immutable),))
    conn.execute(f"pragma {schema}.mmap_size = {config.sqlite_mmap_bytes()}")


def _instance_dir(path: str, kind: str) -> str:
    """The instance directory a database file belongs to (aliases.sqlite3 at its top,
    sequences/db.sqlite3 one level down)."""
    top = os.path.dirname(os.path.abspath(path))
    return os.path.dirname(top) if kind == "fastadir" else top
