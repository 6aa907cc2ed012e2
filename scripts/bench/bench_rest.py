#!/usr/bin/env python3
"""Load test of `seqrepofs serve`: random 100-bp subsequences from a second process on loopback.

Each configuration gets its own server process; the load comes from `wrk` (a Lua script picks a
random sequence and offset per request) or, without wrk, from a small asyncio/httpx client. Every
run is bounded by time (--duration) and by count (--max-requests), and reports requests/s and
p50/p90/p99 latency.

The baseline imitates the reference service's design (biocommons' seqrepo-rest-service): a Flask
app on werkzeug's threaded server with one biocommons SeqRepo per process, answering the same
`/seqrepo/1/sequence/{alias}?start&end` requests. It is a lower bound on the reference's cost: the
reference also runs connexion's request/response validation.

    python scripts/bench/bench_rest.py                       # synthetic 200 Mbp instance
    python scripts/bench/bench_rest.py --instance ROOT/latest --duration 20 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

READ_LEN = 100


@dataclass(frozen=True)
class Target:
    md5: str
    alias: str  # ns:alias
    length: int


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: int
    tool: str


# ---- the instance ----------------------------------------------------------------------------
def build_instance(path: Path, mbp: int, n_seqs: int, seed: int) -> None:
    """Random ACGT sequences (numpy, so building 200 Mbp takes seconds)."""
    import numpy as np

    from seqrepofs import SeqRepo

    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)
    per = mbp * 1_000_000 // n_seqs
    with SeqRepo(path, writeable=True) as sr:
        for i in range(n_seqs):
            seq = letters[rng.integers(0, 4, per + i)].tobytes()
            sr.store(seq, [{"namespace": "bench", "alias": f"chr{i + 1}"}])


def freeze(path: Path) -> None:
    """Take the write bits off as `seqrepofs snapshot` does, so the server treats the instance
    as a snapshot (`--reads auto` answers on the event loop; a live master uses threads)."""
    for part in ("", "sequences", "aliases.sqlite3", "sequences/db.sqlite3"):
        os.chmod(path / part, (path / part).stat().st_mode & ~0o222)


def targets_of(instance: str) -> list[Target]:
    from seqrepofs import SeqRepo

    sr = SeqRepo(instance)
    out = []
    for seq_id, length, _relpath in sr.sequences.seqinfo_rows():
        if length < READ_LEN:
            continue
        stored = sr.aliases.aliases_of(seq_id)
        md5 = next(al for ns, al in stored if ns == "MD5")
        named = [(ns, al) for ns, al in stored if ns not in ("MD5", "SHA1", "SEGUID", "VMC")]
        ns, al = named[0] if named else ("MD5", md5)
        out.append(Target(md5, f"{ns}:{al}", length))
    sr.close()
    return out


# ---- servers ------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], port: int, probe: str, log: Path) -> subprocess.Popen:
    import httpx

    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=5).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    stop(proc)
    raise RuntimeError(f"server did not answer:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def flask_baseline(instance: str, port: int) -> None:
    """The reference's design: Flask, werkzeug threaded server, one biocommons SeqRepo."""
    import logging

    from biocommons.seqrepo import SeqRepo
    from flask import Flask, Response, abort, request

    from seqrepofs.rest.service import _nsa_options  # the reference's identifier guessing

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no request log, as for seqrepofs
    app = Flask("seqrepo_rest_baseline")
    sr = SeqRepo(instance)  # a module global in the reference: one per process

    @app.get("/seqrepo/1/sequence/<path:alias>")
    def sequence(alias: str) -> Response:
        start = request.args.get("start", type=int)
        end = request.args.get("end", type=int)
        if start is not None and end is not None and start > end:
            abort(422)
        seq_ids: set[str] = set()
        for ns, a in _nsa_options(alias):
            seq_ids = {r["seq_id"] for r in sr.aliases.find_aliases(namespace=ns, alias=a)}
            if seq_ids:
                break
        if len(seq_ids) != 1:
            abort(404 if not seq_ids else 422)
        return Response(sr.sequences.fetch(seq_ids.pop(), start, end), mimetype="text/plain")

    @app.get("/seqrepo/1/ping")
    def ping() -> Response:
        return Response("{}", mimetype="application/json")

    app.run(host="127.0.0.1", port=port, threaded=True)


