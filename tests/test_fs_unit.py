"""FUSE-free tests of the filesystem logic: inode table, file naming, tree, paging, the
Operations handlers called directly under trio, options and preflight checks."""

from __future__ import annotations

import errno
import logging
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from support.data import SNAPSHOT, build_root
from support.fuse import fuse_errno
from support.oracles import encode, fai, naive_fasta_record, sam_dict

from seqrepofs.commands import register_all
from seqrepofs.fs import lifecycle, mount_options
from seqrepofs.fs import tree as tree_mod
from seqrepofs.fs.content import FileKind, split_file_name
from seqrepofs.fs.identity import ROOT_INODE
from seqrepofs.fs.nodes import AliasFile, Node, NodeKind
from seqrepofs.fs.ops import SLOW_READ_BACKOFF, SLOW_READ_WAIT, Operations, ReadPlacement
from seqrepofs.fs.source import Instance, Root, open_source
from seqrepofs.fs.tree import FsError, Tree
from seqrepofs.seqrepo import SeqRepo

MNT = "/mnt/seqrepo"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("unitroot")
    build_root(path, n=40)
    return path


@pytest.fixture(scope="module")
def tree(root: Path) -> Tree:
    t = Tree(open_source(str(root / SNAPSHOT)), MNT)
    yield t
    t.close()


def _file(tree: Tree, ns: str, name: str) -> Node:
    return tree.lookup(tree.lookup(tree.root(), encode(ns)), name)


def _listed_names(page: list) -> list[str]:
    """The file names a listing page shows (a negative size: not listed)."""
    return [
        row.stem.decode() + kind.suffix for row in page for kind in FileKind if row.sizes[kind] >= 0
    ]


# ---- inode numbers -----------------------------------------------------------------------------
def test_inode_numbers_name_nodes_for_good(tree: Tree, root: Path) -> None:
    """A node is rebuilt from its number alone, equal to the one the lookup made; numbers are
    distinct per file and directory, the same in another daemon, and never negative."""
    ns = tree.lookup(tree.root(), "refseq")
    nodes = [ns, tree.lookup(tree.root(), "NCBI"), tree.lookup(tree.root(), "ga4gh")]
    for name in ("NC_000005.1.fa", "NC_000005.1.fa.fai", "NC_000005.1.dict",
                 "NC_000005.1.fa.dict", "NC_000006.1.fa"):  # fmt: skip
        nodes.append(tree.lookup(ns, name))
    nodes.append(tree.lookup(tree.lookup(tree.root(), "NCBI"), "NC_000005.1.fa"))
    numbers = [tree.ino(n) for n in nodes]
    assert len(set(numbers)) == len(numbers) and all(0 < n < 1 << 63 for n in numbers)
    fresh = Tree(open_source(str(root / SNAPSHOT)), MNT)  # nothing cached, nothing interned
    try:
        for node, ino in zip(nodes, numbers, strict=True):
            if isinstance(node, AliasFile):
                assert fresh.node(ino) == node and fresh.ino(node) == ino
            assert tree.node(ino) == node
    finally:
        fresh.close()
    assert tree.ino(tree.root()) == ROOT_INODE
    for bad in (0, 2, 999_999, 1 << 63, numbers[3] ^ (7 << 43), (1 << 62) | 123_456_789):
        with pytest.raises(FsError) as info:
            tree.node(bad)
        assert info.value.errno == errno.ESTALE, bad


# ---- names --------------------------------------------------------------------------------------
def test_split_file_name_readings() -> None:
    assert split_file_name("X.fa") == [("X", FileKind.FASTA)]
    assert split_file_name("X.fa.fai") == [("X", FileKind.FAI)]
    assert split_file_name("X.dict") == [("X", FileKind.DICT)]
    assert split_file_name("X.fa.dict") == [("X", FileKind.FA_DICT), ("X.fa", FileKind.DICT)]
    assert split_file_name(".fa") == [] and split_file_name("X.fasta") == []


