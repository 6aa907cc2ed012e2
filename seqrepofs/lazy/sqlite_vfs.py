"""SQLite databases queried in place over a RemoteFile: each page SQLite reads is a `pread`.

A read-only SQLite VFS (through apsw, which lets Python implement one) maps the file names it
is given to RemoteFiles, so a lookup fetches only the pages it walks, never the database. The
stdlib `sqlite3` module cannot use such a VFS (apsw bundles its own SQLite), so
`LazyConnection` offers the part of `sqlite3.Connection` the store's read paths use:
`execute(sql, params)` returning a cursor to iterate or `fetchall()`/`fetchone()`, errors as
`sqlite3.DatabaseError` with `sqlite_errorcode` set, and ATTACH of a second remote database.
Databases are opened `immutable=1`: a published snapshot never changes, so no locking and no
journal lookups (which would be requests) are needed.
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

import apsw

from ..store.nowait import WouldWait
from .errors import RemoteChangedError, RemoteReadError
from .range_cache import RangeCache
from .remote_file import FileSpec, RemoteFile

VFS_NAME = "seqrepofs-remote"
DB_CHUNK_BYTES = 4096  # the cache's unit for databases: one SeqRepo page (docs/lazy.md)
_IMMUTABLE = int(apsw.mapping_device_characteristics["SQLITE_IOCAP_IMMUTABLE"])
_READONLY = apsw.SQLITE_OPEN_READONLY
_names = itertools.count(1)


class _RemoteDbFile:
    """What SQLite calls a file: reads go to the RemoteFile; writes are refused."""

    def __init__(self, remote: RemoteFile, vfs: RemoteVFS) -> None:
        self.remote = remote
        self.vfs = vfs

    def xRead(self, amount: int, offset: int) -> bytes:  # noqa: N802 (apsw's names)
        try:
            return self.remote.pread(offset, amount)
        except (RemoteReadError, RemoteChangedError, WouldWait) as exc:
            self.vfs.last_error.error = exc  # re-raised by LazyConnection, not SQLite's IOERR
            raise

    def xFileSize(self) -> int:  # noqa: N802
        return self.remote.size

    def xWrite(self, data: bytes, offset: int) -> None:  # noqa: N802
        raise apsw.ReadOnlyError(f"{self.remote.url}: read-only")

    def xTruncate(self, newsize: int) -> None:  # noqa: N802
        raise apsw.ReadOnlyError(f"{self.remote.url}: read-only")

    def xSync(self, flags: int) -> None:  # noqa: N802
        return None

    def xLock(self, level: int) -> None:  # noqa: N802
        return None

    def xUnlock(self, level: int) -> None:  # noqa: N802
        return None

    def xCheckReservedLock(self) -> bool:  # noqa: N802
        return False

    def xFileControl(self, op: int, ptr: int) -> bool:  # noqa: N802
        return False

    def xSectorSize(self) -> int:  # noqa: N802
        return 4096

    def xDeviceCharacteristics(self) -> int:  # noqa: N802
        return _IMMUTABLE

    def xClose(self) -> None:  # noqa: N802
        return None


class RemoteVFS(apsw.VFS):
    """The process's one remote VFS: names registered by `register` open their RemoteFile;
    every other name (journals, WAL files) does not exist. Other calls (time, randomness,
    sleep) go to SQLite's default VFS."""

    def __init__(self) -> None:
        super().__init__(VFS_NAME, base=None)
        self._files: weakref.WeakValueDictionary[str, RemoteFile] = weakref.WeakValueDictionary()
        self.last_error = threading.local()

    def register(self, remote: RemoteFile) -> str:
        """A file name SQLite can open for `remote`, valid while `remote` lives."""
        name = f"/seqrepofs-remote/{next(_names)}"
        self._files[name] = remote
        return name

    def xOpen(self, name: Any, flags: list[int]) -> Any:  # noqa: N802 (apsw takes any file)
        path = name.filename() if isinstance(name, apsw.URIFilename) else name
        remote = self._files.get(path) if path is not None else None
        if remote is None:
            raise apsw.CantOpenError(f"{path}: not a registered remote database")
        flags[1] = _READONLY
        return _RemoteDbFile(remote, self)

    def xAccess(self, pathname: str, flags: int) -> bool:  # noqa: N802
        return pathname in self._files

    def xFullPathname(self, name: str) -> str:  # noqa: N802
        return name

    def xDelete(self, filename: str, syncdir: bool) -> None:  # noqa: N802
        raise apsw.ReadOnlyError(f"{filename}: read-only")


