"""Tests for seqrepofs.fasta_view: checked against a naive renderer, samtools and pysam."""

from __future__ import annotations

import hashlib
import random
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.oracles import SAMTOOLS

from seqrepofs.fasta_view import (
    DictEntry,
    FastaLayout,
    HeaderPiece,
    SeqPiece,
    decode_name,
    dict_text,
    encode_name,
    fai_line,
)

needs_samtools = pytest.mark.skipif(
    SAMTOOLS is None, reason="samtools not on PATH; the .fai/.dict oracles need it"
)

RESIDUES = "ACGTNacgtnRYKMSWBDHV*-"

# ---------------------------------------------------------------------------------------------
# Naive reference implementation (independent of the code under test)
# ---------------------------------------------------------------------------------------------


@dataclass
class Reference:
    """A FASTA file built line by line, with a map from each byte to (record, residue)."""

    data: bytes
    owner: list[tuple[int, int | None]]  # per byte: record index, residue index or None
    record_offsets: list[int]
    seq_offsets: list[int]


def reference_fasta(records: list[tuple[str, str]], width: int) -> Reference:
    """The FASTA a naive line-by-line writer produces, with the owner of each byte."""
    data = bytearray()
    owner: list[tuple[int, int | None]] = []
    record_offsets, seq_offsets = [], []
    for r, (name, seq) in enumerate(records):
        record_offsets.append(len(data))
        header = f">{name}\n".encode()
        data += header
        owner += [(r, None)] * len(header)
        seq_offsets.append(len(data))
        pos = 0
        while pos < len(seq):
            line = seq[pos : pos + width]
            for j in range(len(line)):
                data.append(ord(line[j]))
                owner.append((r, pos + j))
            data += b"\n"
            owner.append((r, None))
            pos += width
    return Reference(bytes(data), owner, record_offsets, seq_offsets)


def expected_fetches(ref: Reference, offset: int, size: int) -> list[tuple[int, int, int]]:
    """The minimal residue range per record that the window [offset, offset+size) shows."""
    ranges: dict[int, list[int]] = {}
    for r, j in ref.owner[offset : offset + size]:
        if j is not None:
            lo_hi = ranges.setdefault(r, [j, j + 1])
            lo_hi[0], lo_hi[1] = min(lo_hi[0], j), max(lo_hi[1], j + 1)
    return [(r, lo, hi) for r, (lo, hi) in sorted(ranges.items())]


class Fetcher:
    """fetch() callback that records calls and checks they stay inside the record."""

    def __init__(self, seqs: list[str], as_array: bool = False) -> None:
        self.seqs = seqs
        self.as_array = as_array
        self.calls: list[tuple[int, int, int]] = []

    def __call__(self, record: int, start: int, end: int) -> bytes | np.ndarray:
        assert type(record) is int and type(start) is int and type(end) is int
        assert 0 <= record < len(self.seqs)
        assert 0 <= start < end <= len(self.seqs[record]), (record, start, end)
        self.calls.append((record, start, end))
        data = self.seqs[record][start:end].encode()
        return np.frombuffer(data, dtype=np.uint8).copy() if self.as_array else data


def layout_of(records: list[tuple[str, str]], width: int) -> FastaLayout:
    return FastaLayout.build([(name, len(seq)) for name, seq in records], width)


def random_seq(rng: random.Random, n: int) -> str:
    return "".join(rng.choices(RESIDUES, k=n))


