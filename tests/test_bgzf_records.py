"""Short reads: block prefixes and the cache of short records (store/bgzf.py), against a
plain-bytes oracle, and what a prefix does and does not check."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from seqrepofs.errors import CorruptFileError
from seqrepofs.store.bgzf import (
    BLOCK_DATA_SIZE,
    CACHE_ENTRY_OVERHEAD,
    PREFIX_MAX_FRACTION,
    RECORD_MAX_RESIDUES,
    BlockReader,
)
from seqrepofs.store.bgzf_writer import WRITE_BLOCK_SIZE, BgzfFastaWriter
from seqrepofs.store.fai import FaiIndex, parse_gzi

ALPHABET = b"ACGTNRYKM"


def _write(path: Path, records: dict[str, bytes], line_width: int = 100) -> None:
    """Ours (16 KB blocks, 100-residue lines), or bgzip's 64 KB blocks and samtools' .fai of
    a FASTA with lines of another width."""
    if line_width == 100:
        writer = BgzfFastaWriter(str(path), threads=2)
        for name, seq in records.items():
            writer.add(name, seq)
        fai, gzi = writer.close()
        Path(f"{path}.fai").write_bytes(fai)
        Path(f"{path}.gzi").write_bytes(gzi)
        return
    plain = path.with_suffix("")
    with plain.open("wb") as fh:
        for name, seq in records.items():
            lines = [seq[i : i + line_width] for i in range(0, len(seq), line_width)]
            fh.write(b">" + name.encode() + b"\n" + b"\n".join(lines) + b"\n")
    subprocess.run(["bgzip", "-i", "-f", str(plain)], check=True)
    os.replace(f"{plain}.gz", path)
    os.replace(f"{plain}.gz.gzi", f"{path}.gzi")
    subprocess.run(["samtools", "faidx", str(path)], check=True)


def _records(seed: int, n: int = 400) -> dict[str, bytes]:
    rng = random.Random(seed)
    sizes = [1, 2, 60, 61, RECORD_MAX_RESIDUES, RECORD_MAX_RESIDUES + 1, 20_000]
    sizes += [int(rng.lognormvariate(7, 1)) + 1 for _ in range(n)]
    return {f"q{i}": bytes(rng.choices(ALPHABET, k=k)) for i, k in enumerate(sizes)}


@pytest.mark.parametrize(
    "line_width",
    [
        100,
        pytest.param(
            60,
            marks=pytest.mark.skipif(
                not (shutil.which("bgzip") and shutil.which("samtools")),
                reason="bgzip/samtools not installed",
            ),
        ),
    ],
)
def test_random_short_reads_cold_and_warm_match_the_oracle(tmp_path: Path, line_width: int) -> None:
    """Reads of [start, end) anywhere in records of every size, each in a fresh reader (cold:
    prefixes, records crossing blocks) and again in one reader (warm: cached records, cached
    record prefixes that a later read must extend)."""
    records = _records(line_width)
    path = tmp_path / "r.fa.bgz"
    _write(path, records, line_width)
    rng = random.Random(1)
    names = list(records)
    warm = BlockReader(fd_cache_size=4, block_cache_bytes=64 << 20)
    reads = []
    for _ in range(1500):
        name = rng.choice(names)
        n = len(records[name])
        start = rng.randrange(n)
        end = min(n, start + rng.choice([1, 50, 500, 5000]))
        reads.append((name, start, end))
    for name, start, end in reads[:300]:
        cold = BlockReader(fd_cache_size=4, block_cache_bytes=64 << 20)
        assert cold.fetch(str(path), name, start, end) == records[name][start:end]
    for name, start, end in reads + reads[::-1]:
        want = records[name][start:end]
        assert warm.fetch(str(path), name, start, end) == want
        assert warm.fetch(str(path), name, start, end, as_str=True) == want.decode()


def test_short_records_are_kept_before_the_blocks_they_came_from(tmp_path: Path) -> None:
    """A random reader fills a small cache: the blocks go first, every record read stays, and
    the byte bound counts both."""
    records = _records(3)
    path = tmp_path / "r.fa.bgz"
    _write(path, records)
    reader = BlockReader(fd_cache_size=4, block_cache_bytes=300_000)
    names = [n for n, s in records.items() if 1000 < len(s) <= RECORD_MAX_RESIDUES][::4]
    assert len(names) > 30
    for name in names:  # far apart: a random reader
        assert reader.fetch(str(path), name, 0, 50) == records[name][:50]
    cache = reader._blocks
    for name in names:
        cached = cache.get((str(path), name))
        assert cached is not None and records[name].startswith(cached) and len(cached) >= 50
    assert all(isinstance(k[1], str) for k in cache._data)  # records
    assert all(isinstance(k[1], int) for k in cache._low)  # blocks and block prefixes
    keys = list(cache._data) + list(cache._low)
    assert cache.currsize == sum(len(cache.get(k)) + CACHE_ENTRY_OVERHEAD for k in keys)
    assert cache.currsize <= 300_000


def test_records_read_in_file_order_keep_their_blocks(tmp_path: Path) -> None:
    """A set of records read back in load order: the whole block is inflated once and kept,
    not inflated again (in part) for each record it holds."""
    records = _records(4)
    path = tmp_path / "r.fa.bgz"
    _write(path, records)
    reader = BlockReader(fd_cache_size=4, block_cache_bytes=64 << 20)
    for name, seq in list(records.items())[10:200]:
        assert reader.fetch(str(path), name, 0, len(seq)) == seq
    blocks = [k for k in reader._blocks._low if k[1] >= 0]  # whole blocks, not prefixes
    assert len(blocks) > 5


def _damaged(tmp_path: Path, how: str) -> tuple[Path, bytes, int, int]:
    """One 600,000-residue record; block 20 damaged. Returns the file, the sequence, and the
    residue offsets of block 20's first byte and of its middle."""
    seq = bytes(random.Random(9).choices(ALPHABET, k=600_000))
    path = tmp_path / "d.fa.bgz"
    _write(path, {"d": seq})
    coffs, uoffs = parse_gzi(Path(f"{path}.gzi").read_bytes(), "gzi")
    data = bytearray(path.read_bytes())
    if how == "crc":
        data[coffs[21] - 8] ^= 0xFF
    else:  # the block's first deflate bytes: a stored block whose LEN and NLEN disagree
        data[coffs[20] + 18 : coffs[20] + 18 + 8] = bytes(8)
    os.chmod(path, 0o644)
    path.write_bytes(bytes(data))
    entry = FaiIndex(Path(f"{path}.fai").read_bytes(), "fai")["d"]
    first = entry.residues_before(uoffs[20]) + 1
    middle = entry.residues_before(uoffs[20] + int((uoffs[21] - uoffs[20]) * PREFIX_MAX_FRACTION))
    return path, seq, first, middle


