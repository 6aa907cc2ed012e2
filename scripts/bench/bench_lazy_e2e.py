#!/usr/bin/env python3
"""End to end: a published snapshot mounted from its URL, beside a local mount of the same
snapshot and beside htslib reading the same genome as one bgzipped FASTA over HTTP.

    python3 scripts/bench/bench_lazy_e2e.py                    # 300 Mb genome, 1,000 regions
    python3 scripts/bench/bench_lazy_e2e.py --total-mb 20 --reps 1

The workload (make_workload.py) is loaded with seqrepofs, snapshotted and `seqrepofs publish`ed
to a directory that a real nginx serves on 127.0.0.1 (tests/support/http_servers.py); the
genome is also bgzipped (`bgzip`, `samtools faidx`: .fai and .gzi beside it) into the same
directory. Every HTTP request goes through latency_proxy.py, which adds --rtt-ms (20) to each
request/response turn and to each new connection. Requests and bytes come from nginx's access
log. Contenders, alternating, --reps times, medians reported:

- lazy:   `seqrepofs mount URL MNT --cache-dir D`, then samtools on MNT/refseq/CHROM.fa
- local:  `seqrepofs mount ROOT/SNAPSHOT MNT`, the same samtools commands
- htslib: `samtools faidx http://127.0.0.1:PORT/genome.fa.gz REGION...` (one process)

Workloads: mount → first region (htslib: its first region); N random 100-bp regions cold (a
new cache directory, page cache dropped, a fresh mount) and warm (a fresh mount over the cache
the cold run filled; page cache warm); `cat` of the largest chromosome cold (htslib: `samtools
faidx URL CHROM`). Before any timing counts, the lazy mount's output must equal the local
mount's byte for byte, and htslib's must equal both apart from case (the store upper-cases).
Ratio = contender / lazy (above 1: the lazy mount is faster). Prints a table, the targets
met or not, and writes JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(PROJECT / "tests"))
import make_workload  # noqa: E402  (beside this file)
from latency_proxy import LatencyProxy  # noqa: E402
from support.http_servers import Nginx  # noqa: E402

SNAPSHOT = "2020-01-01"
NS = "refseq"
CONTENDERS = ("lazy", "local", "htslib")
SEQREPOFS = [sys.executable, "-m", "seqrepofs"]


def run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[bytes]:
    """Run a step; if it fails, stop with the command and what it said."""
    kw.setdefault("stdout", subprocess.PIPE)
    res = subprocess.run(cmd, stderr=subprocess.PIPE, **kw)
    if res.returncode != 0:
        raise SystemExit(
            f"{' '.join(map(str, cmd))} exited {res.returncode}:\n"
            f"{res.stderr.decode(errors='replace')[-2000:]}"
        )
    return res


def drop_caches(enabled: bool) -> None:
    if enabled:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")


# ---- the workload -----------------------------------------------------------------------


@dataclass
class Workload:
    root: Path  # the seqrepofs root (snapshot SNAPSHOT)
    www: Path  # what nginx serves: seqrepo/ (published) and genome.fa.gz(.fai, .gzi)
    regions: dict[str, list[str]]  # chromosome -> samtools regions, in first-seen order
    largest: str
    largest_fa_bytes: int  # the chromosome as a 60-column FASTA file (what `cat` reads)
    genome_mb: float


def prepare(work: Path, args: argparse.Namespace) -> Workload:
    """Generate (or reuse) the data, load, snapshot, publish and bgzip it."""
    data = work / "data"
    manifest, fresh = make_workload.ensure(
        data, total_mb=args.total_mb, n_transcripts=args.n_transcripts,
        n_regions=max(args.regions, make_workload.FULL["n_regions"]))  # fmt: skip
    root, www = work / "root", work / "www"
    stamp = work / "built.json"
    if fresh or not stamp.exists() or json.loads(stamp.read_text()) != manifest["params"]:
        stamp.unlink(missing_ok=True)
        for stale in (root, www):
            if stale.exists():
                run(["chmod", "-R", "u+w", str(stale)])
                shutil.rmtree(stale)
        www.mkdir(parents=True)
        t = time.perf_counter()
        run([*SEQREPOFS, "-r", str(root), "init"])
        run([*SEQREPOFS, "-r", str(root), "load", "-n", NS,
             str(data / "genome.fa"), str(data / "transcripts.fa")])  # fmt: skip
        run([*SEQREPOFS, "-r", str(root), "snapshot", "-d", SNAPSHOT])
        run([*SEQREPOFS, "publish", str(root / SNAPSHOT), str(www / "seqrepo")])
        with open(www / "genome.fa.gz", "wb") as out:
            run(["bgzip", "-@", "2", "-c", str(data / "genome.fa")], stdout=out)
        run(["samtools", "faidx", str(www / "genome.fa.gz")])  # .fai and .gzi
        print(f"built and published in {time.perf_counter() - t:.1f} s", flush=True)
        stamp.write_text(json.dumps(manifest["params"]))
    regions: dict[str, list[str]] = {}
    lines = (data / "regions.txt").read_text().splitlines()[: args.regions]
    for line in lines:
        regions.setdefault(line.rsplit(":", 1)[0], []).append(line)
    names, lengths = manifest["genome"]["names"], manifest["genome"]["lengths"]
    largest = names[lengths.index(max(lengths))]
    length = max(lengths)
    fa_bytes = len(f">{largest}\n") + length + -(-length // 60)
    return Workload(root, www, regions, largest, fa_bytes, manifest["genome"]["total_len"] / 1e6)


# ---- the contenders ---------------------------------------------------------------------


@dataclass
class Sample:
    seconds: float
    requests: int | None = None
    bytes: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Server:
    """nginx and the latency proxy in front of it; counts requests from nginx's log."""

    def __init__(self, nginx: Nginx, proxy: LatencyProxy) -> None:
        self.nginx, self.proxy = nginx, proxy

    def mark(self) -> int:
        return len(self.nginx.log())

    def since(self, mark: int, settle: float = 0.15) -> tuple[int, int, dict[str, list[int]]]:
        """(requests, bytes sent, {kind: [requests, bytes]}) logged after `mark`; waits for
        answers still ending."""
        time.sleep(settle)
        lines = self.nginx.log()[mark:]
        kinds: dict[str, list[int]] = {}
        for line in lines:
            k = kinds.setdefault(kind(line.path), [0, 0])
            k[0] += 1
            k[1] += line.bytes_sent
        return len(lines), sum(line.bytes_sent for line in lines), kinds


