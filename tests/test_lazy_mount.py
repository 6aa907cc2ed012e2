"""Real mounts of a published snapshot's URL (nginx on 127.0.0.1) beside a mount of the local
copy of the same snapshot: the same tree, every byte of every file equal (alias files, .fai,
.dict, whole-assembly and collection files), samtools, bedtools, pysam and pyfaidx give the
same answers; a warm cache serves a new mount with the server stopped while uncached reads get
EIO (logged once); --cache-size is honoured by the daemon.
"""

from __future__ import annotations

import errno
import os
import random
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.data import SNAPSHOT
from support.fault_proxy import FaultProxy
from support.fuse import Mounted, errno_of, eventually, needs_fuse
from support.http_servers import NGINX, Nginx
from support.lazy_site import BIG, BIG_LENGTH, Site, build_site, files_below
from support.oracles import BEDTOOLS, SAMTOOLS, needs_tools

from seqrepofs.lazy import RangeCache

pytestmark = [
    needs_fuse,
    pytest.mark.fuse,
    pytest.mark.skipif(NGINX is None, reason="nginx not installed (apt-get install nginx)"),
    pytest.mark.timeout(240),
]
CHROM1 = "refseq/NC_000001.11.fa"  # a small generated GRCh38 record
BIG_FA = f"test/{BIG}.fa"


@dataclass
class Pair:
    local: Path  # mount of the local snapshot
    lazy: Path  # mount of its URL (a name as long as "local": .dict sizes hold the path)
    site: Site
    server: Nginx
    cache: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return build_site(tmp_path_factory.mktemp("lazy-mount"))


