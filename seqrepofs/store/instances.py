"""A SeqRepo root: many instances (`master`, dated snapshots) and the `latest` symlink."""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import sqlite3
import stat
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime

from ..errors import NotASeqRepoError, ReadOnlyError, SeqRepoError
from .schema import connect, read_only_uri

# The reference accepts only 201x/202x; we accept every year of this century.
SNAPSHOT_RE = re.compile(r"^20\d\d-?\d\d-?\d\d$")
REMOTE_SNAPSHOT_RE = re.compile(r"^20\d\d-\d\d-\d\d$")
DB_FILES = ("aliases.sqlite3", os.path.join("sequences", "db.sqlite3"))
# Databases an instance may also hold; a snapshot carries them too.
OPTIONAL_DB_FILES = ("collections.sqlite3",)
# What `snapshot` leaves without write bits, and so what tells a frozen instance.
_FROZEN_PARTS = ("", "sequences", *DB_FILES)


def is_frozen(path: str) -> bool:
    """True if the instance at `path` is a frozen snapshot: no write bits on the directory,
    sequences/ or either database (as `snapshot` leaves them).

    Nothing may change a frozen instance, so readers skip SQLite's locking and cache its
    answers for good. Unreadable parts mean "not frozen": the safe answer for a reader.
    """
    try:
        return not any(os.stat(os.path.join(path, rel)).st_mode & 0o222 for rel in _FROZEN_PARTS)
    except OSError:
        return False


def check_writable(path: str) -> None:
    """Raise ReadOnlyError unless the instance at `path` may be written.

    Refused when any part has lost its write bits, even for root, who could write anyway: a
    snapshot (or an instance a user made read-only) must stay as it is. The message says
    which: a snapshot, a read-only file system, or missing permissions.
    """
    if is_frozen(path) and SNAPSHOT_RE.match(os.path.basename(os.path.normpath(path))):
        raise ReadOnlyError(f"{path}: instance is read-only (a snapshot?); write to master instead")
    try:
        marked = any(not os.stat(os.path.join(path, rel)).st_mode & 0o222 for rel in _FROZEN_PARTS)
    except FileNotFoundError:
        raise NotASeqRepoError(f"{path}: no such SeqRepo instance") from None
    if marked or not os.access(path, os.W_OK):
        raise ReadOnlyError(f"{path}: instance is read-only ({_why_unwritable(path)})")


def _why_unwritable(path: str) -> str:
    """Why, in words a user can act on: a read-only file system, or the modes."""
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return "read-only file system"
    except OSError:
        pass
    return "no write permission on the directory or its databases"


def is_instance(path: str) -> bool:
    """True if `path` holds both databases of a SeqRepo instance."""
    return all(os.path.isfile(os.path.join(path, f)) for f in DB_FILES)


def list_instances(root: str) -> list[str]:
    """Snapshot names under a root, oldest first (plain lexical order, as the reference)."""
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        raise NotASeqRepoError(f"{root}: root directory does not exist") from None
    return sorted(n for n in names if SNAPSHOT_RE.match(n) and os.path.isdir(os.path.join(root, n)))


def update_latest(root: str, name: str | None = None) -> str:
    """Point `latest` at `name` (default the newest snapshot) atomically; returns the name."""
    if name is None:
        instances = list_instances(root)
        if not instances:
            raise SeqRepoError(f"{root}: no snapshot to point 'latest' at")
        name = instances[-1]
    if not os.path.isdir(os.path.join(root, name)):
        raise NotASeqRepoError(f"{root}/{name}: no such instance")
    tmp = os.path.join(root, f".latest.{os.getpid()}")
    if os.path.lexists(tmp):
        os.remove(tmp)
    os.symlink(name, tmp)
    os.replace(tmp, os.path.join(root, "latest"))
    return name


@dataclass(frozen=True)
class SnapshotResult:
    """What `make_snapshot` did: where, and how the databases got there.

    `method` is "reflink" when every database was cloned (its blocks shared with the source,
    so the snapshot cost no data blocks), "copy" when the file system cannot share blocks and
    each was copied, "mixed" if only some could be cloned. `bytes_copied` counts the database
    bytes written anew (0 for clones); sequence files are always hardlinked.
    """

    path: str
    method: str
    databases: tuple[str, ...]
    bytes_copied: int

    def summary(self) -> str:
        how = {
            "reflink": "cloned (reflink: blocks shared with the source)",
            "copy": "copied (this file system cannot share blocks)",
            "mixed": "partly cloned, partly copied",
        }[self.method]
        return (
            f"snapshot {self.path}: {len(self.databases)} databases {how};"
            f" {self.bytes_copied:,} bytes copied"
        )


def snapshot(root: str, instance: str = "master", destination: str | None = None) -> str:
    """Freeze an instance into a read-only dated snapshot; returns its path."""
    return make_snapshot(root, instance, destination).path


