"""Real mounts: whole-assembly views (issue 6) in the top-level directory of an instance.

A generated repository carries real GRCh38 names (primary chromosomes plus unlocalized,
unplaced and alt scaffolds, with generated residues and a few edge lengths) and every bioutils
assembly's names attached the way ``add-assembly-names -p`` does; chrY and two scaffolds are
left out. It is frozen into a snapshot and mounted. Oracles: ``write_assembly_fasta`` (the
export; "byte equality between mount and export"), the bioutils report and the generated
residues (names, records, what is missing), samtools faidx/dict, bedtools getfasta, the refget
package (seqcol digests: its Python function and gtars' FASTA digester).
"""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import logging
import os
import random
import re
import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from bioutils.assemblies import get_assembly, get_assembly_names
from support.cli import stdout_of
from support.data import (
    GRCH38_LEFT_OUT,
    GRCH38_LENGTHS,
    SNAPSHOT,
    current_aliases,
    grch38_subset,
    store_report_entries,
)
from support.fuse import Mounted, errno_of, eventually, fuse_errno, needs_fuse
from support.oracles import (
    BEDTOOLS,
    SAMTOOLS,
    add_assembly_names,
    encode,
    is_primary,
    naive_fasta,
    needs_tools,
    read_fasta,
    view_missing,
    view_records,
)

from seqrepofs.assemblies import write_assembly_fasta
from seqrepofs.seqrepo import SeqRepo
from seqrepofs.store.instances import snapshot, update_latest

pytestmark = [needs_fuse, pytest.mark.fuse, pytest.mark.timeout(180)]

ASSEMBLY = "GRCh38"
STYLES = ("ncbi", "ucsc", "refseq")
VIEWS = [(style, primary) for style in STYLES for primary in (False, True)]
VIEW_IDS = [f"{s}-{'primary' if p else 'full'}" for s, p in VIEWS]
KINDS = ("fa", "fa.fai", "dict", "fa.dict", "chrom.sizes", "seqcol.json", "missing.txt")
# a namespace whose directory name is also a view file's: the directory wins
CLASH = "GRCh38.p14.chrom.sizes"


# ---- building ------------------------------------------------------------------------------------
def report() -> list[dict]:
    return list(get_assembly(ASSEMBLY)["sequences"])


def build_grch38_root(root: Path, seed: int = 6) -> dict[str, str]:
    """`master` with the GRCh38 subset, frozen into SNAPSHOT; returns refseq_ac -> residues."""
    with SeqRepo(root / "master", writeable=True) as sr:
        seqs = store_report_entries(sr, grch38_subset(), GRCH38_LEFT_OUT, GRCH38_LENGTHS, seed)
        sr.store("ACGTN" * 30, [{"namespace": CLASH, "alias": "clash"}])
        sr.commit()
        add_assembly_names(sr, get_assembly_names())
    snapshot(str(root), "master", SNAPSHOT)
    update_latest(str(root))
    return seqs


def base_name(assembly: str, style: str, primary: bool) -> str:
    """The documented scheme: <assembly>[.<style>][.primary], style omitted for ncbi."""
    return assembly + ("" if style == "ncbi" else f".{style}") + (".primary" if primary else "")


def known_assemblies(seqs: dict[str, str]) -> list[str]:
    """Assemblies whose namespace add_assembly_names created."""
    return sorted(
        a
        for a in get_assembly_names()
        if any(
            s["relationship"] in ("=", "<>") and s["refseq_ac"] in seqs
            for s in get_assembly(a)["sequences"]
        )
    )


def sha512t24u(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha512(data).digest()[:24]).decode()