# ---- tree ---------------------------------------------------------------------------------------
def test_files_and_their_bytes(tree: Tree, root: Path) -> None:
    sr = SeqRepo(root / SNAPSHOT)
    seq = sr.fetch("NC_000005.1")
    fa = _file(tree, "refseq", "NC_000005.1.fa")
    assert (fa.kind, fa.file_kind, fa.length) == (NodeKind.FILE, FileKind.FASTA, len(seq))
    content = tree.open(fa)
    assert bytes(content.read(tree, 0, fa.size + 100)) == naive_fasta_record("NC_000005.1", seq)
    assert bytes(content.read(tree, 61, 70)) == naive_fasta_record("NC_000005.1", seq)[61:131]
    fai_node = _file(tree, "refseq", "NC_000005.1.fa.fai")
    assert tree.open(fai_node).read(tree, 0, 1000) == fai("NC_000005.1", seq)
    for name in ("NC_000005.1.dict", "NC_000005.1.fa.dict"):
        node = _file(tree, "refseq", name)
        data = tree.open(node).read(tree, 0, 10_000)
        assert data == sam_dict("NC_000005.1", seq, f"{MNT}/refseq/NC_000005.1.fa")
        assert node.size == len(data)
    assert fa.mtime_ns == fai_node.mtime_ns  # one timestamp per instance
    sr.close()


def test_empty_sequence_files(tree: Tree) -> None:
    """A zero-length sequence: a bare header, an empty .fai (samtools writes no row for it),
    and LN:0 with the MD5 of nothing in the .dict (as samtools dict does)."""
    fa = _file(tree, "refseq", "NC_000000.1.fa")
    assert bytes(tree.open(fa).read(tree, 0, 100)) == b">NC_000000.1\n"
    assert _file(tree, "refseq", "NC_000000.1.fa.fai").size == 0
    d = tree.open(_file(tree, "refseq", "NC_000000.1.dict")).read(tree, 0, 1000)
    assert b"\tLN:0\tM5:d41d8cd98f00b204e9800998ecf8427e\t" in d


def test_lookup_rejects(tree: Tree) -> None:
    ns = tree.lookup(tree.root(), "refseq")
    for name in ("NC_000005.1", "nope.fa", "NC_000005.1.fasta", "%4EC_000005.1.fa", "bad%.fa",
                 ".", ".."):  # fmt: skip
        with pytest.raises(FsError) as info:
            tree.lookup(ns, name)
        assert info.value.errno == errno.ENOENT, name
    with pytest.raises(FsError) as info:
        tree.lookup(tree.root(), "odd ns")  # a directory name is encoded too
    assert info.value.errno == errno.ENOENT
    fa = tree.lookup(ns, "NC_000005.1.fa")
    with pytest.raises(FsError) as info:
        tree.lookup(fa, "x")
    assert info.value.errno == errno.ENOTDIR


def test_dict_name_collision_rule(tree: Tree) -> None:
    """Aliases "foo" and "foo.fa": foo.fa.dict is foo's .fa.dict; foo.fa's .dict is hidden."""
    ns = tree.lookup(tree.root(), encode("odd ns"))
    node = tree.lookup(ns, "foo.fa.dict")
    assert (node.alias, node.file_kind) == ("foo", FileKind.FA_DICT)
    assert tree.lookup(ns, "foo.fa.fa.dict").alias == "foo.fa"
    names = _listed_names(tree.alias_page(ns, 0))
    assert len(names) == len(set(names))
    assert "foo.fa.dict" in names and "foo.fa.fa.dict" in names


def test_namespaces_stored_and_api(tree: Tree) -> None:
    names = {n.name for n in tree.small_listing(tree.root())}
    assert {"NCBI", "refseq", "VMC", "ga4gh", "sha512t24u", "MD5", "odd%20ns"} <= names
    assert {"Ensembl", "ensembl"} <= names


