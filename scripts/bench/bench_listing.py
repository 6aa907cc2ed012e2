#!/usr/bin/env python3
"""Listing a large namespace through the mount, beside a minimal pyfuse3 filesystem.

Builds (once, in WORK) a snapshot whose `refseq` namespace holds --n aliases and whose
`Ensembl` namespace holds --n-small of the same sequences (short random sequences: a listing's
cost is per alias, not per residue), then, for each namespace, mounts afresh and times
`ls -f DIR | wc -l` for:

    seqrepofs list=all   four entries per alias (.fa .fa.fai .dict .fa.dict; the default)
    seqrepofs list=fa    one entry per alias (index files still open by name)
    minimal              minimal_fs.py with as many entries as seqrepofs list=all lists
    minimal (aliases)    minimal_fs.py with one entry per alias

and reads the daemon's VmRSS / VmHWM (/proc) after the listing, then again after
`find DIR -size -1G` (a stat of every entry, streamed: `ls -l` would hold them all) on the same
mount. Each mount is new, so the kernel starts without the
directory's dentries. Prints a table and writes WORK/listing.json.

    python3 scripts/bench/bench_listing.py --n 1000000 --n-small 300000
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent.parent
SEQ_LEN = 40


def seqrepofs(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "seqrepofs", *args], check=True)


def build(work: Path, n: int, n_small: int) -> Path:
    """A snapshot with n refseq aliases and n_small Ensembl aliases (made once)."""
    root = work / f"root-{n}-{n_small}"
    done = root / "built"
    if done.exists():
        return _snapshot(root)
    rng = np.random.default_rng(7)
    fasta = {ns: work / f"{ns}-{n}.fa" for ns in ("refseq", "Ensembl")}
    bases = np.frombuffer(b"ACGT", dtype=np.uint8)
    with open(fasta["refseq"], "wb") as rs, open(fasta["Ensembl"], "wb") as ens:
        for start in range(0, n, 100_000):
            count = min(100_000, n - start)
            seqs = bases[rng.integers(0, 4, size=(count, SEQ_LEN))]
            for i in range(count):
                seq = seqs[i].tobytes()
                rs.write(b">NP_%06d.1\n%s\n" % (start + i + 1, seq))
                if start + i < n_small:
                    ens.write(b">ENSP%011d.1\n%s\n" % (start + i + 1, seq))
    seqrepofs("-r", str(root), "init")
    for ns, path in fasta.items():
        seqrepofs("-r", str(root), "load", "-n", ns, str(path))
        path.unlink()
    seqrepofs("-r", str(root), "snapshot")
    done.touch()
    return _snapshot(root)


def _snapshot(root: Path) -> Path:
    return next(p for p in sorted(root.iterdir()) if p.name[:2] == "20" and p.is_dir())


def rss(pid: int) -> dict[str, float]:
    """VmRSS, VmHWM and RssAnon of a process, in MB. RssAnon is what the process allocated;
    the rest of VmRSS is mapped files (SQLite maps read-only databases: page cache)."""
    out = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon"):
                out[key] = int(value.split()[0]) / 1024
    return out


class Mount:
    """A foreground filesystem process serving `mnt` until stopped."""

    def __init__(self, cmd: list[str], mnt: Path) -> None:
        mnt.mkdir(parents=True, exist_ok=True)
        self.mnt = mnt
        with open(f"{mnt}.log", "ab") as log:
            self.proc = subprocess.Popen(cmd, stderr=log)
        deadline = time.monotonic() + 60
        while not os.path.ismount(mnt):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{cmd}: did not mount")
            time.sleep(0.05)

    def stop(self) -> None:
        subprocess.run(["fusermount3", "-u", "-z", str(self.mnt)], check=False)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def timed(shell: str) -> tuple[float, str]:
    t = time.perf_counter()
    out = subprocess.run(["sh", "-c", shell], check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - t, out.strip()


def measure(mount: Mount, directory: Path, expect: int) -> dict[str, float]:
    before = rss(mount.proc.pid)
    secs, count = timed(f"ls -f '{directory}' | wc -l")
    if int(count) != expect + 2:  # . and ..
        raise RuntimeError(f"{directory}: listed {count} entries, expected {expect + 2}")
    after_ls = rss(mount.proc.pid)
    secs_l, _ = timed(f"find '{directory}' -size -1G | wc -l")
    after_stat = rss(mount.proc.pid)
    return {
        "ls_f_s": round(secs, 2),
        "find_stat_s": round(secs_l, 2),
        "rss_start_mb": round(before["VmRSS"], 1),
        "anon_start_mb": round(before["RssAnon"], 1),
        "anon_after_find_mb": round(after_stat["RssAnon"], 1),
        "rss_after_ls_mb": round(after_ls["VmRSS"], 1),
        "rss_after_find_mb": round(after_stat["VmRSS"], 1),
        "hwm_mb": round(after_stat["VmHWM"], 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="refseq aliases [1,000,000]")
    ap.add_argument("--n-small", type=int, default=300_000, help="Ensembl aliases [300,000]")
    ap.add_argument("--work", default=str(PROJECT / "bench-out" / "listing"))
    ap.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="contenders in turn this many times (the machine's noise shows)",
    )
    ap.add_argument("--only", choices=("Ensembl", "refseq"), help="one namespace")
    args = ap.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    snapshot = build(work, args.n, args.n_small).resolve()
    mnt = work / "mnt"
    results = []
    namespaces = [(ns, n) for ns, n in (("Ensembl", args.n_small), ("refseq", args.n))
                  if args.only in (None, ns)]  # fmt: skip
    for (ns, aliases), _round in itertools.product(namespaces, range(args.rounds)):
        contenders: list[tuple[str, list[str], str, int]] = [
            ("seqrepofs list=all", ["-o", "list=all"], ns, 4 * aliases),
            ("seqrepofs list=fa", ["-o", "list=fa"], ns, aliases),
            ("minimal", [], "d", 4 * aliases),
            ("minimal (aliases)", [], "d", aliases),
        ]
        for label, opts, sub, entries in contenders:
            if label.startswith("minimal"):
                cmd = [sys.executable, str(HERE / "minimal_fs.py"), str(mnt), "--entries",
                       str(entries)]  # fmt: skip
            else:
                cmd = [sys.executable, "-m", "seqrepofs", "mount", "-f", str(snapshot), str(mnt),
                       *opts]  # fmt: skip
            mount = Mount(cmd, mnt)
            try:
                row = {"namespace": ns, "aliases": aliases, "contender": label, "entries": entries}
                row.update(measure(mount, mnt / sub, entries))
            finally:
                mount.stop()
            results.append(row)
            print(json.dumps(row), flush=True)
    (work / "listing.json").write_text(json.dumps(results, indent=1))
    print(f"\n{'namespace':10} {'contender':20} {'entries':>9} {'ls -f s':>8} {'find s':>8} "
          f"{'RSS MB start/ls/find':>22} {'peak MB':>8} {'anon MB start/end':>18}")  # fmt: skip
    for r in results:
        print(f"{r['namespace']:10} {r['contender']:20} {r['entries']:>9} {r['ls_f_s']:>8} "
              f"{r['find_stat_s']:>8} {r['rss_start_mb']:>7}/{r['rss_after_ls_mb']}/"
              f"{r['rss_after_find_mb']:<6} {r['hwm_mb']:>8} "
              f"{r['anon_start_mb']:>9}/{r['anon_after_find_mb']}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
