#!/usr/bin/env python3
"""A repository of real size (make_scale.py), seqrepofs beside biocommons.seqrepo, at several N.

For each --n (repeatable; 100,000 / 300,000 / 1,000,000 in the issue), in WORK/N/:

    load       init + `load -n refseq` + `load -n Ensembl` of release 1: ours vs `seqrepo load`
               (time, peak RSS of the load processes, bytes of the instance)
    load2      the same for release 2 into the same masters (new versions, re-pointed aliases)
    snapshot   `snapshot` of each master (time; bytes copied as ours reports them; statvfs
               growth), and ours again on a loop-mounted XFS image (mkfs.xfs -m reflink=1)
    status     `show-status` of ours' snapshot, by each tool
    check      `seqrepofs check` of the snapshot (the reference has no such command)
    mount      mount → first read; `ls -f` and `ls -l` of each --namespaces directory with the
               daemon's RSS after each, beside minimal_fs.py listing as many entries;
               `find MNT -name '*.fa.fai' | wc -l`
    walk       one fresh mount of the snapshot: `ls -f` then `find DIR -size -1G` (a stat of every
               entry, streamed) of every stored namespace's directory in turn; the daemon's
               VmRSS, RssAnon and peak (VmHWM) after each, and the peak at the end
    faidx      --faidx-files random files read with `samtools faidx` (p50/p99, cold = first read
               on a fresh mount, warm = again)
    master_faidx  the live master mounted: --master-files random files, 10 regions each in one
               `samtools faidx` call, cold then warm, beside the same files copied out as plain
               FASTA (indexed by samtools); the outputs must be equal
    api        --api-lookups random `fetch(acc, 0, 50)`: ours vs biocommons.seqrepo with
               SEQREPO_FD_CACHE_MAXSIZE=100 on the same snapshot (cold = first pass in a new
               process, warm = the same accessions again)
    rest       refget metadata and 100-residue subsequences of random ids with wrk (p50/p99)

Results are merged into WORK/results.json (re-read before each write, so runs of different N
may share WORK), so parts can run separately (`--only api,rest`)
and the table shows every N measured so far, with each figure's growth from the smallest to
the largest N beside the ideal (N's growth for totals, 1 for per-operation figures). The
reference is skipped above --reference-max-n (its load is the slow part). Large runs are
for a quiet machine, not CI:

    python3 scripts/bench/bench_scale.py --n 100000 --n 300000
    python3 scripts/bench/bench_scale.py --n 100000 --only api
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import make_scale  # noqa: E402

PARTS = (
    "load",
    "load2",
    "snapshot",
    "status",
    "check",
    "mount",
    "walk",
    "faidx",
    "master_faidx",
    "api",
    "rest",
)
SNAPSHOT = "2030-01-01"
SEQREPOFS = [sys.executable, "-m", "seqrepofs"]
REFERENCE = [shutil.which("seqrepo") or "seqrepo"]  # biocommons.seqrepo's CLI
Results = dict[str, Any]


# ---- processes ---------------------------------------------------------------------------------
def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run to completion; (seconds, peak RSS MB of the process, stdout). Raises on failure."""
    secs, rss, _cpu, out = run_cpu(cmd, env)
    return secs, rss, out


def run_cpu(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float, str]:
    """Run to completion; (seconds, peak RSS MB, CPU seconds (user + system), stdout).

    Peak RSS and CPU come from /usr/bin/time: a child forked from this process would report at
    least this process's own peak (the high-water mark survives fork and exec). CPU time is
    the figure to compare on a machine shared with other work: wall time there measures the
    machine's load as much as the program."""
    with (
        tempfile.NamedTemporaryFile() as rss,
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
    ):
        t = time.perf_counter()
        proc = subprocess.run(
            ["/usr/bin/time", "-o", rss.name, "-f", "%M %U %S", *cmd],
            stdout=out,
            stderr=err,
            env=env,
            check=False,
        )
        secs = time.perf_counter() - t
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            tail = err.read()[-2000:].decode(errors="replace")
            raise RuntimeError(f"{' '.join(cmd[:6])}…: exit {proc.returncode}\n{tail}")
        peak_kib, user, system = Path(rss.name).read_text().split()[-3:]
        return (
            secs,
            int(peak_kib) / 1024,
            float(user) + float(system),
            out.read().decode(errors="replace"),
        )


def disk_bytes(top: Path) -> int:
    """Bytes allocated under `top`, each inode once (hardlinks are shared)."""
    seen: set[int] = set()
    total = 0
    for dirpath, _dirs, files in os.walk(top):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            if st.st_ino not in seen:
                seen.add(st.st_ino)
                total += st.st_blocks * 512
    return total


