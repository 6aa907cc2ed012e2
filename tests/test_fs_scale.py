"""The mount at real shape, scaled down: 50,000 sequences and 300,000 aliases in 12 namespace
directories (correctness, not time).

- every namespace directory lists every current alias, once, as `export-aliases` has them;
- walking the tree and stat-ing every file (2 M listed files) and looking up 100,000 names
  leaves the daemon's memory within what its configured caches can hold, not growing with the
  entries;
- on a mounted master, a re-pointed alias's path serves the new sequence within the entry
  timeout, while a handle opened before keeps reading the old bytes.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from pathlib import Path

import pytest
from support.cli import run_seqrepofs
from support.fuse import Mounted, eventually, needs_fuse
from support.oracles import encode, naive_fasta_record
from support.scale_repo import SCALE_SNAPSHOT, build_scale_root

from seqrepofs.fs import nodes, source, tree, tuning
from seqrepofs.seqrepo import SeqRepo

pytestmark = [needs_fuse, pytest.mark.fuse, pytest.mark.timeout(600)]

N_SEQUENCES = 50_000  # 7 aliases each: 300,000 alias rows
SUFFIXES = (".fa", ".fa.fai", ".dict", ".fa.dict")
# What the daemon may keep, whatever was listed: its caches at a generous size per item
# (identity keeps nothing per entry). The walk below lists 2 M files and looks up 100,000
# names: the removed inode table held ~700 bytes per listed file, 1.4 GB here.
ITEM_BYTES = 1024
CACHE_BUDGET = ITEM_BYTES * (
    source.ALIAS_CACHE_SIZE + source.ROW_CACHE_SIZE + tree.NODE_CACHE_SIZE + tuning.STORE_RECORDS
) + (32 << 20)  # + allocator slack and the store's pages of sqlite


@pytest.fixture(scope="module")
def scale(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The root: `master` (writable) and its snapshot SCALE_SNAPSHOT."""
    root = tmp_path_factory.mktemp("scale") / "root"
    build_scale_root(root, N_SEQUENCES)
    return root


@pytest.fixture(scope="module")
def expected(scale: Path) -> dict[str, set[str]]:
    """Directory -> aliases, from `export-aliases` (GA4GH:SQ.x is stored as VMC GS_x)."""
    out = run_seqrepofs("export-aliases", "-i", SCALE_SNAPSHOT, root=scale, check=True).stdout
    by_dir: dict[str, set[str]] = defaultdict(set)
    for line in out.splitlines():
        for nsa in line.split("\t"):
            ns, _, alias = nsa.partition(":")
            if ns == "GA4GH":
                ns, alias = "VMC", "GS_" + alias.removeprefix("SQ.")
            by_dir[ns].add(alias)
    assert sum(map(len, by_dir.values())) > 6 * N_SEQUENCES  # stored and API names
    return dict(by_dir)


