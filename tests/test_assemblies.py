"""Whole-assembly FASTA views, checked with real tools against real assembly reports.

Two generated repositories carry real bioutils names with generated residues:
(a) a small GRCh38 subset (primary chromosomes plus a few unlocalized/unplaced/alt scaffolds)
    with every bioutils assembly's names added the way ``add-assembly-names -p`` does it;
(b) the whole GRCh38.p14 report (709 entries) with 1-3 kb sequences.
Oracles: samtools faidx/dict, bedtools getfasta, the refget package (seqcol digests, both its
pure-Python function and gtars' FASTA digester), and a naive renderer written here.
"""

from __future__ import annotations

import gc
import io
import random
import re
import subprocess
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from bioutils.assemblies import get_assembly, get_assembly_names
from refget.utils import build_sorted_name_length_pairs, seqcol_dict_to_level1_dict, seqcol_digest
from support.cli import run_seqrepofs, stdout_of
from support.data import GRCH38_LEFT_OUT, GRCH38_LENGTHS, grch38_subset, store_report_entries
from support.oracles import (
    BEDTOOLS,
    SAMTOOLS,
    add_assembly_names,
    is_primary,
    naive_fasta,
    needs_tools,
    read_fasta,
    view_missing,
    view_records,
)

from seqrepofs import SeqRepo
from seqrepofs.assemblies import (
    KINDS,
    STYLES,
    AssemblyView,
    ReportEntry,
    UnknownAssemblyError,
    _Resolved,
    catalog_for,
    get_view,
    invalidate,
    known_assemblies,
    list_views,
    lookup,
    report_entries,
    view_filename,
    write_assembly_fasta,
)
from seqrepofs.digests import sam_m5_of_pieces

VIEWS = [(style, primary) for style in STYLES for primary in (False, True)]


# ---------------------------------------------------------------------------------------------
# Building the repositories
# ---------------------------------------------------------------------------------------------


@dataclass
class Repo:
    path: Path
    sr: SeqRepo
    assembly: str
    seqs: dict[str, str]  # refseq_ac -> residues as generated
    left_out: set[str]  # report names deliberately not stored
    workdir: Path
    exported: dict[tuple[str, bool], Path] = field(default_factory=dict)

    def records(self, style: str, primary: bool) -> list[tuple[str, str]]:
        """(FASTA name, residues) of a view, from the bioutils report and the generated seqs."""
        return view_records(self.assembly, self.seqs, style, primary)

    def missing(self, style: str, primary: bool) -> set[str]:
        return view_missing(self.assembly, self.seqs, style, primary)

    def seq_of(self, e: ReportEntry) -> str:
        assert e.refseq_ac is not None
        return self.seqs[e.refseq_ac]

    def export(self, style: str, primary: bool) -> Path:
        """The view written by write_assembly_fasta (once), with our .fai beside it."""
        key = (style, primary)
        if key not in self.exported:
            view = get_view(self.sr, self.assembly, style, primary)
            path = self.workdir / view.filename()
            with open(path, "wb") as fh:
                write_assembly_fasta(self.sr, self.assembly, style, primary, 60, fh)
            self.exported[key] = path
        return self.exported[key]


def make_repo(
    root: Path,
    assembly: str,
    picked: list[dict],
    left_out: set[str],
    lengths: dict[str, int],
    name_assemblies: Iterable[str],
    seed: int,
) -> Repo:
    with SeqRepo(root / "instance", writeable=True) as sr:
        seqs = store_report_entries(sr, picked, left_out, lengths, seed)
        sr.commit()
        add_assembly_names(sr, name_assemblies)
    work = root / "work"
    work.mkdir()
    return Repo(root / "instance", SeqRepo(root / "instance"), assembly, seqs, left_out, work)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    """(a) GRCh38 chromosomes + 2 unlocalized, 2 unplaced, 2 alt; Y and 2 scaffolds left out."""
    return make_repo(
        tmp_path_factory.mktemp("small"),
        "GRCh38",
        grch38_subset(),
        set(GRCH38_LEFT_OUT),
        GRCH38_LENGTHS,
        get_assembly_names(),
        seed=6,
    )


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    """(b) the whole GRCh38.p14 report; 6 entries left out, 4 have no RefSeq accession."""
    entries = get_assembly("GRCh38.p14")["sequences"]
    rng = random.Random(38)
    left_out = {"21", "HSCHR1_CTG3_UNLOCALIZED"} | {
        s["name"] for s in rng.sample([s for s in entries if not is_primary(s)], 4)
    }
    return make_repo(
        tmp_path_factory.mktemp("full"),
        "GRCh38.p14",
        entries,
        left_out,
        {},
        ["GRCh38.p14"],
        seed=14,
    )


