"""The BGZF reader and writer on their own: every read path against a plain-bytes oracle.

Paths covered: short ranges (block by block), long ranges (filled in parallel straight into
one buffer, cached or not), the no-I/O `fetch_cached` path after prefetching, str and bytes
results, small and full-size blocks, and a damaged block met by a prefetch versus by a reader.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pysam
import pytest

from seqrepofs.errors import CorruptFileError
from seqrepofs.store import ascii_str
from seqrepofs.store.bgzf import (
    BLOCK_DATA_SIZE,
    PARALLEL_MIN_BYTES,
    STREAM_START_BYTES,
    BlockReader,
)
from seqrepofs.store.bgzf_writer import WRITE_BLOCK_SIZE, BgzfFastaWriter
from seqrepofs.store.fai import FaiEntry, FaiIndex, parse_gzi

ALPHABET = b"ACGTNacgtn"


def write_file(path: Path, records: dict[str, bytes], block_size: int) -> None:
    writer = BgzfFastaWriter(str(path), threads=2, block_size=block_size)
    for name, seq in records.items():
        writer.add(name, seq)
    fai, gzi = writer.close()
    Path(f"{path}.fai").write_bytes(fai)
    Path(f"{path}.gzi").write_bytes(gzi)


def random_records(rng: random.Random) -> dict[str, bytes]:
    sizes = [1, 99, 100, 101, 5_000, 70_000, 3_000_000]
    sizes += [rng.randrange(1, 3_000) for _ in range(40)]
    return {f"r{i}": bytes(rng.choices(ALPHABET, k=n)) for i, n in enumerate(sizes)}


@pytest.fixture(scope="module", params=[WRITE_BLOCK_SIZE, BLOCK_DATA_SIZE, 1_000])
def written(request, tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    rng = random.Random(request.param)
    records = random_records(rng)
    path = tmp_path_factory.mktemp(f"bs{request.param}") / "seqs.fa.bgz"
    write_file(path, records, request.param)
    return path, records


def ranges(rng: random.Random, length: int, n: int) -> list[tuple[int, int]]:
    out = [(0, length), (length - 1, length), (0, 1)]
    for _ in range(n):
        a = rng.randrange(length)
        span = rng.choice([1, 100, 1_000, 20_000, PARALLEL_MIN_BYTES, 2 * PARALLEL_MIN_BYTES])
        out.append((a, min(length, a + span)))
    return out


@pytest.mark.parametrize("block_cache_bytes", [1, 64 << 20])
def test_every_range_matches_the_oracle(written, block_cache_bytes: int) -> None:
    path, records = written
    reader = BlockReader(fd_cache_size=4, block_cache_bytes=block_cache_bytes)
    rng = random.Random(7)
    for name, seq in records.items():
        for a, b in ranges(rng, len(seq), 25 if len(seq) > 100_000 else 4):
            assert reader.fetch(str(path), name, a, b) == seq[a:b], (name, a, b)
            assert reader.fetch(str(path), name, a, b, as_str=True) == seq[a:b].decode()


def test_long_ranges_take_the_parallel_path_and_are_exact(written) -> None:
    path, records = written
    seq = records["r6"]  # 3 Mb, several times PARALLEL_MIN_BYTES
    reader = BlockReader(fd_cache_size=None, block_cache_bytes=64 << 20)
    whole = reader.fetch(str(path), "r6", 0, len(seq), as_str=True)
    assert isinstance(whole, str) and whole == seq.decode()
    again = reader.fetch(str(path), "r6", 12_345, len(seq) - 6_789)  # now from the cache
    assert isinstance(again, bytes) and again == seq[12_345 : len(seq) - 6_789]


def test_empty_ranges(written) -> None:
    path, _records = written
    reader = BlockReader(fd_cache_size=0, block_cache_bytes=1 << 20)
    assert reader.fetch(str(path), "r3", 50, 50) == b""
    assert reader.fetch(str(path), "r3", 50, 50, as_str=True) == ""


def test_htslib_reads_what_we_write(written) -> None:
    path, records = written
    with pysam.FastaFile(str(path)) as fa:
        assert set(fa.references) == set(records)
        for name, seq in records.items():
            assert fa.fetch(name) == seq.decode()
    if shutil.which("bgzip"):
        subprocess.run(["bgzip", "-t", str(path)], check=True)


def test_blocks_are_the_size_asked_for(tmp_path: Path) -> None:
    seq = bytes(random.Random(1).choices(ALPHABET, k=200_000))
    for size in (WRITE_BLOCK_SIZE, BLOCK_DATA_SIZE):
        path = tmp_path / f"{size}.fa.bgz"
        write_file(path, {"x": seq}, size)
        _coffs, uoffs = parse_gzi(Path(f"{path}.gzi").read_bytes(), "gzi")
        steps = {b - a for a, b in zip(uoffs, uoffs[1:], strict=False)}
        assert steps == {size}
    with pytest.raises(ValueError, match="block size"):
        BgzfFastaWriter(str(tmp_path / "bad.fa.bgz"), block_size=BLOCK_DATA_SIZE + 1)


def test_sequential_reads_are_prefetched_for_the_no_io_path(tmp_path: Path) -> None:
    seq = bytes(random.Random(2).choices(ALPHABET, k=1_500_000))
    path = tmp_path / "s.fa.bgz"
    write_file(path, {"s": seq}, WRITE_BLOCK_SIZE)
    reader = BlockReader(fd_cache_size=4, block_cache_bytes=64 << 20)
    step = 128 * 1024
    assert reader.fetch_cached(str(path), "s", 0, step) is None  # nothing read yet
    for a in (0, step, 2 * step):  # a streak of three reads, each where the last ended
        assert reader.fetch(str(path), "s", a, a + step) == seq[a : a + step]
    deadline = time.monotonic() + 10
    got = None
    while got is None and time.monotonic() < deadline:
        got = reader.fetch_cached(str(path), "s", 3 * step, 4 * step)
        time.sleep(0.01)
    assert got is not None and bytes(got) == seq[3 * step : 4 * step]


def test_a_sequential_reader_inflates_each_block_once_and_stops_at_its_record(
    tmp_path: Path,
) -> None:
    """A FUSE `cat`: reads that find blocks a slow prefetch is still inflating wait for them
    rather than inflate them again, and the prefetch never runs into the file's next record."""
    rng = random.Random(5)
    sizes = {"a": 1_500_000, "b": 900_000}
    records = {name: bytes(rng.choices(ALPHABET, k=n)) for name, n in sizes.items()}
    path = tmp_path / "ab.fa.bgz"
    write_file(path, records, WRITE_BLOCK_SIZE)
    _coffs, uoffs = parse_gzi(Path(f"{path}.gzi").read_bytes(), "gzi")
    a_end = FaiIndex(Path(f"{path}.fai").read_bytes(), "fai")["a"].end_offset
    reader = BlockReader(fd_cache_size=4, block_cache_bytes=64 << 20)
    inflated: list[int] = []
    inflate_group = reader._inflate_group
    caller = threading.get_ident()

    def slow_in_the_pool(bf, indexes, cache, lenient=False, record_end=None):
        if threading.get_ident() != caller:
            time.sleep(0.05)  # the reader catches up with the prefetch
        inflated.extend(indexes)
        return inflate_group(bf, indexes, cache, lenient, record_end)

    reader._inflate_group = slow_in_the_pool
    seq, step = records["a"], 128 * 1024
    for start in range(0, len(seq), step):
        end = min(start + step, len(seq))
        got = reader.fetch_cached(str(path), "a", start, end)
        if got is None:
            got = reader.fetch(str(path), "a", start, end)
        assert bytes(got) == seq[start:end]
    deadline = time.monotonic() + 10
    while reader._inflight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not reader._inflight
    assert max(Counter(inflated).values()) == 1
    last_of_a = max(i for i, u in enumerate(uoffs) if u < a_end)
    assert max(inflated) == last_of_a  # all of a, nothing of b
    assert sorted(inflated) == list(range(last_of_a + 1))