@dataclass
class Asm:
    """The mounted snapshot and what it should show."""

    src: Path
    mnt: Path
    seqs: dict[str, str]  # refseq_ac -> residues
    work: Path
    exported: dict[tuple[str, bool], bytes] = field(default_factory=dict)

    def path(self, style: str, primary: bool, kind: str = "fa") -> Path:
        return self.mnt / f"{base_name(ASSEMBLY, style, primary)}.{kind}"

    def records(self, style: str, primary: bool) -> list[tuple[str, str]]:
        """(FASTA name, residues) in report order, straight from the bioutils JSON."""
        return view_records(ASSEMBLY, self.seqs, style, primary)

    def missing(self, style: str, primary: bool) -> set[str]:
        return view_missing(ASSEMBLY, self.seqs, style, primary)

    def export(self, style: str, primary: bool) -> bytes:
        """What `seqrepofs export --assembly` writes (write_assembly_fasta), computed once."""
        key = (style, primary)
        if key not in self.exported:
            out = self.work / f"{base_name(ASSEMBLY, style, primary)}.export.fa"
            with SeqRepo(self.src) as sr, open(out, "wb") as fh:
                write_assembly_fasta(sr, ASSEMBLY, style, primary, 60, fh)
            self.exported[key] = out.read_bytes()
        return self.exported[key]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("asmroot")
    return root, build_grch38_root(root)


@pytest.fixture(scope="module")
def asm(built: tuple[Path, dict[str, str]], tmp_path_factory: pytest.TempPathFactory):
    root, seqs = built
    mnt = tmp_path_factory.mktemp("asmmnt") / "mnt"
    work = tmp_path_factory.mktemp("asmwork")
    with Mounted(root / SNAPSHOT, mnt) as m:
        yield Asm(root / SNAPSHOT, mnt, seqs, work)
        assert os.listdir(mnt), "the daemon must survive every request"
        assert "Traceback" not in m.log, m.log


# ---- listing -------------------------------------------------------------------------------------
def test_ls_shows_views_next_to_namespaces(asm: Asm) -> None:
    with SeqRepo(asm.src) as sr:
        ns_dirs = {encode(ns) for ns, _ in current_aliases(sr)}
    views = {
        f"{base_name(a, style, primary)}.{kind}"
        for a in known_assemblies(asm.seqs)
        for style, primary in VIEWS
        for kind in KINDS
    }
    assert {"GRCh38.fa", "GRCh38.ucsc.primary.dict", "GRCh37.p13.refseq.fa.fai"} <= views
    assert CLASH in views and CLASH in ns_dirs and ASSEMBLY in ns_dirs
    listed = os.listdir(asm.mnt)
    assert len(listed) == len(set(listed))
    assert set(listed) == ns_dirs | views | {"collections"}  # CLASH once, as the directory
    ls = stdout_of("ls", "-1", asm.mnt).splitlines()
    assert sorted(ls) == sorted(listed)
    # every view file: a read-only regular file, exact size, the instance's one mtime
    mtime = (asm.mnt / "refseq" / "NC_000001.11.fa").stat().st_mtime_ns
    assert (asm.mnt / ASSEMBLY).stat().st_mtime_ns == mtime
    for name in sorted(views - {CLASH}):
        st = os.stat(asm.mnt / name)
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o444, name
        assert st.st_mtime_ns == mtime, name
        assert st.st_size == len((asm.mnt / name).read_bytes()), name


def test_namespace_wins_a_name_clash(asm: Asm) -> None:
    clash = asm.mnt / CLASH
    assert clash.is_dir()
    assert sorted(os.listdir(clash)) == ["clash.dict", "clash.fa", "clash.fa.dict", "clash.fa.fai"]
    assert (clash / "clash.fa").read_bytes().startswith(b">clash\nACGTN")
    # the other files of that view are served as usual
    p14 = (asm.mnt / "GRCh38.p14.fa").read_bytes()
    assert p14.startswith(b">1\n") and (asm.mnt / "GRCh38.p14.fa.fai").is_file()


