"""The temporary directory a pull writes into: `<root>/<instance>.<random>`, locked, resumable.

A pull never writes under the snapshot's final name: rsync fills `<instance>.<random>` and only
a complete transfer is renamed into place. The directory carries a marker file that is flocked
for as long as the pull (and the rsync it started, which inherits the lock) is alive, so:

* an unlocked marker means the pull that made it died: its files are reused by the next pull of
  the same instance from the same source (rsync skips what is complete; `--delete` clears its
  half-written temporaries), and any further such leftovers are removed;
* a locked marker means another pull is running, and we refuse rather than race it;
* a directory without the marker is not ours (a `snapshot` in progress, say) and is left alone.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..store.instances import SNAPSHOT_RE
from .errors import PullBusyError, RemoteError

log = logging.getLogger(__name__)

MARKER = ".seqrepofs-pull"


@dataclass
class PullDir:
    """A claimed temporary directory; `lock_fd` must stay open until the pull ends."""

    path: str
    lock_fd: int
    resumed: bool
    removed: list[str] = field(default_factory=list)

    def publish(self, final: str) -> None:
        """Give the finished tree its final name (one rename, so it appears whole or not)."""
        if os.path.lexists(final):
            raise RemoteError(
                f"{final} appeared while pulling; the pulled copy stays in {self.path}"
            )
        os.rename(self.path, final)
        os.unlink(os.path.join(final, MARKER))


def leftovers(root: str, name: str | None = None) -> list[str]:
    """Temporary directories of earlier pulls (of `name`, or of any snapshot) under `root`."""
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return []
    found = []
    for entry in entries:
        owner = snapshot_of(entry.name)
        if owner is None or (name is not None and owner != name):
            continue
        if entry.is_dir(follow_symlinks=False) and os.path.isfile(f"{entry.path}/{MARKER}"):
            found.append(entry.path)
    return sorted(found)


def snapshot_of(path: str) -> str | None:
    """The snapshot a `<snapshot>.<random>` directory belongs to, else None."""
    base, dot, rest = os.path.basename(path).partition(".")
    return base if dot and rest and SNAPSHOT_RE.match(base) else None


@contextmanager
def claim(root: str, name: str, source: str) -> Iterator[PullDir]:
    """Lock a temporary directory for pulling `name` from `source`: a leftover or a new one."""
    locked = _lock_leftovers(root, name)
    reusable = [(p, fd) for p, fd, src in locked if src == source]
    chosen = max(reusable, key=lambda pf: os.stat(pf[0]).st_mtime, default=None)
    removed = []
    for path, fd, _src in locked:
        if chosen and path == chosen[0]:
            continue
        remove_tree(path)
        os.close(fd)
        removed.append(path)
        log.info("removed stale pull directory %s", path)
    if chosen:
        pull_dir = PullDir(chosen[0], chosen[1], resumed=True, removed=removed)
    else:
        path = tempfile.mkdtemp(dir=root, prefix=name + ".")
        os.chmod(path, 0o777 & ~_umask())
        fd = os.open(os.path.join(path, MARKER), os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        pull_dir = PullDir(path, fd, resumed=False, removed=removed)
    _write_marker(pull_dir, name, source)
    try:
        yield pull_dir
    finally:
        os.close(pull_dir.lock_fd)


def remove_tree(path: str) -> None:
    """rmtree that first restores write permission (pulled directories may be read-only)."""
    for dirpath, _dirs, _files in os.walk(path):
        os.chmod(dirpath, 0o700)
    shutil.rmtree(path)


def _lock_leftovers(root: str, name: str) -> list[tuple[str, int, str | None]]:
    """(path, locked fd, recorded source) for each leftover; PullBusyError if one is in use."""
    locked: list[tuple[str, int, str | None]] = []
    try:
        for path in leftovers(root, name):
            fd = os.open(os.path.join(path, MARKER), os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise PullBusyError(
                    f"another pull of {name} is running into {path}; wait for it to finish"
                ) from None
            locked.append((path, fd, _read_source(fd)))
    except BaseException:
        for _path, fd, _src in locked:
            os.close(fd)
        raise
    return locked


def _read_source(fd: int) -> str | None:
    try:
        data = json.loads(os.pread(fd, 65536, 0) or b"{}")
    except ValueError:
        return None
    return data.get("source") if isinstance(data, dict) else None


def _write_marker(pull_dir: PullDir, name: str, source: str) -> None:
    info = {"instance": name, "source": source, "pid": os.getpid(), "started": time.time()}
    data = json.dumps(info).encode()
    os.ftruncate(pull_dir.lock_fd, 0)
    os.pwrite(pull_dir.lock_fd, data, 0)
    os.utime(pull_dir.path)  # the most recently used leftover is the one to resume


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