# ---- load generators ----------------------------------------------------------------------
LUA = """
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end
function init(args)
  math.randomseed(%(seed)d * 1000 + id)
end
local paths = {%(paths)s}
local lens = {%(lens)s}
local limit = %(limit)d
local count = 0
request = function()
  local i = math.random(1, #paths)
  local s = math.random(0, lens[i] - %(read)d)
  return wrk.format("GET", paths[i] .. "?start=" .. s .. "&end=" .. (s + %(read)d))
end
response = function(status, headers, body)
  count = count + 1
  if count >= limit then wrk.thread:stop() end
end
"""


def run_wrk(
    url_base: str, paths: list[str], lens: list[int], args: argparse.Namespace, tmp: Path
) -> tuple[int, float, float, float, float, int]:
    script = tmp / "random100.lua"
    script.write_text(
        LUA
        % {
            "seed": args.seed,
            "paths": ", ".join(json.dumps(p) for p in paths),
            "lens": ", ".join(str(n) for n in lens),
            "limit": max(1, args.max_requests // args.threads),
            "read": READ_LEN,
        }
    )
    out = subprocess.run(
        [
            "wrk",
            "-t",
            str(args.threads),
            "-c",
            str(args.connections),
            "-d",
            f"{args.duration}s",
            "--latency",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url_base,
        ],
        capture_output=True,
        text=True,
        timeout=args.duration + 60,
        check=True,
    ).stdout
    m = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    assert m, out
    n = int(m.group(1))
    secs = float(m.group(2)) / (1000 if m.group(3) == "ms" else 1)
    pct = {p: _ms(v) for p, v in re.findall(r"^\s+(50|90|99)%\s+(\S+)", out, re.M)}
    errors = sum(int(x) for x in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors += sum(int(x) for x in re.findall(r"Socket errors: .*?(\d+)", out))
    return n, secs, pct["50"], pct["90"], pct["99"], errors


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    assert m, text
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m.group(2)]


def run_httpx(
    url_base: str, paths: list[str], lens: list[int], args: argparse.Namespace
) -> tuple[int, float, float, float, float, int]:
    import httpx

    async def main() -> tuple[list[float], int, float]:
        latencies: list[float] = []
        errors = 0
        rng = random.Random(args.seed)
        t0 = time.perf_counter()
        deadline = t0 + args.duration
        limits = httpx.Limits(max_connections=args.connections)
        async with httpx.AsyncClient(base_url=url_base, limits=limits, timeout=10) as client:

            async def worker() -> None:
                nonlocal errors
                while time.perf_counter() < deadline and len(latencies) < args.max_requests:
                    i = rng.randrange(len(paths))
                    s = rng.randrange(lens[i] - READ_LEN + 1)
                    t = time.perf_counter()
                    r = await client.get(f"{paths[i]}?start={s}&end={s + READ_LEN}")
                    latencies.append((time.perf_counter() - t) * 1000)
                    errors += r.status_code != 200

            await asyncio.gather(*(worker() for _ in range(args.connections)))
        return latencies, errors, time.perf_counter() - t0

    lat, errors, secs = asyncio.run(main())
    lat.sort()

    def q(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))]

    return len(lat), secs, q(0.50), q(0.90), q(0.99), errors


