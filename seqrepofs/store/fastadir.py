"""FastaDir: the `sequences/` directory of an instance (BGZF files + db.sqlite3).

Files are add-only. A new file is written under a temporary name, fsynced, indexed, made
read-only and renamed into place before any seqinfo row points at it, so a crash at any moment
leaves at worst an unreferenced file, never a row pointing at a partial one.
"""

from __future__ import annotations

import fcntl
import glob
import logging
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from .. import config
from ..errors import CorruptFileError, ReadOnlyError, SequenceNotFoundError, WriterBusyError
from .bgzf import LOCAL_FILES, BlockReader, FileOpener
from .bgzf_writer import BgzfFastaWriter
from .bulk import insert_many
from .database import BATCH_PARAMETERS, Database
from .lru import LRU

log = logging.getLogger(__name__)

PARTIAL_SUFFIX = ".partial"


def alphabet(seq: bytes | bytearray) -> str:
    """Sorted distinct characters of a stored sequence (seqinfo.alpha)."""
    if not seq:
        return ""
    counts = np.zeros(256, dtype=np.int64)
    view = np.frombuffer(seq, dtype=np.uint8)
    for start in range(0, len(view), 1 << 20):  # bincount widens to int64: bound the copy
        counts += np.bincount(view[start : start + (1 << 20)], minlength=256)
    return "".join(chr(i) for i in np.nonzero(counts)[0])


def parse_added(value: Any) -> datetime | Any:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


