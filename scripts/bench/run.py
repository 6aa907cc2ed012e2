#!/usr/bin/env python3
"""Side-by-side benchmark of seqrepofs against the reference tools, in one run.

Generates the workload with make_workload.py (beside this file), builds the same repository
with seqrepofs and with biocommons.seqrepo, then runs every workload for every contender,
alternating, several repetitions, and reports medians and the ratio (contender time / seqrepofs
time, so a ratio above 1 means seqrepofs is faster). Prints a table and writes JSON.

    python3 scripts/bench/run.py --quick            # < 2 minutes
    python3 scripts/bench/run.py                    # 300 Mb genome, < 30 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent.parent
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(HERE))
import make_workload  # noqa: E402  (scripts/bench/make_workload.py, beside this file)

PY = sys.executable

# Snippets run in a fresh interpreter so environment variables read at import take effect.
API_SLICES = r"""
import sys, time, json
mod = sys.argv[1]; root = sys.argv[2]; regions = sys.argv[3]
if mod == "seqrepofs":
    from seqrepofs import SeqRepo
else:
    from biocommons.seqrepo import SeqRepo
sr = SeqRepo(root)
qs = [l.split("\t") for l in open(regions).read().splitlines()]
qs = [(c, int(a), int(b)) for c, a, b in qs]
t = time.perf_counter()
n = 0
for c, a, b in qs:
    n += len(sr.fetch(c, a, b, namespace="refseq"))
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "residues": n}))
"""

API_WHOLE = r"""
import sys, time, json
mod, root, name = sys.argv[1:4]
if mod == "seqrepofs":
    from seqrepofs import SeqRepo
else:
    from biocommons.seqrepo import SeqRepo
sr = SeqRepo(root)
t = time.perf_counter()
s = sr.fetch(name, namespace="refseq")
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "residues": len(s)}))
"""

API_TRANSCRIPTS = r"""
import sys, time, json
mod, root, names = sys.argv[1:4]
if mod == "seqrepofs":
    from seqrepofs import SeqRepo
else:
    from biocommons.seqrepo import SeqRepo