def test_one_long_read_from_a_record_start_is_a_stream_at_once(tmp_path: Path) -> None:
    """`cat` starts at byte 0 and the kernel asks 256 KB: no need to wait for a streak. A read
    as long that starts elsewhere, or a short one from the start, is not a stream yet."""
    seq = bytes(random.Random(4).choices(ALPHABET, k=1_500_000))
    path = tmp_path / "s.fa.bgz"
    write_file(path, {"s": seq}, WRITE_BLOCK_SIZE)
    step = STREAM_START_BYTES

    def prefetched_after(first_read: tuple[int, int], probe: int, wait: float) -> bool:
        reader = BlockReader(fd_cache_size=4, block_cache_bytes=64 << 20)
        a, b = first_read
        assert reader.fetch(str(path), "s", a, b) == seq[a:b]
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            got = reader.fetch_cached(str(path), "s", probe, probe + step)
            if got is not None:
                assert bytes(got) == seq[probe : probe + step]
                return True
            time.sleep(0.01)
        return False

    assert prefetched_after((0, step), 2 * step, wait=10)
    assert not prefetched_after((step, 2 * step), 3 * step, wait=0.5)  # not from the start
    assert not prefetched_after((0, 64 * 1024), 2 * step, wait=0.5)  # short, as samtools faidx


