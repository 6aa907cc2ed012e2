"""Lazy reading from a real nginx on 127.0.0.1 (tests/support/http_servers.py): requests and
bytes on the wire from nginx's access log, and wall time, for several cache chunk sizes.

    python scripts/bench/bench_lazy.py vfs ROOT/INSTANCE [--lookups 100] [--chunks 4096,65536]
    python scripts/bench/bench_lazy.py read FILE.fa.bgz [--regions 200] [--chunks 16384,65536]

`vfs`: random alias lookups (namespace + alias) through the remote SQLite VFS, cold and warm,
beside local sqlite3. Build an instance with >= 100,000 aliases with
`seqrepofs -r ROOT init; seqrepofs -r ROOT load -n NS generated.fa` (5 aliases per sequence).

`read`: random BGZF blocks (what a region lookup reads), each in a cold cache, and a
sequential read (what `cat` makes) cold and warm. FILE needs its .gzi beside it (bgzip -i).

End to end (a mounted URL beside a local mount and htslib over HTTP, 20 ms per request):
scripts/bench/bench_lazy_e2e.py.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from support.http_servers import Nginx  # noqa: E402

from seqrepofs.lazy import FileSpec, RangeCache, RemoteFile  # noqa: E402
from seqrepofs.lazy.sqlite_vfs import open_database  # noqa: E402
from seqrepofs.store.fai import parse_gzi  # noqa: E402

LOOKUP = (
    "select seq_id, namespace from seqalias where namespace = ? and alias = ? and is_current = 1"
)


def count(server: Nginx, part: str) -> tuple[int, int]:
    """(requests, bytes sent) so far for paths containing `part`, from nginx's access log."""
    hits = [line for line in server.log() if part in line.path]
    return len(hits), sum(line.bytes_sent for line in hits)


def bench_vfs(args: argparse.Namespace, work: Path) -> None:
    www = work / "www"
    shutil.copy(Path(args.source) / "aliases.sqlite3", www / "aliases.sqlite3")
    data = (www / "aliases.sqlite3").read_bytes()
    local = sqlite3.connect(f"file:{www / 'aliases.sqlite3'}?mode=ro", uri=True)
    n_aliases = local.execute("select count(*) from seqalias").fetchone()[0]
    keys = local.execute("select namespace, alias from seqalias").fetchall()
    picks = random.Random(11).sample(keys, args.lookups)
    t = time.perf_counter()
    expected = [local.execute(LOOKUP, k).fetchall() for k in picks]
    local_ms = (time.perf_counter() - t) * 1000
    print(
        f"database {len(data) / 1e6:.1f} MB, {n_aliases} aliases, {args.lookups} lookups;"
        f" local sqlite3 {local_ms:.1f} ms"
    )
    print(f"{'chunk':>6} {'run':>5} {'requests':>8} {'bytes':>10} {'B/lookup':>9} {'ms':>8}")
    with Nginx(www, work / "nginx") as server:
        digest = hashlib.sha256(data).hexdigest()
        spec = FileSpec(f"{server.url}/aliases.sqlite3", len(data), digest)
        for chunk in (int(c) for c in args.chunks.split(",")):
            for run in ("cold", "warm"):  # warm: a new process's view (new connection, cache)
                cache = RangeCache(str(work / f"cache-{chunk}"))
                conn = open_database(spec, cache, chunk_size=chunk)
                n0, b0 = count(server, "aliases")
                t = time.perf_counter()
                got = [conn.execute(LOOKUP, k).fetchall() for k in picks]
                ms = (time.perf_counter() - t) * 1000
                n1, b1 = count(server, "aliases")
                assert got == expected
                assert conn.remote.wait_idle(30)
                print(
                    f"{chunk:>6} {run:>5} {n1 - n0:>8} {b1 - b0:>10} "
                    f"{(b1 - b0) / args.lookups:>9.0f} {ms:>8.1f}"
                )
                conn.close()
                cache.close()


def bench_read(args: argparse.Namespace, work: Path) -> None:
    src = Path(args.source)
    coffsets, _u = parse_gzi((src.parent / (src.name + ".gzi")).read_bytes(), "gzi")
    shutil.copy(src, work / "www" / "f.bgz")
    data = (work / "www" / "f.bgz").read_bytes()
    size = len(data)
    rng = random.Random(5)
    blocks = [rng.randrange(len(coffsets)) for _ in range(args.regions)]
    print(
        f"file {size / 1e6:.1f} MB, {len(coffsets)} BGZF blocks"
        f" (mean {size / len(coffsets):.0f} B); {args.regions} random blocks, each cold"
    )
    print(f"{'chunk':>6} {'what':>16} {'requests':>8} {'bytes':>11} {'MB/s':>7}")
    with Nginx(work / "www", work / "nginx") as server:
        url = f"{server.url}/f.bgz"
        for chunk in (int(c) for c in args.chunks.split(",")):
            n0, b0 = count(server, "f.bgz")
            for k, i in enumerate(blocks):  # each region in a cold cache of its own name
                rf = RemoteFile(
                    FileSpec(url, size, path=f"{chunk}/{k}"),
                    RangeCache(str(work / f"c-{chunk}-regions")),
                    chunk_size=chunk,
                    read_ahead=0,
                    whole_file_below=0,
                )
                rf._file_id = f"bench:{chunk}:{k}"  # a fresh identity: nothing cached
                a = coffsets[i]
                b = coffsets[i + 1] if i + 1 < len(coffsets) else size
                assert rf.pread(a, b - a) == data[a:b]
            n1, b1 = count(server, "f.bgz")
            print(
                f"{chunk:>6} {'region, cold':>16} {(n1 - n0) / args.regions:>8.2f}"
                f" {(b1 - b0) / args.regions:>11.0f} {'':>7}"
            )
            cache = RangeCache(str(work / f"c-{chunk}-cat"))
            for run in ("cat, cold", "cat, warm"):
                rf = RemoteFile(FileSpec(url, size, path="cat"), cache, chunk_size=chunk)
                n0, b0 = count(server, "f.bgz")
                t = time.perf_counter()
                for off in range(0, size, args.read_size):
                    assert rf.pread(off, args.read_size) == data[off : off + args.read_size]
                secs = time.perf_counter() - t
                assert rf.wait_idle(60)
                n1, b1 = count(server, "f.bgz")
                print(f"{chunk:>6} {run:>16} {n1 - n0:>8} {b1 - b0:>11} {size / 1e6 / secs:>7.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    vfs = sub.add_parser("vfs", help="alias lookups through the SQLite VFS")
    vfs.add_argument("source", metavar="INSTANCE")
    vfs.add_argument("--lookups", type=int, default=100)
    vfs.add_argument("--chunks", default="4096,8192,16384,65536")
    read = sub.add_parser("read", help="BGZF blocks and a sequential read")
    read.add_argument("source", metavar="FILE.fa.bgz")
    read.add_argument("--regions", type=int, default=200)
    read.add_argument("--chunks", default="16384,65536")
    read.add_argument("--read-size", type=int, default=128 * 1024)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-lazy-") as tmp:
        work = Path(tmp)
        (work / "www").mkdir()
        (bench_vfs if args.what == "vfs" else bench_read)(args, work)


if __name__ == "__main__":
    main()