@pytest.fixture(params=["small", "full"])
def repo(request: pytest.FixtureRequest) -> Repo:
    return request.getfixturevalue(request.param)


# ---------------------------------------------------------------------------------------------
# The views against the tools
# ---------------------------------------------------------------------------------------------


@needs_tools
@pytest.mark.parametrize(("style", "primary"), VIEWS)
def test_view_bytes_index_and_regions(repo: Repo, style: str, primary: bool) -> None:
    view = get_view(repo.sr, repo.assembly, style, primary)
    records = repo.records(style, primary)
    assert [(r.name, r.length) for r in view.records] == [(n, len(s)) for n, s in records]
    path = repo.export(style, primary)
    data = path.read_bytes()
    # export == naive rendering == the view read whole == reads in FUSE-sized windows
    assert data == naive_fasta(records)
    assert len(data) == view.size == view.file_size("fa")
    assert view.read(0, view.size + 10) == data
    assert b"".join(view.read_file("fa", o, 131072) for o in range(0, view.size, 131072)) == data

    # samtools indexes the exported bytes into exactly our .fai
    fai = Path(str(path) + ".fai")
    fai.unlink(missing_ok=True)
    stdout_of(SAMTOOLS, "faidx", path)
    assert fai.read_bytes() == view.fai_text() == view.file_bytes("fa.fai")

    # samtools faidx regions in every record: ends, whole record, line boundaries, random
    rng = random.Random(f"{repo.assembly}{style}{primary}")
    regions: list[tuple[str, int, int]] = []
    for name, seq in records:
        n = len(seq)
        cand = [(1, 1), (n, n), (1, n), (max(1, n - 61), n)]
        if n > 62:
            cand.append((60, 62))
        a = rng.randint(1, n)
        cand.append((a, rng.randint(a, n)))
        k = min(len(cand), 3 if len(records) > 100 else 6)
        regions += [(name, lo, hi) for lo, hi in rng.sample(cand, k)]
    reg_file = repo.workdir / f"{path.name}.regions"
    reg_file.write_text("".join(f"{n}:{a}-{b}\n" for n, a, b in regions))
    got = read_fasta(_faidx(path, reg_file))
    seq_by_name = dict(records)
    assert [h for h, _ in got] == [f"{n}:{a}-{b}" for n, a, b in regions]
    for (name, a, b), (_h, s) in zip(regions, got, strict=True):
        assert s == seq_by_name[name][a - 1 : b]

    # samtools dict agrees on SN/LN/M5; ours adds AS and the ga4gh UR
    sam_keys = ("SN", "LN", "M5")
    theirs = [
        {k: v for k, v in (f.split(":", 1) for f in line.split("\t")[1:]) if k in sam_keys}
        for line in stdout_of(SAMTOOLS, "dict", path).splitlines()
        if line.startswith("@SQ")
    ]
    ours = [
        dict(f.split(":", 1) for f in line.split("\t")[1:])
        for line in view.dict_text().decode().splitlines()
        if line.startswith("@SQ")
    ]
    assert [{k: d[k] for k in ("SN", "LN", "M5")} for d in ours] == theirs
    assert all(d["AS"] == repo.assembly for d in ours)
    assert [d["UR"] for d in ours] == [f"ga4gh:SQ.{r.seq_id}" for r in view.records]
    assert view.file_bytes("dict") == view.file_bytes("fa.dict") == view.dict_text()
    # with one URI on every record (as samtools sets it) the bytes are samtools' own, bar AN
    sam = stdout_of(SAMTOOLS, "dict", "-a", repo.assembly, "-u", "file:///m/x.fa", path)
    ours_u = view.dict_text(uri="file:///m/x.fa").decode()
    assert re.sub(r"\tAN:[^\t\n]*", "", ours_u) == sam
    assert ours_u.count("\tAN:") == sum(1 for r in view.records if r.alt_names)

    # chrom.sizes
    assert view.chrom_sizes_text().decode() == "".join(f"{n}\t{len(s)}\n" for n, s in records)


