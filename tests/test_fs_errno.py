"""What a real mount answers to requests it must refuse, and that none of them hurts the daemon.

Errno table (the kernel answers some of these itself because the mount is `ro` and files are
0444/dirs 0555; the daemon answers the same if asked):

    write-open, create, mkdir, mknod, unlink, rmdir, rename, link, symlink,
    chmod/chown/utime/truncate (setattr), setxattr, removexattr           EROFS
    unknown namespace/alias/suffix, a name encode_name would not produce   ENOENT
    a path through a file                                                  ENOTDIR
    open a directory for writing, read() on a directory                    EISDIR
    readlink of a non-symlink                                              EINVAL
    damaged sequence file (CorruptFileError) or any internal error         EIO, logged
"""

from __future__ import annotations

import errno
import os
import random
import shutil
from pathlib import Path

import pytest
from support.data import build_repo, real_instance
from support.fuse import Mounted, errno_of, needs_fuse

from seqrepofs.seqrepo import SeqRepo

pytestmark = [needs_fuse, pytest.mark.fuse, pytest.mark.timeout(60)]

NS = "test"
NAME = "NC_001422.1%20Enterobacteria%20phage%20phiX174%20sensu%20lato,%20complete%20genome"


@pytest.fixture(scope="module")
def mnt(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("errno") / "mnt"
    with Mounted(real_instance("rest-service-2019"), path) as m:
        yield Path(m.mnt)
        assert os.listdir(path), "the daemon must survive every refused request"


def test_writes_are_erofs(mnt: Path) -> None:
    fa = mnt / NS / f"{NAME}.fa"
    assert fa.exists()
    for flags in (os.O_WRONLY, os.O_RDWR, os.O_WRONLY | os.O_TRUNC, os.O_WRONLY | os.O_APPEND):
        assert errno_of(os.open, fa, flags) == errno.EROFS
    assert errno_of(os.open, mnt / NS / "new.fa", os.O_WRONLY | os.O_CREAT, 0o644) == errno.EROFS
    assert errno_of(os.mkdir, mnt / "newdir") == errno.EROFS
    assert errno_of(os.mknod, mnt / NS / "fifo", 0o600 | 0o010000) == errno.EROFS
    assert errno_of(os.unlink, fa) == errno.EROFS
    assert errno_of(os.rmdir, mnt / NS) == errno.EROFS
    assert errno_of(os.rename, fa, mnt / NS / "x.fa") == errno.EROFS
    assert errno_of(os.link, fa, mnt / NS / "x.fa") == errno.EROFS
    assert errno_of(os.symlink, "x", mnt / NS / "link") == errno.EROFS
    assert errno_of(os.chmod, fa, 0o644) == errno.EROFS
    assert errno_of(os.utime, fa, None) == errno.EROFS
    assert errno_of(os.truncate, fa, 0) == errno.EROFS
    assert errno_of(os.setxattr, fa, "user.x", b"1") == errno.EROFS
    assert fa.read_bytes().startswith(b">NC_001422.1%20")


def test_unknown_names_are_enoent(mnt: Path) -> None:
    for rel in (
        "nope",
        f"{NS}/nope.fa",
        f"{NS}/{NAME}",  # no suffix
        f"{NS}/{NAME}.fasta",
        f"{NS}/{NAME}.fa.gzi",
        f"{NS}/NC_001422.1 Enterobacteria.fa",  # the raw, unencoded alias
        f"{NS}/bad%2.fa",  # malformed escape
        f"{NS}/%4E%43_001422.1.fa",  # escaped safe characters: not the canonical name
        f"{NS}/{NAME.replace(',', '%2C')}.fa",  # an escaped comma (commas pass unescaped)
        f"{NS}/.fa",
        "ga4gh/GS_lZyxiD_ByprhOUzrR1o1bq0ezO_1gkrn.fa",  # a VMC name under its API namespace
        "ga4gh/XX.lZyxiD_ByprhOUzrR1o1bq0ezO_1gkrn.fa",
        "refseq",  # NCBI is not stored in this instance
    ):
        assert errno_of(os.stat, mnt / rel) == errno.ENOENT, rel
    assert (mnt / "ga4gh" / "SQ.lZyxiD_ByprhOUzrR1o1bq0ezO_1gkrn.fa").exists()


def test_directories_and_files_confused(mnt: Path) -> None:
    fa = mnt / NS / f"{NAME}.fa"
    assert errno_of(os.stat, Path(f"{fa}/x")) == errno.ENOTDIR
    assert errno_of(os.listdir, fa) == errno.ENOTDIR
    assert errno_of(os.open, mnt / NS, os.O_WRONLY) == errno.EISDIR
    fd = os.open(mnt / NS, os.O_RDONLY)
    try:
        assert errno_of(os.read, fd, 10) == errno.EISDIR
    finally:
        os.close(fd)
    assert errno_of(os.readlink, fa) == errno.EINVAL
    assert errno_of(os.readlink, mnt / NS) == errno.EINVAL


def test_xattrs_are_not_supported(mnt: Path) -> None:
    """No xattr handlers: the kernel learns that once (ENOSYS) and answers EOPNOTSUPP itself."""
    fa = mnt / NS / f"{NAME}.fa"
    assert errno_of(os.getxattr, fa, "user.x") == errno.EOPNOTSUPP
    assert errno_of(os.listxattr, fa) == errno.EOPNOTSUPP


def test_damaged_file_is_eio_for_that_file_only(tmp_path: Path) -> None:
    """A truncated BGZF file: reads of its sequences fail with EIO, logged with the path; the
    daemon and the other files are fine."""
    src = tmp_path / "repo"
    build_repo(src, n=12)
    sr = SeqRepo(src, writeable=True)
    seq = "".join(random.Random(1).choices("ACGT", k=200_000))
    sr.store(seq, [{"namespace": "refseq", "alias": "DAMAGED_1.1"}])
    sr.close()
    reader = SeqRepo(src)
    seq_id = reader.aliases.current_alias("NCBI", "DAMAGED_1.1")
    bgz = src / "sequences" / reader.sequences.fetch_seqinfo(seq_id)["relpath"]
    reader.close()
    os.chmod(bgz, 0o644)
    with open(bgz, "r+b") as fh:
        assert fh.seek(0, os.SEEK_END) > 30_000
        fh.seek(20_000)
        fh.write(b"\xff" * 2000)  # corrupt deflate data in the middle of the file
    mnt = tmp_path / "mnt"
    with Mounted(src, mnt) as m:
        damaged = mnt / "refseq" / "DAMAGED_1.1.fa"
        assert damaged.stat().st_size > 0
        with pytest.raises(OSError) as info:
            damaged.read_bytes()
        assert info.value.errno == errno.EIO
        assert "/refseq/DAMAGED_1.1.fa" in m.log
        assert (mnt / "refseq" / "NC_000002.1.fa").read_bytes().startswith(b">NC_000002.1\n")
        assert (mnt / "refseq" / "DAMAGED_1.1.fa.fai").read_bytes()  # indexes still served
    shutil.rmtree(src, ignore_errors=True)