def fs_used(path: Path) -> int:
    """Bytes in use on the file system of `path`, after flushing it alone (syncfs: a global
    sync would wait for every other writer on the machine)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if ctypes.CDLL(None, use_errno=True).syncfs(fd) != 0:
            raise OSError(ctypes.get_errno(), f"syncfs {path}")
    finally:
        os.close(fd)
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ---- one N -------------------------------------------------------------------------------------
class Scale:
    """The files and roots of one N, and the parts measured on them."""

    def __init__(self, work: Path, n: int, args: argparse.Namespace) -> None:
        self.n = n
        self.args = args
        self.dir = work / str(n)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ours = self.dir / "ours"
        self.ref = self.dir / "ref"
        self.snap = self.ours / SNAPSHOT
        self.with_reference = n <= args.reference_max_n
        self._manifest: dict[str, Any] | None = None

    @property
    def manifest(self) -> dict[str, Any]:
        if self._manifest is None:
            self._manifest = make_scale.generate(self.dir / "gen", self.n, self.args.seed)
        return self._manifest

    def _need(self, path: Path, part: str) -> None:
        if not path.exists():
            raise SystemExit(f"{path} is missing: run `--only {part}` for N={self.n} first")

    def _load_release(
        self, tool: list[str], root: Path, release: str
    ) -> tuple[float, float, float]:
        secs = rss = cpu = 0.0
        for step in self.manifest["releases"][release]:
            # ours records each file as a collection: a new release replaces the old one's
            replace = ["--replace"] if tool == SEQREPOFS else []
            s, r, c, _ = run_cpu(
                [*tool, "-r", str(root), "load", "-n", step["namespace"], *replace, *step["files"]]
            )
            secs += s
            rss = max(rss, r)
            cpu += c
        return secs, rss, cpu

    # each part returns {metric: value}
    def contenders(self) -> list[tuple[str, list[str], Path]]:
        """(name, command, root) of ours and, up to --reference-max-n, the reference."""
        out = [("ours", SEQREPOFS, self.ours)]
        if self.with_reference:
            out.append(("ref", REFERENCE, self.ref))
        return out

    def load(self) -> Results:
        out: Results = {}
        self.manifest  # noqa: B018 - generate before timing anything
        for name, tool, root in self.contenders():
            shutil.rmtree(root, ignore_errors=True)
            run([*tool, "-r", str(root), "init"])
            secs, rss, cpu = self._load_release(tool, root, "r1")
            out[f"load.{name}.s"] = secs
            out[f"load.{name}.cpu_s"] = cpu
            out[f"load.{name}.rss_mb"] = rss
            out[f"load.{name}.bytes"] = disk_bytes(root / "master")
        return out

    def load2(self) -> Results:
        out: Results = {}
        for name, tool, root in self.contenders():
            self._need(root / "master", "load")
            if (root / SNAPSHOT).exists():
                raise SystemExit(f"{root / SNAPSHOT} exists: release 2 is loaded; rerun load")
            before = disk_bytes(root / "master")
            secs, rss, cpu = self._load_release(tool, root, "r2")
            out[f"load2.{name}.s"] = secs
            out[f"load2.{name}.cpu_s"] = cpu
            out[f"load2.{name}.rss_mb"] = rss
            out[f"load2.{name}.bytes"] = disk_bytes(root / "master") - before
        return out

    def snapshot(self) -> Results:
        out: Results = {}
        for name, tool, root in self.contenders():
            self._need(root / "master", "load")
            dest = root / SNAPSHOT
            if dest.exists():
                subprocess.run(["chmod", "-R", "u+w", str(dest)], check=True)
                shutil.rmtree(dest)
            used = fs_used(root)
            secs, _rss, stdout = run([*tool, "-r", str(root), "snapshot", "-d", SNAPSHOT])
            out[f"snapshot.{name}.s"] = secs
            out[f"snapshot.{name}.fs_added"] = fs_used(root) - used
            m = re.search(r"; ([\d,]+) bytes copied", stdout)
            if m:
                out[f"snapshot.{name}.copied"] = int(m.group(1).replace(",", ""))
        out.update(self._snapshot_xfs())
        return out

    def _snapshot_xfs(self) -> Results:
        """Ours on a loop-mounted XFS image with reflink: master copied in, then snapshot."""
        if os.geteuid() != 0 or shutil.which("mkfs.xfs") is None:
            print("  (XFS snapshot skipped: needs root and mkfs.xfs)", file=sys.stderr)
            return {}
        master = self.ours / "master"
        size = max(1 << 30, 3 * disk_bytes(master))
        image, mnt = self.dir / "xfs.img", self.dir / "xfs"
        mnt.mkdir(exist_ok=True)
        with open(image, "wb") as fh:
            fh.truncate(size)
        try:
            subprocess.run(["mkfs.xfs", "-q", "-f", "-m", "reflink=1", str(image)], check=True)
            subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], check=True)
            try:
                subprocess.run(
                    ["cp", "-a", "--reflink=never", str(master), str(mnt / "master")], check=True
                )
                # a loaded master's databases are on disk (SQLite fsyncs each commit); cp's are
                # still dirty, and FICLONE would first wait for their writeback
                subprocess.run(["sync", "-f", str(mnt / "master")], check=True)
                used = fs_used(mnt)
                secs, _rss, stdout = run([*SEQREPOFS, "-r", str(mnt), "snapshot", "-d", SNAPSHOT])
                out = {
                    "snapshot.ours_xfs.s": secs,
                    "snapshot.ours_xfs.fs_added": fs_used(mnt) - used,
                }
                out["snapshot.ours_xfs.method"] = "reflink" if "reflink" in stdout else "copy"
                return out
            finally:
                subprocess.run(["umount", str(mnt)], check=False)
        finally:
            image.unlink(missing_ok=True)

    def status(self) -> Results:
        self._need(self.snap, "snapshot")
        out = {
            "status.ours.s": run([*SEQREPOFS, "-r", str(self.ours), "show-status", "-i", SNAPSHOT])[
                0
            ]
        }
        out["status.ref.s"] = run(
            [*REFERENCE, "-r", str(self.ours), "show-status", "-i", SNAPSHOT]
        )[0]
        return out

    def check(self) -> Results:
        self._need(self.snap, "snapshot")
        return {"check.ours.s": run([*SEQREPOFS, "-r", str(self.ours), "check", "-i", SNAPSHOT])[0]}

    def accessions(self, count: int, namespace: str = "NCBI") -> list[tuple[str, int]]:
        """`count` random current (alias, length) of a stored namespace in the snapshot."""
        conn = sqlite3.connect(f"file:{self.snap / 'aliases.sqlite3'}?mode=ro", uri=True)
        try:
            conn.execute(
                "attach database ? as fd",
                (f"file:{self.snap / 'sequences' / 'db.sqlite3'}?mode=ro",),
            )
            rows = conn.execute(
                "select a.alias, s.len from seqalias a join fd.seqinfo s using (seq_id)"
                " where a.namespace = ? and a.is_current = 1",
                (namespace,),
            ).fetchall()
        finally:
            conn.close()
        rng = random.Random(self.args.seed)
        return [rows[rng.randrange(len(rows))] for _ in range(count)]

    def mount(self) -> Results:
        import bench_listing as bl  # helper D's listing harness: Mount, rss, timed

        self._need(self.snap, "snapshot")
        out: Results = {}
        mnt = self.dir / "mnt"
        acc = self.accessions(1)[0][0]
        t = time.perf_counter()
        mount = bl.Mount([*SEQREPOFS, "mount", "-f", str(self.snap), str(mnt)], mnt)
        try:
            with open(mnt / "refseq" / f"{acc}.fa", "rb") as fh:
                fh.read(100)
            out["mount.first_read.s"] = time.perf_counter() - t
            out["mount.ours.rss_start_mb"] = bl.rss(mount.proc.pid)["VmRSS"]
            for ns in self.args.namespaces.split(","):
                secs, count = bl.timed(f"ls -f '{mnt / ns}' | wc -l")
                out[f"ls_f.{ns}.ours.s"] = secs
                out[f"ls_f.{ns}.entries"] = int(count) - 2
                out[f"ls_f.{ns}.ours.rss_mb"] = bl.rss(mount.proc.pid)["VmRSS"]
                out[f"ls_l.{ns}.ours.s"] = bl.timed(f"ls -l '{mnt / ns}' | wc -l")[0]
                mem = bl.rss(mount.proc.pid)
                out[f"ls_l.{ns}.ours.rss_mb"] = mem["VmRSS"]
                out[f"ls_l.{ns}.ours.anon_mb"] = mem["RssAnon"]
            secs, count = bl.timed(f"find '{mnt}' -name '*.fa.fai' | wc -l")
            out["find_fai.ours.s"], out["find_fai.count"] = secs, int(count)
            out["mount.ours.hwm_mb"] = bl.rss(mount.proc.pid)["VmHWM"]
        finally:
            mount.stop()
        if (HERE / "minimal_fs.py").exists():
            for ns in self.args.namespaces.split(","):
                entries = out[f"ls_f.{ns}.entries"]
                mount = bl.Mount(
                    [
                        sys.executable,
                        str(HERE / "minimal_fs.py"),
                        str(mnt),
                        "--entries",
                        str(entries),
                    ],
                    mnt,
                )
                try:
                    out[f"ls_f.{ns}.minimal.s"] = bl.timed(f"ls -f '{mnt / 'd'}' | wc -l")[0]
                    out[f"ls_l.{ns}.minimal.s"] = bl.timed(f"ls -l '{mnt / 'd'}' | wc -l")[0]
                    out[f"ls_l.{ns}.minimal.rss_mb"] = bl.rss(mount.proc.pid)["VmRSS"]
                finally:
                    mount.stop()
        return out

    def faidx(self) -> Results:
        import bench_listing as bl

        self._need(self.snap, "snapshot")
        picks = self.accessions(self.args.faidx_files)
        mnt = self.dir / "mnt"
        mount = bl.Mount([*SEQREPOFS, "mount", "-f", str(self.snap), str(mnt)], mnt)
        out: Results = {}
        try:
            for label in ("cold", "warm"):
                times = []
                for acc, length in picks:
                    start = random.Random(acc).randint(1, max(1, length - 50))
                    t = time.perf_counter()
                    subprocess.run(
                        [
                            "samtools",
                            "faidx",
                            str(mnt / "refseq" / f"{acc}.fa"),
                            f"{acc}:{start}-{start + 49}",
                        ],
                        check=True,
                        stdout=subprocess.DEVNULL,
                    )
                    times.append(time.perf_counter() - t)
                out[f"faidx.{label}.p50_ms"] = pct(times, 0.5) * 1e3
                out[f"faidx.{label}.p99_ms"] = pct(times, 0.99) * 1e3
            mem = bl.rss(mount.proc.pid)
            out["faidx.daemon_rss_mb"], out["faidx.daemon_anon_mb"] = mem["VmRSS"], mem["RssAnon"]
        finally:
            mount.stop()
        return out

    def walk(self) -> Results:
        """List and stat every namespace of the snapshot on one mount; the daemon's memory."""
        import bench_listing as bl

        self._need(self.snap, "snapshot")
        conn = sqlite3.connect(f"file:{self.snap / 'aliases.sqlite3'}?mode=ro", uri=True)
        stored = [r[0] for r in conn.execute("select distinct namespace from seqalias")]
        conn.close()
        mnt = self.dir / "mnt"
        mount = bl.Mount([*SEQREPOFS, "mount", "-f", str(self.snap), str(mnt)], mnt)
        out: Results = {}
        try:
            # each stored namespace once (its API names, e.g. refseq for NCBI, show the same
            # aliases again), and the collections
            shown = sorted(
                p.name
                for p in mnt.iterdir()
                if p.is_dir() and (p.name in stored or p.name == "collections")
            )
            out["walk.rss_start_mb"] = bl.rss(mount.proc.pid)["VmRSS"]
            entries = 0
            walk_s = 0.0
            pid = mount.proc.pid
            totals = {"ls_daemon": 0.0, "ls_client": 0.0, "find_daemon": 0.0}
            totals |= {"find_user": 0.0, "find_sys": 0.0}

            def timed_cpu(shell: str) -> tuple[float, str, float, float, float]:
                """Wall s, output, daemon CPU s, the command's user and system CPU s."""
                d0, c0 = _process_cpu(pid), os.times()
                secs, text = bl.timed(shell)
                d1, c1 = _process_cpu(pid), os.times()
                user = c1.children_user - c0.children_user
                return secs, text, d1 - d0, user, c1.children_system - c0.children_system

            slabs0 = _vmstat("slabs_scanned")
            for ns in shown:
                ls_s, count, ls_d, ls_u, ls_k = timed_cpu(f"ls -f '{mnt / ns}' | wc -l")
                find_s, _, find_d, find_u, find_k = timed_cpu(
                    f"find '{mnt / ns}' -size -1G | wc -l"
                )
                mem = bl.rss(pid)
                n_ns = int(count) - 2
                out[f"walk.{ns}.entries"] = n_ns
                out[f"walk.{ns}.ls_f_s"], out[f"walk.{ns}.find_s"] = ls_s, find_s
                out[f"walk.{ns}.find_daemon_cpu_s"] = find_d
                out[f"walk.{ns}.find_user_s"], out[f"walk.{ns}.find_sys_s"] = find_u, find_k
                out[f"walk.{ns}.rss_mb"], out[f"walk.{ns}.anon_mb"] = mem["VmRSS"], mem["RssAnon"]
                entries += n_ns
                walk_s += ls_s + find_s
                totals["ls_daemon"] += ls_d
                totals["ls_client"] += ls_u + ls_k
                totals["find_daemon"] += find_d
                totals["find_user"] += find_u
                totals["find_sys"] += find_k
                us = 1e6 / max(n_ns, 1)
                print(
                    f"  walk {ns}: {n_ns} entries, ls -f {ls_s:.1f} s ({ls_s * us:.1f} us/entry;"
                    f" daemon {ls_d * us:.1f}, ls {(ls_u + ls_k) * us:.1f} us CPU),"
                    f" find {find_s:.1f} s ({find_s * us:.1f} us/entry; daemon {find_d * us:.1f},"
                    f" find user {find_u * us:.1f} sys {find_k * us:.1f} us CPU), {mem},"
                    f" slab objects scanned for reclaim {_vmstat('slabs_scanned') - slabs0}",
                    file=sys.stderr,
                    flush=True,
                )
            mem = bl.rss(pid)
            out["walk.entries"], out["walk.s"] = entries, walk_s
            for key, value in totals.items():
                out[f"walk.{key}_cpu_s"] = value
            out["walk.slabs_scanned"] = _vmstat("slabs_scanned") - slabs0
            out["walk.hwm_mb"], out["walk.anon_mb"] = mem["VmHWM"], mem["RssAnon"]
            out["walk.namespaces"] = f"{len(shown)} dirs, {len(stored)} stored namespaces"
        finally:
            mount.stop()
        return out

    def master_faidx(self) -> Results:
        """`samtools faidx` on the mounted live master, cold and warm, beside plain FASTA."""
        import bench_listing as bl

        self._need(self.snap, "snapshot")
        master = self.ours / "master"
        picks = self.accessions(self.args.master_files)
        regions: list[list[str]] = []
        for acc, length in picks:
            rng = random.Random(acc)
            regions.append(
                [
                    f"{acc}:{s}-{s + 49}"
                    for s in (rng.randint(1, max(1, length - 50)) for _ in range(10))
                ]
            )
        mnt = self.dir / "mnt"
        plain = self.dir / "plain-fasta"
        shutil.rmtree(plain, ignore_errors=True)
        plain.mkdir()

        def faidx_all(path_of: Callable[[str], Path]) -> tuple[float, bytes]:
            t = time.perf_counter()
            outs = []
            for (acc, _len), regs in zip(picks, regions, strict=True):
                outs.append(
                    subprocess.run(
                        ["samtools", "faidx", str(path_of(acc)), *regs],
                        check=True,
                        capture_output=True,
                    ).stdout
                )
            return time.perf_counter() - t, b"".join(outs)

        def mounted(acc: str) -> Path:
            return mnt / "refseq" / f"{acc}.fa"

        def copied(acc: str) -> Path:
            return plain / f"{acc}.fa"

        mount = bl.Mount([*SEQREPOFS, "mount", "-f", str(master), str(mnt)], mnt)
        floor_mnt = self.dir / "mnt-static"
        floor = None
        out: Results = {}
        try:
            cold, want = faidx_all(mounted)
            out["master_faidx.cold_s"] = cold
            for acc, _len in picks:
                shutil.copyfile(mounted(acc), copied(acc))
                subprocess.run(["samtools", "faidx", str(copied(acc))], check=True)
            # the yardstick: the same files served from memory by the least pyfuse3 daemon
            floor = bl.Mount(
                [sys.executable, str(HERE / "static_fs.py"), str(plain), str(floor_mnt)], floor_mnt
            )

            def static(acc: str) -> Path:
                return floor_mnt / "refseq" / f"{acc}.fa"

            best: dict[str, float] = {}
            cpu: dict[str, float] = {}
            daemons = {"mounted": mount.proc.pid, "static": floor.proc.pid}
            for _rep in range(3):  # alternating: the machine's load drifts
                for name, path_of in (("mounted", mounted), ("plain", copied), ("static", static)):
                    before = _process_cpu(daemons[name]) if name in daemons else 0.0
                    secs, got = faidx_all(path_of)
                    if got != want:
                        raise RuntimeError(f"samtools faidx on {name} files: other output")
                    if secs < best.get(name, float("inf")):
                        best[name] = secs
                        if name in daemons:
                            cpu[name] = _process_cpu(daemons[name]) - before
            out["master_faidx.warm_s"], out["master_faidx.plain_s"] = best["mounted"], best["plain"]
            out["master_faidx.static_s"] = best["static"]
            out["master_faidx.daemon_cpu_s"] = cpu["mounted"]
            out["master_faidx.static_cpu_s"] = cpu["static"]
            out["master_faidx.files"] = len(picks)
            mem = bl.rss(mount.proc.pid)
            out["master_faidx.daemon_rss_mb"] = mem["VmRSS"]
        finally:
            if floor is not None:
                floor.stop()
            mount.stop()
            shutil.rmtree(plain, ignore_errors=True)
        return out

    def api(self) -> Results:
        """Each contender --api-reps times, alternating (the machine's load drifts), best kept."""
        self._need(self.snap, "snapshot")
        ids = self.dir / "api-ids.txt"
        ids.write_text("".join(f"{a}\n" for a, _len in self.accessions(self.args.api_lookups)))
        out: Results = {}
        env = dict(os.environ, SEQREPO_FD_CACHE_MAXSIZE="100")
        for _rep in range(self.args.api_reps):
            for name in ("ours", "ref"):
                _s, rss, stdout = run(
                    [sys.executable, __file__, "_api", name, str(self.snap), str(ids)], env=env
                )
                res = json.loads(stdout)
                for key, value in (
                    ("cold_s", res["cold"]),
                    ("warm_s", res["warm"]),
                    ("rss_mb", rss),
                ):
                    full = f"api.{name}.{key}"
                    out[full] = min(out.get(full, value), value)
        return out

    def rest(self) -> Results:
        import bench_rest as br  # server start/stop and wrk output parsing

        self._need(self.snap, "snapshot")
        conn = sqlite3.connect(f"file:{self.snap / 'aliases.sqlite3'}?mode=ro", uri=True)
        md5s = [r[0] for r in conn.execute("select alias from seqalias where namespace = 'MD5'")]
        conn.close()
        rng = random.Random(self.args.seed)
        picks = [md5s[rng.randrange(len(md5s))] for _ in range(min(5000, len(md5s)))]
        port = br.free_port()
        log = self.dir / "serve.log"
        proc = br.start(
            [*SEQREPOFS, "serve", str(self.snap), "--port", str(port), "--no-access-log"],
            port,
            "/refget/1/sequence/service-info",
            log,
        )
        out: Results = {}
        try:
            base = f"http://127.0.0.1:{port}"
            for kind, suffix in (("metadata", "/metadata"), ("subseq", "?start=0&end=50")):
                paths = [f"/refget/1/sequence/{m}{suffix}" for m in picks]
                cpu = _process_cpu(proc.pid)
                res = wrk(base, paths, self.args)
                # CPU per request of the server (all its threads) and of wrk: per-request cost
                # that the machine's load does not change as much as it changes latency
                requests = res["rps"] * self.args.rest_seconds
                res["server_cpu_us"] = (_process_cpu(proc.pid) - cpu) / requests * 1e6
                res["wrk_cpu_us"] = res.pop("wrk_cpu_s") / requests * 1e6
                for key, value in res.items():
                    out[f"rest.{kind}.{key}"] = value
        finally:
            br.stop(proc)
        return out


