#!/usr/bin/env python3
"""Workload 7 across genome sizes: the daemon's peak RSS stays flat as the genome grows.

For each size, generates the workload with make_workload.py (5,000 transcripts: they take
no part), loads it with seqrepofs only (this is about our daemon's memory, no
reference tool), snapshots it, and runs workloads 3-5 on fresh mounts: `samtools faidx` of the
regions then `bedtools getfasta` (one mount), `samtools faidx` cold (another), `cat` of the
largest chromosome cold (a third). Before anything counts, faidx through the mount must give
the residues samtools gives on genome.fa. Reports each mount's peak RSS (VmHWM) per size;
prints a table and writes JSON.

    python3 scripts/bench/bench_rss.py                       # 20, 300 and 900 Mb
    python3 scripts/bench/bench_rss.py --sizes 20,300 --json rss.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import (  # noqa: E402  (scripts/bench/run.py, beside this file)
    PROJECT,
    Mount,
    check_same_output,
    drop_caches,
    make_data,
    regions_by_chrom,
    run,
    status_kb,
)

MOUNTS = ("faidx + getfasta, warm", "faidx, cold", "cat largest, cold")


def build(work: Path, total_mb: float, n_regions: int | None) -> tuple[Path, Path]:
    """Data and a seqrepofs snapshot of it under `work` (reused when already there)."""
    data, root = work / "data", work / "ours"
    _manifest, fresh = make_data(
        data, False, total_mb=total_mb, n_transcripts=5000, n_regions=n_regions
    )
    snapshot = root / "2020-01-01"
    if fresh:  # new data: the repository and index built from the old are stale
        shutil.rmtree(root, ignore_errors=True)
        (data / "genome.fa.fai").unlink(missing_ok=True)
    if not snapshot.exists():
        shutil.rmtree(root, ignore_errors=True)
        run(["seqrepofs", "-r", str(root), "init"])
        run(
            [
                "seqrepofs",
                "-r",
                str(root),
                "load",
                "-n",
                "refseq",
                str(data / "genome.fa"),
                str(data / "transcripts.fa"),
            ]
        )
        run(["seqrepofs", "-r", str(root), "snapshot", "-d", snapshot.name])
    return data, snapshot


def measure(data: Path, snapshot: Path, mnt: Path) -> dict[str, float]:
    """Peak RSS (MB) of the daemon over each of the three mounts."""
    regions = regions_by_chrom(data, data.parent / "regions")
    manifest = json.loads((data / "manifest.json").read_text())["genome"]
    largest = max(zip(manifest["lengths"], manifest["names"], strict=True))[1]

    def mounted(chrom: str) -> Path:
        return mnt / "refseq" / f"{chrom}.fa"

    def faidx(chrom: str, fasta: Path) -> bytes:
        return subprocess.run(
            ["samtools", "faidx", str(fasta), "-r", str(regions[chrom][0])],
            check=True,
            capture_output=True,
        ).stdout

    genome = data / "genome.fa"
    if not Path(str(genome) + ".fai").exists():
        run(["samtools", "faidx", str(genome)])

    def warm() -> None:  # the answers must be right before their cost counts
        first = next(iter(regions))
        check_same_output(faidx(first, mounted(first)), faidx(first, genome), "samtools faidx")
        faidx_all()
        for chrom, (_txt, bed) in regions.items():
            run(["bedtools", "getfasta", "-fi", str(mounted(chrom)), "-bed", str(bed)])

    def faidx_all() -> None:
        for chrom in regions:
            faidx(chrom, mounted(chrom))

    def cold_cat() -> None:
        run(["cat", str(mounted(largest))])

    peaks: dict[str, float] = {}
    for label, workload in zip(MOUNTS, (warm, faidx_all, cold_cat), strict=True):
        drop_caches()
        with Mount(snapshot, mnt) as m:
            workload()
            peaks[label] = status_kb(m.pid(), ("VmHWM",)).get("VmHWM", 0) / 1024
    return peaks


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="20,300,900", help="genome sizes in Mb, comma-separated")
    ap.add_argument("--n-regions", type=int, default=None, help="regions [20,000]")
    ap.add_argument("--work", default=str(PROJECT / "bench-out" / "rss"), help="working directory")
    ap.add_argument("--json", default=None, help="results file (default WORK/results.json)")
    args = ap.parse_args(argv)
    work = Path(args.work)
    results: dict[str, dict[str, float]] = {}
    for size in args.sizes.split(","):
        data, snapshot = build(work / f"{size}mb", float(size), args.n_regions)
        results[size] = measure(data, snapshot, work / "mnt")
        print(
            f"{size:>6s} Mb  " + "  ".join(f"{k}: {v:.0f} MB" for k, v in results[size].items()),
            flush=True,
        )
    out = Path(args.json) if args.json else work / "results.json"
    out.write_text(json.dumps({"peak_rss_mb": results}, indent=2) + "\n")
    print(f"results written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
