#!/usr/bin/env python3
"""Collections in the mount: whole-genome `samtools faidx` on /collections/<genome>.fa, cold
and warm, beside the plain FASTA and the bgzipped FASTA of the same genome; then a
transcriptome-sized collection (3,000,000 records by default): listing, its .fai, and the
daemon's memory.

    python3 scripts/bench/bench_collections.py                 # 300 Mb genome, 20,000 regions
    python3 scripts/bench/bench_collections.py --total-mb 20 --records 300000 --reps 2

The genome comes from make_workload.py (beside this script), loaded with
`seqrepofs load --collection genome` and frozen into a snapshot, which is mounted. Cold runs
drop the page cache (`/proc/sys/vm/drop_caches`, as root) before each run and mount afresh;
without root they are reported as not cold. Contenders alternate; medians are printed with the
ratios the issue sets targets for (warm: mount / plain, cold: mount / bgzip).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent.parent
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(HERE))

import make_workload  # noqa: E402  (beside this file)
from run import drop_caches  # noqa: E402  (scripts/bench/run.py, beside this file)

PY = sys.executable
SNAP = "snap"


def seqrepofs(*args: str) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(
        [PY, "-m", "seqrepofs", *args], text=True, capture_output=True, cwd=PROJECT,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
    )  # fmt: skip
    if res.returncode != 0:
        raise SystemExit(f"seqrepofs {' '.join(args)} exited {res.returncode}:\n{res.stderr}")
    return res


def run(*cmd: str) -> bytes:
    return subprocess.run(cmd, check=True, capture_output=True).stdout


def status_kb(pid: int, *fields: str) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in fields:
            out[key] = int(value.split()[0])
    return out


class Mount:
    """A foreground daemon (so its pid is ours) serving `src` at `mnt`."""

    def __init__(self, src: Path, mnt: Path) -> None:
        self.src, self.mnt = src, mnt

    def __enter__(self) -> Mount:
        self.mnt.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [PY, "-m", "seqrepofs", "mount", str(self.src), str(self.mnt), "-f"],
            stderr=open(str(self.mnt) + ".log", "ab"), cwd=PROJECT,
            env={**os.environ, "PYTHONPATH": str(PROJECT)},
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not os.path.ismount(self.mnt):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"mount of {self.src} failed; see {self.mnt}.log")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["fusermount3", "-u", str(self.mnt)], capture_output=True)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def build_genome(work: Path, data: Path, fresh: bool) -> Path:
    """A snapshot holding the genome as collection `genome`; plain and bgzipped copies."""
    root = work / "genome-root"
    if fresh or not (root / SNAP).exists():
        shutil.rmtree(root, ignore_errors=True)
        t = time.perf_counter()
        seqrepofs("-r", str(root), "init")
        seqrepofs("-r", str(root), "load", "--collection", "genome", str(data / "genome.fa"))
        seqrepofs("-r", str(root), "snapshot", "-d", SNAP)
        print(f"loaded the genome in {time.perf_counter() - t:.1f} s", flush=True)
    plain = work / "genome.fa"
    if fresh or not plain.exists():
        shutil.copyfile(data / "genome.fa", plain)
        run("samtools", "faidx", str(plain))
        with open(work / "genome.fa.gz", "wb") as out:
            subprocess.run(["bgzip", "-@2", "-c", str(plain)], stdout=out, check=True)
        run("samtools", "faidx", str(work / "genome.fa.gz"))
    return root / SNAP


def build_transcriptome(work: Path, records: int) -> Path:
    """A snapshot with one collection `tx` of `records` records (names ENST…) over 2,000
    stored sequences of 200-3,000 nt: what matters here is the record count."""
    root = work / f"tx-root-{records}"
    if (root / SNAP).exists():
        return root / SNAP
    import numpy as np

    from seqrepofs.seqrepo import SeqRepo
    from seqrepofs.store.collections import CollectionWriter
    from seqrepofs.store.instances import snapshot

    shutil.rmtree(root, ignore_errors=True)
    t = time.perf_counter()
    rng = np.random.default_rng(23)
    lengths = {}
    with SeqRepo(root / "master", writeable=True) as sr:
        for i in range(2000):
            n = int(rng.integers(200, 3000))
            seq = np.frombuffer(b"ACGT", np.uint8)[rng.integers(0, 4, n)].tobytes().decode()
            sr.store(seq, [{"namespace": "pool", "alias": f"p{i}"}])
        sr.commit()
        for r in sr.aliases.find_aliases(namespace="pool"):
            lengths[r["seq_id"]] = sr.sequence_length(r["seq_id"])
    ids = sorted(lengths)
    with CollectionWriter(str(root / "master")) as writer:
        pending = writer.begin("tx")
        for i in range(records):
            seq_id = ids[i * 7919 % len(ids)]
            writer.add(pending, f"ENST{i:011d}.1", lengths[seq_id], seq_id)
        writer.finish(pending)
    snapshot(str(root), "master", SNAP)
    print(f"recorded {records} records in {time.perf_counter() - t:.1f} s", flush=True)
    return root / SNAP


def faidx(fasta: Path, regions: Path) -> float:
    t = time.perf_counter()
    subprocess.run(
        ["samtools", "faidx", str(fasta), "-r", str(regions)], check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return time.perf_counter() - t


def alternate(reps: int, contenders: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {k: [] for k in contenders}
    names = list(contenders)
    for rep in range(reps):
        for name in names if rep % 2 == 0 else names[::-1]:
            out[name].append(contenders[name]())
    return out


def genome_bench(args: argparse.Namespace, work: Path) -> dict:
    manifest, fresh = make_workload.ensure(
        work / "data", total_mb=args.total_mb, n_transcripts=100, n_regions=args.n_regions
    )
    data = work / "data"
    snap = build_genome(work, data, fresh)
    regions = data / "regions.txt"
    plain, bgz = work / "genome.fa", work / "genome.fa.gz"
    mnt = work / "mnt"
    mounted = mnt / "collections" / "genome.fa"
    results: dict = {"genome_mb": args.total_mb, "regions": args.n_regions}
    can_drop = drop_caches()
    with Mount(snap, mnt):
        want = run("samtools", "faidx", str(plain), "-r", str(regions))
        if run("samtools", "faidx", str(mounted), "-r", str(regions)) != want.upper():
            raise SystemExit("samtools faidx on the mount differs from the plain FASTA")
        warm = alternate(args.reps, {
            "mount": lambda: faidx(mounted, regions),
            "plain": lambda: faidx(plain, regions),
            "bgzip": lambda: faidx(bgz, regions),
        })  # fmt: skip

    def cold_mount() -> float:
        drop_caches()
        with Mount(snap, mnt):
            return faidx(mounted, regions)

    def cold_bgzip() -> float:
        drop_caches()
        return faidx(bgz, regions)

    def cold_plain() -> float:
        drop_caches()
        return faidx(plain, regions)

    cold = alternate(args.reps, {"mount": cold_mount, "bgzip": cold_bgzip, "plain": cold_plain})
    med = {f"warm {k}": statistics.median(v) for k, v in warm.items()}
    med.update({f"cold {k}": statistics.median(v) for k, v in cold.items()})
    results.update(runs={"warm": warm, "cold": cold}, medians=med, cold_dropped=can_drop)
    results["ratios"] = {
        "warm mount / plain (target <= 1.5)": med["warm mount"] / med["warm plain"],
        "warm mount / bgzip": med["warm mount"] / med["warm bgzip"],
        "cold mount / bgzip (target <= 1.0)": med["cold mount"] / med["cold bgzip"],
        "cold mount / plain": med["cold mount"] / med["cold plain"],
    }
    return results


def transcriptome_bench(args: argparse.Namespace, work: Path) -> dict:
    snap = build_transcriptome(work, args.records)
    mnt = work / "tx-mnt"
    out: dict = {"records": args.records}
    drop_caches()
    with Mount(snap, mnt) as m:
        top = mnt / "collections"
        os.listdir(mnt)
        out["rss_kb_start"] = status_kb(m.proc.pid, "VmRSS", "RssAnon", "VmHWM")
        for what in ("first ls -l (sizes: one scan)", "second ls -l"):
            t = time.perf_counter()
            run("ls", "-l", str(top))
            out[f"{what} s"] = time.perf_counter() - t
        out["rss_kb_after_ls"] = status_kb(m.proc.pid, "VmRSS", "RssAnon", "VmHWM")
        t = time.perf_counter()
        fai = (top / "tx.fa.fai").read_bytes()
        out["read .fa.fai s"] = time.perf_counter() - t
        out[".fa.fai MB"] = len(fai) / 1e6
        names = [line.split(b"\t", 1)[0].decode() for line in fai.splitlines()]
        picks = random.Random(1).sample(names, 1000)
        listfile = work / "tx-regions.txt"
        listfile.write_text("\n".join(picks) + "\n")
        t = time.perf_counter()
        faidx(top / "tx.fa", listfile)
        out["samtools faidx 1,000 records s"] = time.perf_counter() - t
        t = time.perf_counter()
        with open(top / "tx.fa", "rb") as fh:
            while fh.read(1 << 20):
                pass
        out["read whole .fa s"] = time.perf_counter() - t
        out[".fa MB"] = os.stat(top / "tx.fa").st_size / 1e6
        out["rss_kb_end"] = status_kb(m.proc.pid, "VmRSS", "RssAnon", "VmHWM")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/bench-collections", help="working directory")
    ap.add_argument("--total-mb", type=float, default=300.0, help="genome size (Mb)")
    ap.add_argument("--n-regions", type=int, default=20_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--records", type=int, default=3_000_000, help="0: no transcriptome")
    ap.add_argument("--skip-genome", action="store_true")
    ap.add_argument("--json", default=None, help="results file (default WORK/results.json)")
    args = ap.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {"nproc": os.cpu_count(), "load": os.getloadavg()}
    if not args.skip_genome:
        results["genome"] = g = genome_bench(args, work)
        print(f"genome {args.total_mb} Mb, {args.n_regions} regions, medians of {args.reps}"
              f" (cold: page cache dropped: {g['cold_dropped']})")  # fmt: skip
        for k, v in g["medians"].items():
            print(f"  {k:12s} {v:8.3f} s")
        for k, v in g["ratios"].items():
            print(f"  {k:38s} {v:6.2f}x")
    if args.records:
        results["transcriptome"] = t = transcriptome_bench(args, work)
        print(f"collection of {args.records} records")
        for k, v in t.items():
            print(f"  {k:34s} {v}")
    results["load_after"] = os.getloadavg()
    Path(args.json or work / "results.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