# ---- main ---------------------------------------------------------------------------------
def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--flask-baseline":
        flask_baseline(sys.argv[2], int(sys.argv[3]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--instance", help="instance to serve (default: build a synthetic one)")
    ap.add_argument(
        "--synthetic-mbp",
        type=int,
        default=200,
        help="size of the synthetic instance (default 200 Mbp: beyond the 64 MiB"
        " block cache, so reads inflate BGZF blocks)",
    )
    ap.add_argument("--duration", type=int, default=10, help="seconds per configuration")
    ap.add_argument("--max-requests", type=int, default=200_000, help="cap per configuration")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds of load before measuring")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--client", choices=("auto", "wrk", "httpx"), default="auto")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()

    use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk"))
    tmp = Path(tempfile.mkdtemp(prefix="bench_rest."))
    try:
        instance = args.instance
        if instance is None:
            instance = str(tmp / "instance")
            t = time.perf_counter()
            build_instance(Path(instance), args.synthetic_mbp, 8, args.seed)
            freeze(Path(instance))
            print(
                f"built a {args.synthetic_mbp} Mbp instance in {time.perf_counter() - t:.1f}s",
                file=sys.stderr,
            )
        targets = targets_of(instance)
        lens = [t.length for t in targets]
        refget_paths = [f"/sequence/{t.md5}" for t in targets]
        seqrepo_paths = [f"/seqrepo/1/sequence/{t.alias}" for t in targets]
        serve = [sys.executable, "-m", "seqrepofs", "serve", instance, "--no-access-log"]
        configs: list[tuple[str, list[str], list[str], str]] = [
            ("seqrepofs refget, 1 worker", [], refget_paths, "/sequence/service-info"),
            ("seqrepofs seqrepo API, 1 worker", [], seqrepo_paths, "/sequence/service-info"),
            (
                "seqrepofs refget, 2 workers",
                ["--workers", "2"],
                refget_paths,
                "/sequence/service-info",
            ),
            (
                "seqrepofs refget, 1 worker, --reads threads",
                ["--reads", "threads"],
                refget_paths,
                "/sequence/service-info",
            ),
            (
                "seqrepofs refget, 2 workers, --reads threads",
                ["--workers", "2", "--reads", "threads"],
                refget_paths,
                "/sequence/service-info",
            ),
        ]
        if not args.no_baseline:
            try:
                import biocommons.seqrepo  # noqa: F401
                import flask  # noqa: F401

                configs.append(
                    (
                        "baseline: Flask + biocommons SeqRepo (seqrepo API)",
                        ["FLASK"],
                        seqrepo_paths,
                        "/seqrepo/1/ping",
                    )
                )
            except ImportError as exc:
                print(
                    f"baseline skipped: {exc} (pip install flask biocommons.seqrepo)",
                    file=sys.stderr,
                )
        results: list[Result] = []
        for name, extra, paths, probe in configs:
            port = free_port()
            if extra == ["FLASK"]:
                cmd = [
                    sys.executable,
                    os.path.abspath(__file__),
                    "--flask-baseline",
                    instance,
                    str(port),
                ]
            else:
                cmd = [*serve, "--port", str(port), *extra]
            proc = start(cmd, port, probe, tmp / f"server-{port}.log")
            try:
                base = f"http://127.0.0.1:{port}"
                warm = argparse.Namespace(**{**vars(args), "duration": max(1, int(args.warmup))})
                (
                    run_wrk(base, paths, lens, warm, tmp)
                    if use_wrk
                    else run_httpx(base, paths, lens, warm)
                )
                n, secs, p50, p90, p99, errors = (
                    run_wrk(base, paths, lens, args, tmp)
                    if use_wrk
                    else run_httpx(base, paths, lens, args)
                )
            finally:
                stop(proc)
            res = Result(
                name,
                n,
                round(secs, 2),
                round(n / secs, 1),
                p50,
                p90,
                p99,
                errors,
                "wrk" if use_wrk else "httpx",
            )
            results.append(res)
            print(
                f"{name:<50} {res.rps:>8.0f} req/s  p50 {p50:6.2f} ms  p90 {p90:6.2f} ms"
                f"  p99 {p99:7.2f} ms  errors {errors}",
                flush=True,
            )
        if args.json:
            Path(args.json).write_text(
                json.dumps(
                    {
                        "read_length": READ_LEN,
                        "connections": args.connections,
                        "duration_s": args.duration,
                        "cpus": os.cpu_count(),
                        "instance": instance
                        if args.instance
                        else f"synthetic {args.synthetic_mbp} Mbp",
                        "results": [asdict(r) for r in results],
                    },
                    indent=2,
                )
            )
        return 1 if any(r.errors for r in results) else 0
    finally:
        if (tmp / "instance").is_dir():  # give the write bits back, or rmtree cannot remove it
            for part in ("", "sequences", "aliases.sqlite3", "sequences/db.sqlite3"):
                with contextlib.suppress(OSError):
                    os.chmod(tmp / "instance" / part, 0o755 if part in ("", "sequences") else 0o644)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