def _faidx(path: Path, reg_file: Path) -> str:
    out = reg_file.with_suffix(".out.fa")
    stdout_of(SAMTOOLS, "faidx", path, "-r", reg_file, "-o", out)
    return str(out)


@needs_tools
def test_byte_windows_across_record_boundaries(repo: Repo) -> None:
    rng = random.Random(7)
    for style, primary in VIEWS:
        view = get_view(repo.sr, repo.assembly, style, primary)
        whole = repo.export(style, primary).read_bytes()
        offsets = [view.genome.record_start(i) for i in range(len(view.records))] + [view.size]
        for boundary in offsets:
            for _ in range(2):
                off = max(0, boundary - rng.randint(0, 130))
                size = rng.randint(1, 400)
                assert view.read(off, size) == whole[off : off + size], (style, primary, off)
        for _ in range(50):  # windows that may span many records
            off = rng.randrange(0, max(1, view.size))
            size = rng.randint(1, 20000)
            assert view.read_file("fa", off, size) == whole[off : off + size]


@needs_tools
def test_bedtools_with_ucsc_and_ncbi_beds(repo: Repo) -> None:
    rng = random.Random(11)
    for style in ("ucsc", "ncbi"):
        path = repo.export(style, False)
        fai = Path(str(path) + ".fai")
        fai.write_bytes(get_view(repo.sr, repo.assembly, style).fai_text())  # what a mount serves
        records = repo.records(style, False)
        bed = []
        for name, seq in records[:: max(1, len(records) // 150)]:
            a = rng.randrange(0, len(seq))
            bed.append((name, a, rng.randint(a + 1, len(seq))))
            bed.append((name, 0, len(seq)))
        bed_path = repo.workdir / f"{style}.bed"
        bed_path.write_text("".join(f"{n}\t{a}\t{b}\n" for n, a, b in bed))
        out = stdout_of(BEDTOOLS, "getfasta", "-fi", path, "-bed", bed_path, "-tab").splitlines()
        seq_by_name = dict(records)
        assert out == [f"{n}:{a}-{b}\t{seq_by_name[n][a:b]}" for n, a, b in bed]
        if style == "ucsc":
            assert all(n.startswith("chr") for n, _, _ in bed)
        else:
            assert "1" in {n for n, _, _ in bed} and not any(n.startswith("chr") for n, *_ in bed)


@needs_tools
@pytest.mark.parametrize(("style", "primary"), VIEWS)
def test_seqcol_digest_matches_refget(repo: Repo, style: str, primary: bool) -> None:
    from refget.store import digest_fasta  # gtars: digests the FASTA bytes independently

    view = get_view(repo.sr, repo.assembly, style, primary)
    level2 = view.seqcol_level2()
    assert view.seqcol_digest == seqcol_digest(level2)
    ref_level1 = seqcol_dict_to_level1_dict(
        {**level2, "sorted_name_length_pairs": build_sorted_name_length_pairs(level2)}
    )
    assert view.seqcol_level1 == ref_level1
    if view.records:
        assert digest_fasta(str(repo.export(style, primary))).digest == view.seqcol_digest
    import json

    doc = json.loads(view.file_bytes("seqcol.json"))
    assert doc["digest"] == view.seqcol_digest and doc["level2"] == level2
    assert doc["fasta"] == view.filename()


@pytest.mark.parametrize(("style", "primary"), VIEWS)
def test_missing_list_names_exactly_the_left_out(repo: Repo, style: str, primary: bool) -> None:
    view = get_view(repo.sr, repo.assembly, style, primary)
    want = repo.missing(style, primary)
    assert {m.entry.name for m in view.missing} == want
    lines = view.missing_text().decode().splitlines()
    assert lines[0].startswith(f"# {view.filename()}: {len(want)} of the {view.n_entries} ")
    rows = [line.split("\t") for line in lines if not line.startswith("#")]
    assert {r[0] for r in rows} == want
    assert all(len(r) == 6 for r in rows)
    # what we left out ourselves is reported as absent, never silently dropped
    variant_names = {e.name for e in report_entries(repo.assembly) if e.is_primary or not primary}
    assert repo.left_out & variant_names <= {r[0] for r in rows if r[5] == "not in repository"}


def test_missing_reasons_full_report(full: Repo) -> None:
    view = get_view(full.sr, "GRCh38.p14", "refseq")
    na = {e.name for e in report_entries("GRCh38.p14") if e.refseq_ac is None}
    assert len(na) == 4
    # the reference add-assembly-names cannot attach entries without a RefSeq accession
    assert {m.entry.name for m in view.missing} == na | full.left_out
    assert len(view.records) == 709 - 4 - 6


# ---------------------------------------------------------------------------------------------
# Names follow each assembly's report
# ---------------------------------------------------------------------------------------------


def test_names_follow_the_report(small: Repo) -> None:
    sr = small.sr
    mt = sr.aliases.current_alias("NCBI", "NC_012920.1")
    assert mt is not None
    ucsc = get_view(sr, "GRCh38", "ucsc", primary=True)
    ncbi = get_view(sr, "GRCh38", "ncbi", primary=True)
    refseq = get_view(sr, "GRCh38", "refseq", primary=True)
    assert [r.name for r in ucsc.records] == [f"chr{i}" for i in range(1, 23)] + ["chrX", "chrM"]
    assert [r.name for r in ncbi.records] == [str(i) for i in range(1, 23)] + ["X", "MT"]
    assert refseq.records[0].name == "NC_000001.11" and refseq.records[-1].name == "NC_012920.1"
    assert ucsc.records[-1].seq_id == ncbi.records[-1].seq_id == mt
    assert ucsc.records[-1].alt_names == ("MT", "NC_012920.1")
    full_ucsc = [r.name for r in get_view(sr, "GRCh38", "ucsc").records]
    assert "chr1_KI270706v1_random" in full_ucsc and "chrUn_GL000195v1" in full_ucsc
    assert "chr1_GL383518v1_alt" in full_ucsc
    assert "chr1_KI270707v1_random" not in full_ucsc  # left out of the repository
    assert "chrY" not in full_ucsc  # left out of the repository
    # report order: chromosomes, unlocalized, unplaced, alts, MT last
    order = ["chrX", "chr1_KI270706v1_random", "chrUn_GL000195v1", "chr1_GL383518v1_alt", "chrM"]
    assert [full_ucsc.index(n) for n in order] == sorted(full_ucsc.index(n) for n in order)


def test_grch37_mt_is_what_bioutils_carries(small: Repo) -> None:
    """hg19's chrM (NC_001807, 16,571 bp) is not GRCh37's MT; bioutils' chrM is the rCRS."""
    assert not any(s["name"] == "MT" for s in get_assembly("GRCh37")["sequences"])
    p13_mt = [s for s in get_assembly("GRCh37.p13")["sequences"] if s["name"] == "MT"]
    assert p13_mt[0]["aliases"] == ["chrM"] and p13_mt[0]["refseq_ac"] == "NC_012920.1"
    known = known_assemblies(small.sr)
    stored = set(small.seqs)
    assert known == sorted(
        a
        for a in get_assembly_names()
        if any(s["refseq_ac"] in stored for s in get_assembly(a)["sequences"])
    )
    assert {"GRCh37", "GRCh37.p13", "GRCh38", "GRCh38.p14"} <= set(known)
    assert "T2T-CHM13v2.0" not in known  # its MT has no RefSeq accession in the report
    view = get_view(small.sr, "GRCh37.p13", "ucsc", primary=True)
    assert [(r.name, r.length) for r in view.records] == [("chrM", 16569)]
    assert view.records[0].seq_id == small.sr.aliases.current_alias("NCBI", "NC_012920.1")
    assert len(view.missing) == 24  # 1-22, X, Y of GRCh37 are other sequences
    # base GRCh37 has no MT: its primary view is empty, and says so
    empty = get_view(small.sr, "GRCh37", "ucsc", primary=True)
    assert empty.records == () and empty.size == 0 and len(empty.missing) == 24
    # the same scaffold has a different name in each assembly's report
    g37 = {r.name: r.seq_id for r in get_view(small.sr, "GRCh37", "ucsc").records}
    g38 = {r.name: r.seq_id for r in get_view(small.sr, "GRCh38", "ucsc").records}
    assert g37["chr7_gl000195_random"] == g38["chrUn_GL000195v1"]
    assert "chrUn_GL000195v1" not in g37
    with pytest.raises(UnknownAssemblyError):
        get_view(small.sr, "T2T-CHM13v2.0")
    with pytest.raises(UnknownAssemblyError):
        get_view(small.sr, "hg19")


def test_bioutils_aliases_are_the_single_ucsc_column() -> None:
    """The ucsc style relies on bioutils storing the UCSC-style-name as the only alias."""
    for name in get_assembly_names():
        assert all(len(s["aliases"]) <= 1 for s in get_assembly(name)["sequences"]), name


# ---------------------------------------------------------------------------------------------
# File names, listing, lookup, export, caching
# ---------------------------------------------------------------------------------------------


def test_file_names_listing_and_lookup(small: Repo) -> None:
    assert view_filename("GRCh38") == "GRCh38.fa"
    assert view_filename("GRCh38", "ncbi", "primary") == "GRCh38.primary.fa"
    assert view_filename("GRCh38", "ucsc") == "GRCh38.ucsc.fa"
    assert view_filename("GRCh38.p14", "ucsc", "primary", "dict") == "GRCh38.p14.ucsc.primary.dict"
    assert view_filename("GRCh38", "refseq", "full", "fa.fai") == "GRCh38.refseq.fa.fai"
    with pytest.raises(ValueError):
        view_filename("GRCh38", "ensembl")
    names = list_views(small.sr)
    known = known_assemblies(small.sr)
    assert len(names) == len(set(names)) == len(known) * 6 * len(KINDS)
    for fn in names:
        vf = lookup(small.sr, fn)
        assert vf is not None and vf.filename == fn
        assert view_filename(vf.assembly, vf.style, vf.variant, vf.kind) == fn
    for fn in (
        "GRCh38.fa",
        "GRCh38.fa.fai",
        "GRCh38.dict",
        "GRCh38.fa.dict",
        "GRCh38.chrom.sizes",
        "GRCh38.seqcol.json",
        "GRCh38.missing.txt",
        "GRCh38.ucsc.primary.fa",
        "GRCh38.p14.refseq.fa",
        "GRCh37.p13.ucsc.primary.fa",
    ):
        assert fn in names
    vf = lookup(small.sr, "GRCh38.p14.ucsc.primary.fa.fai")
    assert vf is not None
    assert (vf.assembly, vf.style, vf.primary, vf.kind) == ("GRCh38.p14", "ucsc", True, "fa.fai")
    bad_names = ("T2T-CHM13v2.0.fa", "GRCh38.fasta", "GRCh38.ensembl.fa", "GRCh38", "1", "x.fa")
    for bad in bad_names:
        assert lookup(small.sr, bad) is None
    cat = catalog_for(small.sr)
    for fn in ("GRCh38.ucsc.fa", "GRCh38.ucsc.dict", "GRCh38.ucsc.missing.txt"):
        vf = lookup(small.sr, fn)
        assert vf is not None
        size = cat.file_size(vf)
        assert len(cat.read(vf, 0, size + 100)) == size
        assert cat.read(vf, 5, 10) == cat.read(vf, 0, size)[5:15]


def test_export_streams_in_bounded_chunks(small: Repo) -> None:
    """Chunked export equals the layout render, and no fetch exceeds one chunk."""
    whole = get_view(small.sr, "GRCh38", "ucsc").read(0, 10**9)

    class Spy:  # observes the real store; answers come from it unchanged
        def __init__(self, sr: SeqRepo) -> None:
            self.sequences, self.aliases, self.max_fetch = self, sr.aliases, 0
            self._sr = sr

        def sequence_length(self, seq_id: str) -> int:
            return self._sr.sequence_length(seq_id)

        def sam_m5(self, seq_id: str) -> str:
            return self._sr.sam_m5(seq_id)

        def fetch_seqinfo(self, seq_id: str) -> dict:
            return self._sr.sequences.fetch_seqinfo(seq_id)

        def fetch_bytes(self, seq_id: str, start: int, end: int) -> bytes:
            self.max_fetch = max(self.max_fetch, end - start)
            return self._sr.sequences.fetch_bytes(seq_id, start, end)

    for chunk in (1, 7, 61, 1000, 4096):
        spy = Spy(small.sr)
        out = io.BytesIO()
        write_assembly_fasta(spy, "GRCh38", "ucsc", False, 60, out, chunk_bytes=chunk)
        assert out.getvalue() == whole
        assert 0 < spy.max_fetch <= chunk


def test_line_width_is_part_of_the_view(small: Repo) -> None:
    v80 = get_view(small.sr, "GRCh38", "ncbi", True, line_width=80)
    records = small.records("ncbi", True)
    assert v80.read(0, v80.size) == naive_fasta(records, 80)
    assert catalog_for(small.sr, 80) is catalog_for(small.sr, 80)
    assert get_view(small.sr, "GRCh38", "ncbi", True) is not v80


def test_cache_does_not_keep_the_repository_alive(small: Repo) -> None:
    sr = SeqRepo(small.path)
    view = get_view(sr, "GRCh38", "ucsc", True)
    assert view.read(0, 6) == b">chr1\n" and get_view(sr, "GRCh38", "ucsc", True) is view
    ref = weakref.ref(sr)
    del sr, view
    gc.collect()
    assert ref() is None


def test_md5_fallback_equals_stored_md5(small: Repo) -> None:
    for r in get_view(small.sr, "GRCh38", "ncbi", True).records[:5]:
        assert sam_m5_of_pieces(small.sr.iter_bytes(r.seq_id)) == r.md5


# ---------------------------------------------------------------------------------------------
# Inconsistent namespaces, duplicates, empty views
# ---------------------------------------------------------------------------------------------


def test_conflicts_unstored_and_invalidate(tmp_path: Path) -> None:
    entries = {e.name: e for e in report_entries("GRCh38")}
    with SeqRepo(tmp_path / "i", writeable=True) as sr:
        for n in ("1", "2", "MT"):
            sr.store(
                "ACGT" * (int(n) if n.isdigit() else 5) * 10,
                [{"namespace": "refseq", "alias": entries[n].refseq_ac or ""}],
            )
        sr.commit()
        add_assembly_names(sr, ["GRCh38"])
    sr = SeqRepo(tmp_path / "i")
    view = get_view(sr, "GRCh38", "ucsc", True)
    assert [r.name for r in view.records] == ["chr1", "chr2", "chrM"]
    sr.close()

    with SeqRepo(tmp_path / "i", writeable=True) as w:
        one = w.aliases.current_alias("GRCh38", "1")
        assert one is not None
        w.aliases.store_alias(one, "GRCh38", "chr2")  # re-point: 2 and chr2 now disagree
        w.aliases.store_alias("NotStoredNotStoredNotStoredNotSt", "GRCh38", "X")
        w.commit()
    sr = SeqRepo(tmp_path / "i")
    assert catalog_for(sr).view("GRCh38", "ucsc", True) is get_view(sr, "GRCh38", "ucsc", True)
    view = get_view(sr, "GRCh38", "ucsc", True)
    assert [r.name for r in view.records] == ["chr1", "chrM"]
    reasons = {m.entry.name: m.reason for m in view.missing}
    assert reasons["2"].startswith("conflicting aliases")
    assert reasons["X"].startswith("alias names unstored sequence")
    assert reasons["Y"] == "not in repository"
    invalidate(sr)
    assert get_view(sr, "GRCh38", "ucsc", True) is not view


def _entry(i: int, name: str, ucsc: str | None, refseq: str | None) -> ReportEntry:
    return ReportEntry(
        i, name, ucsc, refseq, None, 100, "assembled-molecule", "Primary Assembly", "="
    )


def test_duplicate_names_and_empty_views(small: Repo) -> None:
    """Built from hand-made report entries: bioutils' real reports have no duplicates."""
    sid = get_view(small.sr, "GRCh38", "ncbi", True).records[0]
    res = (
        _Resolved(_entry(0, "a", "chrA", "NC_1.1"), sid.seq_id, sid.length, sid.md5, None),
        _Resolved(_entry(1, "b", "chrA", None), sid.seq_id, sid.length, sid.md5, None),
        _Resolved(_entry(2, "c d/e", None, "NC_1.1"), sid.seq_id, sid.length, sid.md5, None),
    )
    ucsc = AssemblyView(small.sr, "Toy", "ucsc", False, 60, res)
    assert [r.name for r in ucsc.records] == ["chrA"]
    assert [(m.entry.name, m.reason) for m in ucsc.missing] == [
        ("b", "duplicate name"),
        ("c d/e", "no ucsc name in assembly report"),
    ]
    ncbi = AssemblyView(small.sr, "Toy", "ncbi", False, 60, res)
    # same sequence under three names is three records; unsafe characters are escaped
    assert [r.name for r in ncbi.records] == ["a", "b", "c%20d%2Fe"]
    assert ncbi.records[0].alt_names == ("chrA", "NC_1.1") and ncbi.records[1].alt_names == ()
    empty = AssemblyView(small.sr, "Toy", "refseq", True, 60, ())
    assert empty.size == 0 and empty.read(0, 10) == b"" and empty.fai_text() == b""
    assert empty.seqcol_digest == seqcol_digest({"names": [], "lengths": [], "sequences": []})
    assert empty.dict_text() == b"@HD\tVN:1.0\tSO:unsorted\n"


# ---------------------------------------------------------------------------------------------
# The CLI: add-assembly-names and export --assembly
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("style,primary", [("ucsc", True), ("ncbi", False), ("refseq", False)])
def test_cli_export_assembly_equals_the_view(small: Repo, style: str, primary: bool) -> None:
    args = [
        "-r",
        small.path.parent,
        "export",
        "-i",
        small.path.name,
        "--assembly",
        "GRCh38",
        "--style",
        style,
    ] + (["--primary"] if primary else [])
    res = run_seqrepofs(*args, text=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout == small.export(style, primary).read_bytes()
    if small.missing(style, primary):
        assert b"left out" in res.stderr
    bad = run_seqrepofs(
        "export", "-i", small.path.name, "--assembly", "GRCh99", root=small.path.parent, text=False
    )
    assert bad.returncode == 1 and b"GRCh99" in bad.stderr and b"Traceback" not in bad.stderr
    usage = run_seqrepofs(
        "export", "-i", small.path.name, "--primary", root=small.path.parent, text=False
    )
    assert usage.returncode == 2 and b"--assembly" in usage.stderr


def test_cli_add_assembly_names_matches_the_reference_rule(tmp_path: Path, small: Repo) -> None:
    """`seqrepofs add-assembly-names -p` stores what the reference's rule (above) stores."""
    root = tmp_path / "root"
    root.mkdir()
    with SeqRepo(root / "master", writeable=True) as sr:
        for refseq_ac, seq in small.seqs.items():
            sr.store(seq, [{"namespace": "refseq", "alias": refseq_ac}])
    res = run_seqrepofs("add-assembly-names", "-p", root=root, stdout=subprocess.DEVNULL)
    assert res.returncode == 0, res.stderr
    ours = SeqRepo(root / "master")

    def assembly_rows(sr: SeqRepo) -> set[tuple[str, str, str]]:
        names = set(get_assembly_names())
        return {
            (r["seq_id"], r["namespace"], r["alias"])
            for r in sr.aliases.find_aliases()
            if r["namespace"] in names
        }

    got = assembly_rows(ours)
    assert got == assembly_rows(small.sr)
    assert len(got) > 100
