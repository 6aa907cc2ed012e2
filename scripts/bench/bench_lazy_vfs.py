"""Alias lookups through the remote SQLite VFS, cold and warm: requests and bytes on the wire
(from nginx's access log) and wall time, for several cache chunk sizes, beside local sqlite3.

    python scripts/bench/bench_lazy_vfs.py ROOT/INSTANCE [--lookups 100] [--chunks 4096,8192]

The instance's aliases.sqlite3 is served by a real nginx on 127.0.0.1
(tests/support/http_servers.py). Build one with >= 100,000 aliases with
`seqrepofs -r ROOT init; seqrepofs -r ROOT load -n NS generated.fa` (5 aliases per sequence).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from support.http_servers import Nginx  # noqa: E402

from seqrepofs.lazy import FileSpec, RangeCache  # noqa: E402
from seqrepofs.lazy.sqlite_vfs import open_database  # noqa: E402

LOOKUP = ("select seq_id, namespace from seqalias"
          " where namespace = ? and alias = ? and is_current = 1")


@contextlib.contextmanager
def _cleanup(work: Path) -> Iterator[None]:
    try:
        yield
    finally:
        shutil.rmtree(work, ignore_errors=True)


def count(server: Nginx, part: str) -> tuple[int, int]:
    """(requests, bytes sent) so far for paths containing `part`, from nginx's access log."""
    hits = [line for line in server.log() if part in line.path]
    return len(hits), sum(line.bytes_sent for line in hits)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("instance")
    ap.add_argument("--lookups", type=int, default=100)
    ap.add_argument("--chunks", default="4096,8192,16384,65536")
    args = ap.parse_args()
    db = Path(args.instance) / "aliases.sqlite3"
    work = Path(tempfile.mkdtemp(prefix="bench-lazy-"))
    www = work / "www"
    www.mkdir()
    shutil.copy(db, www / "aliases.sqlite3")
    data = (www / "aliases.sqlite3").read_bytes()
    local = sqlite3.connect(f"file:{www / 'aliases.sqlite3'}?mode=ro", uri=True)
    n_aliases = local.execute("select count(*) from seqalias").fetchone()[0]
    keys = local.execute("select namespace, alias from seqalias").fetchall()
    picks = random.Random(11).sample(keys, args.lookups)
    t = time.perf_counter()
    expected = [local.execute(LOOKUP, k).fetchall() for k in picks]
    local_ms = (time.perf_counter() - t) * 1000
    with Nginx(www, work / "nginx") as server, _cleanup(work):
        digest = hashlib.sha256(data).hexdigest()
        spec = FileSpec(f"{server.url}/aliases.sqlite3", len(data), digest)
        print(f"database {len(data) / 1e6:.1f} MB, {n_aliases} aliases, {args.lookups} lookups;"
              f" local sqlite3 {local_ms:.1f} ms")
        print(f"{'chunk':>6} {'run':>5} {'requests':>8} {'bytes':>10} {'B/lookup':>9} {'ms':>8}")
        for chunk in (int(c) for c in args.chunks.split(",")):
            cache_dir = work / f"cache-{chunk}"
            for run in ("cold", "warm"):
                cache = RangeCache(str(cache_dir))
                conn = open_database(spec, cache, chunk_size=chunk)
                n0, b0 = count(server, "aliases")
                t = time.perf_counter()
                got = [conn.execute(LOOKUP, k).fetchall() for k in picks]
                ms = (time.perf_counter() - t) * 1000
                n1, b1 = count(server, "aliases")
                assert got == expected
                assert conn.remote.wait_idle(30)
                print(f"{chunk:>6} {run:>5} {n1 - n0:>8} {b1 - b0:>10} "
                      f"{(b1 - b0) / args.lookups:>9.0f} {ms:>8.1f}")
                conn.close()
                cache.close()


if __name__ == "__main__":
    main()