def test_random_reads_that_land_close_are_not_prefetched(tmp_path: Path) -> None:
    """samtools faidx asks 64 KB per region: two regions a little apart are not a stream, and
    inflating megabytes after them would be wasted work."""
    seq = bytes(random.Random(3).choices(ALPHABET, k=1_500_000))
    path = tmp_path / "s.fa.bgz"
    write_file(path, {"s": seq}, WRITE_BLOCK_SIZE)
    reader = BlockReader(fd_cache_size=4, block_cache_bytes=64 << 20)
    step = 64 * 1024
    for a in (900_000, 100_000, 200_000, 700_000):  # one pair lands close, no streak
        assert reader.fetch(str(path), "s", a, a + step) == seq[a : a + step]
    time.sleep(0.5)
    assert reader.fetch_cached(str(path), "s", 400_000, 400_000 + step) is None
    assert reader.fetch_cached(str(path), "s", 1_000_000, 1_000_000 + step) is None


@pytest.mark.parametrize("damage", ["crc", "bsize", "deflate-data"])
def test_a_damaged_block_fails_only_the_reads_that_need_it(tmp_path: Path, damage: str) -> None:
    """A bad CRC, a BSIZE a gzip reader would not notice (htslib would), or zeroed compressed
    data in block 20. The failing read needs block 20 past its middle, so it is inflated whole
    (a read within its first half may inflate only a prefix: tests/test_bgzf_records.py)."""
    seq = bytes(random.Random(3).choices(ALPHABET, k=600_000))
    path = tmp_path / "d.fa.bgz"
    write_file(path, {"d": seq}, WRITE_BLOCK_SIZE)
    coffs, uoffs = parse_gzi(Path(f"{path}.gzi").read_bytes(), "gzi")
    victim = 20  # a block a sequential reader of the start will prefetch
    data = bytearray(path.read_bytes())
    if damage == "crc":
        data[coffs[victim + 1] - 8] ^= 0xFF
    elif damage == "bsize":
        data[coffs[victim] + 16] ^= 0x01
    else:
        middle = (coffs[victim] + coffs[victim + 1]) // 2
        data[middle : middle + 64] = bytes(64)
    os.chmod(path, 0o644)
    path.write_bytes(bytes(data))
    reader = BlockReader(fd_cache_size=4, block_cache_bytes=64 << 20)
    entry = FaiEntry("d", len(seq), len(">d\n"), 100, 101)
    before = entry.residues_before(uoffs[victim]) - 200
    for a in range(0, before - 40_000, 40_000):  # streams into the prefetch window
        assert reader.fetch(str(path), "d", a, a + 40_000) == seq[a : a + 40_000]
    assert reader.fetch(str(path), "d", before, before + 100) == seq[before : before + 100]
    with pytest.raises(CorruptFileError, match=rf"d\.fa\.bgz: (damaged )?BGZF block {victim} "):
        reader.fetch(str(path), "d", before, before + 12_000)
    with pytest.raises(CorruptFileError, match=f"block {victim}"):
        reader.fetch(str(path), "d", 0, len(seq))  # the parallel path says the same


def test_residues_before_counts_every_offset() -> None:
    for lb, lw in ((1, 2), (3, 4), (60, 61), (100, 102)):
        entry = FaiEntry("x", 10 * lb, 7, lb, lw)
        count = 0
        for u in range(7, 7 + 10 * lw):
            assert entry.residues_before(u) == count, (lb, lw, u)
            if (u - 7) % lw < lb:
                count += 1


def test_strings_filled_in_place_are_ordinary_strings() -> None:
    assert ascii_str._WORKS, "CPython's str layout check failed: long reads decode instead"
    made = ascii_str.new_ascii(10)
    assert made is not None
    s, chars = made
    chars[:] = np.frombuffer(b"ACGTNacgtn", dtype=np.uint8)
    assert s == "ACGTNacgtn" and s.isascii() and hash(s) == hash("ACGTNacgtn")
    assert s.lower() == "acgtnacgtn" and s[2:4] == "GT" and s.encode() == b"ACGTNacgtn"
    assert ascii_str.new_ascii(0) is None
    del made
    assert sys.getrefcount(s) == 2  # ours and getrefcount's: ctypes did not leak a reference


