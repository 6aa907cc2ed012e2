#!/usr/bin/env python3
"""The benchmarks' workload, generated deterministically: a genome, transcripts and regions.

Writes into OUTDIR (same arguments, same bytes, on any machine with numpy):

- genome.fa       25 chromosome-shaped records named after GRCh38's RefSeq accessions
                  (NC_000001.11 ... NC_000024.10, NC_012920.1) with GRCh38's relative lengths
                  scaled to --total-mb; 60 residues a line. Random ACGT with N runs (ends,
                  a centromere, gaps), soft-masked lower-case runs and a few IUPAC codes. The
                  residues are synthetic: only the names and proportions are GRCh38's.
- transcripts.fa  --n-transcripts records NM_nnnnnn.v of 500-10,000 nt (log-uniform), 70 a
                  line; a --dup-frac share repeat an earlier record under a new accession, so
                  loading meets sequences it already holds.
- regions.bed     --n-regions random --region-len regions over the genome (0-based, half-open)
- regions.txt     the same regions for samtools (NAME:start-end, 1-based, closed)
- manifest.json   the parameters, record names, lengths and counts

    python3 scripts/bench/make_workload.py OUT          # 300 Mb, 50,000 transcripts, 20,000 regions
    python3 scripts/bench/make_workload.py OUT --quick  # 20 Mb, 5,000 transcripts, 2,000 regions
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

# GRCh38's chromosomes (1-22, X, Y, MT): RefSeq accession and length in bp.
GRCH38 = (
    ("NC_000001.11", 248_956_422), ("NC_000002.12", 242_193_529), ("NC_000003.12", 198_295_559),
    ("NC_000004.12", 190_214_555), ("NC_000005.10", 181_538_259), ("NC_000006.12", 170_805_979),
    ("NC_000007.14", 159_345_973), ("NC_000008.11", 145_138_636), ("NC_000009.12", 138_394_717),
    ("NC_000010.11", 133_797_422), ("NC_000011.10", 135_086_622), ("NC_000012.12", 133_275_309),
    ("NC_000013.11", 114_364_328), ("NC_000014.9", 107_043_718), ("NC_000015.10", 101_991_189),
    ("NC_000016.10", 90_338_345), ("NC_000017.11", 83_257_441), ("NC_000018.10", 80_373_285),
    ("NC_000019.10", 58_617_616), ("NC_000020.11", 64_444_167), ("NC_000021.9", 46_709_983),
    ("NC_000022.11", 50_818_468), ("NC_000023.11", 156_040_895), ("NC_000024.10", 57_227_415),
    ("NC_012920.1", 16_569),
)  # fmt: skip
FULL = {"total_mb": 300.0, "n_transcripts": 50_000, "n_regions": 20_000}
QUICK = {"total_mb": 20.0, "n_transcripts": 5_000, "n_regions": 2_000}
MIN_CHROM = 1_000  # the mitochondrion scaled down would otherwise vanish
TX_MIN, TX_MAX = 500, 10_000
BASES = np.frombuffer(b"ACGT", dtype=np.uint8)
AMBIGUOUS = np.frombuffer(b"RYSWKMBDHV", dtype=np.uint8)
N = ord("N")
# One random stream per part, so changing one part's parameters leaves the others' bytes alone.
GENOME_STREAM, TRANSCRIPT_STREAM, REGION_STREAM = 1, 2, 3


def wrapped(residues: np.ndarray, width: int) -> bytes:
    """FASTA lines of `width` residues, each ending in a newline (the last one shorter)."""
    lines, rest = divmod(len(residues), width)
    body = np.full((lines, width + 1), ord("\n"), dtype=np.uint8)
    body[:, :width] = residues[: lines * width].reshape(lines, width)
    tail = residues[lines * width :].tobytes()
    return body.tobytes() + (tail + b"\n" if rest else b"")


def chromosome_lengths(total: int) -> list[int]:
    grch38_total = sum(length for _name, length in GRCH38)
    return [max(MIN_CHROM, round(total * length / grch38_total)) for _name, length in GRCH38]


def chromosome(rng: np.random.Generator, length: int) -> np.ndarray:
    """Random residues with what real assemblies have: N runs, soft-masking, IUPAC codes."""
    seq = BASES[rng.integers(0, 4, length, dtype=np.uint8)]
    if length < 100_000:  # a mitochondrion-sized record: plain residues
        return seq
    end_gap = min(length // 100, 10_000)  # telomeres
    seq[:end_gap] = N
    seq[length - end_gap :] = N
    centromere = min(length // 60, 3_000_000)
    at = int(rng.integers(length // 4, length // 2))
    seq[at : at + centromere] = N
    for _ in range(6):  # assembly gaps
        size = int(rng.integers(100, min(50_000, length // 200) + 1))
        at = int(rng.integers(end_gap, length - end_gap - size))
        seq[at : at + size] = N
    for _ in range(12):  # soft-masked repeats; N stays upper-case
        size = int(rng.integers(40, 2_500))
        at = int(rng.integers(0, length - size))
        run = seq[at : at + size]
        run[run != N] |= 0x20  # idempotent where two runs overlap
    spots = rng.integers(end_gap, length - end_gap, 16)
    seq[spots] = AMBIGUOUS[rng.integers(0, len(AMBIGUOUS), len(spots))]
    return seq


def write_genome(rng: np.random.Generator, total: int, path: Path) -> dict[str, Any]:
    names = [name for name, _length in GRCH38]
    lengths = chromosome_lengths(total)
    counts = {"N": 0, "lower": 0, "iupac": 0}
    with open(path, "wb") as out:
        for name, length in zip(names, lengths, strict=True):
            seq = chromosome(rng, length)
            out.write(f">{name} synthetic chromosome, {length} bp\n".encode())
            out.write(wrapped(seq, 60))
            counts["N"] += int(np.count_nonzero(seq == N))
            counts["lower"] += int(np.count_nonzero(seq >= ord("a")))
            counts["iupac"] += int(np.count_nonzero(np.isin(seq, AMBIGUOUS)))
    return {"n_seqs": len(names), "total_len": sum(lengths), "names": names,
            "lengths": lengths, "residue_counts": counts}  # fmt: skip


def write_transcripts(rng: np.random.Generator, n: int, dup_frac: float, path: Path) -> dict:
    """`n` records; the duplicates copy an earlier record and sit where a random one would."""
    n_dup = min(n - 1, round(n * dup_frac)) if n > 1 else 0
    is_dup = np.zeros(n, dtype=bool)
    if n_dup:
        is_dup[1 + rng.choice(n - 1, n_dup, replace=False)] = True  # record 0 is never a copy
    n_unique = n - n_dup
    lengths = np.exp(rng.uniform(np.log(TX_MIN), np.log(TX_MAX + 1), n_unique)).astype(np.int64)
    lengths = np.clip(lengths, TX_MIN, TX_MAX)
    starts = np.concatenate(([0], np.cumsum(lengths)))
    pool = BASES[rng.integers(0, 4, int(starts[-1]), dtype=np.uint8)]
    numbers = rng.choice(1_000_000, n, replace=False)
    versions = rng.integers(1, 10, n)
    total = 0
    unique_seen = 0
    with open(path, "wb") as out:
        for i in range(n):
            if is_dup[i]:
                src = int(rng.integers(0, unique_seen))
            else:
                src, unique_seen = unique_seen, unique_seen + 1
            seq = pool[starts[src] : starts[src + 1]]
            out.write(f">NM_{numbers[i]:06d}.{versions[i]} synthetic transcript\n".encode())
            out.write(wrapped(seq, 70))
            total += len(seq)
    return {"n_seqs": n, "n_unique_seqs": n_unique, "n_duplicate_records": n_dup,
            "total_len": total, "unique_len": int(starts[-1])}  # fmt: skip


def write_regions(
    rng: np.random.Generator, genome: dict, n: int, size: int, bed: Path, txt: Path
) -> dict:
    """Regions spread over the genome in proportion to where one can start."""
    lengths = np.array(genome["lengths"], dtype=np.int64)
    room = np.clip(lengths - size + 1, 0, None)
    chrom = rng.choice(len(lengths), n, p=room / room.sum())
    start = rng.integers(0, room[chrom])
    names = genome["names"]
    with open(bed, "w") as b, open(txt, "w") as t:
        for c, s in zip(chrom.tolist(), start.tolist(), strict=True):
            b.write(f"{names[c]}\t{s}\t{s + size}\n")
            t.write(f"{names[c]}:{s + 1}-{s + size}\n")
    return {"n": n, "len": size}


def generate(
    outdir: Path,
    total_mb: float = FULL["total_mb"],
    n_transcripts: int = int(FULL["n_transcripts"]),
    n_regions: int = int(FULL["n_regions"]),
    seed: int = 42,
    region_len: int = 100,
    dup_frac: float = 0.02,
) -> dict[str, Any]:
    """Write the workload into `outdir`; returns the manifest (also written as manifest.json)."""
    outdir.mkdir(parents=True, exist_ok=True)
    params = {"total_mb": total_mb, "n_transcripts": n_transcripts, "n_regions": n_regions,
              "seed": seed, "region_len": region_len, "dup_frac": dup_frac}  # fmt: skip
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    genome = write_genome(
        np.random.default_rng([seed, GENOME_STREAM]), int(total_mb * 1e6), outdir / "genome.fa"
    )
    seconds["genome"], t = round(time.perf_counter() - t, 2), time.perf_counter()
    transcripts = write_transcripts(
        np.random.default_rng([seed, TRANSCRIPT_STREAM]), n_transcripts, dup_frac,
        outdir / "transcripts.fa",
    )  # fmt: skip
    seconds["transcripts"], t = round(time.perf_counter() - t, 2), time.perf_counter()
    regions = write_regions(
        np.random.default_rng([seed, REGION_STREAM]), genome, n_regions, region_len,
        outdir / "regions.bed", outdir / "regions.txt",
    )  # fmt: skip
    seconds["regions"] = round(time.perf_counter() - t, 2)
    manifest = {"generator": "scripts/bench/make_workload.py", "params": params,
                "genome": genome, "transcripts": transcripts, "regions": regions,
                "gen_seconds": seconds}  # fmt: skip
    (outdir / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def ensure(outdir: Path, **params: Any) -> tuple[dict[str, Any], bool]:
    """The workload in `outdir` and whether it was (re)written: an existing one is reused when
    its manifest has these parameters; anything built from a rewritten one is stale."""
    wanted = {**defaults(quick=False), "seed": 42, "region_len": 100, "dup_frac": 0.02, **params}
    manifest = outdir / "manifest.json"
    if manifest.exists():
        data = json.loads(manifest.read_text())
        if data.get("generator") == "scripts/bench/make_workload.py" and data["params"] == wanted:
            return data, False
    return generate(outdir, **wanted), True


def defaults(quick: bool) -> dict[str, Any]:
    return dict(QUICK if quick else FULL)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--quick", action="store_true", help="20 Mb, 5,000 transcripts, 2,000 regions")
    ap.add_argument("--total-mb", type=float, default=None, help="genome size in Mb [300]")
    ap.add_argument("--n-transcripts", type=int, default=None, help="transcript records [50,000]")
    ap.add_argument("--n-regions", type=int, default=None, help="regions [20,000]")
    ap.add_argument("--region-len", type=int, default=100, help="region length [100]")
    ap.add_argument("--dup-frac", type=float, default=0.02, help="duplicate transcripts [0.02]")
    ap.add_argument("--seed", type=int, default=42)
    return ap.parse_args(argv)


def sizes(args: argparse.Namespace) -> dict[str, Any]:
    """The mode's sizes, each overridden by the option given."""
    out = defaults(args.quick)
    for key in ("total_mb", "n_transcripts", "n_regions"):
        if getattr(args, key) is not None:
            out[key] = getattr(args, key)
    return {"total_mb": float(out["total_mb"]), "n_transcripts": int(out["n_transcripts"]),
            "n_regions": int(out["n_regions"])}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    m = generate(args.outdir, **sizes(args), seed=args.seed, region_len=args.region_len,
                 dup_frac=args.dup_frac)  # fmt: skip
    g, tx = m["genome"], m["transcripts"]
    print(f"genome: {g['n_seqs']} records, {g['total_len']:,} bp in {m['gen_seconds']['genome']} s")
    print(f"transcripts: {tx['n_seqs']:,} records ({tx['n_duplicate_records']} repeats), "
          f"{tx['total_len']:,} nt in {m['gen_seconds']['transcripts']} s")  # fmt: skip
    print(f"regions: {m['regions']['n']:,} x {m['regions']['len']} bp")
    return 0


if __name__ == "__main__":
    sys.exit(main())
