"""Real mounts: /collections (issue 23), each loaded FASTA back as one file with its indexes.

Two FASTA files (one with names that JSON and UTF-8 must escape) and a copy of the first under
another name are loaded into `master` and frozen into a snapshot, which is mounted. Oracles:
`seqrepofs export --collection` (byte equality), the input files themselves (upper-cased),
samtools faidx/dict of the exported bytes, bedtools getfasta, pysam and pyfaidx on the input,
and the REST service's level-2 answer for `.seqcol.json`. A 600,000-record collection checks
that the daemon's memory does not follow the records.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pyfaidx
import pysam
import pytest
from support.cli import run_seqrepofs, stdout_of
from support.data import write_random_fasta
from support.fuse import Mounted, errno_of, eventually, needs_fuse
from support.oracles import BEDTOOLS, SAMTOOLS, needs_tools, read_fasta
from support.rest import start_rest_server

from seqrepofs.fs import collection_views
from seqrepofs.seqrepo import SeqRepo
from seqrepofs.store.collections import CollectionStore, CollectionWriter
from seqrepofs.store.instances import snapshot

pytestmark = [needs_fuse, needs_tools, pytest.mark.fuse, pytest.mark.timeout(300)]

SNAP = "2026-01-01"
SUFFIXES = (".fa", ".fa.fai", ".dict", ".fa.dict", ".chrom.sizes", ".seqcol.json")
ODD_NAMES = ["é1", 'quote"d', "back\\slash", "chr17:6010-31420(-)", "tab%09", "日本"]


def _write_odd(path: Path) -> dict[str, str]:
    rng = random.Random(5)
    out = {}
    with open(path, "w", encoding="utf-8") as fh:
        for name in ODD_NAMES:
            seq = "".join(rng.choice("ACGTN") for _ in range(rng.randint(1, 200)))
            out[name] = seq
            fh.write(f">{name} something\n{seq}\n")
    return out


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """master with collections genome, genome_again (same records) and odd; SNAP of it."""
    top = tmp_path_factory.mktemp("coll")
    root = top / "root"
    SeqRepo(root / "master", writeable=True).close()
    # 2,500 records: three blocks of records (BLOCK_RECORDS), so reads cross blocks
    write_random_fasta(top / "genome.fa", 2500, 23, prefix="chr", big_every=500, big_len=150_000)
    shutil.copy(top / "genome.fa", top / "genome_again.fa")
    _write_odd(top / "odd.fa")
    for name in ("genome.fa", "genome_again.fa", "odd.fa"):
        run_seqrepofs("load", top / name, root=root, check=True)
    snapshot(str(root), "master", SNAP)
    return root


@pytest.fixture(scope="module")
def inputs(root: Path) -> Path:
    return root.parent


@pytest.fixture(scope="module")
def mnt(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    m = Mounted(root / SNAP, tmp_path_factory.mktemp("m") / "mnt").start()
    yield Path(m.mnt) / "collections"
    m.stop()
    assert "Traceback" not in m.log, m.log


def _export(root: Path, name: str, width: int = 60) -> bytes:
    args = ("export", "-i", SNAP, "--collection", name, "--line-width", str(width))
    return run_seqrepofs(*args, root=root, check=True, text=False).stdout


def _digest(root: Path, name: str) -> str:
    with CollectionStore(str(root / SNAP)) as store:
        return store.get(name).digest


def test_listing_sizes_and_inodes(root: Path, mnt: Path) -> None:
    names = ("genome", "genome_again", "odd")
    assert set(os.listdir(mnt)) == {"by-digest"} | {n + s for n in names for s in SUFFIXES}
    digests = {_digest(root, n) for n in names}
    assert len(digests) == 2  # genome_again is genome's records: one entry by digest
    assert set(os.listdir(mnt / "by-digest")) == {d + s for d in digests for s in SUFFIXES}
    assert "collections" in os.listdir(mnt.parent)
    for top in (mnt, mnt / "by-digest"):
        with os.scandir(top) as it:
            for entry in it:
                if entry.is_dir():
                    continue
                st = os.stat(entry.path)
                assert entry.inode() == st.st_ino, entry.path  # listing and lookup agree
                data = Path(entry.path).read_bytes()
                assert st.st_size == len(data) > 0, entry.path


def test_fasta_is_the_export_and_the_input(root: Path, inputs: Path, mnt: Path) -> None:
    for name, source in (("genome", "genome.fa"), ("genome_again", "genome.fa"), ("odd", "odd.fa")):
        served = (mnt / f"{name}.fa").read_bytes()
        assert served == _export(root, name), name
        want = [(h.split()[0], s.upper()) for h, s in read_fasta(inputs / source)]
        got = [(h, s) for h, s in read_fasta(mnt / f"{name}.fa")]
        assert got == want, name
        digest = _digest(root, name)
        assert (mnt / "by-digest" / f"{digest}.fa").read_bytes() == served
    # windows anywhere (across records and blocks), through a fresh mount's cold caches
    served = _export(root, "genome")
    rng = random.Random(3)
    with (
        Mounted(root / SNAP, inputs / "fresh") as m,
        open(Path(m.mnt) / "collections" / "genome.fa", "rb", buffering=0) as fh,
    ):
        for _ in range(400):
            off, n = rng.randrange(len(served)), rng.choice((1, 100, 4096, 70_000, 300_000))
            assert os.pread(fh.fileno(), n, off) == served[off : off + n], (off, n)


def test_snapshots_of_a_mounted_root(root: Path, tmp_path: Path) -> None:
    with Mounted(root, tmp_path / "mnt") as m:
        top = Path(m.mnt)
        for inst in (SNAP, "master"):
            assert "collections" in os.listdir(top / inst)
            fa = top / inst / "collections" / "odd.fa"
            assert fa.read_bytes() == _export(root, "odd")
            assert (
                top / inst / "collections" / "by-digest" / f"{_digest(root, 'odd')}.fa"
            ).exists()
        assert "Traceback" not in m.log, m.log


def test_fai_and_dict_are_what_samtools_writes(root: Path, mnt: Path, tmp_path: Path) -> None:
    for name in ("genome", "odd"):
        copy = tmp_path / f"{name}.fa"
        copy.write_bytes(_export(root, name))
        subprocess.run([SAMTOOLS, "faidx", str(copy)], check=True)
        assert (mnt / f"{name}.fa.fai").read_bytes() == Path(f"{copy}.fai").read_bytes(), name
        sam = stdout_of(SAMTOOLS, "dict", copy).splitlines()
        ours = (mnt / f"{name}.dict").read_text(encoding="utf-8").splitlines()
        assert ours[0] == sam[0] == "@HD\tVN:1.0\tSO:unsorted"
        assert [line.split("\tUR:")[0] for line in ours] == [line.split("\tUR:")[0] for line in sam]
        assert all("\tUR:ga4gh:SQ." in line for line in ours[1:])
        assert (mnt / f"{name}.fa.dict").read_bytes() == (mnt / f"{name}.dict").read_bytes()
        sizes = "".join(
            f"{r[0]}\t{r[1]}\n"
            for r in (line.split("\t") for line in Path(f"{copy}.fai").read_text().splitlines())
        )
        assert (mnt / f"{name}.chrom.sizes").read_text(encoding="utf-8") == sizes


def test_seqcol_json_is_the_rest_level_2(root: Path, mnt: Path, tmp_path: Path) -> None:
    server = start_rest_server(root / SNAP, tmp_path)
    try:
        for name in ("genome", "odd"):
            digest = _digest(root, name)
            answer = server.get(f"/collection/{digest}?level=2")
            assert answer.status_code == 200
            assert (mnt / f"{name}.seqcol.json").read_bytes() == answer.content, name
            by_digest = mnt / "by-digest" / f"{digest}.seqcol.json"
            assert by_digest.read_bytes() == answer.content
    finally:
        server.stop()


def _regions(inputs: Path, n: int, seed: int) -> list[tuple[str, int, int]]:
    records = [(h.split()[0], len(s)) for h, s in read_fasta(inputs / "genome.fa")]
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        name, length = rng.choice(records)
        a = rng.randint(1, length)
        out.append((name, a, min(length, a + rng.randint(0, 5000))))
    return out


def test_tools_read_the_mounted_genome(inputs: Path, mnt: Path, tmp_path: Path) -> None:
    """samtools faidx, bedtools getfasta, pysam and pyfaidx read the same residues from the
    mounted file (its served .fai) as from the input file (upper-cased)."""
    upper = tmp_path / "input.fa"
    upper.write_text(
        "".join(f">{h.split()[0]}\n{s.upper()}\n" for h, s in read_fasta(inputs / "genome.fa"))
    )
    regions = _regions(inputs, 300, 7)
    spec = [f"{n}:{a}-{b}" for n, a, b in regions]
    fa = str(mnt / "genome.fa")
    assert stdout_of(SAMTOOLS, "faidx", "-n", "60", fa, *spec) == stdout_of(
        SAMTOOLS, "faidx", "-n", "60", upper, *spec
    )
    bed = tmp_path / "r.bed"
    bed.write_text("".join(f"{n}\t{a - 1}\t{b}\n" for n, a, b in regions))
    assert stdout_of(BEDTOOLS, "getfasta", "-fi", fa, "-bed", bed) == stdout_of(
        BEDTOOLS, "getfasta", "-fi", upper, "-bed", bed
    )
    want = {
        n: s.upper() for n, s in ((h.split()[0], s) for h, s in read_fasta(inputs / "genome.fa"))
    }
    with pysam.FastaFile(fa) as pf:
        assert set(pf.references) == set(want)
        for n, a, b in regions:
            assert pf.fetch(n, a - 1, b) == want[n][a - 1 : b]
    faidx = pyfaidx.Fasta(fa, rebuild=False)
    try:
        for n, a, b in regions[:100]:
            assert str(faidx[n][a - 1 : b]) == want[n][a - 1 : b]
    finally:
        faidx.close()


def test_unknown_names_are_enoent(root: Path, mnt: Path) -> None:
    digest = _digest(root, "genome")
    for path in (
        mnt / "nope.fa",
        mnt / "genome.fasta",
        mnt / "genome",
        mnt / ".fa",
        mnt / "genome.fa.gzi",
        mnt / "by-digest" / "nope.fa",
        mnt / "by-digest" / "genome.fa",
        mnt / "by-digest" / "by-digest",
        mnt / "by-digest" / digest,
        mnt / "genome.fa" / "x",
    ):
        want = errno.ENOTDIR if path.parent.name == "genome.fa" else errno.ENOENT
        assert errno_of(os.stat, path) == want, path
    assert errno_of(os.open, mnt / "genome.fa", os.O_WRONLY) == errno.EROFS


def test_line_width_option(root: Path, tmp_path: Path) -> None:
    """line_width=50 (and list=fa: listings show the .fa files, the others open by name)."""
    with Mounted(root / SNAP, tmp_path / "w50", "-o", "line_width=50,list=fa") as m:
        top = Path(m.mnt) / "collections"
        assert set(os.listdir(top)) == {"by-digest", "genome.fa", "genome_again.fa", "odd.fa"}
        served = (top / "genome.fa").read_bytes()
        assert served == _export(root, "genome", 50)
        copy = tmp_path / "g50.fa"
        copy.write_bytes(served)
        subprocess.run([SAMTOOLS, "faidx", str(copy)], check=True)
        assert (top / "genome.fa.fai").read_bytes() == Path(f"{copy}.fai").read_bytes()


def test_replace_on_a_mounted_master(tmp_path: Path) -> None:
    """--replace: the name serves the new records within the entry timeout; a handle opened
    before keeps reading the old bytes; the old inode is not the new one."""
    root = tmp_path / "root"
    SeqRepo(root / "master", writeable=True).close()
    write_random_fasta(tmp_path / "a.fa", 40, 1, prefix="a")
    write_random_fasta(tmp_path / "b.fa", 30, 2, prefix="b")
    run_seqrepofs("load", "--collection", "g", tmp_path / "a.fa", root=root, check=True)
    old_bytes = _export_master(root, "g")
    with Mounted(root / "master", tmp_path / "mnt") as m:
        top = Path(m.mnt) / "collections"
        old_ino = os.stat(top / "g.fa").st_ino
        with open(top / "g.fa", "rb") as old, open(top / "g.fa.fai", "rb") as old_fai:
            head = old.read(100)
            run_seqrepofs(
                "load", "--collection", "g", "--replace", tmp_path / "b.fa", root=root, check=True
            )
            new_bytes = _export_master(root, "g")
            assert new_bytes != old_bytes
            assert eventually(lambda: (top / "g.fa").read_bytes() == new_bytes, 10)
            assert os.stat(top / "g.fa").st_ino != old_ino
            assert head + old.read() == old_bytes  # the open handle keeps its bytes
            assert old_fai.read().startswith(b"a0.1\t")
            assert (top / "g.fa.fai").read_bytes().startswith(b"b0.1\t")
        assert "Traceback" not in m.log, m.log


def _export_master(root: Path, name: str) -> bytes:
    args = ("export", "-i", "master", "--collection", name)
    return run_seqrepofs(*args, root=root, check=True, text=False).stdout


# ---- a transcriptome-sized collection -------------------------------------------------------
N_LARGE = 600_000
# The daemon's allocations may grow by its bounded caches (blocks of records, a streamed
# window per handle, SQLite's page caches) and no more; the records' names and offsets alone
# (what a per-record layout holds: ~90 bytes each) would take about 54 MB.
LARGE_BUDGET = 32 << 20


def _anon_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no RssAnon for {pid}")


def _large_root(root: Path) -> dict[str, str]:
    """N_LARGE records (names ENST…) over 1,000 stored sequences of 20-400 residues; returns
    seq_id -> residues."""
    rng = np.random.default_rng(3)
    residues = {}
    with SeqRepo(root / "master", writeable=True) as sr:
        for i in range(1000):
            n = int(rng.integers(20, 400))
            seq = np.frombuffer(b"ACGT", np.uint8)[rng.integers(0, 4, n)].tobytes().decode()
            sr.store(seq, [{"namespace": "pool", "alias": f"p{i}"}])
        sr.commit()
        for r in sr.aliases.find_aliases(namespace="pool"):
            residues[r["seq_id"]] = sr.sequences.fetch(r["seq_id"])
    ids = sorted(residues)
    with CollectionWriter(str(root / "master")) as writer:
        pending = writer.begin("tx")
        for i in range(N_LARGE):
            seq_id = ids[i * 7919 % len(ids)]
            writer.add(pending, _large_name(i), len(residues[seq_id]), seq_id)
        writer.finish(pending)
    snapshot(str(root), "master", SNAP)
    return residues


def _large_name(i: int) -> str:
    return f"ENST{i:011d}.1"


def _large_fai(residues: dict[str, str]) -> bytes:
    """The .fai of the collection's FASTA at 60 a line, by the format's arithmetic."""
    ids = sorted(residues)
    out, offset = [], 0
    for i in range(N_LARGE):
        name, n = _large_name(i), len(residues[ids[i * 7919 % len(ids)]])
        offset += len(name) + 2
        out.append(f"{name}\t{n}\t{offset}\t{min(n, 60)}\t{min(n, 60) + 1}\n")
        offset += n + -(-n // 60)
    return "".join(out).encode()


def test_a_large_collection_in_bounded_memory(tmp_path: Path) -> None:
    """List, stat and read a 600,000-record collection: the files are right, and the daemon's
    allocations stay within LARGE_BUDGET."""
    root = tmp_path / "root"
    residues = _large_root(root)
    ids = sorted(residues)
    want_fai = _large_fai(residues)
    with Mounted(root / SNAP, tmp_path / "mnt") as m:
        assert m.proc is not None
        top = Path(m.mnt) / "collections"
        os.listdir(Path(m.mnt))
        start = _anon_bytes(m.proc.pid)
        t0 = time.monotonic()
        assert sorted(os.listdir(top)) == sorted(["by-digest", *("tx" + s for s in SUFFIXES)])
        listed = time.monotonic() - t0
        fai = (top / "tx.fa.fai").read_bytes()  # streamed: larger than SMALL_TEXT_BYTES
        assert len(fai) > collection_views.SMALL_TEXT_BYTES
        assert fai == want_fai
        sizes = (top / "tx.chrom.sizes").read_bytes()
        assert sizes == b"".join(
            line.split(b"\t", 2)[0] + b"\t" + line.split(b"\t")[1] + b"\n"
            for line in want_fai.splitlines()
        )
        # records all over the file: blocks are read by ordinal, evicted, read again
        rng = random.Random(9)
        picks = sorted(rng.sample(range(N_LARGE), 400))
        got = read_fasta_text(
            stdout_of(
                SAMTOOLS, "faidx", "-n", "1000", top / "tx.fa", *(_large_name(i) for i in picks)
            )
        )
        assert got == [(_large_name(i), residues[ids[i * 7919 % len(ids)]]) for i in picks]
        # a streamed index file read backwards (each read before the window starts over)
        with open(top / "tx.fa.fai", "rb", buffering=0) as fh:
            for off in (len(fai) - 1000, len(fai) // 2, 10):
                assert os.pread(fh.fileno(), 1000, off) == fai[off : off + 1000]
        grown = _anon_bytes(m.proc.pid) - start
        assert grown <= LARGE_BUDGET, (grown, LARGE_BUDGET)
        assert listed < 30, listed
        assert "Traceback" not in m.log, m.log


def read_fasta_text(text: str) -> list[tuple[str, str]]:
    """(name, residues) of FASTA text, one line per record's residues or wrapped."""
    out: list[tuple[str, str]] = []
    for chunk in text.split(">")[1:]:
        head, _, body = chunk.partition("\n")
        out.append((head, body.replace("\n", "")))
    return out