class FastaDir:
    """Sequences by seq_id. Read-only by default; thread-safe for reading."""

    def __init__(
        self,
        root_dir: str,
        writeable: bool = False,
        check_same_thread: bool = True,
        fd_cache_size: int | None = None,
        *,
        block_cache_bytes: int = config.DEFAULT_BLOCK_CACHE_BYTES,
        attach_to: Database | None = None,
        compress_threads: int | None = None,
        database: Database | None = None,
        files: FileOpener = LOCAL_FILES,
    ) -> None:
        """`database` and `files`: where a published snapshot read in place has its
        db.sqlite3 and its sequence files (`root_dir` is then the sequences/ URL)."""
        self._root_dir = root_dir
        self._writeable = writeable
        if writeable:
            os.makedirs(root_dir, exist_ok=True)
        self._db = database or Database(
            os.path.join(root_dir, "db.sqlite3"),
            "fastadir",
            writeable,
            attach_to=attach_to,
            schema="fd" if attach_to is not None else "main",
        )
        self._seqinfo = self._db.table("seqinfo")
        self._reader = BlockReader(config.fd_cache_maxsize(fd_cache_size), block_cache_bytes, files)
        self._info_cache = LRU(config.lru_cache_maxsize())
        self._paths: dict[str, str] = {}
        self._recent_relpath: str | None = None  # the file fetch_located last read from
        self._writer: BgzfFastaWriter | None = None
        self._writer_relpath: str | None = None
        self._pending: dict[str, tuple[str, int, str, str]] = {}
        self._pending_residues = 0
        self._lock_fd: int | None = self._take_writer_lock() if writeable else None
        self._compress_threads = compress_threads or min(2, os.cpu_count() or 1)

    @property
    def database(self) -> Database:
        return self._db

    # ---- reading -------------------------------------------------------------------------
    def fetch_seqinfo(self, seq_id: str) -> dict[str, Any]:
        info = self._info_cache.get(seq_id)
        if info is not None:
            return info
        rows = self._db.query(
            f"select seq_id, len, alpha, added, relpath from {self._seqinfo}"
            " where seq_id = ? order by added desc limit 1",
            (seq_id,),
        )
        if not rows:
            pending = self._pending.get(seq_id)
            if pending is None:
                raise SequenceNotFoundError(seq_id)
            return dict(zip(("seq_id", "len", "alpha", "relpath"), pending, strict=True))
        s, length, alpha, added, relpath = rows[0]
        info = {
            "seq_id": s,
            "len": length,
            "alpha": alpha,
            "added": parse_added(added),
            "relpath": relpath,
        }
        self._info_cache.put(seq_id, info)
        return info

    def alphabets(self, seq_ids: Sequence[str]) -> dict[str, str | None]:
        """The stored alphabet of each of many sequences in a few queries (a .dict of a
        million-record collection asks for them a page at a time); absent ids are left out."""
        found: dict[str, str | None] = {}
        for at in range(0, len(seq_ids), BATCH_PARAMETERS):
            part = seq_ids[at : at + BATCH_PARAMETERS]
            marks = ",".join("?" * len(part))
            rows = self._db.query(
                f"select seq_id, alpha from {self._seqinfo} where seq_id in ({marks})"
                " order by added",  # the newest row last, so it wins (as fetch_seqinfo)
                tuple(part),
            )
            found.update(rows)
        return found

    def fetch(self, seq_id: str, start: int | None = None, end: int | None = None) -> str:
        return self._fetch(seq_id, start, end, True)

    def fetch_bytes(self, seq_id: str, start: int | None = None, end: int | None = None) -> bytes:
        """Residues [start, end) with pysam's clipping rules; negative positions are errors."""
        return self._fetch(seq_id, start, end, False)

    def _fetch(self, seq_id: str, start: int | None, end: int | None, as_str: bool) -> Any:
        info = self.fetch_seqinfo(seq_id)
        return self.fetch_located(seq_id, info["len"], info["relpath"], start, end, as_str)

    def fetch_located(
        self,
        seq_id: str,
        length: int,
        relpath: str,
        start: int | None,
        end: int | None,
        as_str: bool,
    ) -> Any:
        """Residues of a sequence whose length and file the caller already looked up."""
        start = 0 if start is None else start
        if start < 0 or (end is not None and end < 0):
            raise ValueError(f"negative coordinates ({start}, {end}) for {seq_id}")
        if end is not None and start > end:
            raise ValueError(f"invalid coordinates: start {start} > end {end} for {seq_id}")
        end = length if end is None else min(end, length)
        if start >= end:
            return "" if as_str else b""
        if self._writer_relpath is not None and relpath == self._writer_relpath:
            log.warning("%s is in the file being written; committing first", seq_id)
            self.commit()
        path = self._path(relpath)
        self._recent_relpath = relpath
        try:
            return self._reader.fetch(path, seq_id, start, end, as_str)
        except CorruptFileError:
            self._reader.drop(path)
            raise

    @property
    def recent_relpath(self) -> str | None:
        """The file fetch_located last read from."""
        return self._recent_relpath

    def recent_location(self, seq_id: str) -> tuple[int, str] | None:
        """(length, relpath) of `seq_id` if the file last read from holds it, from that file's
        .fai in memory: no query, no I/O. None if it does not, or its .fai is not indexed yet.

        Sequences loaded together share a file and are often read back in that order (a
        transcript set), so this answers most of such a reader's lookups.
        """
        relpath = self._recent_relpath
        if relpath is None or relpath == self._writer_relpath:
            return None
        entry = self._reader.indexed_entry(self._path(relpath), seq_id)
        return None if entry is None else (entry.length, relpath)

    def fetch_cached(self, seq_id: str, start: int, end: int) -> bytes | np.ndarray | None:
        """Residues [start, end) if they can be had from memory alone, else None (no I/O)."""
        info = self._info_cache.get(seq_id)
        if info is None or start < 0 or start > end:
            return None
        end = min(end, info["len"])
        if start >= end:
            return b""
        return self._reader.fetch_cached(self._path(info["relpath"]), seq_id, start, end)

    def _path(self, relpath: str) -> str:
        path = self._paths.get(relpath)
        if path is None:  # a handful of files; joining costs more than the lookup
            path = self._paths[relpath] = os.path.join(self._root_dir, relpath)
        return path

    def __getitem__(self, seq_id: str) -> str:
        return self.fetch(seq_id)

    def __contains__(self, seq_id: object) -> bool:
        if seq_id in self._pending:
            return True
        rows = self._db.query(f"select 1 from {self._seqinfo} where seq_id = ? limit 1", (seq_id,))
        return bool(rows)

    def __len__(self) -> int:
        return self.stats()["n_sequences"]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rows = self._db.query(
            f"select seq_id, len, alpha, added, relpath from {self._seqinfo} order by seq_id"
        )
        for seq_id, length, alpha, added, relpath in rows:
            yield {
                "seq_id": seq_id,
                "len": length,
                "alpha": alpha,
                "added": parse_added(added),
                "relpath": relpath,
                "seq": self.fetch(seq_id),
            }

    def seqinfo_rows(self) -> list[tuple[str, int, str]]:
        """(seq_id, len, relpath) for every sequence, in seq_id order, without reading any."""
        return self._db.query(f"select seq_id, len, relpath from {self._seqinfo} order by seq_id")

    def stats(self) -> dict[str, Any]:
        row = self._db.query(
            f"select count(distinct seq_id), sum(len), min(added), max(added),"
            f" count(distinct relpath) from {self._seqinfo}"
        )[0]
        keys = ("n_sequences", "tot_length", "min_ts", "max_ts", "n_files")
        return dict(zip(keys, row, strict=True))

    def schema_version(self) -> int:
        return int(
            self._db.query(
                f"select value from {self._db.table('meta')} where key = 'schema version'"
            )[0][0]
        )

    # ---- writing -------------------------------------------------------------------------
    def store(
        self,
        seq_id: str,
        seq: str | bytes | bytearray,
        alpha: str | None = None,
        *,
        known_absent: bool = False,
    ) -> str:
        """Append a sequence (stored text, already upper-cased if wanted); idempotent.

        `alpha` is the alphabet if the caller computed it while reading; bytes-like `seq` is
        not copied (a chromosome is held once). `known_absent`: the caller looked the seq_id
        up in bulk and it is not committed, so only this batch is checked (no query).
        """
        if not self._writeable:
            raise ReadOnlyError(f"{self._root_dir}: cannot store in a read-only FastaDir")
        if seq_id in self._pending if known_absent else seq_id in self:
            return seq_id
        data = seq.encode("ascii") if isinstance(seq, str) else seq
        if self._writer is None:
            self._open_writer()
        assert self._writer is not None and self._writer_relpath is not None
        self._writer.add(seq_id, data)
        alpha = alphabet(data) if alpha is None else alpha
        self._pending[seq_id] = (seq_id, len(data), alpha, self._writer_relpath)
        self._pending_residues += len(data)
        return seq_id

    @property
    def pending_residues(self) -> int:
        return self._pending_residues

    @property
    def pending_sequences(self) -> int:
        return len(self._pending)

    @property
    def pending_seq_ids(self) -> frozenset[str]:
        """seq_ids stored since the last flush (not committed yet)."""
        return frozenset(self._pending)

    def _open_writer(self) -> None:
        reldir = time.strftime("%Y/%m%d/%H%M", time.gmtime())
        os.makedirs(os.path.join(self._root_dir, reldir), exist_ok=True)
        while True:
            relpath = f"{reldir}/{time.time()}.fa.bgz"
            final = os.path.join(self._root_dir, relpath)
            names = [final, final + ".fai", final + ".gzi", final[:-4]]
            if not any(os.path.exists(n) for n in names + [final + PARTIAL_SUFFIX]):
                break
            time.sleep(0.001)
        self._writer = BgzfFastaWriter(final + PARTIAL_SUFFIX, threads=self._compress_threads)
        self._writer_relpath = relpath

    def flush_file(self) -> None:
        """Finish the open file: fsync, index, chmod 0444, rename into place; add its rows.

        The rows are inserted but not committed: the caller commits (possibly together with
        the alias database in one transaction).
        """
        detached = self.detach_file()
        if detached is not None:
            detached.finish_file()
            detached.insert_rows()

    def detach_file(self) -> DetachedFile | None:
        """Hand over the open file and its pending rows (None if no file is open).

        The next store() opens a new file at once, so a loader can finish one batch on another
        thread while it parses the next. Finish the file, then insert its rows through the
        writer connection before the commit that must include them.
        """
        if self._writer is None:
            return None
        assert self._writer_relpath is not None
        detached = DetachedFile(
            self._writer,
            os.path.join(self._root_dir, self._writer_relpath),
            list(self._pending.values()),
            self._db.writer,
            self._seqinfo,
        )
        self._writer = None
        self._writer_relpath = None
        self._pending = {}
        self._pending_residues = 0
        return detached

    def commit(self) -> None:
        self.flush_file()
        self._db.commit()

    def abort(self) -> None:
        """Drop everything not yet committed (the open file is deleted)."""
        if self._writer is not None:
            self._writer.abort()
            try:
                os.remove(self._writer.path)
            except FileNotFoundError:
                pass
        self._writer = None
        self._writer_relpath = None
        self._pending = {}
        self._pending_residues = 0
        self._db.rollback()

    def _take_writer_lock(self) -> int:
        """One writer per instance: an flock on the sequences directory (no extra file)."""
        fd = os.open(self._root_dir, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise WriterBusyError(
                f"{self._root_dir}: another process is writing to this instance"
            ) from None
        self._remove_partials()
        return fd

    def _remove_partials(self) -> None:
        """Files left by an interrupted writer; nothing refers to them."""
        pattern = os.path.join(self._root_dir, "*", "*", "*", "*" + PARTIAL_SUFFIX)
        for path in glob.glob(pattern):
            log.info("removing %s left by an interrupted load", path)
            try:
                os.remove(path)
            except OSError as exc:
                log.warning("could not remove %s: %s", path, exc)

    def close(self) -> None:
        """Commit any open file (so no stored data is lost), then close the database."""
        if self._writeable and (self._writer is not None or self._pending):
            self.commit()
        self._db.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> FastaDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _write_file_atomically(path: str, data: bytes) -> None:
    tmp = path + PARTIAL_SUFFIX
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o444)
    os.replace(tmp, path)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class DetachedFile:
    """A batch's sequence file and its seqinfo rows, handed over to be finished elsewhere.

    Why two steps: the file work touches no database, so it can run on a thread of its own
    beside other inserts; the rows must go through the writer connection on the thread that
    uses it. Two threads sharing one SQLite connection serialise on its mutex, and Python's
    sqlite3 binds parameters holding the GIL: a thread waiting there for the other's long
    insert held the GIL throughout (9 s of a 40 s load of 300 k sequences).
    """

    writer: BgzfFastaWriter
    final: str
    rows: list[tuple[str, int, str, str]]
    conn: sqlite3.Connection
    table: str

    def finish_file(self) -> None:
        """Close, index (`.fai`, `.gzi`), chmod 0444, rename into place and fsync it."""
        fai, gzi = self.writer.close()
        for suffix, data in ((".gzi", gzi), (".fai", fai)):
            _write_file_atomically(self.final + suffix, data)
        os.chmod(self.writer.path, 0o444)
        os.rename(self.writer.path, self.final)
        _fsync_dir(os.path.dirname(self.final))

    def insert_rows(self) -> None:
        """Insert the file's seqinfo rows (not committed)."""
        insert_many(self.conn, self.table, ("seq_id", "len", "alpha", "relpath"), self.rows)
