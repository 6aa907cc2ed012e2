"""The loader as a library: defline rules vs the reference, chunked parsing, formats, load()."""

from __future__ import annotations

import bz2
import gzip
import io
import os
import random
import sqlite3
import subprocess
from pathlib import Path

import pytest
from support.data import REAL, new_instance
from support.oracles import read_fasta

from seqrepofs import SeqRepo
from seqrepofs.digests import digests, normalise
from seqrepofs.loader import LoadError, load, open_source, parse_defline, read_records
from seqrepofs.loader.deflines import check_namespace, validate_aliases
from seqrepofs.loader.sources import detect, prefetch

ref_utils = pytest.importorskip("biocommons.seqrepo.utils")

REAL_FASTA = [
    REAL / "refget-compliance" / "NC.faa",
    REAL / "hgvs-sample" / "f1.human.protein.small.faa",
    REAL / "hgvs-sample" / "f2.human.rna.small.fna",
    REAL / "seqrepo-tests" / "sequences.fa.gz",
    REAL / "seqrepo-tests" / "test.fa",
]


# ---- deflines: same answers as the reference ------------------------------------------------

DEFLINES = [
    ">NM_000059.3 BRCA2 mRNA",
    "U14680.1\tBRCA1 mRNA",
    ">gi|119395733|ref|NM_000059.3| Homo sapiens BRCA2",
    "gi|568815364|ref|NT_077402.3|",
    ">ref|NC_000001.11|",
    ">gi|1|emb|X1.1|ref|NM_1.2|ref|NM_3.4|",
    " leading space",  # as the reference's FastaIter hands it over (">" dropped)
    ">chr1",
    ">ENST00000256078.10 extra",
]


@pytest.mark.parametrize("defline", DEFLINES)
def test_parse_defline_matches_reference(defline: str) -> None:
    assert parse_defline(defline, "ns") == ref_utils.parse_defline(defline, "ns")


@pytest.mark.parametrize(
    ("namespace", "alias", "ok"),
    [
        ("refseq", "NM_000059.3", True),
        ("refseq", "NM_000059", False),
        ("NCBI", "NC_1", False),
        ("Ensembl", "ENST00000256078", False),
        ("Ensembl", "ENST00000256078.10", True),
        ("Ensembl", "foo", True),
        ("test", "a/b+c-d_e.f", True),
        ("test", "a b", False),
        ("test", "a:b", False),
        ("test", "a|b", False),
    ],
)
def test_validate_aliases_matches_reference(namespace: str, alias: str, ok: bool) -> None:
    recs = [{"namespace": namespace, "alias": alias}]
    try:
        ref_utils.validate_aliases(recs)
        ref_ok = True
    except RuntimeError:
        ref_ok = False
    assert ref_ok == ok
    if ok:
        validate_aliases(recs)
    else:
        with pytest.raises(ValueError, match=alias.split()[0][:3]):
            validate_aliases(recs)


@pytest.mark.parametrize("namespace", ["", " ", "-", "a:b", "a b", None])
def test_bad_namespaces(namespace: str | None) -> None:
    with pytest.raises(ValueError):
        check_namespace(namespace)


# ---- parsing ----------------------------------------------------------------------------------


def parse(data: bytes, chunk: int | None = None, namespace: str = "ns") -> list[tuple[str, bytes]]:
    chunks = [data] if chunk is None else [data[i : i + chunk] for i in range(0, len(data), chunk)]
    return [(r.header, bytes(r.seq)) for r in read_records(chunks, "x.fa", namespace)]


def naive(data: bytes) -> list[tuple[str, bytes]]:
    out = []
    for header, seq in read_fasta_bytes(data):
        out.append((header, seq.upper().encode()))
    return out


def read_fasta_bytes(data: bytes) -> list[tuple[str, str]]:
    recs: list[tuple[str, list[str]]] = []
    for line in data.decode().splitlines():
        if line.startswith(">"):
            recs.append((line[1:].rstrip("\r"), []))
        elif recs:
            recs[-1][1].append("".join(line.split()))
    return [(h, "".join(parts)) for h, parts in recs]


def random_fasta(rng: random.Random, n: int) -> bytes:
    out = io.BytesIO()
    for i in range(n):
        width = rng.choice([1, 7, 60, 70, 80])
        seq = "".join(rng.choice("ACGTNacgtn") for _ in range(rng.randint(1, 300)))
        eol = rng.choice(["\n", "\r\n"])
        out.write(f">S{i}.1 description {i}{eol}".encode())
        for j in range(0, len(seq), width):
            out.write((seq[j : j + width] + eol).encode())
        if rng.random() < 0.2:
            out.write(eol.encode())  # blank line
    return out.getvalue()