def _anon_bytes(pid: int) -> int:
    """What the process allocated (RssAnon); the rest of its RSS is mapped files, among them
    the SQLite databases a read-only open maps (page cache the kernel can reclaim)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no RssAnon for {pid}")


def test_every_namespace_lists_completely_once(
    scale: Path, expected: dict[str, set[str]], tmp_path: Path
) -> None:
    """list=fa: one entry per alias in every directory; list=all (default): four."""
    with Mounted(scale / SCALE_SNAPSHOT, tmp_path / "fa", "-o", "list=fa") as m:
        assert set(os.listdir(m.mnt)) == set(expected) | {"collections"}
        for ns, aliases in expected.items():
            names = os.listdir(Path(m.mnt) / ns)
            assert len(names) == len(aliases), ns  # once each
            assert {n.removesuffix(".fa") for n in names} == {encode(a) for a in aliases}, ns
            assert all(n.endswith(".fa") for n in names), ns
        index = Path(m.mnt) / "LRG" / (min(expected["LRG"]) + ".fa.fai")
        assert index.read_bytes().startswith(min(expected["LRG"]).encode() + b"\t")
    with Mounted(scale / SCALE_SNAPSHOT, tmp_path / "all") as m:
        for ns in ("LRG", "lrg", "Ensembl"):
            names = os.listdir(Path(m.mnt) / ns)
            want = {encode(alias) + suffix for alias in expected[ns] for suffix in SUFFIXES}
            assert len(names) == len(want) and set(names) == want, ns


def test_a_walk_of_every_file_leaves_memory_bounded(
    scale: Path, expected: dict[str, set[str]], tmp_path: Path
) -> None:
    """Stat every listed file of every directory and look up 100,000 more names: the memory
    the daemon allocates grows by at most what its caches hold (CACHE_BUDGET), though the
    kernel took a reference to each of the 2 M files listed."""
    with Mounted(scale / SCALE_SNAPSHOT, tmp_path / "mnt") as m:
        assert m.proc is not None
        mnt = Path(m.mnt)
        os.listdir(mnt)
        start = _anon_bytes(m.proc.pid)
        listed = 0
        for ns in sorted(expected):
            with os.scandir(mnt / ns) as entries:
                for entry in entries:
                    assert entry.stat().st_size > 0, entry.path
                    listed += 1
        assert listed == sum(4 * len(a) for a in expected.values()) - _hidden_dicts(expected)
        # names never listed through this mount: each one a lookup the daemon answers
        renamed = Mounted(scale / SCALE_SNAPSHOT, tmp_path / "names")
        with renamed:
            assert renamed.proc is not None
            names = Path(renamed.mnt)
            os.listdir(names)
            lookup_start = _anon_bytes(renamed.proc.pid)
            for alias in sorted(expected["sha512t24u"])[:50_000]:
                assert os.stat(names / "sha512t24u" / f"{alias}.fa.fai").st_size > 0
            for alias in sorted(expected["refseq"])[:50_000]:
                assert os.stat(names / "refseq" / f"{alias}.dict").st_size > 0
            looked_up = _anon_bytes(renamed.proc.pid) - lookup_start
        grown = _anon_bytes(m.proc.pid) - start
        assert listed * 500 > CACHE_BUDGET  # the old per-entry table would not fit the bound
        assert grown <= CACHE_BUDGET, (grown, CACHE_BUDGET)
        assert looked_up <= CACHE_BUDGET, (looked_up, CACHE_BUDGET)
        assert "Traceback" not in m.log, m.log


def _hidden_dicts(expected: dict[str, set[str]]) -> int:
    """X.fa's .dict is not listed when alias X exists too (none here: checked)."""
    hidden = sum(
        1 for names in expected.values() for a in names if a.endswith(".fa") and a[:-3] in names
    )
    assert hidden == 0
    return hidden


def test_a_repointed_alias_on_a_mounted_master(scale: Path, tmp_path: Path) -> None:
    """The path follows the alias within the entry timeout (a new inode); a handle opened
    before keeps its bytes (the old inode's content never changes, so its pages stay valid)."""
    alias = "NP_000007.1"
    with SeqRepo(scale / "master") as sr:
        old_seq = sr.fetch(alias)
    new_seq = "ACGTTGCA" * 40 + "GATTACA"
    old_fa, new_fa = naive_fasta_record(alias, old_seq), naive_fasta_record(alias, new_seq)
    with Mounted(scale / "master", tmp_path / "mnt") as m:
        path = Path(m.mnt) / "refseq" / f"{alias}.fa"
        assert path.read_bytes() == old_fa
        fd = os.open(path, os.O_RDONLY)
        try:
            old_ino = os.fstat(fd).st_ino
            assert os.pread(fd, 20, 0) == old_fa[:20]
            with SeqRepo(scale / "master", writeable=True) as sr:
                sr.store(new_seq, [{"namespace": "refseq", "alias": alias}])
                sr.commit()
            changed = time.monotonic()
            limit = nodes.SHORT_TIMEOUT + source.MUTABLE_TTL + 3.0  # + a loaded machine
            assert eventually(lambda: path.read_bytes() == new_fa, timeout=limit)
            assert time.monotonic() - changed <= limit
            assert os.stat(path).st_ino != old_ino
            assert os.stat(path).st_size == len(new_fa)
            assert os.pread(fd, len(old_fa) + 100, 0) == old_fa  # the old handle: old bytes
            assert os.fstat(fd).st_size == len(old_fa)
        finally:
            os.close(fd)
        assert (
            (Path(m.mnt) / "refseq" / f"{alias}.fa.fai")
            .read_bytes()
            .startswith(f"{alias}\t{len(new_seq)}\t".encode())
        )
        assert "Traceback" not in m.log, m.log
