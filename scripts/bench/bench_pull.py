#!/usr/bin/env python3
"""Pulling an update: rsync (--link-dest) vs HTTP (nginx) vs S3 (moto) vs curl, in one run.

Snapshot 1 = make_workload.py's genome + 95% of its transcripts; snapshot 2 = snapshot 1 + the
other 5% (new transcripts) + 1% of the old accessions re-pointed at changed sequences. The
server root is published with `seqrepofs publish` to a directory (served by nginx) and to an
S3 bucket (moto's server, behind an nginx reverse proxy that logs bytes), and served by
`seqrepofs serve-rsync`. Each client starts from snapshot 1 as that same tool pulled it.

Reported per contender: bytes on the wire from the server's log (nginx `$bytes_sent`; the
rsync daemon's `sent N bytes`) and wall time, medians over --reps; plus the first full pull
of snapshot 1 against `curl` fetching the same files.

    python3 scripts/bench/bench_pull.py               # 20 Mb genome, 5,000 transcripts
    python3 scripts/bench/bench_pull.py --total-mb 300 --n-transcripts 50000
    python3 scripts/bench/bench_pull.py --scale 300000 --reps 1 --no-s3 --work DIR

`--scale N` uses make_scale.py's repository of real shape instead (N sequences): snapshot 1 is
its release 1 (`load -n refseq`, `load -n Ensembl`), snapshot 2 adds release 2 (new versions,
re-pointed accessions) loaded into the same master with `--replace`, as bench_scale.py does.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(HERE), str(REPO / "tests"), str(REPO)]

import make_scale  # noqa: E402
import make_workload  # noqa: E402
from support.http_servers import S3_ENV, MotoS3, Nginx  # noqa: E402
from support.s3_servers import RcloneS3  # noqa: E402
from support.system import free_port  # noqa: E402

from seqrepofs.remote import manifest as mf  # noqa: E402
from seqrepofs.remote.tempdir import remove_tree  # noqa: E402

S1, S2 = "2024-01-01", "2024-01-02"


ENV = {**os.environ, **S3_ENV, "PYTHONPATH": str(REPO)}
_RSYNC_SENT = re.compile(r"sent (\d+) bytes\s+received (\d+) bytes")


def run(*argv: str | Path, env: dict[str, str] | None = None) -> float:
    """Run a command that must succeed; its wall time in seconds."""
    started = time.perf_counter()
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=env or ENV)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(map(str, argv))}\n{proc.stderr}")
    return wall


def seqrepofs(*args: str | Path) -> float:
    return run(sys.executable, "-m", "seqrepofs", *args)


def fasta_records(path: Path) -> list[tuple[str, str]]:
    records, name, parts = [], None, []
    for line in path.read_text().splitlines():
        if line.startswith(">"):
            if name is not None:
                records.append((name, "".join(parts)))
            name, parts = line[1:].split()[0], []
        else:
            parts.append(line)
    if name is not None:
        records.append((name, "".join(parts)))
    return records


def write_fasta(path: Path, records: list[tuple[str, str]]) -> None:
    with open(path, "w") as fh:
        for name, seq in records:
            fh.write(f">{name}\n")
            for i in range(0, len(seq), 70):
                fh.write(seq[i : i + 70] + "\n")


def _stamp(root: Path) -> Path:
    return root.parent / "server.params.json"


def fresh_server_root(root: Path, params: object) -> bool:
    """Whether the server root must be built: False if one built with `params` (both
    snapshots) is there to reuse; else any old one is removed."""
    stamp = _stamp(root)
    if (root / S2).is_dir() and stamp.exists() and json.loads(stamp.read_text()) == params:
        return False
    if root.exists():
        remove_tree(root)
    return True


def build_scale_root(work: Path, args: argparse.Namespace) -> Path:
    """The server's root from make_scale.py's two releases (reused if already built)."""
    gen = make_scale.generate(work / "gen", args.scale, args.seed)
    params = {"scale": args.scale, "seed": args.seed, "counts": gen["counts"]}
    root = work / "server"
    if not fresh_server_root(root, params):
        return root
    seqrepofs("-r", root, "init")
    for release, name in (("r1", S1), ("r2", S2)):
        for step in gen["releases"][release]:
            seqrepofs("-r", root, "load", "-n", step["namespace"], "--replace", *step["files"])
        seqrepofs("-r", root, "snapshot", "--destination-name", name)
    _stamp(root).write_text(json.dumps(params))
    return root


def build_server_root(work: Path, args: argparse.Namespace) -> Path:
    """The server's root with S1 and S2 (reused if already built with these parameters)."""
    if args.scale:
        return build_scale_root(work, args)
    workload, _fresh = make_workload.ensure(
        work / "workload",
        total_mb=args.total_mb,
        n_transcripts=args.n_transcripts,
        n_regions=10,
        region_len=100,
        dup_frac=0.0,
        seed=args.seed,
    )
    params = workload["params"]
    root = work / "server"
    if not fresh_server_root(root, params):
        return root
    tx = fasta_records(work / "workload" / "transcripts.fa")
    cut = len(tx) * 95 // 100
    write_fasta(work / "tx1.fa", tx[:cut])
    repointed = [(name, seq[::-1]) for name, seq in tx[: max(1, len(tx) // 100)]]
    write_fasta(work / "tx2.fa", tx[cut:] + repointed)
    seqrepofs("-r", root, "init")
    seqrepofs("-r", root, "load", "-n", "refseq", work / "workload" / "genome.fa", work / "tx1.fa")
    seqrepofs("-r", root, "snapshot", "--destination-name", S1)
    seqrepofs("-r", root, "load", "-n", "refseq", work / "tx2.fa")
    seqrepofs("-r", root, "snapshot", "--destination-name", S2)
    _stamp(root).write_text(json.dumps(params))
    return root


def nginx_bytes(server: Nginx, prefix: str = "/") -> int:
    return sum(ln.bytes_sent for ln in server.log() if ln.path.startswith(prefix))


def rsync_bytes(log: Path, start: int) -> int:
    """Bytes the rsync daemon sent in the sessions logged after offset `start` of its log."""
    with open(log) as fh:
        fh.seek(start)
        return sum(int(m.group(1)) for m in _RSYNC_SENT.finditer(fh.read()))


def expected_delta(pub: Path) -> dict[str, int]:
    """New sequence-file bytes and changed database-chunk bytes of S2 relative to S1."""
    m1 = mf.parse((pub / "seqrepofs/manifests" / f"{S1}.json").read_bytes())
    m2 = mf.parse((pub / "seqrepofs/manifests" / f"{S2}.json").read_bytes())
    old = m1.by_path()
    old_digests = {f.sha256 for f in m1.files}
    new_files = sum(f.size for f in m2.files if not f.chunks and f.sha256 not in old_digests)
    chunks = 0
    for f in m2.files:
        if f.chunks:
            have = set(old[f.path].chunks) if f.path in old else set()
            cs = m2.chunk_size
            chunks += sum(min(cs, f.size - i * cs) for i, d in enumerate(f.chunks) if d not in have)
    db_total = sum(f.size for f in m2.files if f.chunks)
    manifest = (pub / "seqrepofs/manifests" / f"{S2}.json").stat().st_size
    return {
        "new_files": new_files,
        "changed_chunks": chunks,
        "db_total": db_total,
        "manifest": manifest,
    }


def new_paths(pub: Path) -> list[str]:
    m1 = mf.parse((pub / "seqrepofs/manifests" / f"{S1}.json").read_bytes())
    m2 = mf.parse((pub / "seqrepofs/manifests" / f"{S2}.json").read_bytes())
    old_digests = {f.sha256 for f in m1.files}
    return [f.path for f in m2.files if not f.chunks and f.sha256 not in old_digests]


def curl(urls: list[str], out: Path) -> float:
    """One curl process fetching `urls` in turn over a kept-alive connection."""
    out.mkdir(parents=True, exist_ok=True)
    argv: list[str | Path] = ["curl", "-sSf"]
    for i, url in enumerate(urls):
        argv += ["-o", out / f"f{i}", url]
    return run(*argv)


def warm(top: Path) -> None:
    """Read every file under `top` once, so that each contender starts with the files it
    serves or hardlinks in the page cache (other jobs on this machine drop caches; without
    this the first contender after a drop reads from disk and the next one does not)."""
    for dirpath, _dirs, names in os.walk(top):  # nothing where the directory does not exist
        for name in names:
            with open(os.path.join(dirpath, name), "rb") as fh:
                while fh.read(1 << 20):
                    pass


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=None, help="work directory (kept; reused)")
    ap.add_argument("--total-mb", type=float, default=20.0)
    ap.add_argument("--n-transcripts", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument(
        "--scale", type=int, default=0, help="make_scale.py's repository of N sequences instead"
    )
    ap.add_argument("--build-only", action="store_true", help="build the server root and stop")
    ap.add_argument(
        "--s3-server",
        choices=("moto", "rclone"),
        default="moto",
        help="the S3 server: moto's (Python) or `rclone serve s3` (Go)",
    )
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--chunk-size", type=int, default=mf.CHUNK_SIZE)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument(
        "--no-s3",
        action="store_true",
        help="leave S3 out (moto's server takes ~1 s per Range request on a 60 MB object)",
    )
    ap.add_argument(
        "--code",
        type=Path,
        default=REPO,
        help="the seqrepofs checkout whose code the commands run (to compare two versions)",
    )
    args = ap.parse_args(argv)
    ENV["PYTHONPATH"] = str(args.code.resolve())
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_pull."))
    work.mkdir(parents=True, exist_ok=True)
    src = build_server_root(work, args)
    if args.build_only:
        print(src)
        return 0
    for d in ("pub", "clients", "nginx", "proxy", "moto", "rclone", "rsyncd", "curl"):
        p = work / d
        if p.exists():
            remove_tree(p)
    pub = work / "pub"
    publish_wall = seqrepofs("publish", src, pub, "--chunk-size", str(args.chunk_size))
    results: dict[str, Any] = {
        "params": vars(args) | {"work": str(work)},
        "publish_s": publish_wall,
    }
    results["expected"] = expected_delta(pub)
    s3_server = RcloneS3(work / "rclone") if args.s3_server == "rclone" else MotoS3(work / "moto")
    with (
        Nginx(pub, work / "nginx") as web,
        s3_server as s3,
        Nginx(pub, work / "proxy", upstream=s3.url) as s3proxy,
    ):
        s3.create_bucket("bench")
        s3url = "s3://bench/seqrepo"
        if not args.no_s3:
            seqrepofs(
                "publish",
                src,
                s3url,
                "--endpoint-url",
                s3.url,
                "--chunk-size",
                str(args.chunk_size),
            )
        port = free_port()
        rsyncd = work / "rsyncd"
        user = ["--user", "root", "--group", "root"] if os.geteuid() == 0 else []
        seqrepofs("serve-rsync", src, "--port", str(port), "--state-dir", rsyncd, *user)
        rsync_url = f"rsync://127.0.0.1:{port}"
        try:
            s3data = work / "rclone" / "data" / "bench" / "seqrepo"  # moto keeps it in memory
            results.update(
                measure(args, work, src, pub, s3data, web, s3proxy, s3url, rsync_url, rsyncd)
            )
        finally:
            pid = (rsyncd / "rsyncd.pid").read_text().strip()
            os.kill(int(pid), 15)
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


def measure(
    args: argparse.Namespace,
    work: Path,
    src: Path,
    pub: Path,
    s3data: Path,
    web: Nginx,
    s3proxy: Nginx,
    s3url: str,
    rsync_url: str,
    rsyncd: Path,
) -> dict[str, Any]:
    clients = work / "clients"
    contenders = {
        "rsync": ["--remote-host", rsync_url],
        "http": ["--remote-host", web.url],
        "s3": ["--remote-host", s3url],
    }
    if args.no_s3:
        del contenders["s3"]
    extra = {"s3": ["--endpoint-url", s3proxy.url]}
    rows: dict[str, dict[str, list[float]]] = {}
    # what each server reads for the update: its own copy of S2
    served = {"rsync": src / S2, "http": pub / S2, "s3": s3data / S2}
    s1_files = [
        f.path for f in mf.parse((pub / f"seqrepofs/manifests/{S1}.json").read_bytes()).files
    ]
    s1_bytes = sum((pub / S1 / p).stat().st_size for p in s1_files)
    for rep in range(args.reps):
        # first full pull of S1: HTTP vs curl of the same files (alternating order)
        order = ["http", "curl"] if rep % 2 == 0 else ["curl", "http"]
        for who in order:
            warm(pub / S1)
            web.clear_log()
            if who == "curl":
                wall = curl([f"{web.url}/{S1}/{p}" for p in s1_files], work / "curl" / f"full{rep}")
            else:
                root = clients / f"full-{rep}"
                wall = seqrepofs("-r", root, "--remote-host", web.url, "pull", "-i", S1)
            log = web.log()
            span = max(ln.end for ln in log) - min(ln.start for ln in log)
            row = rows.setdefault(f"full_{who}", {})
            row.setdefault("wall", []).append(wall)
            row.setdefault("bytes", []).append(nginx_bytes(web))
            row.setdefault("transfer", []).append(max(span, 0.001))  # first request to last byte
        # the update S1 -> S2, each client starting from S1 as its own tool pulled it
        for name, remote in contenders.items():
            root = clients / f"{name}-{rep}"
            seqrepofs("-r", root, *remote, "pull", "-i", S1, *extra.get(name, []))
            warm(served[name])
            warm(root / S1)
            web.clear_log()
            s3proxy.clear_log()
            log = rsyncd / "rsyncd.log"
            start = log.stat().st_size if log.exists() else 0
            wall = seqrepofs("-r", root, *remote, "pull", "-i", S2, *extra.get(name, []))
            if name == "rsync":
                sent = rsync_bytes(log, start)
            else:
                sent = nginx_bytes(web if name == "http" else s3proxy)
            rows.setdefault(name, {}).setdefault("wall", []).append(wall)
            rows[name].setdefault("bytes", []).append(sent)
        warm(pub / S2)
        web.clear_log()
        wall = curl([f"{web.url}/{S2}/{p}" for p in new_paths(pub)], work / "curl" / f"new{rep}")
        rows.setdefault("curl_new", {}).setdefault("wall", []).append(wall)
        rows["curl_new"].setdefault("bytes", []).append(nginx_bytes(web))
    out = {k: {m: median(v) for m, v in r.items()} for k, r in rows.items()}
    return {"rows": out, "s1_bytes": s1_bytes}


def report(results: dict[str, Any]) -> str:
    rows, exp = results["rows"], results["expected"]
    ideal = exp["new_files"] + exp["changed_chunks"]
    chunk = results["params"]["chunk_size"]
    head = ("contender", "bytes on wire", "x ideal", "x rsync", "wall s", "x rsync")
    lines = [
        f"update S1 -> S2: new sequence files {exp['new_files']:,} B, changed database chunks "
        f"{exp['changed_chunks']:,} B of {exp['db_total']:,} B (chunk {chunk:,} B), "
        f"S2 manifest {exp['manifest']:,} B; ideal = {ideal:,} B",
        f"{head[0]:<12}{head[1]:>16}" + "".join(f"{h:>9}" for h in head[2:]),
    ]
    base = rows["rsync"]
    for name in ("rsync", "http", "s3", "curl_new"):
        if name not in rows:
            continue
        r = rows[name]
        ratios = (
            r["bytes"] / ideal,
            r["bytes"] / base["bytes"],
            r["wall"],
            r["wall"] / base["wall"],
        )
        lines.append(f"{name:<12}{r['bytes']:>16,.0f}" + "".join(f"{x:>9.2f}" for x in ratios))
    s1 = results["s1_bytes"]
    fh, fc = rows["full_http"], rows["full_curl"]
    lines.append(
        f"first full pull of S1 ({s1:,} B), whole command: seqrepofs http "
        f"{s1 / fh['wall'] / 1e6:.1f} MB/s, curl {s1 / fc['wall'] / 1e6:.1f} MB/s, "
        f"ratio {fc['wall'] / fh['wall']:.2f}; transfer only (nginx log, first request to last "
        f"byte): {s1 / fh['transfer'] / 1e6:.1f} vs {s1 / fc['transfer'] / 1e6:.1f} MB/s, "
        f"ratio {fc['transfer'] / fh['transfer']:.2f}"
    )
    lines.append(f"publish (directory) {results['publish_s']:.1f} s")
    params = results["params"]
    lines.append(f"S3 server: {params['s3_server']}; code: {params['code']}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