def test_parse_any_chunking_equals_naive_reader() -> None:
    rng = random.Random(7)
    data = random_fasta(rng, 40)
    expected = naive(data)
    for chunk in (None, 1, 2, 3, 5, 13, 64, 1000):
        assert parse(data, chunk) == expected, chunk


def test_parse_record_fields() -> None:
    data = b">gi|1|ref|NM_1.2| desc\nac*gt\n>x.1\n" + b"A" * 10 + b"\n"
    recs = list(read_records([data], "f.fa", "test"))
    assert [r.aliases for r in recs] == [
        [{"namespace": "refseq", "alias": "NM_1.2"}],
        [{"namespace": "test", "alias": "x.1"}],
    ]
    assert bytes(recs[0].seq) == b"AC*GT"  # stored with the stop, upper-cased
    assert recs[0].digests == digests(normalise(b"ACGT"))  # digested without it
    assert recs[0].alphabet == "*ACGT"
    assert (recs[1].index, recs[1].line) == (2, 3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b">a.1\nACGT\nAC1T\n",
            r"f\.fa, line 3, record 1 \(a\.1\): invalid residue '1' at column 3",
        ),
        (b">a.1\nACGT\n>b.1\n\n>c.1\nA\n", r"line 3, record 2 \(b\.1\): empty record"),
        (b">a.1\nAC\n>\nACGT\n", r"line 3, record 2: header has no name"),
        (b">a.1\nAC\n>   \nACGT\n", r"line 3, record 2: header has no name"),
        (b"", r"no FASTA records found"),
        (b"hello\n>a\nAC\n", r"line 1: text before the first '>'"),
        (b">a b\nAC-GT\n", r"invalid residue '-' at column 3 \(residue 3\)"),
        (b">a|b\nACGT\n", r"alias 'a\|b' contains the invalid character '\|'"),
        (b">NM_1 x\nACGT\n", r"refseq alias NM_1 is unversioned"),
    ],
)
def test_parse_errors_name_file_record_line(data: bytes, message: str) -> None:
    ns = "refseq" if b"NM_1" in data else "test"
    with pytest.raises(LoadError, match=message):
        list(read_records([data], "f.fa", ns))


def test_invalid_residue_position_across_chunks() -> None:
    data = b">a.1\n" + b"ACGTACGTAC\n" * 50 + b"ACGT9\n"
    with pytest.raises(LoadError, match=r"line 52.*column 5 \(residue 505\)"):
        list(read_records([data[i : i + 17] for i in range(0, len(data), 17)], "f", "t"))


# ---- sources ----------------------------------------------------------------------------------


def compressed_variants(tmp_path: Path, data: bytes) -> dict[str, Path]:
    """The same FASTA as plain, gzip, BGZF and bzip2, under extension-less names."""
    out = {"plain": tmp_path / "plain", "gzip": tmp_path / "gz", "bzip2": tmp_path / "bz"}
    out["plain"].write_bytes(data)
    out["gzip"].write_bytes(gzip.compress(data))
    out["bzip2"].write_bytes(bz2.compress(data))
    bgzf = tmp_path / "bgzf"
    with open(bgzf, "wb") as fh:
        subprocess.run(["bgzip", "-c", str(out["plain"])], stdout=fh, check=True)
    out["bgzf"] = bgzf
    return out


def test_formats_detected_by_magic(tmp_path: Path) -> None:
    data = (REAL / "hgvs-sample" / "f3.refseqgene4.genomic.small.fna").read_bytes()
    for kind, path in compressed_variants(tmp_path, data).items():
        source = open_source(str(path))
        try:
            assert source.kind == kind
            assert b"".join(prefetch(source.stream, 1 << 16)) == data
        finally:
            source.close()


@pytest.mark.parametrize(
    ("magic", "kind"),
    [
        (b"\xfd7zXZ\x00", "xz"),
        (b"PK\x03\x04", "zip"),
        (b"\x28\xb5\x2f\xfd", "zstd"),
        (b">NM_1\n", "plain"),
        (b"BZh91AY", "bzip2"),
    ],
)
def test_detect(magic: bytes, kind: str) -> None:
    assert detect(magic) == kind