# Each wrk thread walks the id list with a prime stride from its own offset: spread, repeatable.
WRK_LUA = """
local next_offset = 0
function setup(thread)
  thread:set("offset", next_offset)
  next_offset = next_offset + 104729
end
local paths = {}
for line in io.lines("%(file)s") do paths[#paths + 1] = line end
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[(offset + n * 7919) %% #paths + 1])
end
"""


def _vmstat(key: str) -> int:
    """A counter of /proc/vmstat (0 if the kernel has no such counter)."""
    for line in Path("/proc/vmstat").read_text().splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            return int(value)
    return 0


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of a running process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(base: str, paths: list[str], args: argparse.Namespace) -> Results:
    import resource

    import bench_rest as br

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory() as tmp:
        listing, script = Path(tmp) / "paths.txt", Path(tmp) / "walk.lua"
        listing.write_text("".join(f"{p}\n" for p in paths))
        script.write_text(WRK_LUA % {"file": listing})
        proc = subprocess.run(
            [
                "wrk",
                "-t",
                "2",
                "-c",
                str(args.connections),
                "-d",
                f"{args.rest_seconds}s",
                "--latency",
                "--timeout",
                "10s",
                "-s",
                str(script),
                base,
            ],
            capture_output=True,
            text=True,
            timeout=args.rest_seconds + 60,
            check=True,
        )
    text = proc.stdout
    m = re.search(r"(\d+) requests in ([\d.]+)(m?s)", text)
    assert m, text
    secs = float(m.group(2)) / (1000 if m.group(3) == "ms" else 1)
    lat = {p: br._ms(v) for p, v in re.findall(r"^\s+(50|99)%\s+(\S+)", text, re.M)}
    errors = sum(int(x) for x in re.findall(r"Non-2xx or 3xx responses: (\d+)", text))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "rps": int(m.group(1)) / secs,
        "p50_ms": lat["50"],
        "p99_ms": lat["99"],
        "errors": errors,
        "wrk_cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
    }


