"""genome_layout.GenomeLayout against naive renderings (no FUSE): every file's size and bytes,
and FASTA windows anywhere, for records of every shape over several blocks of records."""

from __future__ import annotations

import hashlib
import json
import random

import numpy as np
import pytest

from seqrepofs import seqcol
from seqrepofs.fs.identity import MAX_COLLECTION_ID, Inodes
from seqrepofs.fs.nodes import CollectionFile, CollectionsDir
from seqrepofs.genome_layout import (
    BLOCK_RECORDS,
    GenomeFileKind,
    GenomeLayout,
    ListRecords,
    NotCached,
)

NAMES = ("chr", "é", 'q"', "b\\s", "x:1-2(+)", "日本", "t\x7f")


def _records(n: int, seed: int) -> tuple[list[tuple[str, int, str]], dict[str, bytes]]:
    rng = random.Random(seed)
    residues: dict[str, bytes] = {}
    recs = []
    for i in range(n):
        length = rng.choice((0, 1, 2, 6, 7, 8, 59, 60, 61, 120, 121, 500))
        seq = bytes(rng.choice(b"ACGTN") for _ in range(length))
        seq_id = hashlib.sha256(seq + str(i % 97).encode()).hexdigest()[:32]
        residues[seq_id] = seq
        recs.append((f"{rng.choice(NAMES)}{i}", length, seq_id))
    return recs, residues


def _naive(recs: list[tuple[str, int, str]], res: dict[str, bytes], width: int) -> dict:
    fa, fai, sizes = bytearray(), [], []
    for name, length, seq_id in recs:
        fa += b">" + name.encode() + b"\n"
        offset = len(fa)
        seq = res[seq_id]
        for j in range(0, length, width):
            fa += seq[j : j + width] + b"\n"
        if length:
            lb = min(length, width)
            fai.append(f"{name}\t{length}\t{offset}\t{lb}\t{lb + 1}\n")
        sizes.append(f"{name}\t{length}\n")
    md5 = {k: hashlib.md5(v).hexdigest() for k, v in res.items()}
    dct = "@HD\tVN:1.0\tSO:unsorted\n" + "".join(
        f"@SQ\tSN:{n}\tLN:{ln}\tM5:{md5[s]}\tUR:ga4gh:SQ.{s}\n" for n, ln, s in recs
    )
    level2 = seqcol.level2([r[0] for r in recs], [r[1] for r in recs], ["SQ." + r[2] for r in recs])
    return {
        GenomeFileKind.FASTA: bytes(fa),
        GenomeFileKind.FAI: "".join(fai).encode(),
        GenomeFileKind.DICT: dct.encode(),
        GenomeFileKind.FA_DICT: dct.encode(),
        GenomeFileKind.CHROM_SIZES: "".join(sizes).encode(),
        GenomeFileKind.SEQCOL: json.dumps(level2, separators=(",", ":")).encode(),
        "md5": md5,
    }


@pytest.mark.parametrize("width", [1, 7, 60])
def test_every_file_against_a_naive_rendering(width: int) -> None:
    recs, res = _records(2 * BLOCK_RECORDS + 300, width)
    want = _naive(recs, res, width)
    lay = GenomeLayout(ListRecords(recs, key="t", label="t"), width)
    assert lay.blocks == 3

    def md5(seq_ids: list[str]) -> list[str]:  # a page at a time, as SeqRepo.sam_m5_many
        return [want["md5"][s] for s in seq_ids]

    for kind in GenomeFileKind:
        assert lay.size(kind) == len(want[kind]), kind
        if kind is not GenomeFileKind.FASTA:
            assert lay.text(kind, md5) == want[kind], kind

    def fetch(seq_id: str, a: int, b: int) -> bytes:
        return res[seq_id][a:b]

    whole = want[GenomeFileKind.FASTA]
    assert bytes(lay.read(0, len(whole) + 10, fetch)) == whole
    rng = random.Random(width)
    for _ in range(500):
        off = rng.randrange(len(whole))
        n = rng.choice((1, 2, 61, 4096, 70_000))
        assert bytes(lay.read(off, n, fetch)) == whole[off : off + n], (off, n)
    for i in rng.sample(range(len(recs)), 50):  # record starts, by ordinal
        assert whole[lay.record_start(i) :].startswith(b">" + recs[i][0].encode() + b"\n")


def test_cached_reads_never_fetch() -> None:
    recs, res = _records(BLOCK_RECORDS + 10, 3)
    lay = GenomeLayout(ListRecords(recs, key="c", label="c"), 60, cache=_NoBlocks())
    with pytest.raises(NotCached):
        lay.read(0, 100, lambda s, a, b: res[s][a:b], cached=True)
    blocks = [lay.load_block(b) for b in range(lay.blocks)]
    assert (
        bytes(lay.read(0, 10**9, lambda s, a, b: res[s][a:b], blocks=blocks))
        == _naive(recs, res, 60)[GenomeFileKind.FASTA]
    )
    with pytest.raises(NotCached):
        lay.read(0, 10**6, lambda s, a, b: None, blocks=blocks)


class _NoBlocks:
    def get(self, key: object) -> None:
        return None

    def put(self, key: object, block: object) -> None:
        pass


def test_sizes_scale_past_int32() -> None:
    """Offsets beyond 2^31 (a 3 Gb genome) keep their digits right in the .fai."""
    recs = [("chr1", 3_000_000_000, "a" * 32), ("chr2", 5, "b" * 32)]
    lay = GenomeLayout(ListRecords(recs, key="big", label="big"), 60)
    fai = lay.text(GenomeFileKind.FAI)
    second = int(fai.splitlines()[1].split(b"\t")[2])
    assert second == 6 + 3_000_000_000 + 50_000_000 + 6
    assert lay.size(GenomeFileKind.FAI) == len(fai)
    assert isinstance(lay.fa_starts, np.ndarray) and lay.size() == second + 6


def test_collection_inode_numbers_round_trip() -> None:
    """A collection file's inode number names (instance, by-digest, kind, id) and nothing else."""
    inodes = Inodes()
    seen = set()
    for inst in ("", "2024-01-01"):
        for by_digest in (False, True):
            d = CollectionsDir(path="/c", mtime_ns=0, frozen=True, inst=inst, by_digest=by_digest)
            assert inodes.key(inodes.number(d)) == ("collections", inst, by_digest)
            for kind in GenomeFileKind:
                for cid in (1, 2, MAX_COLLECTION_ID):
                    f = CollectionFile(
                        path="/c/x", mtime_ns=0, frozen=True, inst=inst, by_digest=by_digest,
                        cid=cid, file_kind=kind, stem="x", file_size=1,
                    )  # fmt: skip
                    ino = inodes.number(f)
                    assert 0 < ino < 1 << 63 and ino not in seen
                    seen.add(ino)
                    assert inodes.key(ino) == ("cfile", inst, by_digest, kind, cid)
    with pytest.raises(OverflowError):
        inodes.number(
            CollectionFile(
                path="/c/x",
                mtime_ns=0,
                frozen=True,
                inst="",
                by_digest=False,
                cid=MAX_COLLECTION_ID + 1,
                file_kind=GenomeFileKind.FASTA,
                stem="x",
                file_size=1,
            )  # fmt: skip
        )
    base = inodes.collection_bases("", False)[0]
    assert inodes.key(base) is None  # collection id 0 names nothing
    assert inodes.key(base | 7 << 38 | 5) is None  # no file kind 7