def make_snapshot(
    root: str, instance: str = "master", destination: str | None = None
) -> SnapshotResult:
    """Freeze an instance into a read-only dated snapshot.

    Sequence files are hardlinked; the databases are cloned where the file system shares
    blocks (XFS with reflink, btrfs), else copied with SQLite's backup API, in both cases as of
    one moment even while a loader writes. Built under a temporary name and renamed, so no
    half snapshot is ever visible under its final name.
    """
    src = os.path.realpath(os.path.join(root, instance))
    if not is_instance(src):
        raise NotASeqRepoError(f"{src}: not a SeqRepo instance")
    dest_name = destination or datetime.now(UTC).strftime("%Y-%m-%d")
    dst = dest_name if os.path.isabs(dest_name) else os.path.join(root, dest_name)
    dst = os.path.abspath(dst)
    if os.path.lexists(dst):
        raise SeqRepoError(f"{dst}: already exists")
    if os.path.commonpath([src, dst]) == src:
        raise SeqRepoError(f"{dst}: destination lies inside the source instance {src}")
    parent = os.path.dirname(dst)
    tmp = tempfile.mkdtemp(dir=parent, prefix=os.path.basename(dst) + ".")
    try:
        # mkdtemp makes it 0700: give it the source's mode, so whoever may read master may
        # read the snapshot (write bits are dropped below)
        os.chmod(tmp, stat.S_IMODE(os.stat(src).st_mode))
        rels, cloned, copied = _copy_dbs(src, tmp)
        relpaths = _referenced_files(tmp)
        for rel in relpaths:
            for suffix in ("", ".fai", ".gzi"):
                s = os.path.join(src, "sequences", rel + suffix)
                d = os.path.join(tmp, "sequences", rel + suffix)
                os.makedirs(os.path.dirname(d), exist_ok=True)
                os.link(s, d)
        _make_read_only(tmp)
        os.rename(tmp, dst)
    except BaseException:
        _make_writable(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    method = "reflink" if cloned == len(rels) else "copy" if cloned == 0 else "mixed"
    return SnapshotResult(dst, method, rels, copied)


def instance_databases(path: str) -> tuple[str, ...]:
    """Relative paths of the databases an instance holds: both required ones, then the
    optional ones present."""
    optional = tuple(r for r in OPTIONAL_DB_FILES if os.path.isfile(os.path.join(path, r)))
    return DB_FILES + optional


def _copy_dbs(src: str, dst: str) -> tuple[tuple[str, ...], int, int]:
    """Copy every database as of one moment; returns (relpaths, how many cloned, bytes copied).

    A load commits sequences and aliases in one transaction over both files, so they are read
    in one read transaction (a commit waits for the copy to end, as it does for any reader);
    copied one after the other, a commit landing in between would leave the snapshot with
    sequences that lack their aliases. The read transaction holds a shared lock on every file,
    so no writer can change a file while it is cloned either; a file in WAL mode (whose latest
    pages may live in its -wal file) is always copied through SQLite.
    """
    os.makedirs(os.path.join(dst, "sequences"), exist_ok=True)
    rels = instance_databases(src)
    paths = [os.path.join(src, rel) for rel in rels]
    schemas = ["main"] + [f"db{i}" for i in range(1, len(rels))]
    for path in paths:  # first roll back a write killed mid-commit, as any reader does
        probe = connect(path, writeable=False)
        try:
            probe.execute("select count(*) from sqlite_master").fetchone()
        finally:
            probe.close()
    cloned = copied = 0
    source = sqlite3.connect(read_only_uri(paths[0]), uri=True, isolation_level=None)
    try:
        for schema, path in zip(schemas[1:], paths[1:], strict=True):
            source.execute(f"attach database ? as {schema}", (read_only_uri(path),))
        source.execute("begin")
        for schema in schemas:
            source.execute(f"select count(*) from {schema}.sqlite_master").fetchone()
        for schema, rel, path in zip(schemas, rels, paths, strict=True):
            target_path = os.path.join(dst, rel)
            wal = source.execute(f"pragma {schema}.journal_mode").fetchone()[0] == "wal"
            if not wal and _clone(path, target_path):
                cloned += 1
                continue
            target = sqlite3.connect(target_path)
            try:
                source.backup(target, name=schema)
            finally:
                target.close()
            copied += os.stat(target_path).st_blocks * 512
        source.execute("commit")
    finally:
        source.close()
    return rels, cloned, copied


# errnos with which FICLONE says "these files cannot share blocks" (not an I/O failure)
_NO_CLONE = {errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS}
FICLONE = 0x40049409  # _IOW(0x94, 9, int), linux/fs.h


def _clone(src: str, dst: str) -> bool:
    """Make `dst` a reflink clone of `src` (sharing its blocks); False if the file system
    cannot, leaving no `dst` behind."""
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        try:
            fcntl.ioctl(fout.fileno(), FICLONE, fin.fileno())
        except OSError as exc:
            if exc.errno not in _NO_CLONE:
                raise
            ok = False
        else:
            ok = True
    if not ok:
        os.remove(dst)
    return ok


def _referenced_files(instance: str) -> list[str]:
    conn = sqlite3.connect(
        f"file:{os.path.join(instance, 'sequences', 'db.sqlite3')}?mode=ro", uri=True
    )
    try:
        return [r[0] for r in conn.execute("select distinct relpath from seqinfo")]
    finally:
        conn.close()


def _make_read_only(top: str) -> None:
    for dirpath, _dirnames, filenames in os.walk(top, topdown=False):
        for name in filenames:
            path = os.path.join(dirpath, name)
            mode = os.stat(path).st_mode
            os.chmod(path, stat.S_IMODE(mode) & ~0o222)
        os.chmod(dirpath, stat.S_IMODE(os.stat(dirpath).st_mode) & ~0o222)


def _make_writable(top: str) -> None:
    if not os.path.isdir(top):
        return
    for dirpath, _dirnames, _filenames in os.walk(top):
        os.chmod(dirpath, 0o755)