@st.composite
def fasta_records(
    draw: st.DrawFn, max_records: int = 6, max_len: int = 500
) -> tuple[int, list[tuple[str, str]]]:
    """(width, [(fasta_name, residues)]) with lengths biased towards multiples of the width."""
    width = draw(st.integers(1, 80))
    aliases = draw(
        st.lists(
            st.one_of(
                st.text(min_size=1, max_size=12),
                st.text(alphabet="ACNM_.:|%/ chr0123456789", min_size=1, max_size=12),
            ),
            min_size=1,
            max_size=max_records,
            unique_by=encode_name,
        )
    )
    lengths = []
    for _ in aliases:
        lengths.append(
            draw(
                st.one_of(
                    st.integers(0, max_len),
                    st.integers(0, max_len // width).map(lambda k: k * width),
                    st.sampled_from([0, 1, width - 1, width + 1, 2 * width - 1, 2 * width + 1]),
                )
            )
        )
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    return width, [
        (encode_name(a), random_seq(rng, n)) for a, n in zip(aliases, lengths, strict=True)
    ]


# ---------------------------------------------------------------------------------------------
# Name encoding
# ---------------------------------------------------------------------------------------------

PHIX = "NC_001422.1 Enterobacteria phage phiX174 sensu lato, complete genome"


@pytest.mark.parametrize(
    "alias",
    ["NM_000551.3", "chr1_KI270706v1_random", "GS_abc-_", "...", "a.", "HLA-A*01:01:01:01", "x|y"],
)
def test_encode_leaves_safe_names_unchanged(alias: str) -> None:
    assert encode_name(alias) == alias
    assert decode_name(alias) == alias


@pytest.mark.parametrize(
    ("alias", "encoded"),
    [
        (
            PHIX,
            "NC_001422.1%20Enterobacteria%20phage%20phiX174%20sensu%20lato,%20complete%20genome",
        ),
        ("a/b", "a%2Fb"),
        ("50%", "50%25"),
        ("%2F", "%252F"),
        (".", "%2E"),
        ("..", "%2E%2E"),
        ("é", "%C3%A9"),
        ("\U0001f600", "%F0%9F%98%80"),
        ("tab\there", "tab%09here"),
        ("\x7f\x00", "%7F%00"),
        ("\u00a0", "%C2%A0"),
    ],
)
def test_encode_examples(alias: str, encoded: str) -> None:
    assert encode_name(alias) == encoded
    assert decode_name(encoded) == alias


def test_encode_rejects_unrepresentable() -> None:
    with pytest.raises(ValueError):
        encode_name("")
    with pytest.raises(ValueError):
        encode_name("a\ud800b")  # lone surrogate: no UTF-8 bytes to escape


def assert_safe_encoding(encoded: str) -> None:
    assert encoded not in (".", "..", "")
    assert "/" not in encoded
    assert all(0x21 <= ord(c) <= 0x7E for c in encoded), encoded
    assert encoded.split() == [encoded]  # samtools' name is the whole header
    for i, c in enumerate(encoded):
        if c == "%":
            assert all(h in "0123456789ABCDEF" for h in encoded[i + 1 : i + 3])
            assert len(encoded[i + 1 : i + 3]) == 2


@given(st.text(min_size=1))
@settings(max_examples=500)
def test_encode_roundtrip_arbitrary_text(alias: str) -> None:
    encoded = encode_name(alias)
    assert_safe_encoding(encoded)
    assert decode_name(encoded) == alias


@given(st.text(alphabet="./% ,\t\né\x00zA", min_size=1, max_size=8))
def test_encode_roundtrip_tricky_alphabet(alias: str) -> None:
    encoded = encode_name(alias)
    assert_safe_encoding(encoded)
    assert decode_name(encoded) == alias


@pytest.mark.parametrize(
    "name",
    [
        "",
        "%",
        "%4",
        "abc%",
        "%ZZ",
        "%2e",  # lowercase hex
        "%c3%a9",
        "%41",  # escaped safe character
        "chr%31",
        "%2E%2Ex",  # "..x" is encoded without escapes
        ".",
        "..",
        "a/b",  # raw unsafe characters never appear in encoded names
        "a b",
        "é",
        "%C3",  # truncated UTF-8
        "%FF",
        "%C0%AE",  # overlong UTF-8
        "%ED%A0%80",  # UTF-8 encoded surrogate
        "%%41",
    ],
)
def test_decode_rejects_non_canonical(name: str) -> None:
    with pytest.raises(ValueError):
        decode_name(name)


@given(
    st.text(
        alphabet=st.one_of(st.sampled_from(list("%%%0123456789ABCDEFaf./ é")), st.characters()),
        max_size=12,
    )
)
@settings(max_examples=1000)
def test_decode_is_injective(name: str) -> None:
    """Any accepted path is the encoding of exactly the alias it decodes to."""
    try:
        alias = decode_name(name)
    except ValueError:
        return
    assert encode_name(alias) == name


# ---------------------------------------------------------------------------------------------
# Layout vs naive reference
# ---------------------------------------------------------------------------------------------


def check_window(
    layout: FastaLayout,
    ref: Reference,
    seqs: list[str],
    offset: int,
    size: int,
) -> None:
    fetch = Fetcher(seqs)
    got = layout.render(offset, size, fetch)
    assert type(got) is bytes and got == ref.data[offset : offset + size], (offset, size)
    # the buffer FUSE is given holds the same bytes, and residues given as a uint8 array
    # (what the store's no-I/O path returns) render the same
    as_array = Fetcher(seqs, as_array=True)
    buffer = layout.render_buffer(offset, size, as_array)
    assert bytes(buffer) == got and as_array.calls == fetch.calls, (offset, size)
    # exactly one call per record whose residues are visible, with the minimal range
    assert fetch.calls == expected_fetches(ref, offset, size), (offset, size)
    # segments are a faithful, ordered description of the same bytes
    segs = list(layout.segments(offset, size))
    assert sum(s.nbytes for s in segs) == len(got)
    rebuilt = b"".join(
        s.data
        if isinstance(s, HeaderPiece)
        else layout.format_piece(s, seqs[s.record][s.start : s.end].encode())
        for s in segs
    )
    assert rebuilt == got
    kinds = [(type(s), s.record) for s in segs]
    assert len(kinds) == len(set(kinds))
    assert [s.record for s in segs] == sorted(s.record for s in segs)
    for s in segs:
        assert isinstance(s, HeaderPiece | SeqPiece)
        if isinstance(s, HeaderPiece):
            assert s.data and s.data in layout.header(s.record)
        else:
            assert 0 <= s.start <= s.end <= len(seqs[s.record])
            assert 0 <= s.byte_start < s.byte_end


def boundary_windows(ref: Reference) -> list[tuple[int, int]]:
    windows = []
    for o in ref.record_offsets + ref.seq_offsets + [len(ref.data)]:
        for d in (-3, -2, -1, 0, 1, 2):
            for size in (0, 1, 2, 3, 5, 70):
                if o + d >= 0:
                    windows.append((o + d, size))
    return windows


@given(fasta_records(), st.data())
@settings(max_examples=300, deadline=None)
def test_layout_matches_naive(case: tuple[int, list[tuple[str, str]]], data: st.DataObject) -> None:
    width, records = case
    seqs = [s for _, s in records]
    layout = layout_of(records, width)
    ref = reference_fasta(records, width)

    assert layout.size == len(ref.data)
    assert layout.width == width
    assert layout.names == tuple(n for n, _ in records)
    assert layout.lengths.tolist() == [len(s) for s in seqs]
    assert layout.record_offsets.tolist() == ref.record_offsets
    assert layout.seq_offsets.tolist() == ref.seq_offsets
    assert len(layout) == len(records)

    fetch = Fetcher(seqs)
    assert layout.render(0, layout.size, fetch) == ref.data
    assert fetch.calls == [(r, 0, len(s)) for r, s in enumerate(seqs) if s]
    assert layout.render(0, layout.size + 1000, Fetcher(seqs)) == ref.data

    for offset, (r, j) in enumerate(ref.owner):
        assert layout.record_at(offset) == r
        if j is not None:
            assert layout.residue_to_offset(r, j) == offset

    for offset, size in boundary_windows(ref):
        check_window(layout, ref, seqs, offset, size)
    windows = data.draw(
        st.lists(
            st.tuples(st.integers(0, layout.size + 5), st.integers(0, layout.size + 5)),
            min_size=5,
            max_size=30,
        )
    )
    for offset, size in windows:
        check_window(layout, ref, seqs, offset, size)


def test_chrom_sizes_lists_every_record() -> None:
    layout = FastaLayout.build([("chr1", 10), ("empty", 0), ("x%20y", 3)], width=4)
    assert layout.chrom_sizes_text() == b"chr1\t10\nempty\t0\nx%20y\t3\n"


def test_residue_to_offset_and_record_at_bounds() -> None:
    layout = FastaLayout.build([("a", 5), ("b", 0)], width=2)
    with pytest.raises(IndexError):
        layout.residue_to_offset(0, 5)
    with pytest.raises(IndexError):
        layout.residue_to_offset(0, -1)
    with pytest.raises(IndexError):
        layout.residue_to_offset(1, 0)
    with pytest.raises(IndexError):
        layout.record_at(layout.size)
    with pytest.raises(IndexError):
        layout.record_at(-1)


def test_render_edge_cases() -> None:
    records = [("a", "ACGTA"), ("b", "")]
    layout = layout_of(records, 2)
    fetch = Fetcher([s for _, s in records])
    assert layout.render(0, 0, fetch) == b""
    assert layout.render(layout.size, 10, fetch) == b""
    assert layout.render(layout.size + 7, 10, fetch) == b""
    assert fetch.calls == []
    for bad in ((-1, 4), (0, -1)):
        with pytest.raises(ValueError):
            layout.render(*bad, fetch)
        with pytest.raises(ValueError):
            list(layout.segments(*bad))
    # window holding only a newline needs no residues
    newline_at = layout.residue_to_offset(0, 1) + 1
    assert layout.render(newline_at, 1, fetch) == b"\n"
    assert fetch.calls == []


def test_empty_layout() -> None:
    layout = FastaLayout.build([], width=60)
    assert layout.size == 0
    assert layout.fai_text() == b""
    assert layout.chrom_sizes_text() == b""
    assert layout.render(0, 100, Fetcher([])) == b""


@pytest.mark.parametrize("delta", [-1, 1])
def test_fetch_returning_wrong_length_raises(delta: int) -> None:
    layout = FastaLayout.build([("first", 10), ("second", 100)], width=7)

    def bad_fetch(record: int, start: int, end: int) -> bytes:
        n = end - start + (delta if record == 1 else 0)
        return b"A" * n

    start = layout.residue_to_offset(1, 20)
    with pytest.raises(RuntimeError, match=r"record 1 .*\[20, 30\)"):
        layout.render(start, layout.residue_to_offset(1, 29) + 1 - start, bad_fetch)
    # record 0 is fetched correctly; the error surfaces for record 1 only
    with pytest.raises(RuntimeError, match="record 1"):
        layout.render(0, layout.size, bad_fetch)


@pytest.mark.parametrize(
    ("records", "width", "error"),
    [
        ([("a", 1)], 0, ValueError),
        ([("a", -1)], 60, ValueError),
        ([("a", 1), ("b", 2), ("a", 3)], 60, ValueError),
        ([("a b", 1)], 60, ValueError),
        ([("a\tb", 1)], 60, ValueError),
        ([("", 1)], 60, ValueError),
        ([("a", 2.5)], 60, TypeError),
    ],
)
def test_build_rejects_invalid(records: list, width: int, error: type[Exception]) -> None:
    with pytest.raises(error):
        FastaLayout.build(records, width)


def test_layout_is_immutable_and_comparable() -> None:
    a = FastaLayout.build([("x", 10), ("y", 0)], 4)
    b = FastaLayout.build([("x", 10), ("y", 0)], 4)
    assert a == b and hash(a) == hash(b)
    assert a != FastaLayout.build([("x", 11), ("y", 0)], 4)
    assert a != FastaLayout.build([("x", 10), ("y", 0)], 5)
    assert a != FastaLayout.build([("x", 10), ("z", 0)], 4)
    with pytest.raises(ValueError):
        a.record_offsets[0] = 5
    with pytest.raises(AttributeError):
        a.width = 3  # type: ignore[misc]


def test_fai_line_single_line_record_uses_its_own_length() -> None:
    # htslib stores the first line's length as LINEBASES (confirmed against samtools below)
    assert fai_line("x", 5, 3, 60) == b"x\t5\t3\t5\t6\n"
    assert fai_line("x", 60, 3, 60) == b"x\t60\t3\t60\t61\n"
    assert fai_line("x", 61, 3, 60) == b"x\t61\t3\t60\t61\n"
    with pytest.raises(ValueError):
        fai_line("x", 0, 3, 60)


def test_many_records_lookup() -> None:
    """A large layout (assembly-scale record count) still locates records correctly."""
    n = 200_000
    rng = random.Random(7)
    lengths = [rng.choice([0, 1, 59, 60, 61, rng.randint(0, 3000)]) for _ in range(n)]
    layout = FastaLayout.build([(f"chrUn_{i}", ln) for i, ln in enumerate(lengths)], 60)
    offset = 0
    offsets = []
    for i, ln in enumerate(lengths):
        offsets.append(offset)
        offset += len(f">chrUn_{i}\n") + ln + -(-ln // 60)
    assert layout.size == offset
    assert layout.record_offsets.tolist() == offsets
    for i in rng.sample(range(n), 300):
        assert layout.record_at(offsets[i]) == i
        assert layout.record_at(offsets[i] - 1) == i - 1 if i else True
    # a 128 KiB read in the middle matches rendering of the records it spans
    seqs: dict[int, str] = {}

    def fetch(record: int, start: int, end: int) -> bytes:
        seq = seqs.setdefault(record, random_seq(random.Random(record), lengths[record]))
        return seq[start:end].encode()

    mid = layout.size // 2
    first = layout.record_at(mid)
    last = layout.record_at(min(layout.size - 1, mid + 128 * 1024))
    sub = [(f"chrUn_{i}", random_seq(random.Random(i), lengths[i])) for i in range(first, last + 1)]
    ref = reference_fasta(sub, 60)
    base = offsets[first]
    assert layout.render(mid, 128 * 1024, fetch) == ref.data[mid - base : mid - base + 128 * 1024]


def test_one_mebibyte_render_is_not_per_line() -> None:
    rng = np.random.default_rng(3)
    seq = rng.choice(np.frombuffer(b"ACGT", dtype=np.uint8), 3_000_000).tobytes()
    layout = FastaLayout.build([("chr1", len(seq))], 60)
    calls: list[tuple[int, int, int]] = []

    def fetch(record: int, start: int, end: int) -> bytes:
        calls.append((record, start, end))
        return seq[start:end]

    out = layout.render(12_345, 1 << 20, fetch)
    assert len(out) == 1 << 20
    assert len(calls) == 1
    assert out.count(b"\n") in ((1 << 20) // 61, (1 << 20) // 61 + 1)
    assert out.replace(b"\n", b"") == seq[calls[0][1] : calls[0][2]]

    # multi-record: one call per record touched
    lengths = [100_000, 7, 0, 250_000, 900_000]
    seqs = [random_seq(random.Random(i), n) for i, n in enumerate(lengths)]
    records = [(f"r{i}", s) for i, s in enumerate(seqs)]
    layout = layout_of(records, 60)
    fetcher = Fetcher(seqs)
    got = layout.render(50_000, 1 << 20, fetcher)
    assert got == reference_fasta(records, 60).data[50_000 : 50_000 + (1 << 20)]
    assert [c[0] for c in fetcher.calls] == [0, 1, 3, 4]


# ---------------------------------------------------------------------------------------------
# Real tools as oracles
# ---------------------------------------------------------------------------------------------

FIXED_CASES: list[tuple[int, list[tuple[str, int]]]] = [
    (60, [("chr1", 1000), ("chrM", 60), ("short", 5), ("empty", 0), ("chrY", 121)]),
    (1, [("w1", 1), ("w3", 3), ("zero", 0), ("w2", 2)]),
    (10, [("mult", 30), ("one", 10), ("under", 9), ("over", 11)]),
    (7, [("empty_first", 0), ("x", 14), ("empty_mid", 0), ("y", 15), ("empty_last", 0)]),
    (
        80,
        [
            ("NC_000001.11", 250),
            ("a%20b:1-2|gi|99|", 81),
            (encode_name(PHIX), 5386 // 10),
            (encode_name("chr1:100-200"), 160),
            (encode_name("ref|NC_1|/x%y"), 79),
        ],
    ),
]


def fixed_records(case: tuple[int, list[tuple[str, int]]]) -> tuple[int, list[tuple[str, str]]]:
    width, spec = case
    rng = random.Random(width)
    return width, [(name, random_seq(rng, n)) for name, n in spec]


def write_view_fasta(
    directory: Path, records: list[tuple[str, str]], width: int, filename: str = "view.fa"
) -> Path:
    """Write the file exactly as the filesystem would serve it (checked against the naive one)."""
    data = layout_of(records, width).render(0, 1 << 62, Fetcher([s for _, s in records]))
    assert data == reference_fasta(records, width).data
    path = directory / filename
    path.write_bytes(data)
    return path


def samtools(*args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    assert SAMTOOLS is not None
    return subprocess.run([SAMTOOLS, *args], check=check, capture_output=True)


def check_fai_against_samtools(records: list[tuple[str, str]], width: int) -> None:
    layout = layout_of(records, width)
    assert layout.htslib_indexable == bool(records and records[-1][1])
    with tempfile.TemporaryDirectory() as tmp:
        path = write_view_fasta(Path(tmp), records, width)
        result = samtools("faidx", str(path), check=False)
        if layout.htslib_indexable:
            assert result.returncode == 0, result.stderr
            assert Path(f"{path}.fai").read_bytes() == layout.fai_text()
        else:
            # htslib gives up on a file whose last record has no residues
            assert result.returncode != 0
            assert not Path(f"{path}.fai").exists()
            # ... but indexes the same records once the trailing empty ones are gone
            while records and not records[-1][1]:
                records = records[:-1]
            if records:
                trimmed = write_view_fasta(Path(tmp), records, width, "trimmed.fa")
                samtools("faidx", str(trimmed))
                assert Path(f"{trimmed}.fai").read_bytes() == layout.fai_text()


@needs_samtools
@pytest.mark.parametrize("case", FIXED_CASES, ids=lambda c: f"W{c[0]}")
def test_fai_matches_samtools_fixed(case: tuple[int, list[tuple[str, int]]]) -> None:
    width, records = fixed_records(case)
    check_fai_against_samtools(records, width)


@needs_samtools
@given(fasta_records(max_records=5, max_len=300))
@settings(max_examples=40, deadline=None)
def test_fai_matches_samtools_random(case: tuple[int, list[tuple[str, str]]]) -> None:
    width, records = case
    check_fai_against_samtools(records, width)


def with_our_fai(
    case: tuple[int, list[tuple[str, int]]], tmp_path: Path
) -> tuple[Path, list[tuple[str, str]]]:
    """The view FASTA of a fixed case with the .fai we compute beside it, and its non-empty
    records (what a reader lists)."""
    width, records = fixed_records(case)
    path = write_view_fasta(tmp_path, records, width)
    Path(f"{path}.fai").write_bytes(layout_of(records, width).fai_text())
    return path, [(n, s) for n, s in records if s]


@pytest.mark.parametrize("case", FIXED_CASES, ids=lambda c: f"W{c[0]}")
def test_pysam_reads_through_computed_fai(
    case: tuple[int, list[tuple[str, int]]], tmp_path: Path
) -> None:
    """pysam (htslib) with *our* .fai (no samtools involved) returns the right residues."""
    pysam = pytest.importorskip("pysam")
    path, non_empty = with_our_fai(case, tmp_path)
    rng = random.Random(11)
    with pysam.FastaFile(str(path)) as fa:
        assert list(fa.references) == [n for n, _ in non_empty]
        assert list(fa.lengths) == [len(s) for _, s in non_empty]
        for name, seq in non_empty:
            assert fa.fetch(reference=name) == seq
            for _ in range(25):
                a = rng.randint(0, len(seq) - 1)
                b = rng.randint(a + 1, len(seq))
                assert fa.fetch(reference=name, start=a, end=b) == seq[a:b]


@pytest.mark.parametrize("case", FIXED_CASES, ids=lambda c: f"W{c[0]}")
def test_pyfaidx_reads_through_computed_fai(
    case: tuple[int, list[tuple[str, int]]], tmp_path: Path
) -> None:
    """pyfaidx (pure Python, its own offset arithmetic) agrees with our .fai too."""
    pyfaidx = pytest.importorskip("pyfaidx")
    path, non_empty = with_our_fai(case, tmp_path)
    rng = random.Random(12)
    with pyfaidx.Fasta(str(path), as_raw=True, sequence_always_upper=False) as fa:
        assert list(fa.keys()) == [n for n, _ in non_empty]
        for name, seq in non_empty:
            assert fa[name][:] == seq
            for _ in range(25):
                a = rng.randint(0, len(seq) - 1)
                b = rng.randint(a + 1, len(seq))
                assert fa[name][a:b] == seq[a:b]


def md5_of(seq: str) -> str:
    return hashlib.md5(seq.upper().encode()).hexdigest()


def dict_entries(
    records: list[tuple[str, str]], uri: str | None, **extra: str | None
) -> list[DictEntry]:
    return [DictEntry(n, len(s), md5_of(s), uri, **extra) for n, s in records]


@needs_samtools
@pytest.mark.parametrize("case", FIXED_CASES, ids=lambda c: f"W{c[0]}")
def test_dict_matches_samtools(case: tuple[int, list[tuple[str, int]]], tmp_path: Path) -> None:
    width, records = fixed_records(case)
    path = write_view_fasta(tmp_path, records, width)

    expected = samtools(
        "dict", "-a", "GRCh38", "-s", "Homo sapiens", "-u", "URI:x", str(path)
    ).stdout
    entries = dict_entries(records, "URI:x", assembly="GRCh38", species="Homo sapiens")
    assert dict_text(entries) == expected

    # default UR is file://<absolute path>; -H drops the @HD line
    expected = samtools("dict", str(path.resolve())).stdout
    assert dict_text(dict_entries(records, f"file://{path.resolve()}")) == expected
    expected = samtools("dict", "-H", "-a", "A1", str(path.resolve())).stdout
    got = dict_text(dict_entries(records, f"file://{path.resolve()}", assembly="A1"), header=False)
    assert got == expected


@needs_samtools
def test_dict_alt_names_position_matches_samtools(tmp_path: Path) -> None:
    records = [("chr1", "ACGTN"), ("2", "acgt"), ("MT", "A")]
    path = write_view_fasta(tmp_path, records, 60)
    expected = samtools("dict", "-A", "-s", "S", "-u", "U", str(path)).stdout
    # AN values as `samtools dict -A` documents them: toggle "chr", plus M/MT variants
    alt = {"chr1": "1", "2": "chr2", "MT": "chrMT,chrM,M"}
    entries = [
        DictEntry(n, len(s), md5_of(s), "U", species="S", alt_names=alt[n]) for n, s in records
    ]
    assert dict_text(entries) == expected


@needs_samtools
@given(fasta_records(max_records=4, max_len=200))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_dict_matches_samtools_random(case: tuple[int, list[tuple[str, str]]]) -> None:
    width, records = case
    with tempfile.TemporaryDirectory() as tmp:
        path = write_view_fasta(Path(tmp), records, width)
        expected = samtools("dict", "-a", "asm", "-u", "u", str(path)).stdout
    assert dict_text(dict_entries(records, "u", assembly="asm")) == expected


def test_dict_text_validates() -> None:
    good = DictEntry("x", 1, "7fc56270e7a70fa81a5935b72eacbe29")
    assert dict_text([good], header=False) == (
        b"@SQ\tSN:x\tLN:1\tM5:7fc56270e7a70fa81a5935b72eacbe29\n"
    )
    bad: list[DictEntry] = [
        good._replace(md5="7FC56270E7A70FA81A5935B72EACBE29"),
        good._replace(md5="abc"),
        good._replace(length=-1),
        good._replace(uri="a\tb"),
        good._replace(species="x\ny"),
        good._replace(name="a\tb"),
    ]
    for entry in bad:
        with pytest.raises(ValueError):
            dict_text([entry])


def test_render_accepts_any_fetch_callable() -> None:
    """A bytearray/memoryview from fetch is fine as long as the length is right."""
    records = [("a", "ACGTACGTAC")]
    layout = layout_of(records, 3)
    variants: list[Callable[[int, int, int], bytes]] = [
        lambda r, a, b: bytearray(records[r][1][a:b].encode()),  # type: ignore[return-value,misc]
        lambda r, a, b: memoryview(records[r][1][a:b].encode()),  # type: ignore[return-value,misc]
    ]
    for fetch in variants:
        assert layout.render(1, 9, fetch) == reference_fasta(records, 3).data[1:10]
