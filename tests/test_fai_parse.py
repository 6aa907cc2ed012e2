"""The .fai bulk parser (array arithmetic on the file's bytes) against a row-by-row reading of
the same text: it must give the same rows or decline (None), so that FaiIndex falls back to
judging rows one by one and a malformed row still fails with one clear line."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from seqrepofs.errors import CorruptFileError
from seqrepofs.store.fai import FaiEntry, FaiIndex, _bulk_parse


def _by_row(body: bytes) -> dict[str, tuple[int, ...]]:
    """First row of each name, as a plain Python reading of well-formed text."""
    rows: dict[str, tuple[int, ...]] = {}
    for line in body.split(b"\n"):
        name, *numbers = line.split(b"\t")
        rows.setdefault(name.decode(), tuple(int(x) for x in numbers))
    return rows


def _bulk_rows(body: bytes) -> dict[str, tuple[int, ...]]:
    bulk = _bulk_parse(body)
    assert bulk is not None
    out = {}
    for i, name in enumerate(bulk.names):
        key = name.decode()
        if key not in out:  # sorted stably: a duplicate's first row comes first
            out[key] = tuple(bulk.columns[i].tolist())
    return out


def _text(rows: list[tuple[str, int, int, int, int]]) -> bytes:
    return "\n".join("\t".join(map(str, r)) for r in rows).encode()


@pytest.mark.parametrize("seed", range(6))
def test_bulk_parse_agrees_with_a_row_by_row_reading(seed: int) -> None:
    """Names of mixed widths (some under 8 bytes, some sharing their first 8 bytes, some
    repeated), integers up to 18 digits, leading zeros, more rows than one chunk."""
    rng = random.Random(seed)
    rows = []
    for i in range(rng.choice([1, 7, 5000, 40_000])):
        kind = rng.random()
        if kind < 0.2:
            name = f"s{i}"
        elif kind < 0.4:
            name = f"NM_{i:09d}.{rng.randint(1, 9)}"  # shares its first 8 bytes with others
        else:
            name = "".join(
                rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_", k=32)
            )
        rows.append((name, rng.randint(0, 10**12), rng.randint(0, 10**18 - 1), 60, 61))
    rows += rng.sample(rows, min(len(rows), 20))  # duplicates: the first row counts
    body = _text(rows)
    assert _bulk_rows(body) == _by_row(body)
    zero_padded = body.replace(b"\t60\t", b"\t0060\t")
    assert _bulk_rows(zero_padded) == _by_row(body)


@pytest.mark.parametrize(
    "bad",
    [
        b"c\tx\t1\t60\t61",  # not a number
        b"c\t-5\t1\t60\t61",  # a sign
        b"c\t+5\t1\t60\t61",
        b"c\t5 \t1\t60\t61",  # blanks Python's int() would take
        b"c\t 5\t1\t60\t61",
        b"c\t1_0\t1\t60\t61",  # an underscore int() would take
        b"c\t\t1\t60\t61",  # an empty field
        b"c\t5\t1\t60",  # four fields
        b"c\t5\t1\t60\t61\t7",  # six (samtools' FASTQ index)
        b"\t5\t1\t60\t61",  # no name
        b"",  # a blank line
        b"c\t1234567890123456789\t1\t60\t61",  # 19 digits
        b"c\t5\t1\t60\t61\r",  # CRLF
        "é\t5\t1\t60\t61".encode(),  # not ASCII
        b"c\x00\t5\t1\t60\t61",  # a NUL
    ],
)
def test_bulk_parse_declines_what_it_cannot_read_exactly(bad: bytes) -> None:
    good = _text([("a", 5, 3, 60, 61), ("b", 7, 20, 60, 61)])
    for body in (bad + b"\n" + good, good + b"\n" + bad, good.replace(b"\n", b"\n" + bad + b"\n")):
        assert _bulk_parse(body) is None, body


def test_tabs_moved_between_lines_are_caught() -> None:
    """Four tabs a line on average but five on one and three on the next."""
    body = b"a\t5\t3\t60\t61\t\nb\t7\t20\t6061"
    assert body.count(b"\t") == 8
    assert _bulk_parse(body) is None


@pytest.mark.parametrize(
    "bad_row",
    [b"c\tx\t1\t60\t61", b"c\t5\t1\t60", b"c\t5\t1\t0\t61", b"c\t-5\t1\t60\t61"],
)
def test_a_malformed_row_fails_alone_with_one_line(bad_row: bytes) -> None:
    rows = [(f"s{i:05d}", 100 + i, 7 + 101 * i, 100, 101) for i in range(300)]
    text = _text(rows[:150]) + b"\n" + bad_row + b"\n" + _text(rows[150:]) + b"\n"
    fai = FaiIndex(text, "x.fai")
    for name, *numbers in rows[::7] * 4:  # past the scans: indexed
        assert fai.get(name) == FaiEntry(name, *numbers)
    with pytest.raises(CorruptFileError, match=r"^x\.fai: malformed \.fai line: b?'c\\t") as exc:
        fai.get("c")
    assert "\n" not in str(exc.value)
    assert fai.indexed("c") is None


@pytest.mark.skipif(shutil.which("samtools") is None, reason="samtools not installed")
def test_samtools_written_fai_parses_in_bulk(tmp_path: Path) -> None:
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
    body = text.rstrip(b"\n")
    assert _bulk_rows(body) == _by_row(body)
    fai = FaiIndex(text, str(fasta) + ".fai")
    names = [line.split(b"\t")[0].decode() for line in body.split(b"\n")]
    assert fai.names() == names
    row = body.split(b"\n")[1234].split(b"\t")
    assert fai[names[1234]] == FaiEntry(names[1234], *(int(x) for x in row[1:]))


def test_bulk_parse_is_compact_and_bounded_for_a_large_file() -> None:
    """A 200,000-row .fai: every row kept as a fixed-width name and four integers."""
    names = [f"{random.Random(i).getrandbits(128):032x}" for i in range(200_000)]
    body = _text([(n, i, 10 * i, 60, 61) for i, n in enumerate(names)])
    bulk = _bulk_parse(body)
    assert bulk is not None
    assert bulk.names.dtype == np.dtype("S32") and bulk.columns.shape == (200_000, 4)
    i = bulk.find(names[123_456].encode())
    assert bulk.entry(i, names[123_456]) == FaiEntry(names[123_456], 123_456, 1_234_560, 60, 61)