@pytest.fixture(scope="module")
def pair(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    work = tmp_path_factory.mktemp("mounts")
    with Nginx(site.www, work / "nginx") as server:
        with (
            Mounted(site.local, work / "local") as local,
            Mounted(
                f"{server.url}/latest", work / "urlfs", "--cache-dir", str(work / "cache")
            ) as lazy,
        ):
            yield Pair(work / "local", work / "urlfs", site, server, work / "cache")
            assert os.listdir(work / "urlfs"), "the daemon must survive every request"
            assert "Traceback" not in lazy.log, lazy.log
            assert "Traceback" not in local.log, local.log


def test_same_tree_and_every_byte(pair: Pair) -> None:
    names = files_below(pair.local)
    assert files_below(pair.lazy) == names
    assert any(n.endswith(".seqcol.json") for n in names)  # whole-assembly views
    assert any(n.startswith("collections/") for n in names)  # collections.sqlite3 read too
    checked = 0
    for name in names:
        a, b = pair.local / name, pair.lazy / name
        sa, sb = os.stat(a), os.stat(b)
        assert (sb.st_mode, sb.st_size) == (sa.st_mode, sa.st_size), name
        if name.endswith("/"):
            continue
        expected = a.read_bytes()
        if name.endswith(".dict"):  # their UR: names the file's own path
            expected = expected.replace(os.fsencode(pair.local), os.fsencode(pair.lazy))
        assert b.read_bytes() == expected, name
        checked += 1
    assert checked > 1000


def test_the_url_root_link_count_is_not_counted_and_find_still_walks_it(pair: Pair) -> None:
    """Counting the namespaces of a URL mount is a walk of remote pages the first lookup of
    every path would wait for, so its root says "not counted" (1 link); find(1) must still
    descend into every directory (it trusts only counts >= 2 for its leaf shortcut)."""
    local_root, lazy_root = os.stat(pair.local), os.stat(pair.lazy)
    assert lazy_root.st_nlink == 1
    namespaces = [e for e in os.scandir(pair.local) if e.is_dir()]
    assert local_root.st_nlink == 2 + len(namespaces)

    def find_dirs(root: Path) -> list[str]:
        out = subprocess.run(
            ["find", str(root), "-type", "d"], capture_output=True, text=True, check=True
        ).stdout
        return sorted(line[len(str(root)) :] for line in out.splitlines())

    assert find_dirs(pair.lazy) == find_dirs(pair.local)


def test_mount_url_is_a_frozen_snapshot(pair: Pair) -> None:
    assert errno_of(open, pair.lazy / "refseq" / "new.fa", "w") == errno.EROFS
    with open("/proc/self/mountinfo") as fh:
        line = next(ln for ln in fh if f" {pair.lazy} " in ln)
    # `latest` is resolved when mounting: the mount names the snapshot it serves
    assert f"{pair.server.url}/{SNAPSHOT} " in line and "fuse.seqrepofs" in line


def _regions(rng: random.Random, n: int) -> list[str]:
    out = [
        f"{BIG}:{s}-{s + rng.choice([1, 99, 5000])}"
        for s in (rng.randrange(1, BIG_LENGTH - 6000) for _ in range(n))
    ]
    return [*out, f"{BIG}:{BIG_LENGTH - 10}-{BIG_LENGTH}", f"{BIG}:1-1"]


@needs_tools
def test_samtools_and_bedtools_agree(pair: Pair, tmp_path: Path) -> None:
    rng = random.Random(11)
    regions = _regions(rng, 40)
    for fa, regs in (
        (BIG_FA, regions),
        (CHROM1, ["NC_000001.11:1-500", "NC_000001.11:700-701"]),
        ("GRCh38.ucsc.fa", ["chr1:1-700", "chrM:16000-16569", "chr21:1-60"]),
    ):
        outs = [
            subprocess.run(
                [SAMTOOLS, "faidx", str(top / fa), *regs], check=True, capture_output=True
            ).stdout
            for top in (pair.local, pair.lazy)
        ]
        assert outs[0] == outs[1] and outs[0].count(b">") == len(regs), fa
    bed = tmp_path / "r.bed"
    bed.write_text(
        "".join(
            f"{BIG}\t{s}\t{s + 300}\n"
            for s in (rng.randrange(0, BIG_LENGTH - 300) for _ in range(30))
        )
    )
    outs = [
        subprocess.run(
            [BEDTOOLS, "getfasta", "-fi", str(top / BIG_FA), "-bed", str(bed)],
            check=True,
            capture_output=True,
        ).stdout
        for top in (pair.local, pair.lazy)
    ]
    assert outs[0] == outs[1] and outs[0].count(b">") == 30


def test_pysam_and_pyfaidx_agree(pair: Pair) -> None:
    pysam = pytest.importorskip("pysam")
    pyfaidx = pytest.importorskip("pyfaidx")
    rng = random.Random(12)
    spans = [
        (s, s + rng.choice([1, 150, 20_000]))
        for s in (rng.randrange(0, BIG_LENGTH - 20_001) for _ in range(30))
    ]
    local = pysam.FastaFile(str(pair.local / BIG_FA))
    lazy = pysam.FastaFile(str(pair.lazy / BIG_FA))
    fx = pyfaidx.Fasta(str(pair.lazy / BIG_FA))
    try:
        for a, b in spans:
            want = pair.site.seqs[BIG][a:b]
            assert lazy.fetch(BIG, a, b) == local.fetch(BIG, a, b) == want
            assert str(fx[BIG][a:b]) == want
    finally:
        local.close()
        lazy.close()
        fx.close()


def test_warm_cache_serves_with_the_server_stopped_and_uncached_reads_get_eio(
    site: Site, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    args = ("--cache-dir", str(cache), "--http-timeout", "3", "--log-file", str(tmp_path / "d.log"))
    offsets = [0, 1_000_000, 4_000_000]
    with Nginx(site.www, tmp_path / "nginx") as server:
        url = f"{server.url}/{SNAPSHOT}"
        with Mounted(url, tmp_path / "m", *args):
            with open(tmp_path / "m" / BIG_FA, "rb") as fh:
                warm = [os.pread(fh.fileno(), 4096, off) for off in offsets]
            (tmp_path / "m" / CHROM1).read_bytes()
    # a new daemon, nginx stopped: the manifest and everything read before come from the cache
    with Mounted(url, tmp_path / "m2", *args):
        top = tmp_path / "m2"
        with open(top / BIG_FA, "rb") as fh:
            assert [os.pread(fh.fileno(), 4096, off) for off in offsets] == warm
            assert errno_of(os.pread, fh.fileno(), 4096, 2_500_000) == errno.EIO
            assert errno_of(os.pread, fh.fileno(), 4096, 3_000_000) == errno.EIO
        assert (top / CHROM1).read_bytes()[:1] == b">"
    log = (tmp_path / "d.log").read_text()
    assert "Traceback" not in log and "internal error" not in log, log
    failures = [ln for ln in log.splitlines() if "refused" in ln.lower()]
    assert len(failures) == 1, log  # one outage, one line: not one per read
    assert url.split("/")[2] in failures[0]


def test_a_stalled_server_holds_up_only_the_reads_that_need_it(pair: Pair, tmp_path: Path) -> None:
    """While one reader waits on a server that has stopped answering, a read of another file
    the cache holds answers at once: reads of a URL instance that are not in memory run on
    the worker threads, not on the FUSE event loop every request goes through."""
    armed = threading.Event()
    stalled: list[str] = []

    def schedule(_number: int, method: str, path: str) -> str:
        if method == "GET" and path.endswith(".bgz") and armed.is_set() and not stalled:
            stalled.append(path)
            return "stall"
        return "pass"

    cache = tmp_path / "cache"
    log_file = tmp_path / "d.log"
    args = ("--cache-dir", str(cache), "--http-timeout", "20", "--log-file", str(log_file))
    with FaultProxy(pair.server.port, schedule, stall=6.0) as proxy:
        url = f"{proxy.url}/{SNAPSHOT}"
        with Mounted(url, tmp_path / "m", *args):  # fill the cache: CHROM1, BIG's indexes
            chrom1 = (tmp_path / "m" / CHROM1).read_bytes()
            with open(tmp_path / "m" / BIG_FA, "rb") as fh:
                os.pread(fh.fileno(), 4096, 0)
        with Mounted(url, tmp_path / "m2", *args):  # a new daemon: nothing in memory
            top = tmp_path / "m2"
            fh = os.open(top / BIG_FA, os.O_RDONLY)
            armed.set()
            got: list[bytes] = []
            waiting = threading.Thread(target=lambda: got.append(os.pread(fh, 4096, 3_000_000)))
            waiting.start()
            try:
                assert eventually(lambda: bool(stalled), 10), "the uncached read made no request"
                t0 = time.monotonic()
                assert (top / CHROM1).read_bytes() == chrom1
                took = time.monotonic() - t0
                assert took < 2.0, f"a cached read waited {took:.1f} s behind a stalled one"
                assert waiting.is_alive(), "the stall ended before the cached read was tried"
            finally:
                waiting.join(60)
                os.close(fh)
            with open(pair.local / BIG_FA, "rb") as lf:
                # the stalled read was retried and got its bytes
                assert got == [os.pread(lf.fileno(), 4096, 3_000_000)]
    log = log_file.read_text()
    assert "Traceback" not in log and "internal error" not in log, log


def test_cache_size_is_honoured_by_the_daemon(pair: Pair, tmp_path: Path) -> None:
    bound = 512 * 1024
    with Mounted(
        f"{pair.server.url}/{SNAPSHOT}",
        tmp_path / "m",
        "--cache-dir",
        str(tmp_path / "c"),
        "--cache-size",
        "512K",
    ):
        assert (tmp_path / "m" / BIG_FA).read_bytes() == (pair.local / BIG_FA).read_bytes()
    rc = RangeCache(str(tmp_path / "c"), bound)
    try:
        assert 0 < rc.disk_bytes() <= bound
    finally:
        rc.close()