# ---- the FASTA: mount == export, and what the tools read -----------------------------------------
@needs_tools
@pytest.mark.parametrize(("style", "primary"), VIEWS, ids=VIEW_IDS)
def test_fasta_equals_export_index_and_dict(
    asm: Asm, style: str, primary: bool, tmp_path: Path
) -> None:
    records = asm.records(style, primary)
    fa = asm.path(style, primary)
    served = fa.read_bytes()
    assert served == asm.export(style, primary)  # byte equality between mount and export
    assert served == naive_fasta(records)
    assert fa.stat().st_size == len(served)

    # the served .fai is what samtools writes for the exported bytes
    copy = tmp_path / fa.name
    copy.write_bytes(asm.export(style, primary))
    stdout_of(SAMTOOLS, "faidx", copy)
    assert asm.path(style, primary, "fa.fai").read_bytes() == Path(f"{copy}.fai").read_bytes()
    sizes = asm.path(style, primary, "chrom.sizes").read_text()
    assert sizes == "".join(f"{n}\t{len(s)}\n" for n, s in records)

    # samtools dict on the mounted FASTA agrees with the mounted .dict on SN/LN/M5
    def sq(text: str) -> list[dict[str, str]]:
        return [
            dict(f.split(":", 1) for f in line.split("\t")[1:])
            for line in text.splitlines()
            if line.startswith("@SQ")
        ]

    theirs = sq(stdout_of(SAMTOOLS, "dict", fa))
    ours = sq(asm.path(style, primary, "dict").read_text())
    keys = ("SN", "LN", "M5")
    assert [{k: d[k] for k in keys} for d in ours] == [{k: d[k] for k in keys} for d in theirs]
    assert [(d["SN"], int(d["LN"])) for d in ours] == [(n, len(s)) for n, s in records]
    assert [d["M5"] for d in ours] == [hashlib.md5(s.encode()).hexdigest() for _, s in records]
    assert all(d["AS"] == ASSEMBLY for d in ours)
    assert [d["UR"] for d in ours] == [f"ga4gh:SQ.{sha512t24u(s.encode())}" for _, s in records]
    assert (
        asm.path(style, primary, "fa.dict").read_bytes()
        == asm.path(style, primary, "dict").read_bytes()
    )


@needs_tools
@pytest.mark.parametrize(("style", "primary"), VIEWS, ids=VIEW_IDS)
def test_samtools_faidx_regions(asm: Asm, style: str, primary: bool, tmp_path: Path) -> None:
    """Regions at record ends, whole records, across line breaks, and random ones."""
    records = asm.records(style, primary)
    rng = random.Random(f"faidx{style}{primary}")
    regions = []
    for name, seq in records:
        n = len(seq)
        regions += [(name, 1, 1), (name, n, n), (name, 1, n), (name, max(1, n - 61), n)]
        if n > 62:
            regions.append((name, 60, 62))
        for _ in range(4):
            a = rng.randint(1, n)
            regions.append((name, a, min(n, a + rng.randint(0, 400))))
    rng.shuffle(regions)
    reg_file = tmp_path / "regions.txt"
    reg_file.write_text("".join(f"{n}:{a}-{b}\n" for n, a, b in regions))
    out = tmp_path / "out.fa"
    stdout_of(SAMTOOLS, "faidx", asm.path(style, primary), "-r", reg_file, "-o", out)
    got = read_fasta(out)
    by_name = dict(records)
    assert [h for h, _ in got] == [f"{n}:{a}-{b}" for n, a, b in regions]
    for (name, a, b), (_h, seq) in zip(regions, got, strict=True):
        assert seq == by_name[name][a - 1 : b], (name, a, b)


@needs_tools
@pytest.mark.parametrize("style", ["ucsc", "ncbi"])
def test_bedtools_getfasta_with_matching_bed(asm: Asm, style: str, tmp_path: Path) -> None:
    """A UCSC-named BED on the ucsc view, an NCBI-named BED on the ncbi (default) view."""
    records = asm.records(style, False)
    names = [n for n, _ in records]
    if style == "ucsc":
        assert {"chr1", "chrX", "chrM", "chr1_KI270706v1_random", "chrUn_GL000195v1"} <= set(names)
    else:
        assert {"1", "X", "MT", "HSCHR1_CTG1_UNLOCALIZED"} <= set(names)
        assert not any(n.startswith("chr") for n in names)
    rng = random.Random(f"bed{style}")
    bed = []
    for name, seq in records:
        a = rng.randrange(len(seq))
        bed += [(name, a, rng.randint(a + 1, len(seq))), (name, 0, len(seq))]
        if len(seq) > 130:
            bed.append((name, 59, 121))  # across two line breaks
    bed_path = tmp_path / f"{style}.bed"
    bed_path.write_text("".join(f"{n}\t{a}\t{b}\n" for n, a, b in bed))
    out = stdout_of(BEDTOOLS, "getfasta", "-fi", asm.path(style, False), "-bed", bed_path, "-tab")
    by_name = dict(records)
    assert out.splitlines() == [f"{n}:{a}-{b}\t{by_name[n][a:b]}" for n, a, b in bed]