# ---- the API measurement, in its own process ---------------------------------------------------
def api_child(impl: str, instance: str, ids_path: str) -> None:
    ids = Path(ids_path).read_text().split()
    if impl == "ours":
        from seqrepofs.seqrepo import SeqRepo
    else:
        from biocommons.seqrepo import SeqRepo  # SEQREPO_FD_CACHE_MAXSIZE=100 from the parent
    sr = SeqRepo(instance)
    res = {}
    for label in ("cold", "warm"):
        t = time.perf_counter()
        for acc in ids:
            sr.fetch(acc, 0, 50)
        res[label] = time.perf_counter() - t
    print(json.dumps(res))


# ---- the table ---------------------------------------------------------------------------------
# (label, ours key, reference key or None, "total" (grows with N at best) or "per-op" (flat))
ROWS: list[tuple[str, str, str | None, str]] = [
    ("load r1 (s)", "load.ours.s", "load.ref.s", "total"),
    ("load r1 CPU (s)", "load.ours.cpu_s", "load.ref.cpu_s", "total"),
    ("load r1 peak RSS (MB)", "load.ours.rss_mb", "load.ref.rss_mb", "total"),
    ("instance bytes (MB)", "load.ours.bytes", "load.ref.bytes", "total"),
    ("load r2 (s)", "load2.ours.s", "load2.ref.s", "total"),
    ("load r2 CPU (s)", "load2.ours.cpu_s", "load2.ref.cpu_s", "total"),
    ("load r2 peak RSS (MB)", "load2.ours.rss_mb", "load2.ref.rss_mb", "total"),
    ("snapshot (s)", "snapshot.ours.s", "snapshot.ref.s", "per-op"),
    ("snapshot bytes copied (MB)", "snapshot.ours.copied", None, "total"),
    ("snapshot fs growth (MB)", "snapshot.ours.fs_added", "snapshot.ref.fs_added", "total"),
    ("snapshot on XFS (s)", "snapshot.ours_xfs.s", None, "per-op"),
    ("snapshot on XFS fs growth (MB)", "snapshot.ours_xfs.fs_added", None, "per-op"),
    ("show-status (s)", "status.ours.s", "status.ref.s", "total"),
    ("check (s)", "check.ours.s", None, "total"),
    ("mount → first read (s)", "mount.first_read.s", None, "per-op"),
    ("find *.fa.fai (s)", "find_fai.ours.s", None, "total"),
    ("walk: entries listed and stat-ed", "walk.entries", None, "total"),
    ("walk: ls -f + find -size (s)", "walk.s", None, "total"),
    ("  daemon peak VmHWM (MB)", "walk.hwm_mb", None, "per-op"),
    ("  daemon RssAnon after (MB)", "walk.anon_mb", None, "per-op"),
    ("master faidx cold (s)", "master_faidx.cold_s", None, "per-op"),
    ("master faidx warm (s) [ref: plain]", "master_faidx.warm_s", "master_faidx.plain_s", "per-op"),
    (
        "  same, static_fs.py (s) [ref: plain]",
        "master_faidx.static_s",
        "master_faidx.plain_s",
        "per-op",
    ),
    (
        "  daemon CPU, ours / static_fs.py (s)",
        "master_faidx.daemon_cpu_s",
        "master_faidx.static_cpu_s",
        "per-op",
    ),
    ("faidx cold p50 (ms)", "faidx.cold.p50_ms", None, "per-op"),
    ("faidx cold p99 (ms)", "faidx.cold.p99_ms", None, "per-op"),
    ("faidx warm p50 (ms)", "faidx.warm.p50_ms", None, "per-op"),
    ("faidx warm p99 (ms)", "faidx.warm.p99_ms", None, "per-op"),
    ("  daemon VmRSS after (MB)", "faidx.daemon_rss_mb", None, "per-op"),
    ("  daemon RssAnon after (MB)", "faidx.daemon_anon_mb", None, "per-op"),
    ("API cold (s)", "api.ours.cold_s", "api.ref.cold_s", "per-op"),
    ("API warm (s)", "api.ours.warm_s", "api.ref.warm_s", "per-op"),
    ("refget metadata p50 (ms)", "rest.metadata.p50_ms", None, "per-op"),
    ("refget metadata p99 (ms)", "rest.metadata.p99_ms", None, "per-op"),
    ("refget subseq p50 (ms)", "rest.subseq.p50_ms", None, "per-op"),
    ("refget subseq p99 (ms)", "rest.subseq.p99_ms", None, "per-op"),
]


