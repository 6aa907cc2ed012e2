#!/usr/bin/env python3
"""The least a pyfuse3 filesystem can do to list N files: the yardstick for seqrepofs listings.

    minimal_fs.py MOUNTPOINT --entries N [--size BYTES]

serves MOUNTPOINT/d/ holding N read-only files E000000001.1.fa ... (names as long as a RefSeq
accession's .fa), each BYTES long. Inode numbers and readdir positions are computed from the
entry's index and every answer from the inode number, so nothing is kept per entry: what a
listing costs here is what FUSE and pyfuse3 cost. Runs in the foreground until unmounted
(fusermount3 -u) or signalled.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import stat

import pyfuse3
import trio

DIR_INO = 2
FIRST_FILE_INO = 3
TIMEOUT = 30 * 86400.0


class MinimalFs(pyfuse3.Operations):
    def __init__(self, entries: int, size: int) -> None:
        super().__init__()
        self.entries = entries
        self.size = size

    def _attrs(self, ino: int) -> pyfuse3.EntryAttributes:
        a = pyfuse3.EntryAttributes()
        a.st_ino = ino
        a.entry_timeout = a.attr_timeout = TIMEOUT
        if ino in (pyfuse3.ROOT_INODE, DIR_INO):
            a.st_mode, a.st_nlink = stat.S_IFDIR | 0o555, 2
        elif FIRST_FILE_INO <= ino < FIRST_FILE_INO + self.entries:
            a.st_mode, a.st_nlink, a.st_size = stat.S_IFREG | 0o444, 1, self.size
        else:
            raise pyfuse3.FUSEError(errno.ENOENT)
        a.st_uid, a.st_gid = os.getuid(), os.getgid()
        a.st_blksize = 4096
        a.st_blocks = (a.st_size + 511) // 512
        return a

    @staticmethod
    def _name(index: int) -> bytes:
        return b"E%09d.1.fa" % (index + 1)

    async def getattr(self, inode: int, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        return self._attrs(inode)

    async def lookup(
        self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        if parent_inode == pyfuse3.ROOT_INODE and name == b"d":
            return self._attrs(DIR_INO)
        if parent_inode == DIR_INO and name.startswith(b"E") and name.endswith(b".1.fa"):
            try:
                index = int(name[1:-5]) - 1
            except ValueError:
                index = -1
            if 0 <= index < self.entries and self._name(index) == name:
                return self._attrs(FIRST_FILE_INO + index)
        raise pyfuse3.FUSEError(errno.ENOENT)

    async def opendir(self, inode: int, ctx: pyfuse3.RequestContext) -> int:
        return inode

    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        if fh == pyfuse3.ROOT_INODE:
            if start_id == 0:
                pyfuse3.readdir_reply(token, b"d", self._attrs(DIR_INO), 1)
            return
        for pos in range(start_id, 2):  # "." and "..", as seqrepofs lists them
            if not pyfuse3.readdir_reply(token, b"." * (pos + 1), self._attrs(DIR_INO), pos + 1):
                return
        for index in range(max(start_id, 2) - 2, self.entries):
            ino = FIRST_FILE_INO + index
            if not pyfuse3.readdir_reply(token, self._name(index), self._attrs(ino), index + 3):
                return

    async def forget(self, inode_list: list[tuple[int, int]]) -> None:
        pass  # nothing kept per inode


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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mountpoint")
    parser.add_argument("--entries", type=int, required=True, help="files in d/")
    parser.add_argument("--size", type=int, default=1000, help="bytes each file claims")
    args = parser.parse_args()
    fs = MinimalFs(args.entries, args.size)
    options = {"ro", "default_permissions", "fsname=minimal_fs", "subtype=minimal"}
    pyfuse3.init(fs, args.mountpoint, options)
    try:
        trio.run(_serve)
    finally:
        pyfuse3.close(unmount=True)


if __name__ == "__main__":
    main()