def test_listing_pages_resume_and_seek(tree: Tree, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages follow the row ids: any row id resumes a listing (seekdir), one query a page."""
    monkeypatch.setattr(tree_mod, "PAGE_SIZE", 7)
    ns = tree.lookup(tree.root(), "ga4gh")
    rows, after, pages = [], 0, 0
    while page := tree.alias_page(ns, after):
        assert len(page) <= 7
        rows.extend(page)
        after, pages = page[-1].rowid, pages + 1
    assert len(rows) == 40 and pages == -(-40 // 7)
    ids = [r.rowid for r in rows]
    assert ids == sorted(set(ids))
    assert all(r.stem.startswith(b"SQ.") for r in rows)
    for i in (0, 6, 7, 8, 20, 39):  # resume after any row
        assert tree.alias_page(ns, ids[i] - 1)[0].rowid == ids[i]
    assert tree.alias_page(ns, ids[-1]) == []


def test_listed_attributes_are_the_files(tree: Tree) -> None:
    """What a listing says of each file (inode number, size, mtime) is what a lookup of its
    name says, and file_sizes' arithmetic is the bytes' length."""
    for nsname in ("refseq", "ga4gh", "odd%20ns"):
        ns = tree.lookup(tree.root(), nsname)
        bases = tree.listing_bases(ns)
        for row in tree.alias_page(ns, 0)[:25]:
            for kind in FileKind:
                if row.sizes[kind] < 0:
                    continue
                node = tree.lookup(ns, row.stem.decode() + kind.suffix)
                assert tree.ino(node) == bases[kind] | row.rowid
                assert (node.size, node.mtime_ns) == (row.sizes[kind], row.mtime_ns)
                assert bytes(tree.open(node).read(tree, 0, node.size + 10)).__len__() == node.size


def test_file_sizes_by_arithmetic() -> None:
    from seqrepofs.fs.content import PLACEHOLDER_MD5, dict_bytes, fai_bytes, file_sizes, layout

    for name in ("a", "NC_000001.11", "%C3%A9x"):
        for length in (0, 1, 59, 60, 61, 100, 12_345, 999_999):
            for width in (1, 60, 61, 100):
                for uri in (None, f"file:///mnt/x/{name}.fa"):
                    assert file_sizes(name, length, width, uri) == (
                        layout(name, length, width).size,
                        len(fai_bytes(name, length, width)),
                        len(dict_bytes(name, length, PLACEHOLDER_MD5, uri)),
                    )


def test_listing_the_fasta_files_only(root: Path) -> None:
    """list=fa: one entry per alias; its index files still open by name."""
    t = Tree(open_source(str(root / SNAPSHOT)), MNT, list_index_files=False)
    try:
        ns = t.lookup(t.root(), "refseq")
        listed = _listed_names(t.alias_page(ns, 0))
        assert listed and all(n.endswith(".fa") and n.count(".fa") == 1 for n in listed)
        assert t.lookup(ns, listed[0] + ".fai").file_kind is FileKind.FAI
    finally:
        t.close()


# ---- a root -------------------------------------------------------------------------------------
def test_root_tree(root: Path) -> None:
    t = Tree(open_source(str(root)), MNT)
    assert isinstance(t.source, Root)
    top = t.root()
    assert [n.name for n in t.small_listing(top)] == [SNAPSHOT, "master", "latest"]
    latest = t.lookup(top, "latest")
    assert t.readlink(latest) == SNAPSHOT and latest.size == len(SNAPSHOT)
    snap = t.lookup(top, SNAPSHOT)
    fa = t.lookup(t.lookup(snap, "refseq"), "NC_000003.1.fa")
    assert fa.path == f"/{SNAPSHOT}/refseq/NC_000003.1.fa"
    d = t.open(t.lookup(t.lookup(snap, "refseq"), "NC_000003.1.dict")).read(t, 0, 1000)
    assert f"UR:file://{MNT}/{SNAPSHOT}/refseq/NC_000003.1.fa".encode() in d
    for bad in ("2099-01-01", "nope", "sequences"):
        with pytest.raises(FsError):
            t.lookup(top, bad)
    assert Instance(str(root / SNAPSHOT)).frozen and not Instance(str(root / "master")).frozen
    t.close()


# ---- Operations, called directly ----------------------------------------------------------------
def test_operations_in_process(root: Path, caplog: pytest.LogCaptureFixture) -> None:
    ops = Operations(Tree(open_source(str(root / SNAPSHOT)), MNT), threads=2)

    async def scenario() -> None:
        ns = await ops.lookup(ROOT_INODE, b"refseq", None)
        attr = await ops.lookup(ns.st_ino, b"NC_000007.1.fa", None)
        assert attr.st_mode & 0o777 == 0o444 and attr.st_size > 0
        assert (await ops.getattr(attr.st_ino, None)).st_size == attr.st_size
        info = await ops.open(attr.st_ino, os.O_RDONLY, None)
        assert info.keep_cache and not info.direct_io
        for i in range(100):  # slow storage, two readers: this read goes to a worker thread
            ops.placement.waited(1.0, i % 2)
        assert not ops.placement.inline()
        from_pool = bytes(await ops.read(info.fh, 61, 500))
        ops.placement = ReadPlacement()  # the rest run on the trio thread
        data = bytes(await ops.read(info.fh, 0, attr.st_size))
        assert data.startswith(b">NC_000007.1\n") and len(data) == attr.st_size
        assert from_pool == data[61:561]
        await ops.release(info.fh)
        stat = await ops.statfs(None)
        assert stat.f_blocks > 0
        await ops.forget([(attr.st_ino, 1)])
        ops.tree._recent.clear()  # nothing kept: the number alone answers
        assert (await ops.getattr(attr.st_ino, None)).st_size == attr.st_size

    trio.run(scenario)
    ns_ino = trio.run(ops.lookup, ROOT_INODE, b"refseq", None).st_ino
    assert fuse_errno(ops.lookup, ns_ino, b"missing.fa", None) == errno.ENOENT
    assert fuse_errno(ops.lookup, ns_ino, b"\xff\xfe.fa", None) == errno.ENOENT
    assert fuse_errno(ops.getattr, 999_999, None) == errno.ESTALE
    fa_ino = trio.run(ops.lookup, ns_ino, b"NC_000007.1.fa", None).st_ino
    assert fuse_errno(ops.open, fa_ino, os.O_WRONLY, None) == errno.EROFS
    assert fuse_errno(ops.open, ns_ino, os.O_RDONLY, None) == errno.EISDIR
    assert fuse_errno(ops.opendir, fa_ino, None) == errno.ENOTDIR
    assert fuse_errno(ops.readlink, fa_ino, None) == errno.EINVAL
    assert fuse_errno(ops.access, fa_ino, os.W_OK, None) == errno.EROFS
    for handler in (ops.mkdir, ops.unlink, ops.rmdir, ops.symlink, ops.rename, ops.create,
                    ops.setattr, ops.write, ops.mknod, ops.link, ops.setxattr):  # fmt: skip
        assert fuse_errno(handler, ns_ino, b"x", None) == errno.EROFS

    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    ops.tree.lookup = broken  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="seqrepofs.fs"):
        assert fuse_errno(ops.lookup, ns_ino, b"NC_000001.1.fa", None) == errno.EIO
    assert "/refseq/NC_000001.1.fa" in caplog.text and "boom" in caplog.text
    ops.close()


# ---- memory -------------------------------------------------------------------------------------
_ARENA_PROBE = r"""
import ctypes, re, sys, tempfile, threading
from seqrepofs.fs.tuning import cap_malloc_arenas
capped = cap_malloc_arenas(2) if sys.argv[1] == "cap" else False
barrier = threading.Barrier(5)
keep = []
def allocate():  # blocks below the mmap threshold come from the thread's arena
    keep.append([bytes(50_000) for _ in range(20)])
    barrier.wait()
threads = [threading.Thread(target=allocate) for _ in range(4)]
for t in threads:
    t.start()
barrier.wait()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
with tempfile.NamedTemporaryFile() as f:
    fp = ctypes.c_void_p(libc.fopen(f.name.encode(), b"w"))
    libc.malloc_info(0, fp)
    libc.fclose(fp)
    heaps = len(re.findall(r"<heap nr=", open(f.name).read()))
for t in threads:
    t.join()
print(capped, heaps)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc arenas are glibc's")
def test_cap_malloc_arenas_bounds_the_arenas_threads_get() -> None:
    def probe(mode: str) -> tuple[str, int]:
        out = subprocess.run(
            [sys.executable, "-c", _ARENA_PROBE, mode], check=True, capture_output=True, text=True
        ).stdout.split()
        return out[0], int(out[1])

    capped, heaps = probe("none")
    assert capped == "False" and heaps >= 3  # the main arena and one per thread (up to 8/core)
    assert probe("cap") == ("True", 2)


# ---- options and checks -------------------------------------------------------------------------
def test_mount_options_parse() -> None:
    opts = mount_options.MountOptions().parse(
        [
            "ro,allow_other,dev,suid",
            "nofail,_netdev,x-systemd.automount,defaults,line_width=70",
            "threads=3,auto_unmount,comment=x",
        ]  # fmt: skip
    )
    assert opts.allow_other and opts.line_width == 70 and opts.threads == 3
    assert opts.fuse == ["dev", "suid", "auto_unmount"]
    fuse = opts.fuse_options("/data/a,b")
    assert {"ro", "default_permissions", "allow_other", "subtype=seqrepofs"} <= fuse
    assert "fsname=/data/a\\,b" in fuse
    with pytest.raises(mount_options.MountError):
        mount_options.MountOptions().parse(["allow_other,allow_root"])
    with pytest.raises(mount_options.MountError):
        mount_options.MountOptions().parse(["line_width=0"])


def test_check_fuse_explains(monkeypatch: pytest.MonkeyPatch) -> None:
    real_exists = os.path.exists
    monkeypatch.setattr(os.path, "exists", lambda p: False if p == "/dev/fuse" else real_exists(p))
    with pytest.raises(mount_options.MountError, match="/dev/fuse is missing"):
        lifecycle.check_fuse()
    monkeypatch.setattr(os.path, "exists", real_exists)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(lifecycle, "_effective_caps", lambda: 0)
    with pytest.raises(mount_options.MountError, match="CAP_SYS_ADMIN"):
        lifecycle.check_fuse()


def test_check_source_and_mountpoint(root: Path, tmp_path: Path) -> None:
    assert lifecycle.check_source(str(root / "latest")) == str(root / SNAPSHOT)
    assert lifecycle.check_source(str(root)) == str(root)
    with pytest.raises(mount_options.MountError, match="does not exist"):
        lifecycle.check_source(str(tmp_path / "nope"))
    with pytest.raises(mount_options.MountError, match="not a SeqRepo"):
        lifecycle.check_source(str(tmp_path))
    assert lifecycle.mount_state(str(tmp_path)) == "free"
    assert lifecycle.mount_state(str(tmp_path / "nope")) == "absent"
    with pytest.raises(mount_options.MountError, match="not mounted"):
        lifecycle.unmount(str(tmp_path))


def test_cli_helper_form_resolves_to_mount() -> None:
    """`seqrepofs SRC MNT -o …` (mount.fuse3's call) means `seqrepofs mount SRC MNT -o …`."""
    import click

    from seqrepofs.cli import cli

    register_all()
    ctx = click.Context(cli)
    name, cmd, args = cli.resolve_command(ctx, ["/data/seqrepo", "/mnt/x", "-o", "ro"])
    assert name == "mount" and cmd is cli.commands["mount"]
    assert args == ["/data/seqrepo", "/mnt/x", "-o", "ro"]
    name, cmd, args = cli.resolve_command(ctx, ["umount", "/mnt/x"])
    assert name == "umount" and args == ["/mnt/x"]


# ---- where reads run ------------------------------------------------------------------------
def test_reads_move_to_worker_threads_while_storage_is_slow_and_come_back() -> None:
    now = [100.0]
    placement = ReadPlacement(clock=lambda: now[0])
    assert placement.inline()
    placement.waited(0.010, 1)  # one slow read (a cold open) does not move reads
    for i in range(200):  # nor do many reads from a local disk
        placement.waited(SLOW_READ_WAIT / 10, i % 3)
    assert placement.inline()
    for i in range(40):  # a network filesystem, three readers at once: every read waits
        placement.waited(SLOW_READ_WAIT * 3, i % 3)
        if not placement.inline():
            break
    assert not placement.inline()
    now[0] += SLOW_READ_BACKOFF - 0.1
    assert not placement.inline()
    now[0] += 0.2
    assert placement.inline()
    placement.waited(SLOW_READ_WAIT * 3, 1)  # the average started afresh
    assert placement.inline()


def test_a_lone_reader_stays_on_the_trio_thread_however_long_it_waits() -> None:
    """The pool exists so a slow read does not hold up other readers; a lone reader, or readers
    one after another (samtools faidx per chromosome), would only pay the hop on top."""
    placement = ReadPlacement(clock=lambda: 100.0)
    for reader in (7, 8, 9):  # one after another
        for _ in range(100):
            placement.waited(SLOW_READ_WAIT * 10, reader)
    assert placement.inline()
    for _ in range(2):  # then two readers take turns: their reads move
        placement.waited(SLOW_READ_WAIT * 10, 1)
        placement.waited(SLOW_READ_WAIT * 10, 2)
    assert not placement.inline()