sr = SeqRepo(root)
accs = open(names).read().split()
t = time.perf_counter()
n = 0
for acc in accs:
    n += len(sr.fetch(acc, namespace="refseq"))
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "residues": n}))
"""


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess[str]:
    """Run a step of the benchmark; if it fails, stop with the command and what it said."""
    res = subprocess.run(cmd, text=True, capture_output=True, **kw)
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {res.returncode}:\n{res.stderr[-2000:]}")
    return res


def timed(cmd: list[str], **kw) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)
    return time.perf_counter() - t


def py_json(snippet: str, args: list[str], env: dict[str, str] | None = None) -> dict:
    out = run([PY, "-c", snippet, *args], env={**os.environ, **(env or {})})
    return json.loads(out.stdout.strip().splitlines()[-1])


def drop_caches() -> bool:
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


class Bench:
    def __init__(self, work: Path, reps: int) -> None:
        self.work = work
        self.reps = reps
        self.results: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        self.units: dict[str, str] = {}
        self.notes: dict[str, str] = {}

    def record(self, workload: str, contender: str, value: float, unit: str = "s") -> None:
        self.results[workload][contender].append(value)
        self.units[workload] = unit

    def alternate(self, workload: str, contenders: dict[str, Callable[[], float]]) -> None:
        """Run every contender once per repetition, in alternating order."""
        names = list(contenders)
        for rep in range(self.reps):
            order = names if rep % 2 == 0 else names[::-1]
            for name in order:
                self.record(workload, name, contenders[name]())
        medians = {k: statistics.median(v) for k, v in self.results[workload].items()}
        print(f"{workload}: " + ", ".join(f"{k} {v:.4f} s" for k, v in medians.items()), flush=True)
        self.save_partial()

    def save_partial(self) -> None:
        """Results so far, so an interrupted full run still leaves its figures."""
        _text, data = self.table()
        (self.work / "partial.json").write_text(json.dumps(data, indent=2))

    def table(self) -> tuple[str, dict]:
        rows = []
        data: dict = {}
        for workload, by in self.results.items():
            med = {k: statistics.median(v) for k, v in by.items()}
            ours = med.get("seqrepofs")
            data[workload] = {"median_seconds": med, "runs": {k: v for k, v in by.items()}}
            for name, m in med.items():
                ratio = "" if name == "seqrepofs" or not ours else f"{m / ours:8.2f}x"
                rows.append(f"{workload:38s} {name:28s} {m:10.4f} {ratio}")
            if workload in self.notes:
                rows.append(f"{'':38s} note: {self.notes[workload]}")
                data[workload]["note"] = self.notes[workload]
        header = f"{'workload':38s} {'contender':28s} {'median s':>10s} contender/seqrepofs"
        return "\n".join([header, "-" * len(header), *rows]), data


def make_data(out: Path, quick: bool, **sizes: float | None) -> tuple[dict, bool]:
    """The workload in `out` (make_workload.py: the mode's sizes, overridden by those given)
    and whether it was written just now, making whatever was built from it before stale."""
    params = make_workload.defaults(quick)
    params.update({k: v for k, v in sizes.items() if v is not None})
    return make_workload.ensure(out, **params)


def split_genome(data: Path, per_chrom: Path) -> dict[str, Path]:
    """Per-chromosome plain FASTA files (60 columns, as generated) for the contenders."""
    per_chrom.mkdir(exist_ok=True)
    files: dict[str, Path] = {}
    out = None
    with open(data / "genome.fa", "rb") as fh:
        for line in fh:
            if line.startswith(b">"):
                if out:
                    out.close()
                name = line[1:].split()[0].decode()
                files[name] = per_chrom / f"{name}.fa"
                out = open(files[name], "wb")  # noqa: SIM115
            assert out is not None
            out.write(line)
    if out:
        out.close()
    for path in files.values():
        run(["samtools", "faidx", str(path)])
        run(["bgzip", "-k", "-f", str(path)])
        run(["samtools", "faidx", str(path) + ".gz"])
    return files


def regions_by_chrom(data: Path, outdir: Path) -> dict[str, tuple[Path, Path]]:
    """regions.txt/.bed split per chromosome: (samtools region file, bed file)."""
    txt: dict[str, list[str]] = defaultdict(list)
    bed: dict[str, list[str]] = defaultdict(list)
    for line in (data / "regions.txt").read_text().splitlines():
        txt[line.rsplit(":", 1)[0]].append(line)
    for line in (data / "regions.bed").read_text().splitlines():
        bed[line.split("\t")[0]].append(line)
    outdir.mkdir(exist_ok=True)
    res = {}
    for chrom in txt:
        t = outdir / f"{chrom}.txt"
        b = outdir / f"{chrom}.bed"
        t.write_text("\n".join(txt[chrom]) + "\n")
        b.write_text("\n".join(bed[chrom]) + "\n")
        res[chrom] = (t, b)
    return res


def check_same_output(ours: bytes, theirs: bytes, what: str) -> None:
    """A timing is only worth reporting if the answers agree (the store upper-cases)."""
    if ours.upper() != theirs.upper() or not ours:
        raise SystemExit(f"{what}: the mount's output differs from the plain FASTA's")


class Mount:
    """A seqrepofs mount for the duration of a workload."""

    def __init__(self, src: Path, mnt: Path) -> None:
        self.src, self.mnt = src, mnt

    def __enter__(self) -> Mount:
        self.mnt.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        run(["seqrepofs", "mount", str(self.src), str(self.mnt)])
        self.mount_seconds = time.perf_counter() - t
        return self

    def pid(self) -> int | None:
        out = subprocess.run(
            ["pgrep", "-f", f"seqrepofs mount {self.src} {self.mnt}"],
            text=True,
            capture_output=True,
        ).stdout.split()
        return int(out[0]) if out else None

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["seqrepofs", "umount", str(self.mnt)], capture_output=True)


def status_kb(pid: int | None, fields: tuple[str, ...]) -> dict[str, int]:
    """Fields of /proc/<pid>/status in kB (those the kernel reports)."""
    out: dict[str, int] = {}
    if pid is None:
        return out
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in fields:
                out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small data, finishes in < 2 minutes")
    ap.add_argument("--work", default=str(PROJECT / "bench-out"), help="working directory")
    ap.add_argument("--reps", type=int, default=None, help="repetitions per workload")
    ap.add_argument("--json", default=None, help="results file (default WORK/results.json)")
    ap.add_argument("--skip-load", action="store_true", help="reuse repositories built earlier")
    ap.add_argument(
        "--total-mb",
        type=float,
        default=None,
        help="genome size in Mb (overrides the mode's: 300, --quick 20)",
    )
    ap.add_argument(
        "--n-transcripts",
        type=int,
        default=None,
        help="transcripts (overrides the mode's: 50,000, --quick 5,000)",
    )
    ap.add_argument(
        "--n-regions",
        type=int,
        default=None,
        help="regions (overrides the mode's: 20,000, --quick 2,000)",
    )
    ap.add_argument(
        "--skip-reference-default",
        action="store_true",
        help="workload 1: skip the reference without fd cache (175 slices/s)",
    )
    ap.add_argument(
        "--skip-reference-export",
        action="store_true",
        help="time to first region: skip the reference's export (minutes at 300 Mb)",
    )
    args = ap.parse_args(argv)
    reps = args.reps or 3
    work = Path(args.work) / ("quick" if args.quick else "full")
    work.mkdir(parents=True, exist_ok=True)
    bench = Bench(work, reps)
    data = work / "data"
    manifest, fresh = make_data(
        data,
        args.quick,
        total_mb=args.total_mb,
        n_transcripts=args.n_transcripts,
        n_regions=args.n_regions,
    )
    genome_mb = manifest["genome"]["total_len"] / 1e6
    if fresh:  # new data: what was built from the old is stale
        for stale in ("ours", "ref", "chroms", "regions"):
            shutil.rmtree(work / stale, ignore_errors=True)

    # ---- 8. loading (builds both repositories) ----------------------------------------
    ours_root, ref_root = work / "ours", work / "ref"
    if not args.skip_load or not (ours_root / "master").exists():
        from bench_load import timed as timed_rss  # scripts/bench/bench_load.py
        from bench_load import tool_commands

        files = [data / "genome.fa", data / "transcripts.fa"]
        rss_note = []
        for tool, root, label in (
            ("seqrepofs", ours_root, "seqrepofs"),
            ("seqrepo", ref_root, "biocommons.seqrepo load"),
        ):
            shutil.rmtree(root, ignore_errors=True)
            init, load = tool_commands(tool, root, files)
            run(init)
            wall, rss_mib = timed_rss(load, None)
            bench.record("8 load genome+transcripts", label, wall)
            rss_note.append(f"{label} peak RSS {rss_mib:.0f} MiB")
        bench.notes["8 load genome+transcripts"] = "; ".join(rss_note) + (
            "; one run each (scripts/bench/bench_load.py repeats and alternates)"
        )
    # Readers use snapshots (what `latest` points at), as users do; each tool snapshots its own.
    snap = "2020-01-01"
    if not (ours_root / snap).exists():
        run(["seqrepofs", "-r", str(ours_root), "snapshot", "-d", snap])
    if not (ref_root / snap).exists():
        run(["seqrepo", "-r", str(ref_root), "snapshot", "-d", snap])
    ours_inst, ref_inst = ours_root / snap, ref_root / snap

    # ---- inputs for the read workloads ------------------------------------------------
    regions_tsv = work / "regions.tsv"
    lines = [ln.split("\t")[:3] for ln in (data / "regions.bed").read_text().splitlines()]
    regions_tsv.write_text("".join(f"{c}\t{a}\t{b}\n" for c, a, b in lines))
    fai = {}
    chrom_files = (
        split_genome(data, work / "chroms")
        if not (work / "chroms").exists()
        else {p.stem: p for p in (work / "chroms").glob("*.fa")}
    )
    for p in chrom_files.values():
        name, length = p.with_suffix(".fa.fai").read_text().split("\t")[:2]
        fai[name] = int(length)
    largest = max(fai, key=fai.get)
    tx_names = work / "transcripts.txt"
    tx_names.write_text(
        "\n".join(ln[1:].split()[0] for ln in open(data / "transcripts.fa") if ln.startswith(">"))
        + "\n"
    )
    per_chrom_regions = regions_by_chrom(data, work / "regions")

    # ---- 1. Python API slices ------------------------------------------------------------
    def api(mod: str, root: Path, env: dict[str, str] | None = None) -> Callable[[], float]:
        return lambda: py_json(API_SLICES, [mod, str(root), str(regions_tsv)], env)["seconds"]

    slices = {
        "seqrepofs": api("seqrepofs", ours_inst),
        "biocommons.seqrepo default": api("ref", ref_inst),
        "biocommons.seqrepo fd cache 100": api(
            "ref", ref_inst, {"SEQREPO_FD_CACHE_MAXSIZE": "100"}
        ),
    }
    if args.skip_reference_default:
        del slices["biocommons.seqrepo default"]
    bench.alternate("1 API 100-bp slices", slices)

    def whole(mod: str, root: Path, env: dict[str, str] | None = None) -> Callable[[], float]:
        return lambda: py_json(API_WHOLE, [mod, str(root), largest], env)["seconds"]

    bench.alternate(
        f"1b API whole {largest} ({fai[largest] / 1e6:.0f} Mb)",
        {
            "seqrepofs": whole("seqrepofs", ours_inst),
            "biocommons.seqrepo fd cache 100": whole(
                "ref", ref_inst, {"SEQREPO_FD_CACHE_MAXSIZE": "100"}
            ),
        },
    )

    # ---- 2. whole transcripts ------------------------------------------------------------
    def tx(mod: str, root: Path, env: dict[str, str] | None = None) -> Callable[[], float]:
        return lambda: py_json(API_TRANSCRIPTS, [mod, str(root), str(tx_names)], env)["seconds"]

    bench.alternate(
        "2 API whole transcripts",
        {
            "seqrepofs": tx("seqrepofs", ours_inst),
            "biocommons.seqrepo fd cache 100": tx(
                "ref", ref_inst, {"SEQREPO_FD_CACHE_MAXSIZE": "100"}
            ),
        },
    )

    # ---- 3-7 through the mount -------------------------------------------------------------
    mnt = work / "mnt"
    rss: list[int] = []
    rss_parts: list[tuple[int, int]] = []  # (anonymous, file-backed) kB as each mount ends

    def record_rss(pid: int | None) -> None:
        now = status_kb(pid, ("VmHWM", "RssAnon", "RssFile"))  # peak, and what is held now
        rss.append(now.get("VmHWM", 0))
        rss_parts.append((now.get("RssAnon", 0), now.get("RssFile", 0)))

    def faidx_all(files: Callable[[str], Path]) -> float:
        t = time.perf_counter()
        for chrom, (txt, _bed) in per_chrom_regions.items():
            subprocess.run(
                ["samtools", "faidx", str(files(chrom)), "-r", str(txt)],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        return time.perf_counter() - t

    def getfasta_all(files: Callable[[str], Path]) -> float:
        t = time.perf_counter()
        for chrom, (_txt, bed) in per_chrom_regions.items():
            subprocess.run(
                ["bedtools", "getfasta", "-fi", str(files(chrom)), "-bed", str(bed)],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        return time.perf_counter() - t

    def faidx_output(files: Callable[[str], Path]) -> bytes:
        return b"".join(
            subprocess.run(
                ["samtools", "faidx", str(files(c)), "-r", str(txt)],
                check=True,
                capture_output=True,
            ).stdout
            for c, (txt, _bed) in sorted(per_chrom_regions.items())
        )

    def getfasta_output(files: Callable[[str], Path]) -> bytes:
        return b"".join(
            subprocess.run(
                ["bedtools", "getfasta", "-fi", str(files(c)), "-bed", str(bed)],
                check=True,
                capture_output=True,
            ).stdout
            for c, (_txt, bed) in sorted(per_chrom_regions.items())
        )

    def mounted(chrom: str) -> Path:
        return mnt / "refseq" / f"{chrom}.fa"

    def plain(chrom: str) -> Path:
        return chrom_files[chrom]

    def bgz(chrom: str) -> Path:
        return Path(str(chrom_files[chrom]) + ".gz")

    can_drop = drop_caches()
    with Mount(ours_inst, mnt) as m:
        faidx_all(mounted)  # fill the page cache
        check_same_output(faidx_output(mounted), faidx_output(plain), "samtools faidx")
        check_same_output(getfasta_output(mounted), getfasta_output(plain), "bedtools getfasta")
        bench.alternate(
            "3 samtools faidx regions, warm",
            {
                "seqrepofs": lambda: faidx_all(mounted),
                "samtools plain FASTA": lambda: faidx_all(plain),
                "samtools bgzip FASTA": lambda: faidx_all(bgz),
            },
        )
        getfasta_all(mounted)
        bench.alternate(
            "4 bedtools getfasta, warm",
            {
                "seqrepofs": lambda: getfasta_all(mounted),
                "bedtools plain FASTA": lambda: getfasta_all(plain),
            },
        )
        record_rss(m.pid())

    def cold_mount_faidx() -> float:
        drop_caches()
        with Mount(ours_inst, mnt) as m2:
            dt = faidx_all(mounted)
            record_rss(m2.pid())
        return dt

    def cold_bgz_faidx() -> float:
        drop_caches()
        return faidx_all(bgz)

    bench.alternate(
        "3b samtools faidx regions, cold",
        {
            "seqrepofs": cold_mount_faidx,
            "samtools bgzip FASTA": cold_bgz_faidx,
        },
    )
    if not can_drop:
        bench.notes["3b samtools faidx regions, cold"] = "page cache could not be dropped"

    def cold_cat() -> float:
        drop_caches()
        with Mount(ours_inst, mnt) as m3:
            dt = timed(["cat", str(mounted(largest))])
            record_rss(m3.pid())
        return dt

    def cold_bgzip_dc() -> float:
        drop_caches()
        return timed(["bgzip", "-dc", str(bgz(largest))])

    bench.alternate(
        f"5 sequential read {largest}, cold",
        {
            "seqrepofs": cold_cat,
            "bgzip -dc": cold_bgzip_dc,
        },
    )

    # ---- 6. time to first byte ----------------------------------------------------------
    first = per_chrom_regions[largest][0].read_text().splitlines()[0]
    from seqrepofs import SeqRepo

    # the reference's export headers list every alias sorted; samtools names a record by the
    # first, which is the MD5 alias
    md5 = [a for a in SeqRepo(ours_inst).translate_alias(largest, "refseq") if a.startswith("MD5:")]
    ref_first = first.replace(largest, md5[0])

    def ttfb_mount() -> float:
        t = time.perf_counter()
        with Mount(ours_inst, mnt):
            run(["samtools", "faidx", str(mounted(largest)), first])
            dt = time.perf_counter() - t
        return dt

    def ttfb_export() -> float:
        out = work / "exported.fa"
        t = time.perf_counter()
        with open(out, "w") as fh:
            subprocess.run(
                ["seqrepo", "-r", str(ref_root), "export", "-i", "master"], check=True, stdout=fh
            )
        run(["samtools", "faidx", str(out)])
        run(["samtools", "faidx", str(out), ref_first])
        dt = time.perf_counter() - t
        return dt

    # The reference's way takes minutes on the full data: one repetition of each is enough.
    reps_before = bench.reps
    ttfb = {"seqrepofs": ttfb_mount, "seqrepo export + samtools faidx": ttfb_export}
    if args.skip_reference_export:
        del ttfb["seqrepo export + samtools faidx"]
    else:
        bench.reps = 1
    bench.alternate("6 time to first region", ttfb)
    bench.reps = reps_before
    bench.notes["6 time to first region"] = (
        "reference: export then index; its headers list every alias, so the region query names"
        " the first token"
    )

    text, data_json = bench.table()
    print(text)
    peak = max(rss) if rss else None
    print(
        f"\n7 daemon peak RSS during workloads 3-5: {peak / 1024 if peak else '?':.1f} MB"
        f" (each mount: {', '.join(f'{kb / 1024:.0f}' for kb in rss)} MB; at unmount,"
        f" anonymous + file-backed: "
        f"{', '.join(f'{a / 1024:.0f}+{f / 1024:.0f}' for a, f in rss_parts)} MB)"
        if peak
        else "\n7 daemon peak RSS: not measured"
    )
    result = {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "quick": args.quick,
        "genome_mb": genome_mb,
        "reps": reps,
        "daemon_peak_rss_mb": peak / 1024 if peak else None,
        "daemon_peak_rss_mb_per_mount": [kb / 1024 for kb in rss],
        "daemon_rss_anon_file_mb_at_unmount": [[a / 1024, f / 1024] for a, f in rss_parts],
        "workloads": data_json,
    }
    out_json = Path(args.json) if args.json else work / "results.json"
    out_json.write_text(json.dumps(result, indent=2))
    print(f"\nresults written to {out_json}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
