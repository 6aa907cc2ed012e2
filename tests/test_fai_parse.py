"""The .fai index (row starts sorted by their names' first 8 bytes, built by array arithmetic on
the file's bytes) against a row-by-row reading of the same text: every name must give the same
row, the first of a repeated name; a malformed row must fail alone, with one clear line."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from seqrepofs.errors import CorruptFileError
from seqrepofs.store.fai import FaiEntry, FaiIndex, _HeadIndex


def _by_row(text: bytes) -> dict[str, FaiEntry]:
    """First row of each name, as a plain Python reading of well-formed text."""
    rows: dict[str, FaiEntry] = {}
    for line in text.split(b"\n"):
        if line:
            name, *numbers = line.split(b"\t")
            rows.setdefault(name.decode(), FaiEntry(name.decode(), *(int(x) for x in numbers)))
    return rows


def _indexed(text: bytes) -> FaiIndex:
    fai = FaiIndex(text, "x.fai")
    fai.names()  # builds the index at once (no scans)
    assert fai._heads is not None
    return fai


def _text(rows: list[tuple[str, int, int, int, int]]) -> bytes:
    return "\n".join("\t".join(map(str, r)) for r in rows).encode()


@pytest.mark.parametrize("seed", range(6))
def test_index_agrees_with_a_row_by_row_reading(seed: int) -> None:
    """Names of mixed widths (some under 8 bytes, some sharing their first 8 bytes, some one
    another's prefixes, some repeated), blank lines, a final newline or none."""
    rng = random.Random(seed)
    rows = []
    for i in range(rng.choice([1, 7, 5000, 40_000])):
        kind = rng.random()
        if kind < 0.2:
            name = f"s{i}"
        elif kind < 0.4:
            name = f"NM_{i:09d}.{rng.randint(1, 9)}"  # shares its first 8 bytes with others
        elif kind < 0.5:
            name = f"NM_{i // 10}"  # a prefix of others
        else:
            alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_"
            name = "".join(rng.choices(alphabet, k=32))
        rows.append((name, rng.randint(1, 10**12), rng.randint(0, 10**18 - 1), 60, 61))
    rows += rng.sample(rows, min(len(rows), 20))  # duplicates: the first row counts
    text = _text(rows) + rng.choice([b"", b"\n", b"\n\n"])
    if len(rows) > 3:
        text = text.replace(b"\n", b"\n\n", 1)  # a blank line
    want = _by_row(text)
    fai = _indexed(text)
    for name, entry in want.items():
        assert fai.get(name) == entry
        assert fai.get(name + "x") is None or name + "x" in want
        assert fai.get(name[:-1]) is None or name[:-1] in want
    assert fai.names() == list(want)
    assert fai.get("") is None and fai.get("é") is None


@pytest.mark.parametrize(
    "bad",
    [
        b"c\tx\t1\t60\t61",  # not a number
        b"c\t5\t1\t60",  # four fields
        b"c",  # a name alone
        b"c\t5\t1\t0\t61",  # no residues a line
        b"c\t5\t1\t60\t59",  # lines shorter than their residues
        b"c\t-5\t1\t60\t61",  # a negative length
    ],
)
def test_a_malformed_row_fails_alone_with_one_line(bad: bytes) -> None:
    rows = [(f"s{i:05d}", 100 + i, 7 + 101 * i, 100, 101) for i in range(300)]
    text = _text(rows[:150]) + b"\n" + bad + b"\n" + _text(rows[150:]) + b"\n"
    for fai in (FaiIndex(text, "x.fai"), _indexed(text)):  # found by a scan, then indexed
        for name, *numbers in rows[::7] * 4:
            assert fai.get(name) == FaiEntry(name, *numbers)
        if fai._heads is None and b"\t" not in bad:
            assert fai.get("c") is None  # a scan looks for the name and a tab
            continue
        with pytest.raises(CorruptFileError, match=r"^x\.fai: malformed \.fai line: b'c") as exc:
            fai.get("c")
        assert "\n" not in str(exc.value)
        assert fai.indexed("c") is None


def test_a_sixth_field_is_ignored_as_htslib_does() -> None:
    fai = _indexed(b"a\t5\t3\t60\t61\t99\nb\t7\t20\t60\t61\t99\n")
    assert fai.get("b") == FaiEntry("b", 7, 20, 60, 61)


@pytest.mark.skipif(shutil.which("samtools") is None, reason="samtools not installed")
def test_samtools_written_fai_is_read_alike(tmp_path: Path) -> None:
    rng = random.Random(5)
    fasta = tmp_path / "x.fa"
    with fasta.open("w") as fh:
        for i in range(3000):
            seq = "".join(rng.choices("ACGT", k=rng.randint(1, 700)))
            width = rng.choice([60, 70, 80])
            lines = [seq[j : j + width] for j in range(0, len(seq), width)]
            fh.write(f">seq{i}.{rng.randint(1, 3)} description\n" + "\n".join(lines) + "\n")
    subprocess.run(["samtools", "faidx", str(fasta)], check=True)
    text = Path(f"{fasta}.fai").read_bytes()
    want = _by_row(text)
    fai = _indexed(text)
    assert all(fai.get(name) == entry for name, entry in want.items())
    assert fai.names() == list(want)


def test_index_is_compact_for_a_large_file() -> None:
    """200,000 rows: the text and ~16 bytes a row; a dict of tuples took ~330 bytes a row."""
    import tracemalloc

    names = [f"{random.Random(i).getrandbits(128):032x}" for i in range(200_000)]
    text = _text([(n, i + 1, 10 * i, 60, 61) for i, n in enumerate(names)])
    tracemalloc.start()
    try:
        heads = _HeadIndex(b"\n" + text)
        held, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held <= len(text) + 20 * 200_000  # 16 bytes a row, and allocators round up
    assert heads.row(heads.find(names[123_456].encode())).startswith(names[123_456].encode())
