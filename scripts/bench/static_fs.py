#!/usr/bin/env python3
"""The least a pyfuse3 filesystem can do to serve small files as a mounted master serves them.

    static_fs.py DIR MOUNTPOINT

serves MOUNTPOINT/refseq/<name> for every file of DIR, its bytes held in memory, with what
seqrepofs gives a master's alias files: names expire after 1 s (entry timeout), attributes are
kept long, pages are kept across opens (keep_cache). Every request is answered from a dict on
the event loop: what `samtools faidx` costs here beyond the plain files is what FUSE and
pyfuse3 cost (the yardstick of bench_scale.py's master_faidx part). Runs in the foreground
until unmounted (fusermount3 -u) or signalled.
"""

from __future__ import annotations

import argparse
import errno
import itertools
import os
import signal
import stat

import pyfuse3
import trio

DIR_INO = 2
ENTRY_TIMEOUT = 1.0
ATTR_TIMEOUT = 30 * 86400.0


class StaticFs(pyfuse3.Operations):
    def __init__(self, files: dict[bytes, bytes]) -> None:
        super().__init__()
        self.names = {name: i + 3 for i, name in enumerate(sorted(files))}
        self.data = {self.names[name]: data for name, data in files.items()}
        self.fh = itertools.count(1)
        self.open_files: dict[int, bytes] = {}

    def _attrs(self, ino: int) -> pyfuse3.EntryAttributes:
        a = pyfuse3.EntryAttributes()
        a.st_ino = ino
        a.entry_timeout = ENTRY_TIMEOUT
        a.attr_timeout = ENTRY_TIMEOUT if ino <= DIR_INO else ATTR_TIMEOUT
        if ino <= DIR_INO:
            a.st_mode, a.st_nlink, a.st_size = stat.S_IFDIR | 0o555, 2, 0
        else:
            a.st_mode, a.st_nlink, a.st_size = stat.S_IFREG | 0o444, 1, len(self.data[ino])
        a.st_uid, a.st_gid = os.getuid(), os.getgid()
        a.st_blksize = 16384
        a.st_blocks = (a.st_size + 511) // 512
        return a

    async def getattr(self, inode: int, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        if inode not in self.data and inode > DIR_INO:
            raise pyfuse3.FUSEError(errno.ENOENT)
        return self._attrs(inode)

    async def lookup(
        self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        if parent_inode == pyfuse3.ROOT_INODE and name == b"refseq":
            return self._attrs(DIR_INO)
        ino = self.names.get(name) if parent_inode == DIR_INO else None
        if ino is None:
            raise pyfuse3.FUSEError(errno.ENOENT)
        return self._attrs(ino)

    async def open(self, inode: int, flags: int, ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        fh = next(self.fh)
        self.open_files[fh] = self.data[inode]
        return pyfuse3.FileInfo(fh=fh, keep_cache=True)

    async def read(self, fh: int, off: int, size: int) -> bytes:
        return self.open_files[fh][off : off + size]

    async def release(self, fh: int) -> None:
        self.open_files.pop(fh, None)


async def _serve() -> None:
    async with trio.open_nursery() as nursery:

        async def on_signals() -> None:
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    pyfuse3.terminate()
                    return

        nursery.start_soon(on_signals)
        await pyfuse3.main()
        nursery.cancel_scope.cancel()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir")
    ap.add_argument("mountpoint")
    args = ap.parse_args()
    files = {}
    for entry in os.scandir(args.dir):
        if entry.is_file():
            with open(entry.path, "rb") as fh:
                files[os.fsencode(entry.name)] = fh.read()
    pyfuse3.init(StaticFs(files), args.mountpoint, ["fsname=static_fs", "ro"])
    try:
        trio.run(_serve)
    finally:
        pyfuse3.close(unmount=True)


if __name__ == "__main__":
    main()
