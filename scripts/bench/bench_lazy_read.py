"""Byte-range reads of one file through RemoteFile from a real nginx on 127.0.0.1: random
BGZF-block reads (as a region lookup makes) cold, and a sequential read (as `cat` makes) cold
and warm, with requests and bytes from nginx's access log, for several chunk sizes.

    python scripts/bench/bench_lazy_read.py FILE.fa.bgz [--regions 200] [--chunks 16384,65536]

FILE needs its .gzi beside it (bgzip -i), which gives the compressed block offsets.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from support.http_servers import Nginx  # noqa: E402

from seqrepofs.lazy import FileSpec, RangeCache, RemoteFile  # noqa: E402
from seqrepofs.store.fai import parse_gzi  # noqa: E402


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
    ap.add_argument("bgz")
    ap.add_argument("--regions", type=int, default=200)
    ap.add_argument("--chunks", default="16384,65536")
    ap.add_argument("--read-size", type=int, default=128 * 1024)
    args = ap.parse_args()
    src = Path(args.bgz)
    coffsets, _u = parse_gzi((src.parent / (src.name + ".gzi")).read_bytes(), "gzi")
    work = Path(tempfile.mkdtemp(prefix="bench-lazy-read-"))
    (work / "www").mkdir()
    shutil.copy(src, work / "www" / "f.bgz")
    data = (work / "www" / "f.bgz").read_bytes()
    size = len(data)
    rng = random.Random(5)
    blocks = [rng.randrange(len(coffsets)) for _ in range(args.regions)]
    print(f"file {size / 1e6:.1f} MB, {len(coffsets)} BGZF blocks"
          f" (mean {size / len(coffsets):.0f} B); {args.regions} random blocks, each cold")
    print(f"{'chunk':>6} {'what':>16} {'requests':>8} {'bytes':>11} {'MB/s':>7}")
    with Nginx(work / "www", work / "nginx") as server, _cleanup(work):
        for chunk in (int(c) for c in args.chunks.split(",")):
            n0, b0 = count(server, "f.bgz")
            for k, i in enumerate(blocks):  # each region in a cold cache of its own name
                spec = FileSpec(f"{server.url}/f.bgz", size, path=f"{chunk}/{k}")
                rf = RemoteFile(spec, RangeCache(str(work / f"c-{chunk}-regions")),
                                chunk_size=chunk, read_ahead=0, whole_file_below=0)
                rf._file_id = f"bench:{chunk}:{k}"  # a fresh identity: nothing cached
                a = coffsets[i]
                b = coffsets[i + 1] if i + 1 < len(coffsets) else size
                assert rf.pread(a, b - a) == data[a:b]
            n1, b1 = count(server, "f.bgz")
            print(f"{chunk:>6} {'region, cold':>16} {(n1 - n0) / args.regions:>8.2f}"
                  f" {(b1 - b0) / args.regions:>11.0f} {'':>7}")
            cache = RangeCache(str(work / f"c-{chunk}-cat"))
            for run in ("cat, cold", "cat, warm"):
                rf = RemoteFile(FileSpec(f"{server.url}/f.bgz", size, path="cat"), cache,
                                chunk_size=chunk)
                n0, b0 = count(server, "f.bgz")
                t = time.perf_counter()
                for off in range(0, size, args.read_size):
                    assert rf.pread(off, args.read_size) == data[off : off + args.read_size]
                secs = time.perf_counter() - t
                assert rf.wait_idle(60)
                n1, b1 = count(server, "f.bgz")
                print(f"{chunk:>6} {run:>16} {n1 - n0:>8} {b1 - b0:>11}"
                      f" {size / 1e6 / secs:>7.1f}")


if __name__ == "__main__":
    main()