def test_unsupported_and_missing_inputs(tmp_path: Path) -> None:
    (tmp_path / "z").write_bytes(b"PK\x03\x04rest")
    with pytest.raises(LoadError, match="zip data is not supported"):
        open_source(str(tmp_path / "z"))
    with pytest.raises(LoadError, match="no such file"):
        open_source(str(tmp_path / "nope.fa"))
    with pytest.raises(LoadError, match="is a directory"):
        open_source(str(tmp_path))


@pytest.mark.parametrize("kind", ["gzip", "bgzf", "bzip2"])
def test_truncated_compressed_input(tmp_path: Path, kind: str) -> None:
    data = (REAL / "hgvs-sample" / "f3.refseqgene4.genomic.small.fna").read_bytes()
    path = compressed_variants(tmp_path, data)[kind]
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    inst = new_instance(tmp_path)
    with pytest.raises(LoadError, match=r"truncated or corrupt compressed data"):
        load(str(inst), [str(path)], "refseq")
    sr = SeqRepo(inst)
    assert sr.sequences.stats()["n_sequences"] == 0


# ---- load() -------------------------------------------------------------------------------------


def test_load_real_data_and_read_back(tmp_path: Path) -> None:
    inst = new_instance(tmp_path)
    stats = load(str(inst), [str(p) for p in REAL_FASTA], "test")
    expected = {}
    for path in REAL_FASTA:
        for header, seq in read_fasta(path):
            expected[header] = seq.upper()
    assert stats.seqs_seen == len(expected)
    sr = SeqRepo(inst)
    for header, seq in expected.items():
        alias = parse_defline(header, "test")[0]
        assert sr.fetch(alias["alias"], namespace=alias["namespace"]) == seq
    assert stats.seqs_added == len(set(expected.values()))
    assert len(sr.sequences) == stats.seqs_added


def test_non_redundant_and_idempotent(tmp_path: Path) -> None:
    inst = new_instance(tmp_path)
    test_fa = str(REAL / "seqrepo-tests" / "test.fa")  # test1A/B/C, all ACGT
    stats = load(str(inst), [test_fa, str(REAL / "seqrepo-tests" / "gztest.fa.gz")], "test")
    assert (stats.seqs_seen, stats.seqs_added, stats.aliases_added) == (6, 1, 6)
    again = load(str(inst), [test_fa], "test")
    assert (again.seqs_added, again.aliases_added) == (0, 0)
    sr = SeqRepo(inst)
    assert sr.aliases.stats()["n_aliases"] == 4 + 6


def test_repointed_alias_is_warned_and_kept_as_history(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inst = new_instance(tmp_path)
    (tmp_path / "a.fa").write_text(">X.1\nACGT\n>Y.1\nAAAA\n>X.1\nCCCC\n")
    stats = load(str(inst), [str(tmp_path / "a.fa")], "test")
    old, new = digests(b"ACGT").seq_id, digests(b"CCCC").seq_id
    assert stats.repointed == [("test", "X.1", old, new)]
    assert f"alias test:X.1 re-pointed from {old} to {new}" in caplog.text
    sr = SeqRepo(inst)
    rows = {
        (r["seq_id"], r["is_current"])
        for r in sr.aliases.find_aliases(namespace="test", alias="X.1", current_only=False)
    }
    assert rows == {(old, 0), (new, 1)}


@pytest.mark.parametrize("batch_size", [1, 2, 3, 1000])
def test_repointing_across_batches_and_loads_keeps_order_and_history(
    tmp_path: Path, batch_size: int
) -> None:
    """Re-points whose old row is committed, in the batch in flight, or in the same batch all
    leave what one store_alias per alias, in load order, leaves: one current row per alias,
    the older rows non-current, row ids in load order."""
    inst = new_instance(tmp_path)
    seqs = ["ACGT", "CCCC", "GGGG", "TTTT", "ACGA", "ACGC"]
    order = [
        ("X.1", 0),
        ("Y.1", 1),
        ("X.1", 2),
        ("Z.1", 3),
        ("Y.1", 4),
        ("X.1", 5),
        ("X.1", 1),
        ("Z.1", 3),
    ]
    (tmp_path / "a.fa").write_text("".join(f">{n}\n{seqs[i]}\n" for n, i in order))
    (tmp_path / "b.fa").write_text(">Y.1\nACGT\n>W.1\nGGGG\n>X.1\nCCCC\n")
    load(str(inst), [str(tmp_path / "a.fa")], "test", batch_size=batch_size)
    load(str(inst), [str(tmp_path / "b.fa")], "test", batch_size=batch_size)
    ids = [digests(s.encode()).seq_id for s in seqs]
    expected: list[tuple[str, str, int]] = []  # (alias, seq_id, is_current) in row order
    for name, i in [*order, ("Y.1", 0), ("W.1", 2), ("X.1", 1)]:
        current = [k for k, (n, _s, c) in enumerate(expected) if n == name and c]
        if current and expected[current[0]][1] == ids[i]:
            continue
        for k in current:
            expected[k] = (name, expected[k][1], 0)
        expected.append((name, ids[i], 1))
    conn = sqlite3.connect(inst / "aliases.sqlite3")
    rows = conn.execute(
        "select alias, seq_id, is_current from seqalias where namespace = 'test'"
        " order by seqalias_id"
    ).fetchall()
    conn.close()
    assert rows == expected


def test_bad_record_rolls_back_the_batch(tmp_path: Path) -> None:
    inst = new_instance(tmp_path)
    load(str(inst), [str(REAL / "refget-compliance" / "NC.faa")], "insdc")
    before = snapshot_files(inst)
    (tmp_path / "bad.fa").write_text(">A.1\nACGT\n>B.1\nAC GT\n>C.1\nAC1\n")
    with pytest.raises(LoadError, match="record 3"):
        load(str(inst), [str(REAL / "seqrepo-tests" / "test.fa"), str(tmp_path / "bad.fa")], "test")
    assert snapshot_files(inst) == before


def snapshot_files(inst: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(inst)): p.read_bytes() for p in sorted(inst.rglob("*")) if p.is_file()
    }