def listing_rows(results: dict[str, Results]) -> list[tuple[str, str, str | None, str]]:
    names = sorted(
        {k.split(".")[1] for r in results.values() for k in r if k.startswith(("ls_f.", "ls_l."))}
    )
    rows: list[tuple[str, str, str | None, str]] = []
    for ns in names:
        for cmd in ("ls_f", "ls_l"):
            shown = cmd.replace("_", " -")
            rows.append(
                (
                    f"{shown} {ns} (s) [ref: minimal]",
                    f"{cmd}.{ns}.ours.s",
                    f"{cmd}.{ns}.minimal.s",
                    "total",
                )
            )
            rows.append(("  daemon VmRSS after (MB)", f"{cmd}.{ns}.ours.rss_mb", None, "per-op"))
        rows.append(("  daemon RssAnon after (MB)", f"ls_l.{ns}.ours.anon_mb", None, "per-op"))
    return rows


def fmt(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if key.endswith(("bytes", "copied", "fs_added")):
        return f"{value / 1e6:.1f}"
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def table(results: dict[str, Results]) -> str:
    ns_sorted = sorted(results, key=int)
    lines = []
    head = f"{'':34}" + "".join(f"{'N=' + n:>28}" for n in ns_sorted)
    if len(ns_sorted) > 1:
        head += f"{'growth ours/ref':>18}{'ideal':>7}"
    lines.append(head)
    lines.append(f"{'':34}" + f"{'ours / reference / ratio':>28}" * len(ns_sorted))
    ideal_total = int(ns_sorted[-1]) / int(ns_sorted[0])
    for label, ours, ref, kind in ROWS + listing_rows(results):
        if not any(ours in results[n] for n in ns_sorted):
            continue
        cells = []
        for n in ns_sorted:
            o, r = results[n].get(ours), results[n].get(ref) if ref else None
            ratio = (
                f"{r / o:.2f}x"
                if isinstance(o, (int, float)) and isinstance(r, (int, float)) and o > 0
                else ""
            )
            cells.append(f"{fmt(ours, o) + ' / ' + fmt(ours, r) + ' / ' + ratio:>28}")
        line = f"{label:34}" + "".join(cells)
        if len(ns_sorted) > 1:
            first, last = results[ns_sorted[0]], results[ns_sorted[-1]]
            growth = []
            for key in (ours, ref):
                a, b = first.get(key) if key else None, last.get(key) if key else None
                ok = isinstance(a, (int, float)) and isinstance(b, (int, float)) and a > 0
                growth.append(f"{b / a:.2f}" if ok else "-")
            ideal = ideal_total if kind == "total" else 1.0
            line += f"{' / '.join(growth):>18}{ideal:>7.1f}"
        lines.append(line)
    lines.append(
        "ratio = reference / ours (above 1: ours is faster or smaller); for listings the"
        " 'reference' column is minimal_fs.py"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_api"]:
        api_child(*argv[1:4])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, action="append", help="sequences (repeatable) [100000]")
    ap.add_argument("--work", type=Path, default=Path("bench-out") / "scale")
    ap.add_argument("--only", default=",".join(PARTS), help=f"parts, of {','.join(PARTS)}")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--reference-max-n",
        type=int,
        default=300_000,
        help="load/snapshot the reference only up to this N [300000]",
    )
    ap.add_argument("--namespaces", default="refseq,Ensembl", help="directories to list")
    ap.add_argument("--faidx-files", type=int, default=10_000)
    ap.add_argument(
        "--master-files",
        type=int,
        default=1000,
        help="files read by master_faidx, 10 regions each [1000]",
    )
    ap.add_argument("--api-lookups", type=int, default=100_000)
    ap.add_argument("--api-reps", type=int, default=2, help="alternating runs, best kept [2]")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--rest-seconds", type=int, default=10)
    ap.add_argument("--table-only", action="store_true", help="print the saved results")
    args = ap.parse_args(argv)
    parts = [p for p in args.only.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        ap.error(f"unknown part(s) {', '.join(sorted(unknown))}; parts: {', '.join(PARTS)}")
    args.work.mkdir(parents=True, exist_ok=True)
    saved = args.work / "results.json"
    results: dict[str, Results] = json.loads(saved.read_text()) if saved.exists() else {}
    if not args.table_only:
        for n in args.n or [100_000]:
            scale = Scale(args.work, n, args)
            for part in PARTS:
                if part not in parts:
                    continue
                print(f"N={n}: {part} …", file=sys.stderr, flush=True)
                fn: Callable[[], Results] = getattr(scale, part)
                got = fn()
                # merged into the file as it is now: another run (another N) may have written
                if saved.exists():
                    results = json.loads(saved.read_text())
                results.setdefault(str(n), {}).update(got)
                tmp = saved.with_name(f".{saved.name}.{os.getpid()}")
                tmp.write_text(json.dumps(results, indent=1, sort_keys=True))
                tmp.replace(saved)
                print(f"  {json.dumps(got)}", file=sys.stderr, flush=True)
    if results:
        print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