def test_non_ascii_bytes_are_refused_as_str(tmp_path: Path, monkeypatch) -> None:
    seq = bytearray(random.Random(4).choices(b"ACGT", k=2 * PARALLEL_MIN_BYTES))
    seq[PARALLEL_MIN_BYTES] = 0xC3
    path = tmp_path / "n.fa.bgz"
    write_file(path, {"n": bytes(seq)}, WRITE_BLOCK_SIZE)
    reader = BlockReader(fd_cache_size=4, block_cache_bytes=64 << 20)
    assert reader.fetch(str(path), "n", 0, len(seq)) == bytes(seq)
    with pytest.raises(CorruptFileError, match="not ASCII"):
        reader.fetch(str(path), "n", 0, len(seq), as_str=True)
    with pytest.raises(CorruptFileError, match="not ASCII"):
        reader.fetch(str(path), "n", PARALLEL_MIN_BYTES - 5, PARALLEL_MIN_BYTES + 5, as_str=True)
    monkeypatch.setattr(ascii_str, "_WORKS", False)  # the decoding fallback says the same
    with pytest.raises(CorruptFileError, match="not ASCII"):
        reader.fetch(str(path), "n", 0, len(seq), as_str=True)
    assert reader.fetch(str(path), "n", 0, 1000, as_str=True) == seq[:1000].decode()


def _fai_text(rows: list[tuple[str, int, int, int, int]]) -> bytes:
    return "".join("\t".join(map(str, r)) + "\n" for r in rows).encode()


@pytest.mark.parametrize("bulk", [False, True], ids=["scanned", "bulk-indexed"])
def test_fai_lookups_agree_before_and_after_the_bulk_index(bulk: bool) -> None:
    """The first lookups scan the text, later ones use the bulk index: the answers, the first
    row of a duplicated name winning, and the error for a row htslib would refuse must not
    depend on which."""
    rows = [(f"s{i}", 100 + i, 7 + 101 * i, 100, 101) for i in range(40)]
    rows.insert(5, ("bad", 10, 0, 0, 1))  # line_bases 0: not a layout htslib accepts
    rows.append(("s3", 1, 2, 60, 61))  # a duplicate: the first row counts
    fai = FaiIndex(_fai_text(rows), "x.fai")
    if bulk:
        for _ in range(FaiIndex.SCANS_BEFORE_INDEX + 1):
            fai.get("missing")
        assert fai.indexed("s39") == FaiEntry("s39", 139, 7 + 101 * 39, 100, 101)
    else:
        assert fai.indexed("s39") is None  # nothing parsed yet: no scan on its behalf
    assert fai.get("s3") == FaiEntry("s3", 103, 7 + 303, 100, 101)
    assert fai.get("s39") == FaiEntry("s39", 139, 7 + 101 * 39, 100, 101)
    assert fai.get("missing") is None and "missing" not in fai
    with pytest.raises(CorruptFileError, match="malformed .fai line"):
        fai.get("bad")
    assert fai.indexed("bad") is None
    assert sorted(fai.names()) == sorted({r[0] for r in rows})
    assert fai.indexed("s3") == FaiEntry("s3", 103, 7 + 303, 100, 101)


def test_bulk_indexed_fai_keeps_file_order_refuses_overlong_names_and_stays_compact() -> None:
    """The bulk index is sorted arrays: names() must still come in file order (first row of a
    duplicate), a name longer than every stored one or a stored name's prefix must miss, and
    the index must stay small per row (a reader's cache holds every .fai of a snapshot)."""
    import tracemalloc

    names = [f"{random.Random(i).getrandbits(128):032x}" for i in range(20_000)]
    rows = [(n, 50 + i, 10 + 80 * i, 60, 61) for i, n in enumerate(names)]
    text = _fai_text(rows + [(names[2], 1, 1, 60, 61)])
    tracemalloc.start()
    try:
        fai = FaiIndex(text, "x.fai")
        del text
        for _ in range(FaiIndex.SCANS_BEFORE_INDEX + 1):
            fai.get("missing")
        held, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held / len(rows) < 120  # a dict of tuples took ~330 bytes a row
    assert fai.names() == names
    assert fai.get(names[2]) == FaiEntry(names[2], 52, 170, 60, 61)
    assert fai.get(names[7] + "0") is None and fai.get(names[7][:-1]) is None
    assert fai.get("é") is None
    assert fai.indexed(names[19_999]) == FaiEntry(names[19_999], 20_049, 10 + 80 * 19_999, 60, 61)


def test_fai_with_a_malformed_number_keeps_other_rows_readable() -> None:
    rows = _fai_text([("a", 5, 3, 60, 61), ("b", 7, 20, 60, 61)]) + b"c\tx\t1\t60\t61\n"
    fai = FaiIndex(rows, "x.fai")
    for _ in range(FaiIndex.SCANS_BEFORE_INDEX + 1):
        assert fai.get("b") == FaiEntry("b", 7, 20, 60, 61)
        assert fai.get("zzz") is None
    with pytest.raises(CorruptFileError, match="malformed .fai line"):
        fai.get("c")
    assert fai.get("a") == FaiEntry("a", 5, 3, 60, 61)