def kind(path: str) -> str:
    """What a request was for: the manifest, a database page, a .fai/.gzi, sequence data."""
    if path.endswith(".json") or "/seqrepofs/" in path:
        return "manifest"
    if path.endswith(".sqlite3"):
        return "database"
    if path.endswith((".fai", ".gzi")):
        return "index"
    return "data"


class Mount:
    """A seqrepofs mount (of a URL or a local snapshot) for one measurement."""

    def __init__(self, source: str, mnt: Path, cache_dir: Path | None) -> None:
        self.source, self.mnt, self.cache_dir = source, mnt, cache_dir
        self.mounted = False
        self.pids: list[int] = []

    def mount(self) -> None:
        self.mnt.mkdir(parents=True, exist_ok=True)
        cmd = [*SEQREPOFS, "mount", self.source, str(self.mnt)]
        if self.cache_dir is not None:
            cmd += ["--cache-dir", str(self.cache_dir)]
        run(cmd)
        self.mounted = True

    def daemon_pids(self) -> list[int]:
        """The daemon serving this mount point (found by its command line)."""
        pids = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"mount" in argv and str(self.mnt).encode() in argv:
                pids.append(int(proc.name))
        return pids

    def umount(self) -> None:
        """fusermount3 -u: `seqrepofs umount` first asks the daemon for statfs, which a lazy
        mount once answered by reading the whole sequence database; umount_once measures it
        on its own. Waits for the daemon to exit, so the next mount finds its cache quiet."""
        if self.mounted:
            self.pids = self.daemon_pids()
            subprocess.run(["fusermount3", "-u", str(self.mnt)], capture_output=True)
            self.mounted = False
            self.wait_exit()

    def wait_exit(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(
            Path(f"/proc/{pid}").exists() for pid in self.pids
        ):
            time.sleep(0.02)

    def fa(self, chrom: str) -> Path:
        return self.mnt / NS / f"{chrom}.fa"


class Bench:
    def __init__(self, wl: Workload, server: Server, work: Path, args: argparse.Namespace):
        self.wl, self.server, self.work, self.args = wl, server, work, args
        self.url = f"{server.proxy.url}/seqrepo/{SNAPSHOT}"
        self.genome_url = f"{server.proxy.url}/genome.fa.gz"
        self.drop = not args.no_drop_caches
        self.results: dict[str, dict[str, list[Sample]]] = {}
        self.outputs: dict[tuple[str, str], bytes] = {}  # (workload, contender) -> output
        self.cache_n = 0
        self.first = next(iter(wl.regions.values()))[0]
        self.all_regions = work / "regions-all.txt"  # grouped by chromosome, as the mounts read
        self.all_regions.write_text("".join(r + "\n" for rs in wl.regions.values() for r in rs))
        self.per_chrom = {}
        (work / "regions").mkdir(exist_ok=True)
        for chrom, rs in wl.regions.items():
            self.per_chrom[chrom] = work / "regions" / f"{chrom}.txt"
            self.per_chrom[chrom].write_text("".join(r + "\n" for r in rs))
        self.cwd = work / "cwd"  # htslib may leave downloaded indexes in its working directory
        self.cwd.mkdir(exist_ok=True)
        self.last_cache: Path | None = None  # the cache a cold lazy run filled
        self.last_warm_cache: Path | None = None  # the cache a warm lazy run mounts
        self.umount_stats: dict[str, float] | None = None

    # -- helpers
    def new_cache(self) -> Path:
        self.cache_n += 1
        path = self.work / "caches" / f"c{self.cache_n}"
        if path.exists():
            shutil.rmtree(path)
        path.parent.mkdir(exist_ok=True)
        return path

    def mount_for(self, who: str, cache: Path | None = None) -> Mount:
        mnt = self.work / f"mnt-{who}"
        if who == "lazy":
            return Mount(self.url, mnt, cache or self.new_cache())
        return Mount(str(self.wl.root / SNAPSHOT), mnt, None)

    def faidx_mount(self, m: Mount) -> bytes:
        out = []
        for chrom, path in self.per_chrom.items():
            out.append(run(["samtools", "faidx", str(m.fa(chrom)), "-r", str(path)]).stdout)
        return b"".join(out)

    def faidx_http(self, *regions: str) -> bytes:
        return run(["samtools", "faidx", self.genome_url, *regions], cwd=self.cwd).stdout

    def record(self, workload: str, who: str, sample: Sample, output: bytes | None) -> None:
        self.results.setdefault(workload, {}).setdefault(who, []).append(sample)
        if output is not None and (workload, who) not in self.outputs:
            self.outputs[(workload, who)] = output

    # -- workloads: each returns (Sample, output) for one contender
    def timed_http(self, *args: str) -> tuple[Sample, bytes]:
        mark = self.server.mark()
        t = time.perf_counter()
        out = self.faidx_http(*args)
        return self._sample(t, mark), out

    def timed_mount(
        self, m: Mount, work: Callable[[Mount], bytes], with_mount: bool = False
    ) -> tuple[Sample, bytes]:
        """Time `work` on the mount (and the mount itself if `with_mount`); requests are
        counted before unmounting, as an unmount asks the daemon for statfs."""
        mark0 = self.server.mark()
        t0 = time.perf_counter()
        try:
            m.mount()
            mark = self.server.mark()
            t = time.perf_counter()
            out = work(m)
            dt = time.perf_counter() - (t0 if with_mount else t)
            s = self._sample(t, mark0 if with_mount else mark, dt)
            s.extra["mount_seconds"] = t - t0
            s.extra["mount_requests"] = mark - mark0
        finally:
            m.umount()
        return s, out

    def first_region(self, who: str) -> tuple[Sample, bytes]:
        drop_caches(self.drop)
        if who == "htslib":
            return self.timed_http(self.first)
        chrom = self.first.rsplit(":", 1)[0]
        split: dict[str, float] = {}

        def work(m: Mount) -> bytes:
            t = time.perf_counter()
            os.stat(m.fa(chrom))  # the path's lookup: namespace, alias, sequence rows
            split["lookup"] = time.perf_counter() - t
            return run(["samtools", "faidx", str(m.fa(chrom)), self.first]).stdout

        s, out = self.timed_mount(self.mount_for(who), work, with_mount=True)
        s.extra["lookup_seconds"] = split["lookup"]
        return s, out

    def regions_cold(self, who: str) -> tuple[Sample, bytes]:
        drop_caches(self.drop)
        if who == "htslib":
            return self.timed_http("-r", str(self.all_regions))
        m = self.mount_for(who)
        self.last_cache = m.cache_dir
        s, out = self.timed_mount(m, self.faidx_mount)
        if m.cache_dir is not None:
            s.extra["cache_bytes"] = du(m.cache_dir)
        return s, out

    def regions_warm(self, who: str) -> tuple[Sample, bytes]:
        if who == "htslib":  # htslib keeps no cache between processes: the same run again
            return self.timed_http("-r", str(self.all_regions))
        m = self.mount_for(who, self.last_warm_cache if who == "lazy" else None)
        return self.timed_mount(m, self.faidx_mount)

    def cat_cold(self, who: str) -> tuple[Sample, bytes]:
        drop_caches(self.drop)
        chrom = self.wl.largest
        if who == "htslib":
            s, out = self.timed_http(chrom)
        else:
            split: dict[str, float] = {}

            def work(m: Mount) -> bytes:
                t = time.perf_counter()
                os.stat(m.fa(chrom))  # the path's lookup, timed apart (it is in the figure)
                split["lookup"] = time.perf_counter() - t
                return run(["cat", str(m.fa(chrom))]).stdout

            s, out = self.timed_mount(self.mount_for(who), work)
            s.extra["lookup_seconds"] = split["lookup"]
            s.extra["read_mb_per_s"] = (
                self.wl.largest_fa_bytes / 1e6 / (s.seconds - split["lookup"])
            )
        s.extra["mb_per_s"] = self.wl.largest_fa_bytes / 1e6 / s.seconds
        # (digest of the bytes, digest of the upper-cased bytes): htslib keeps soft-masking
        return s, hashlib.sha256(out).digest() + hashlib.sha256(out.upper()).digest()

    def umount_once(self) -> dict[str, float]:
        """`seqrepofs umount` of a lazy mount that read one region (it asks for statfs)."""
        m = self.mount_for("lazy")
        m.mount()
        m.pids = m.daemon_pids()
        chrom = self.first.rsplit(":", 1)[0]
        run(["samtools", "faidx", str(m.fa(chrom)), self.first])
        mark = self.server.mark()
        t = time.perf_counter()
        run([*SEQREPOFS, "umount", str(m.mnt)])
        secs = time.perf_counter() - t
        m.mounted = False
        m.wait_exit()
        n, nbytes, _kinds = self.server.since(mark)
        return {"seconds": secs, "requests": n, "bytes": nbytes}

    def _sample(self, t: float, mark: int, dt: float | None = None) -> Sample:
        seconds = time.perf_counter() - t if dt is None else dt
        n, b, kinds = self.server.since(mark)
        return Sample(seconds, n, b, {"by_kind": kinds})

    # -- driving
    def run_workload(
        self,
        name: str,
        fn: Callable[[str], tuple[Sample, bytes]],
        contenders: tuple[str, ...] = CONTENDERS,
    ) -> None:
        for rep in range(self.args.reps):
            order = contenders if rep % 2 == 0 else contenders[::-1]
            for who in order:
                sample, out = fn(who)
                self.record(name, who, sample, out)
        meds = {w: statistics.median(s.seconds for s in ss) for w, ss in self.results[name].items()}
        print(f"{name}: " + ", ".join(f"{w} {v:.3f} s" for w, v in meds.items()), flush=True)

    def check_outputs(self, name: str) -> None:
        """The lazy mount's output is the local mount's, byte for byte; htslib's the same
        residues (case aside: the store upper-cases)."""
        lazy, local = self.outputs[(name, "lazy")], self.outputs[(name, "local")]
        if lazy != local or not lazy:
            raise SystemExit(f"{name}: the lazy mount's output differs from the local mount's")
        hts = self.outputs.get((name, "htslib"))
        if hts is not None and name != "cat":
            if hts.upper() != local.upper():
                raise SystemExit(f"{name}: htslib's output differs from the mounts'")
        print(f"{name}: outputs agree ({len(lazy):,} bytes)", flush=True)

    def go(self, workloads: set[str]) -> None:
        if "first" in workloads:
            self.run_workload("first region", self.first_region)
            self.check_outputs("first region")
        if "regions" in workloads:
            self.regions()
        if "cat" in workloads:
            self.cat()
        if "umount" in workloads:
            self.umount_stats = self.umount_once()
            print(
                f"seqrepofs umount of a lazy mount: {self.umount_stats['seconds']:.2f} s,"
                f" {self.umount_stats['requests']:.0f} requests",
                flush=True,
            )

    def regions(self) -> None:
        # Warm runs mount the cache a cold run filled: every cold run first, then warm.
        warm_caches: list[Path | None] = []

        def cold(who: str) -> tuple[Sample, bytes]:
            s, out = self.regions_cold(who)
            if who == "lazy":
                warm_caches.append(self.last_cache)
            return s, out

        self.run_workload("regions cold", cold)
        self.check_outputs("regions cold")

        def warm(who: str) -> tuple[Sample, bytes]:
            self.last_warm_cache = warm_caches[-1]
            return self.regions_warm(who)

        self.run_workload("regions warm", warm)
        self.check_outputs("regions warm")

    def cat(self) -> None:
        self.run_workload("cat cold", self.cat_cold)
        lazy, local = self.outputs[("cat cold", "lazy")], self.outputs[("cat cold", "local")]
        if lazy != local:
            raise SystemExit("cat: the lazy mount's bytes differ from the local mount's")
        if self.outputs[("cat cold", "htslib")][32:] != local[32:]:
            raise SystemExit("cat: htslib's residues differ from the mounts'")
        print(f"cat cold: outputs agree (sha256 {lazy[:8].hex()}…)", flush=True)


def small_send_buffer(nginx: Nginx) -> Nginx:
    """nginx with a 64 KiB socket send buffer: its log counts what it handed to the socket,
    and on loopback an autotuned buffer takes megabytes a reader that hangs up never gets
    (htslib's open-ended ranges); on a network they would not have left the server."""
    conf = nginx.state / "nginx.conf"
    listen = f"listen 127.0.0.1:{nginx.port};"
    text = conf.read_text()
    assert listen in text
    conf.write_text(text.replace(listen, f"listen 127.0.0.1:{nginx.port} sndbuf=64k;"))
    return nginx


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# ---- the report -------------------------------------------------------------------------


def med(samples: list[Sample], key: Callable[[Sample], float | None]) -> float | None:
    values = [v for v in (key(s) for s in samples) if v is not None]
    return statistics.median(values) if values else None


def cell(value: float | None, fmt: str, width: int) -> str:
    return f"{value:{width}{fmt}}" if value is not None else " " * width


def report(b: Bench) -> tuple[str, dict[str, Any], list[tuple[str, bool, str]]]:
    n = sum(len(r) for r in b.wl.regions.values())
    rows = [
        f"{'workload':14s} {'contender':9s} {'median s':>9s} {'ratio':>7s} {'requests':>8s}"
        f" {'bytes':>12s} {'req/region':>10s} {'B/region':>9s} {'MB/s':>6s}"
    ]
    rows.append("-" * len(rows[0]))
    data: dict[str, Any] = {}
    for name, by in b.results.items():
        lazy_s = med(by["lazy"], lambda s: s.seconds)
        data[name] = {}
        for who, samples in by.items():
            secs = med(samples, lambda s: s.seconds)
            reqs = med(samples, lambda s: s.requests)
            nbytes = med(samples, lambda s: s.bytes)
            mbs = med(samples, lambda s: s.extra.get("mb_per_s"))
            assert secs is not None and lazy_s is not None
            per = name.startswith("regions") and reqs is not None and nbytes is not None
            rows.append(" ".join([
                f"{name:14s} {who:9s} {secs:9.3f}",
                " " * 7 if who == "lazy" else f"{secs / lazy_s:6.2f}x",
                cell(reqs, ".0f", 8), cell(nbytes, ",.0f", 12),
                cell(reqs / n if per else None, ".2f", 10),  # type: ignore[operator]
                cell(nbytes / n if per else None, ".0f", 9),  # type: ignore[operator]
                cell(mbs, ".1f", 6)]).rstrip())  # fmt: skip
            digest = b.outputs.get((name, who))
            data[name][who] = {
                "median_seconds": secs, "median_requests": reqs, "median_bytes": nbytes,
                "median_mb_per_s": mbs,
                "output_sha256": hashlib.sha256(digest).hexdigest() if digest else None,
                "runs": [{"seconds": s.seconds, "requests": s.requests, "bytes": s.bytes,
                          **s.extra} for s in samples]}  # fmt: skip
    return "\n".join(rows), data, targets(data, n)


def splits(r: dict[str, Any]) -> list[str]:
    """Where a mount's time went (medians): mounting, the path's lookup, the reading."""

    def m(runs: list[dict[str, Any]], key: str) -> float:
        return statistics.median(x[key] for x in runs)

    out = ["\nthe lazy mount's requests by kind (first run): requests, bytes"]
    for name, by in r.items():
        kinds = by["lazy"]["runs"][0].get("by_kind", {})
        out.append(f"  {name}: " + "; ".join(f"{k} {n}, {b:,}" for k, (n, b) in kinds.items()))
    out.append("\nwhere the mounts' time went (medians):")
    for who in ("lazy", "local"):
        if "first region" in r:
            runs = r["first region"][who]["runs"]
            mount, lookup = m(runs, "mount_seconds"), m(runs, "lookup_seconds")
            total = m(runs, "seconds")
            out.append(
                f"  first region, {who}: mount {mount:.2f} s ({m(runs, 'mount_requests'):.0f}"
                f" requests), path lookup {lookup:.2f} s, samtools {total - mount - lookup:.2f} s"
            )
        if "cat cold" in r:
            runs = r["cat cold"][who]["runs"]
            out.append(
                f"  cat cold, {who}: path lookup {m(runs, 'lookup_seconds'):.2f} s, then"
                f" {m(runs, 'read_mb_per_s'):.0f} MB/s"
            )
    return out


def targets(r: dict[str, Any], n: int) -> list[tuple[str, bool, str]]:
    """The issue's targets that this run's workloads measured: (what, met, figure)."""
    out = []
    if "first region" in r:
        secs = r["first region"]["lazy"]["median_seconds"]
        out.append(("mount → first region < 1.5 s", secs < 1.5, f"{secs:.2f} s"))
    if "regions cold" in r:
        lazy, hts = r["regions cold"]["lazy"], r["regions cold"]["htslib"]
        at_mount = statistics.median(x["mount_requests"] for x in lazy["runs"])
        per = lazy["median_requests"] / n
        out.append(
            (
                "cold regions ≤ 2 requests each",
                per <= 2,
                f"{per:.2f} (+ {at_mount:.0f} while mounting)",
            )
        )
        out.append(
            (
                "cold regions: fewer bytes than htslib",
                lazy["median_bytes"] < hts["median_bytes"],
                f"{lazy['median_bytes']:,.0f} vs {hts['median_bytes']:,.0f}",
            )
        )
    if "regions warm" in r:
        lazy, local = r["regions warm"]["lazy"], r["regions warm"]["local"]
        ratio = lazy["median_seconds"] / local["median_seconds"]
        out.append(
            (
                "warm ≤ 1.2× a local snapshot",
                ratio <= 1.2,
                f"{ratio:.2f}× ({lazy['median_requests']:.0f} requests)",
            )
        )
    if "cat cold" in r:
        mbs = r["cat cold"]["lazy"]["median_mb_per_s"]
        out.append(("cold cat ≥ 50 MB/s", mbs >= 50, f"{mbs:.0f} MB/s"))
    for name in ("regions cold", "regions warm", "cat cold"):
        if name in r:
            lz, hts = r[name]["lazy"]["median_seconds"], r[name]["htslib"]["median_seconds"]
            out.append(
                (
                    f"{name}: at least as fast as htslib over HTTP",
                    lz <= hts,
                    f"{lz:.2f} s vs {hts:.2f} s",
                )
            )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=PROJECT / "bench-out" / "lazy-e2e")
    ap.add_argument("--total-mb", type=float, default=300.0, help="genome size in Mb [300]")
    ap.add_argument("--n-transcripts", type=int, default=50_000, help="transcripts [50,000]")
    ap.add_argument("--regions", type=int, default=1000, help="random 100-bp regions [1,000]")
    ap.add_argument("--reps", type=int, default=3, help="repetitions per workload [3]")
    ap.add_argument("--rtt-ms", type=float, default=20.0, help="latency added per turn [20]")
    ap.add_argument(
        "--no-drop-caches",
        action="store_true",
        help="do not drop the page cache before cold runs (needs root otherwise)",
    )
    ap.add_argument(
        "--workloads",
        default="first,regions,cat,umount",
        help="comma-separated: first, regions (cold and warm), cat, umount [all]",
    )
    ap.add_argument("--json", type=Path, default=None, help="results [WORK/results.json]")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # unmount and stop the servers
    unknown = set(args.workloads.split(",")) - {"first", "regions", "cat", "umount"}
    if unknown:
        raise SystemExit(f"unknown workloads: {', '.join(sorted(unknown))}")
    if not args.no_drop_caches and os.geteuid() != 0:
        raise SystemExit("dropping the page cache needs root; pass --no-drop-caches")
    for tool in ("samtools", "bgzip"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed")
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    wl = prepare(work, args)
    n = sum(len(r) for r in wl.regions.values())
    print(
        f"genome {wl.genome_mb:.1f} Mb; {n} regions over {len(wl.regions)} chromosomes;"
        f" largest {wl.largest} ({wl.largest_fa_bytes / 1e6:.1f} MB as FASTA);"
        f" {args.rtt_ms:g} ms added per request",
        flush=True,
    )
    state = work / "servers"
    shutil.rmtree(state, ignore_errors=True)
    with (
        small_send_buffer(Nginx(wl.www, state / "nginx")) as nginx,
        LatencyProxy(nginx.port, args.rtt_ms, state / "proxy.log") as proxy,
    ):
        bench = Bench(wl, Server(nginx, proxy), work, args)
        bench.go(set(args.workloads.split(",")))
        connections = proxy.connections()
    text, data, targets = report(bench)
    print()
    print(text)
    print(
        "\nratio = contender / lazy (above 1: the lazy mount is faster); requests and bytes"
        " from nginx's log (lazy regions: after the mount; htslib: its whole run);"
        f" {connections} connections through the proxy"
    )
    for line in splits(data):
        print(line)
    if bench.umount_stats is not None:
        u = bench.umount_stats
        print(
            f"\nseqrepofs umount of a lazy mount that read one region: {u['seconds']:.2f} s,"
            f" {u['requests']:.0f} requests, {u['bytes']:,.0f} bytes (statfs)"
        )
    print("\ntargets:")
    for what, ok, figure in targets:
        print(f"  {'✓' if ok else '✗'} {what}: {figure}")
    result = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version()},
        "genome_mb": wl.genome_mb, "regions": n, "reps": args.reps, "rtt_ms": args.rtt_ms,
        "dropped_caches": not args.no_drop_caches, "largest": wl.largest,
        "workloads": data,
        "umount": bench.umount_stats,
        "targets": [{"target": w, "met": ok, "figure": f} for w, ok, f in targets],
    }  # fmt: skip
    out = args.json or work / "results.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"\nresults written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