def test_a_prefix_is_not_checked_against_the_crc_but_a_whole_block_is(tmp_path: Path) -> None:
    """The documented trade: a read ending in a block's first half inflates only that far, so
    the block's CRC32 (over all of it) is not checked; a read past the middle inflates it whole
    and fails on it."""
    path, seq, first, middle = _damaged(tmp_path, "crc")
    reader = BlockReader(fd_cache_size=4, block_cache_bytes=64 << 20)
    assert reader.fetch(str(path), "d", first, first + 100) == seq[first : first + 100]
    with pytest.raises(CorruptFileError, match=r"BGZF block 20 .*CRC"):
        reader.fetch(str(path), "d", first, middle + 500)


def test_a_prefix_still_fails_on_deflate_data_it_cannot_inflate(tmp_path: Path) -> None:
    path, _seq, first, _middle = _damaged(tmp_path, "deflate")
    reader = BlockReader(fd_cache_size=4, block_cache_bytes=64 << 20)
    with pytest.raises(CorruptFileError, match=r"d\.fa\.bgz: BGZF block 20 at byte \d+ does not"):
        reader.fetch(str(path), "d", first, first + 100)


def test_a_truncated_short_record_is_an_error_not_a_short_answer(tmp_path: Path) -> None:
    """A .fai that promises more residues than the file holds."""
    path = tmp_path / "t.fa.bgz"
    _write(path, {"a": b"ACGT" * 300, "b": b"GGCC" * 100})
    fai = Path(f"{path}.fai")
    fai.write_bytes(fai.read_bytes().replace(b"b\t400\t", b"b\t500\t"))
    reader = BlockReader(fd_cache_size=4, block_cache_bytes=64 << 20)
    with pytest.raises(CorruptFileError, match="t.fa.bgz: b read 400 residues where the .fai says"):
        reader.fetch(str(path), "b", 0, 450)


def test_block_writer_size_is_what_the_prefix_rule_assumes() -> None:
    """PREFIX_MAX_FRACTION was measured on WRITE_BLOCK_SIZE blocks (docs/performance.md)."""
    assert WRITE_BLOCK_SIZE == 16_320


def test_threads_sharing_a_small_cache_read_exact_bytes(tmp_path: Path) -> None:
    """Records, prefixes and blocks evicting each other under four threads at once."""
    import threading

    records = _records(6)
    path = tmp_path / "r.fa.bgz"
    _write(path, records)
    reader = BlockReader(fd_cache_size=2, block_cache_bytes=100_000)
    names = list(records)
    errors: list[str] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(800):
            name = rng.choice(names)
            n = len(records[name])
            start = rng.randrange(n)
            end = min(n, start + rng.choice([1, 50, 3000]))
            got = reader.fetch(str(path), name, start, end)
            if got != records[name][start:end]:
                errors.append(f"{name}:{start}-{end}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert reader._blocks.currsize <= 100_000


def test_blocks_of_random_short_reads_stop_being_cached_when_they_never_hit(
    tmp_path: Path,
) -> None:
    """Once the cache is full and short-record reads seldom find their block cached, caching
    the blocks they inflate is only cost; reads that do reuse blocks keep them cached."""
    rng = random.Random(8)
    records = {f"q{i}": bytes(rng.choices(ALPHABET, k=rng.randint(200, 2000))) for i in range(6000)}
    path = tmp_path / "r.fa.bgz"
    _write(path, records)
    names = list(records)
    reader = BlockReader(fd_cache_size=2, block_cache_bytes=200_000)
    assert reader._blocks_worth_caching()  # room: yes
    for name in rng.sample(names, 3000):  # far apart, each block about once
        assert reader.fetch(str(path), name, 0, 20) == records[name][:20]
    assert not reader._blocks_worth_caching()
    reuse = BlockReader(fd_cache_size=2, block_cache_bytes=70_000)  # a full cache, too
    for _ in range(6):
        for name in names[:400:7]:  # a few blocks, again and again
            assert reuse.fetch(str(path), name, 0, 20) == records[name][:20]
            reuse._blocks.pop((str(path), name))  # not the record: its block, next time
    assert reuse._blocks.currsize + BLOCK_DATA_SIZE >= 70_000
    assert reuse._record_block_hits * 4 > reuse._record_block_reads  # well over 1 in 16
    assert reuse._blocks_worth_caching()