_VFS: RemoteVFS | None = None
_VFS_LOCK = threading.Lock()


def remote_vfs() -> RemoteVFS:
    global _VFS
    with _VFS_LOCK:
        if _VFS is None:
            _VFS = RemoteVFS()
        return _VFS


def _uri(name: str) -> str:
    return f"file:{name}?vfs={VFS_NAME}&immutable=1&mode=ro"


def _as_sqlite_error(exc: apsw.Error, url: str) -> sqlite3.DatabaseError:
    """apsw's error as the stdlib's, code included, so the store's handling of damaged
    databases (by sqlite_errorcode) applies unchanged."""
    err = sqlite3.DatabaseError(f"{url}: {exc}")
    err.sqlite_errorcode = int(getattr(exc, "extendedresult", 0) or getattr(exc, "result", 0))
    return err


class LazyCursor:
    """Rows of one statement, like sqlite3.Cursor's iteration and fetch methods."""

    def __init__(self, conn: LazyConnection, rows: Iterator[tuple[Any, ...]]) -> None:
        self._conn = conn
        self._rows = rows

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        while True:
            row = self._conn._guard(lambda: next(self._rows, None))
            if row is None:
                return
            yield row

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._conn._guard(lambda: next(self._rows, None))

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self)

    def fetchmany(self, size: int = 1) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        while len(out) < size:
            row = self.fetchone()
            if row is None:
                break
            out.append(row)
        return out


class LazyConnection:
    """A read-only connection to a remote SQLite database (one per thread, like sqlite3's)."""

    def __init__(self, remote: RemoteFile) -> None:
        self.remote = remote
        self._remotes = [remote]  # keeps attached RemoteFiles (and their VFS names) alive
        self._vfs = remote_vfs()
        name = self._vfs.register(remote)
        flags = apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI
        self._db = self._guard(lambda: apsw.Connection(_uri(name), flags=flags, vfs=VFS_NAME))
        # temporary tables and sorts in memory: the remote VFS opens no files of its own
        self._guard(lambda: self._db.execute("pragma temp_store = memory"))

    def _guard(self, call: Any) -> Any:
        self._vfs.last_error.error = None
        try:
            return call()
        except apsw.Error as exc:
            remote_exc = getattr(self._vfs.last_error, "error", None)
            self._vfs.last_error.error = None
            if remote_exc is not None:
                raise remote_exc from None
            raise _as_sqlite_error(exc, self.remote.url) from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> LazyCursor:
        cursor = self._guard(lambda: self._db.cursor().execute(sql, tuple(params)))
        return LazyCursor(self, iter(cursor))

    def attach(self, remote: RemoteFile, schema: str) -> None:
        """Make another remote database readable as `schema` (for queries joining both)."""
        if not schema.isidentifier():
            raise ValueError(f"{schema!r} is not a schema name")
        name = self._vfs.register(remote)
        self._remotes.append(remote)
        self.execute(f"attach database ? as {schema}", (_uri(name),))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> LazyConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_database(
    spec: FileSpec,
    cache: RangeCache,
    *,
    http_timeout: float = 30.0,
    chunk_size: int = DB_CHUNK_BYTES,
) -> LazyConnection:
    """A read-only connection to the published database `spec` describes."""
    remote = RemoteFile(
        spec,
        cache,
        chunk_size=chunk_size,
        http_timeout=http_timeout,
        read_ahead=0,
        whole_file_below=0,
    )
    return LazyConnection(remote)