def _drop_cache(fd: int) -> None:
    """Make the next read reach the daemon instead of the kernel's page cache."""
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


@pytest.mark.parametrize(("style", "primary"), VIEWS, ids=VIEW_IDS)
def test_pread_across_record_boundaries(asm: Asm, style: str, primary: bool) -> None:
    whole = asm.export(style, primary)
    boundaries = [m.start() for m in re.finditer(b">", whole)] + [len(whole)]
    assert len(boundaries) == len(asm.records(style, primary)) + 1
    rng = random.Random(f"pread{style}{primary}")
    fd = os.open(asm.path(style, primary), os.O_RDONLY)
    try:
        for b in boundaries:
            for _ in range(2):
                off = max(0, b - rng.randrange(1, 140, 2))  # odd distances before the '>'
                size = rng.randrange(1, 500, 2)
                _drop_cache(fd)
                assert os.pread(fd, size, off) == whole[off : off + size], (off, size)
        for _ in range(40):  # windows spanning many records and page boundaries
            off = rng.randrange(1, len(whole), 2)
            size = rng.randrange(1, 70_001, 2)
            _drop_cache(fd)
            assert os.pread(fd, size, off) == whole[off : off + size], (off, size)
        assert os.pread(fd, 10, len(whole)) == b""
    finally:
        os.close(fd)


def test_concurrent_reads_from_threads(asm: Asm) -> None:
    """Eight threads reading one view FASTA at random odd offsets (served by worker threads)."""
    whole = asm.export("ucsc", False)
    path = asm.path("ucsc", False)

    def worker(seed: int) -> int:
        rng = random.Random(seed)
        fd = os.open(path, os.O_RDONLY)
        try:
            for _ in range(40):
                off, size = rng.randrange(1, len(whole), 2), rng.randrange(1, 20_001, 2)
                _drop_cache(fd)
                assert os.pread(fd, size, off) == whole[off : off + size]
        finally:
            os.close(fd)
        return seed

    with ThreadPoolExecutor(8) as pool:
        assert sorted(pool.map(worker, range(8))) == list(range(8))


# ---- the small files -----------------------------------------------------------------------------
@pytest.mark.parametrize(("style", "primary"), VIEWS, ids=VIEW_IDS)
def test_missing_txt_lists_the_left_out(asm: Asm, style: str, primary: bool) -> None:
    want = asm.missing(style, primary)
    lines = asm.path(style, primary, "missing.txt").read_text().splitlines()
    fasta = f"{base_name(ASSEMBLY, style, primary)}.fa"
    assert lines[0].startswith(f"# {fasta}: {len(want)} of the ")
    rows = [line.split("\t") for line in lines if not line.startswith("#")]
    assert all(len(r) == 6 for r in rows)
    assert {r[0] for r in rows} == want
    variant = {s["name"] for s in report() if is_primary(s) or not primary}
    left_out = {r[0] for r in rows if r[5] == "not in repository"}
    assert GRCH38_LEFT_OUT & variant <= left_out
    if primary:  # chrY is the one chromosome we did not store
        assert want == {"Y"}


@pytest.mark.parametrize(("style", "primary"), VIEWS, ids=VIEW_IDS)
def test_seqcol_json_digest_is_refgets(asm: Asm, style: str, primary: bool) -> None:
    from refget.store import digest_fasta  # gtars: digests the mounted FASTA independently
    from refget.utils import seqcol_digest

    records = asm.records(style, primary)
    level2 = {
        "names": [n for n, _ in records],
        "lengths": [len(s) for _, s in records],
        "sequences": [f"SQ.{sha512t24u(s.encode())}" for _, s in records],
    }
    doc = json.loads(asm.path(style, primary, "seqcol.json").read_bytes())
    assert doc["level2"] == level2
    assert doc["digest"] == seqcol_digest(level2)
    assert digest_fasta(str(asm.path(style, primary))).digest == doc["digest"]
    assert doc["fasta"] == asm.path(style, primary).name and doc["assembly"] == ASSEMBLY