def test_batches_commit_separately(tmp_path: Path) -> None:
    inst = new_instance(tmp_path)
    fa = tmp_path / "many.fa"
    rng = random.Random(3)
    fa.write_text(
        "".join(f">R{i}.1\n{''.join(rng.choice('ACGT') for _ in range(50))}\n" for i in range(25))
    )
    stats = load(str(inst), [str(fa)], "test", batch_size=10)
    assert stats.commits == 3
    conn = sqlite3.connect(inst / "sequences" / "db.sqlite3")
    assert conn.execute("select count(distinct relpath) from seqinfo").fetchone()[0] == 3


def test_aliases_are_stored_in_load_order(tmp_path: Path) -> None:
    """Rows go in as the records come (as the reference stores them), not sorted by alias, so
    a transcript set read back in load order walks the alias table forward."""
    inst = new_instance(tmp_path)
    names = ["NM_9.1", "NM_2.1", "NM_7.1", "NM_1.1", "NM_5.1"]
    rng = random.Random(5)
    (tmp_path / "t.fa").write_text(
        "".join(f">{n}\n{''.join(rng.choice('ACGT') for _ in range(40))}\n" for n in names)
    )
    load(str(inst), [str(tmp_path / "t.fa")], "refseq")
    conn = sqlite3.connect(inst / "aliases.sqlite3")
    stored = [
        r[0]
        for r in conn.execute(
            "select alias from seqalias where namespace = 'NCBI' order by seqalias_id"
        )
    ]
    assert stored == names
    md5 = [
        r[0]
        for r in conn.execute(
            "select seq_id from seqalias where namespace = 'MD5' order by seqalias_id"
        )
    ]
    sr = SeqRepo(inst)
    assert md5 == [sr.resolve(f"refseq:{n}") for n in names]


def test_missing_instance(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="no such SeqRepo instance"):
        load(str(tmp_path / "nope"), [str(REAL_FASTA[0])], "test")
    assert not (tmp_path / "nope").exists()


def test_refuses_a_read_only_instance(tmp_path: Path) -> None:
    inst = new_instance(tmp_path)
    os.chmod(inst, 0o555)
    try:
        with pytest.raises(RuntimeError, match="read-only"):
            load(str(inst), [str(REAL_FASTA[0])], "test")
    finally:
        os.chmod(inst, 0o755)


def test_input_files_are_checked_before_the_writer_lock(tmp_path: Path) -> None:
    """A missing or unreadable input is named even while another writer holds the instance."""
    inst = new_instance(tmp_path)
    good = tmp_path / "good.fa"
    good.write_text(">a\nACGT\n")
    holder = SeqRepo(inst, writeable=True)  # takes the writer lock
    try:
        with pytest.raises(LoadError, match="no such file"):
            load(str(inst), [str(good), str(tmp_path / "missing.fa")], "t")
        with pytest.raises(LoadError, match="is a directory"):
            load(str(inst), [str(tmp_path)], "t")
    finally:
        holder.close()
    assert load(str(inst), [str(good)], "t").seqs_added == 1
