#!/usr/bin/env python3
"""Load throughput: `seqrepofs load` vs the reference `seqrepo load`, in the same run.

Generates genome.fa + transcripts.fa with make_workload.py (beside this file), then loads both files
into a fresh root with each tool, alternating the order every repetition, and reports the median
wall time, throughput (Mnt/s), the ratio (reference time / seqrepofs time, so above 1 means
seqrepofs is faster) and the peak RSS of each load (from wait4, per process). Prints a table and
writes JSON. Importable: `run_benchmark(...)` returns the results dict.

    python scripts/bench/bench_load.py --quick                # seconds
    python scripts/bench/bench_load.py --total-mb 50          # the figure in the issue notes
    python scripts/bench/bench_load.py --total-mb 300 --reps 3 --json load.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_workload  # noqa: E402  (scripts/bench/make_workload.py, beside this file)

QUICK = {"total_mb": 5, "n_transcripts": 5000, "reps": 1}


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run a command; return (wall seconds, peak RSS MiB of that process tree's largest)."""
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: progress output can't block
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            tail = err.read()[-2000:].decode(errors="replace")
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {tail}")
    return wall, usage.ru_maxrss / 1024


def tool_commands(tool: str, root: Path, files: list[Path]) -> tuple[list[str], list[str]]:
    """(init command, load command) of a tool."""
    if tool == "seqrepofs":
        base = [sys.executable, "-m", "seqrepofs", "-r", str(root)]
    else:
        exe = shutil.which("seqrepo")
        if exe is None:
            raise SystemExit("the reference `seqrepo` command is not on PATH")
        base = [exe, "-r", str(root)]
    return base + ["init"], base + ["load", "-n", "refseq", *map(str, files)]


def stored_counts(instance: Path) -> tuple[int, int]:
    conn = sqlite3.connect(instance / "sequences" / "db.sqlite3")
    try:
        n, total = conn.execute("select count(*), sum(len) from seqinfo").fetchone()
    finally:
        conn.close()
    return int(n), int(total or 0)


def run_benchmark(
    total_mb: float = 50,
    reps: int = 3,
    n_transcripts: int = 50000,
    seed: int = 42,
    workdir: str | None = None,
    tools: tuple[str, ...] = ("seqrepofs", "seqrepo"),
) -> dict[str, Any]:
    """Measure both loaders on the same data; returns a JSON-able dict of results."""
    work = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="bench_load."))
    data = work / f"data-{total_mb:g}mb-{n_transcripts}-{seed}"
    manifest, _fresh = make_workload.ensure(
        data, total_mb=total_mb, n_transcripts=n_transcripts, seed=seed
    )
    files = [data / "genome.fa", data / "transcripts.fa"]
    env = {
        **os.environ,
        "SEQREPO_FD_CACHE_MAXSIZE": os.environ.get("SEQREPO_FD_CACHE_MAXSIZE", "0"),
    }
    runs: dict[str, list[dict[str, float]]] = {t: [] for t in tools}
    counts: dict[str, tuple[int, int]] = {}
    for rep in range(reps):
        order = tools if rep % 2 == 0 else tuple(reversed(tools))
        for tool in order:
            root = work / f"root-{tool}-{rep}"
            shutil.rmtree(root, ignore_errors=True)
            init, load = tool_commands(tool, root, files)
            subprocess.run(init, check=True, capture_output=True)
            wall, rss = timed(load, env)
            counts[tool] = stored_counts(root / "master")
            runs[tool].append({"seconds": wall, "peak_rss_mib": rss})
            shutil.rmtree(root, ignore_errors=True)
            print(f"  rep {rep + 1}/{reps} {tool:9s} {wall:8.2f} s  {rss:7.0f} MiB", flush=True)
    if len(set(counts.values())) != 1:
        raise RuntimeError(f"the tools stored different data: {counts}")
    # throughput counts the residues read (as the reference figure does)
    residues = manifest["genome"]["total_len"] + manifest["transcripts"]["total_len"]
    results: dict[str, Any] = {
        "benchmark": "load genome.fa + transcripts.fa into a fresh instance",
        "params": {
            "total_mb": total_mb,
            "n_transcripts": n_transcripts,
            "seed": seed,
            "reps": reps,
            "cpus": os.cpu_count(),
        },
        "input_bytes": sum(f.stat().st_size for f in files),
        "input_residues": residues,
        "input_records": manifest["genome"]["n_seqs"] + manifest["transcripts"]["n_seqs"],
        "stored_sequences": counts[tools[0]][0],
        "stored_residues": counts[tools[0]][1],
        "tools": {},
    }
    for tool in tools:
        secs = [r["seconds"] for r in runs[tool]]
        med = statistics.median(secs)
        results["tools"][tool] = {
            "seconds": secs,
            "median_seconds": med,
            "mnt_per_s": residues / 1e6 / med,
            "peak_rss_mib": max(r["peak_rss_mib"] for r in runs[tool]),
        }
    if "seqrepo" in tools and "seqrepofs" in tools:
        results["ratio"] = (
            results["tools"]["seqrepo"]["median_seconds"]
            / results["tools"]["seqrepofs"]["median_seconds"]
        )
    if not workdir:
        shutil.rmtree(work, ignore_errors=True)
    return results


def table(results: dict[str, Any]) -> str:
    mnt = results["input_residues"] / 1e6
    lines = [
        f"load of {mnt:.1f} Mnt in {results['input_records']} records"
        f" ({results['stored_sequences']} distinct sequences stored),"
        f" median of {results['params']['reps']}",
        f"{'tool':10s} {'median s':>9s} {'Mnt/s':>8s} {'peak RSS MiB':>13s}",
    ]
    for tool, r in results["tools"].items():
        lines.append(
            f"{tool:10s} {r['median_seconds']:9.2f} {r['mnt_per_s']:8.1f} {r['peak_rss_mib']:13.0f}"
        )
    if "ratio" in results:
        lines.append(f"ratio (seqrepo time / seqrepofs time): {results['ratio']:.1f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--total-mb", type=float, default=50, help="genome size in Mb")
    ap.add_argument("--n-transcripts", type=int, default=50000)
    ap.add_argument("--reps", type=int, default=3, help="repetitions per tool (median)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--quick", action="store_true", help="5 Mb genome, 5000 transcripts, 1 rep")
    ap.add_argument("--workdir", help="keep data (and reuse it) here instead of a temp dir")
    ap.add_argument("--json", dest="json_path", help="write the results here")
    ap.add_argument("--only", choices=["seqrepofs", "seqrepo"], help="measure one tool only")
    args = ap.parse_args(argv)
    if args.quick:
        args.total_mb, args.n_transcripts, args.reps = (
            QUICK["total_mb"],
            QUICK["n_transcripts"],
            QUICK["reps"],
        )
    tools = (args.only,) if args.only else ("seqrepofs", "seqrepo")
    results = run_benchmark(
        args.total_mb, args.reps, args.n_transcripts, args.seed, args.workdir, tools
    )
    print(table(results))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