# ---- read-only, same errnos ----------------------------------------------------------------------
def test_views_are_read_only_with_the_same_errnos(asm: Asm) -> None:
    fa = asm.mnt / "GRCh38.ucsc.fa"
    for flags in (os.O_WRONLY, os.O_RDWR, os.O_WRONLY | os.O_TRUNC, os.O_WRONLY | os.O_APPEND):
        assert errno_of(os.open, fa, flags) == errno.EROFS
    create = os.O_WRONLY | os.O_CREAT
    assert errno_of(os.open, asm.mnt / "GRCh38.x.fa", create, 0o644) == errno.EROFS
    assert errno_of(os.unlink, fa) == errno.EROFS
    assert errno_of(os.rename, fa, asm.mnt / "x.fa") == errno.EROFS
    assert errno_of(os.chmod, fa, 0o644) == errno.EROFS
    assert errno_of(os.utime, fa, None) == errno.EROFS
    assert errno_of(os.truncate, fa, 0) == errno.EROFS
    for name in ("GRCh38.ensembl.fa", "GRCh38.primary.ucsc.fa", "GRCh38.fasta", "grch38.fa",
                 "T2T-CHM13v2.0.fa", "hg38.fa", "GRCh38.ucsc.fa.gzi", "GRCh38.fa.fai.fai",
                 "GRCh38%2Efa", "GRCh38.ucsc"):  # fmt: skip
        assert errno_of(os.stat, asm.mnt / name) == errno.ENOENT, name
    assert errno_of(os.stat, fa / "x") == errno.ENOTDIR
    assert errno_of(os.listdir, fa) == errno.ENOTDIR
    assert errno_of(os.readlink, fa) == errno.EINVAL
    assert fa.read_bytes()[:6] == b">chr1\n"


# ---- options, mounted roots, a changing master ---------------------------------------------------
@needs_tools
def test_line_width_option_applies_to_views(asm: Asm, tmp_path: Path) -> None:
    records = asm.records("ucsc", True)
    with Mounted(asm.src, tmp_path / "mnt", "--line-width", "70") as m:
        mnt = Path(m.mnt)
        data = (mnt / "GRCh38.ucsc.primary.fa").read_bytes()
        with SeqRepo(asm.src) as sr, open(tmp_path / "x.fa", "wb") as fh:
            write_assembly_fasta(sr, ASSEMBLY, "ucsc", True, 70, fh)
        assert data == (tmp_path / "x.fa").read_bytes() == naive_fasta(records, 70)
        stdout_of(SAMTOOLS, "faidx", tmp_path / "x.fa")
        assert (mnt / "GRCh38.ucsc.primary.fa.fai").read_bytes() == (
            tmp_path / "x.fa.fai"
        ).read_bytes()
        name, seq = records[0]
        out = stdout_of(SAMTOOLS, "faidx", mnt / "GRCh38.ucsc.primary.fa", f"{name}:65-140")
        assert "".join(out.splitlines()[1:]) == seq[64:140]


@pytest.fixture
def fresh_root(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    root = tmp_path / "root"
    root.mkdir()
    yield root, build_grch38_root(root, seed=9)


def test_root_mount_views_per_instance_and_master_changes(
    fresh_root: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    root, seqs = fresh_root
    y = next(s for s in report() if s["name"] == "Y")

    def export(instance: str, style: str, primary: bool) -> bytes:
        out = tmp_path / "export.fa"
        with SeqRepo(root / instance) as sr, open(out, "wb") as fh:
            write_assembly_fasta(sr, ASSEMBLY, style, primary, 60, fh)
        return out.read_bytes()

    with Mounted(root, tmp_path / "mnt") as m:
        mnt = Path(m.mnt)
        for inst in (SNAPSHOT, "master", "latest"):
            names = os.listdir(mnt / inst)
            assert "refseq" in names and "GRCh38.ucsc.primary.fa" in names, inst
            assert (mnt / inst / "GRCh38.fa").read_bytes() == export(SNAPSHOT, "ncbi", False)
        before = (mnt / "master" / "GRCh38.ucsc.primary.fa").read_bytes()
        assert b">chrY\n" not in before
        assert "\tNC_000024.10\t" in (mnt / "master" / "GRCh38.primary.missing.txt").read_text()

        # master gains chrY and its assembly names; its views follow, the snapshot's do not
        y_seq = "".join(random.Random(24).choices("ACGT", k=777))
        with SeqRepo(root / "master", writeable=True) as sr:
            sr.store(y_seq, [{"namespace": "refseq", "alias": y["refseq_ac"]}])
            sr.commit()
            add_assembly_names(sr, [ASSEMBLY])
        after = export("master", "ucsc", True)
        assert b">chrY\n" in after and after != before
        fa = mnt / "master" / "GRCh38.ucsc.primary.fa"
        assert eventually(lambda: fa.read_bytes() == after, 15), m.log
        assert eventually(lambda: fa.stat().st_size == len(after), 15)
        missing = mnt / "master" / "GRCh38.primary.missing.txt"
        assert eventually(lambda: "NC_000024.10" not in missing.read_text(), 15)
        fai = (mnt / "master" / "GRCh38.ucsc.primary.fa.fai").read_text()
        assert "chrY\t777\t" in fai
        snap = mnt / SNAPSHOT / "GRCh38.ucsc.primary.fa"
        assert snap.read_bytes() == before == export(SNAPSHOT, "ucsc", True)
        assert "Traceback" not in m.log, m.log


# ---- FUSE-free: failure isolation and master freshness, through the tree ------------------------
def test_an_assembly_that_fails_is_not_listed_and_is_eio(
    built: tuple[Path, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from seqrepofs.assemblies import AssemblyCatalog
    from seqrepofs.fs.ops import ROOT_INODE, Operations
    from seqrepofs.fs.source import open_source
    from seqrepofs.fs.tree import Tree

    real_view = AssemblyCatalog.view

    def view(self: AssemblyCatalog, assembly: str, *args: object):
        if assembly == "GRCh37":
            raise RuntimeError("damaged GRCh37")
        return real_view(self, assembly, *args)

    monkeypatch.setattr(AssemblyCatalog, "view", view)
    root, _ = built
    ops = Operations(Tree(open_source(str(root / SNAPSHOT)), "/mnt/x"), threads=2)
    try:
        with caplog.at_level(logging.ERROR, logger="seqrepofs.fs"):
            names = {n.name for n in ops.tree.small_listing(ops.tree.root())}
        assert "GRCh38.fa" in names and "refseq" in names
        grch37 = {f"{base_name('GRCh37', st, p)}.{k}" for st, p in VIEWS for k in KINDS}
        assert not grch37 & names
        assert "GRCh37.p13.fa" in names  # only the failing assembly is left out
        assert "assembly GRCh37: cannot build its views" in caplog.text

        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="seqrepofs.fs"):
            assert fuse_errno(ops.lookup, ROOT_INODE, b"GRCh37.fa", None) == errno.EIO
        assert "/GRCh37.fa" in caplog.text and "damaged GRCh37" in caplog.text
        assert fuse_errno(ops.lookup, ROOT_INODE, b"GRCh38.fa", None) == 0
        assert fuse_errno(ops.lookup, ROOT_INODE, b"GRCh36.fa", None) == errno.ENOENT
    finally:
        ops.close()


def test_master_views_are_rebuilt_when_the_databases_change(
    fresh_root: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from seqrepofs.fs import source

    root, _ = fresh_root
    inst = source.Instance(str(root / "master"))
    assert not inst.frozen
    mtime = source._db_mtime_ns(inst.path)
    now = [mtime + 500_000_000]  # 0.5 s after the last write: not settled yet
    monkeypatch.setattr(source, "time", SimpleNamespace(time_ns=lambda: now[0]))

    def view():
        inst._meta.clear()  # as if the 1 s memo had expired
        return inst.assemblies(60).view(ASSEMBLY, "ucsc", True)

    first = view()
    assert view() is first  # nothing changed
    now[0] = mtime + 5_000_000_000  # settled: a write within that mtime tick is now visible
    settled = view()
    assert settled is not first and settled.read(0, 10**6) == first.read(0, 10**6)
    assert view() is settled  # and it stays cached
    with SeqRepo(root / "master", writeable=True) as sr:  # a real change
        sr.store("ACGT" * 100, [{"namespace": "refseq", "alias": "NC_000024.10"}])
        sr.commit()
        add_assembly_names(sr, [ASSEMBLY])
    now[0] = source._db_mtime_ns(inst.path) + 5_000_000_000
    changed = view()
    assert changed is not settled and [r.name for r in changed.records][-2:] == ["chrY", "chrM"]
    inst.close()
