"""Lazy reading over HTTP from a real nginx on 127.0.0.1: byte-exact random reads, coalesced and
read-ahead requests, SQLite lookups through the VFS fetching a few pages, a cache filled by two
processes at once, warm reads with the server stopped, changed files refused, faults named.

Requests and bytes are counted from nginx's access log ($bytes_sent). nginx is the Debian
package (scripts/install-deps), run by support.http_servers; without it these tests skip.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from support.fault_proxy import FaultProxy
from support.http_servers import NGINX, Nginx

from seqrepofs.lazy import FileSpec, RangeCache, RemoteChangedError, RemoteFile, RemoteReadError
from seqrepofs.lazy.sqlite_vfs import open_database

REPO = Path(__file__).resolve().parents[1]
REAL = REPO / "tests" / "data" / "real" / "seqrepo-instances" / "rest-service-2019"
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx not installed (apt-get install nginx)")


def _url(server: Nginx, rel: str) -> str:
    return f"{server.url}/{rel}"


def _count(server: Nginx, path_part: str = "") -> tuple[int, int]:
    """(requests, bytes sent) so far for paths containing `path_part`, from the access log."""
    hits = [line for line in server.log() if path_part in line.path]
    return len(hits), sum(line.bytes_sent for line in hits)


def _build_aliases_root(dest: Path, n_seqs: int) -> Path:
    """A SeqRepo instance made by the loader from `n_seqs` generated sequences (5 aliases each)."""
    rng = random.Random(7)
    fasta = dest / "gen.fa"
    with open(fasta, "w") as fh:
        for i in range(n_seqs):
            seq = "".join(rng.choice("ACGT") for _ in range(100))
            fh.write(f">gen{i:06d}\n{seq}\n")
    root = dest / "root"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for args in (["init"], ["load", "-n", "GEN", str(fasta)]):
        subprocess.run(
            [sys.executable, "-m", "seqrepofs", "-r", str(root), *args],
            check=True,
            env=env,
            timeout=300,
            capture_output=True,
        )
    return root / "master"


FAIL_LOCATION = "        location /fail/ { return 503; }"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """nginx serving a directory holding the real instance and a generated 20,000-alias one."""
    base = tmp_path_factory.mktemp("lazy-www")
    www = base / "www"
    www.mkdir()
    shutil.copytree(REAL, www / "real")
    gen = _build_aliases_root(base, 4000)
    shutil.copytree(gen, www / "gen")
    with Nginx(www, base / "nginx", extra=FAIL_LOCATION) as server:
        yield server


def _spec(server: Nginx, rel: str, with_digest: bool = True) -> FileSpec:
    path = server.root / rel
    data = path.read_bytes()
    return FileSpec(
        _url(server, rel),
        len(data),
        hashlib.sha256(data).hexdigest() if with_digest else None,
        path=rel,
    )


def _bgz(root: Path) -> str:
    files = sorted(p for p in root.rglob("*.fa.bgz"))
    return str(max(files, key=lambda p: p.stat().st_size).relative_to(root.parent))


def test_random_preads_equal_local_bytes(served: Nginx, tmp_path: Path) -> None:
    rel = _bgz(served.root / "real")
    local = (served.root / rel).read_bytes()
    rf = RemoteFile(_spec(served, rel), RangeCache(str(tmp_path / "c")), chunk_size=16384)
    rng = random.Random(1)
    for _ in range(300):  # bounded
        off = rng.randrange(len(local) + 10)
        n = rng.choice([1, 17, 4096, 16384, 70000, 300000])
        assert rf.pread(off, n) == local[off : off + n]
    assert rf.pread(len(local) - 5, 100) == local[-5:]
    assert rf.wait_idle(10)
    before = _count(served, rel)
    assert rf.pread(0, len(local)) == local  # everything cached now: no request
    assert _count(served, rel) == before


def test_small_file_fetched_whole_and_checked(served: Nginx, tmp_path: Path) -> None:
    rel = _bgz(served.root / "real") + ".fai"
    local = (served.root / rel).read_bytes()
    spec = _spec(served, rel)
    rf = RemoteFile(spec, RangeCache(str(tmp_path / "c")))
    assert rf.pread(10, 20) == local[10:30]
    assert _count(served, rel)[0] == 1
    assert rf.pread(0, len(local)) == local
    assert _count(served, rel)[0] == 1
    wrong = FileSpec(spec.url, spec.size, "0" * 64, path=rel)
    with pytest.raises(RemoteChangedError, match="SHA-256"):
        RemoteFile(wrong, RangeCache(str(tmp_path / "c2"))).pread(0, 10)


def test_adjacent_chunks_coalesce_into_one_request(served: Nginx, tmp_path: Path) -> None:
    rel = "gen/aliases.sqlite3"
    local = (served.root / rel).read_bytes()
    rf = RemoteFile(
        _spec(served, rel),
        RangeCache(str(tmp_path / "c")),
        chunk_size=8192,
        read_ahead=0,
        whole_file_below=0,
    )
    n0 = _count(served, rel)[0]
    assert rf.pread(100_000, 200_000) == local[100_000:300_000]  # 26 chunks
    assert _count(served, rel)[0] - n0 == 1
    assert rf.stats.requests == 1


def test_threads_share_fetches(served: Nginx, tmp_path: Path) -> None:
    """Eight threads reading overlapping ranges get the right bytes, and no chunk is fetched
    twice (a chunk in flight is waited for, not fetched again)."""
    rel = "gen/aliases.sqlite3"
    local = (served.root / rel).read_bytes()
    rf = RemoteFile(
        _spec(served, rel),
        RangeCache(str(tmp_path / "c")),
        chunk_size=8192,
        read_ahead=0,
        whole_file_below=0,
    )
    errors: list[str] = []

    def reader(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(60):  # bounded
            off = rng.randrange(0, 1_000_000)
            n = rng.choice([100, 20_000, 90_000])
            if rf.pread(off, n) != local[off : off + n]:
                errors.append(f"{off} {n}")

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    assert rf.stats.bytes <= 1_000_000 + 100_000  # each chunk of the first MB at most once


def test_sequential_reader_is_read_ahead(served: Nginx, tmp_path: Path) -> None:
    rel = "gen/aliases.sqlite3"
    local = (served.root / rel).read_bytes()
    rf = RemoteFile(
        _spec(served, rel),
        RangeCache(str(tmp_path / "c")),
        chunk_size=16384,
        read_ahead=1 << 20,
        whole_file_below=0,
    )
    got = bytearray()
    for off in range(0, len(local), 32768):  # bounded by the file's size
        got += rf.pread(off, 32768)
    assert bytes(got) == local
    chunks = -(-len(local) // 16384)
    assert rf.stats.requests < chunks / 8, (rf.stats, chunks)


def test_reads_finishing_out_of_order_are_still_read_ahead(served: Nginx, tmp_path: Path) -> None:
    """Two threads reading one stream (the BGZF reader inflates on two) finish their preads in
    any order; a read a little behind the furthest end still counts as sequential."""
    rel = "gen/aliases.sqlite3"
    local = (served.root / rel).read_bytes()
    rf = RemoteFile(
        _spec(served, rel),
        RangeCache(str(tmp_path / "c")),
        chunk_size=16384,
        read_ahead=1 << 20,
        whole_file_below=0,
    )
    k = 32768
    for off in (k, 0, 2 * k):  # the second stream piece finished before the first
        assert rf.pread(off, k) == local[off : off + k]
    assert rf.wait_idle(30)
    before = rf.stats.requests
    assert rf.pread(3 * k, 512 * 1024) == local[3 * k : 3 * k + 512 * 1024]
    assert rf.stats.requests == before  # read ahead already
    # a reader jumping back further is no stream: nothing more is read ahead for it
    rf2 = RemoteFile(
        _spec(served, rel),
        RangeCache(str(tmp_path / "c2")),
        chunk_size=16384,
        read_ahead=1 << 20,
        whole_file_below=0,
    )
    for off in (1_000_000, 0, 1_000_000 + k):
        rf2.pread(off, k)
    assert rf2.wait_idle(30)
    assert rf2.stats.bytes < 200_000, rf2.stats


def test_no_waiting_reads_only_what_is_cached(served: Nginx, tmp_path: Path) -> None:
    """Inside no_waiting() (the FUSE event loop's first try) a read the cache answers returns its
    bytes, and one that would fetch raises WouldWait without making a request."""
    from seqrepofs.store.nowait import WouldWait, no_waiting

    rel = "gen/aliases.sqlite3"
    local = (served.root / rel).read_bytes()
    rf = RemoteFile(
        _spec(served, rel),
        RangeCache(str(tmp_path / "c")),
        chunk_size=16384,
        read_ahead=0,
        whole_file_below=0,
    )
    assert rf.pread(0, 50_000) == local[:50_000]
    assert rf.wait_idle(30)  # the fetched chunks are in the cache, not only handed over
    before = rf.stats.requests
    with no_waiting():
        assert rf.pread(1000, 40_000) == local[1000:41_000]
        with pytest.raises(WouldWait):
            rf.pread(60_000, 20_000)  # its last chunk (from 65,536) is not cached
    assert rf.stats.requests == before
    assert rf.pread(60_000, 20_000) == local[60_000:80_000]  # outside, it fetches


def test_read_ahead_stops_where_the_reader_says(served: Nginx, tmp_path: Path) -> None:
    """A sequential reader that says where its data ends (a BGZF record's last block) is not
    read ahead past it: nothing beyond `ahead_end` is fetched, however large the window."""
    rel = "gen/aliases.sqlite3"
    local = (served.root / rel).read_bytes()
    rf = RemoteFile(
        _spec(served, rel),
        RangeCache(str(tmp_path / "c")),
        chunk_size=16384,
        read_ahead=1 << 20,
        whole_file_below=0,
    )
    limit = 300_000
    got = bytearray()
    for off in range(0, limit, 32768):
        got += rf.pread(off, min(32768, limit - off), ahead_end=limit)
    assert bytes(got) == local[:limit]
    assert rf.wait_idle(30)
    assert rf.stats.bytes <= limit + 16384, rf.stats  # up to the chunk holding the limit
    assert rf.stats.requests >= 2  # it did read ahead (in one request) within the limit
    assert rf.stats.requests < limit // 32768


def test_namespaces_walked_in_stretches_match_the_local_walk(served: Nginx, tmp_path: Path) -> None:
    """The namespace listing over a URL walks stretches of the name space in parallel: names
    on every side of the stretch bounds, at them, and outside ASCII are all found, in order,
    and a namespace whose aliases are all superseded is not."""
    rel = "ns/aliases.sqlite3"
    path = served.root / rel
    path.parent.mkdir(exist_ok=True)
    shutil.copyfile(served.root / "gen" / "aliases.sqlite3", path)
    names = ["", " x", "0", "9z", "A", "Z_", "_x", "a", "z", "zz", "~", "é", "名前", "old"]
    with sqlite3.connect(path) as conn:
        rows = conn.execute("select seqalias_id from seqalias limit ?", (len(names),))
        ids = [r[0] for r in rows]
        for rowid, name in zip(ids, names, strict=True):
            conn.execute("update seqalias set namespace = ? where seqalias_id = ?", (name, rowid))
        conn.execute("update seqalias set is_current = 0 where namespace = 'old'")
    from seqrepofs.store.aliasdb import AliasDB
    from seqrepofs.store.database import Database

    local = AliasDB(str(path))
    want = local.namespaces()
    assert "old" not in want and {"", "0", "A", "a", "z", "名前", "GEN"} <= set(want)
    rf = RemoteFile(
        _spec(served, rel),
        RangeCache(str(tmp_path / "c")),
        chunk_size=4096,
        read_ahead=0,
        whole_file_below=0,
    )
    remote = AliasDB(str(path), database=Database(str(path), "aliasdb", False, remote=rf))
    assert remote.namespaces() == want


def test_vfs_lookup_matches_sqlite_and_fetches_few_pages(served: Nginx, tmp_path: Path) -> None:
    rel = "gen/aliases.sqlite3"
    path = served.root / rel
    size = path.stat().st_size
    assert size > 2_000_000  # the test means something only on a database much larger than a page
    sql = "select seq_id, namespace, alias, is_current from seqalias where alias = ? order by 1, 2"
    local = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn = open_database(_spec(served, rel), RangeCache(str(tmp_path / "c")))
    n0, b0 = _count(served, rel)
    for alias in ("gen000123", "gen003999", "nope"):
        assert conn.execute(sql, (alias,)).fetchall() == local.execute(sql, (alias,)).fetchall()
    digest = local.execute("select alias from seqalias where namespace = 'MD5' limit 1").fetchone()
    assert conn.execute(sql, digest).fetchall() == local.execute(sql, digest).fetchall()
    assert conn.execute(sql, digest).fetchall()  # found
    requests, sent = _count(served, rel)[0] - n0, _count(served, rel)[1] - b0
    assert requests <= 30, requests  # a few pages per lookup, interior pages shared
    assert sent < size / 10, (sent, size)
    count_sql = "select count(*) from seqalias where namespace = 'GEN'"
    assert conn.execute(count_sql).fetchone() == local.execute(count_sql).fetchone()


def test_vfs_attach_joins_two_remote_databases(served: Nginx, tmp_path: Path) -> None:
    """The alias and sequence databases joined in one query, both read over HTTP (as the
    store's AliasDB joins them), give what sqlite3 gives on the local files."""
    cache = RangeCache(str(tmp_path / "c"))
    conn = open_database(_spec(served, "real/aliases.sqlite3"), cache)
    seq_db = RemoteFile(
        _spec(served, "real/sequences/db.sqlite3"),
        cache,
        chunk_size=4096,
        read_ahead=0,
        whole_file_below=0,
    )
    conn.attach(seq_db, "fd")
    sql = (
        "select a.namespace, a.alias, s.len, s.relpath from seqalias a"
        " join fd.seqinfo s on s.seq_id = a.seq_id where a.is_current = 1 order by 1, 2"
    )
    local = sqlite3.connect(f"file:{served.root / 'real/aliases.sqlite3'}?mode=ro", uri=True)
    local.execute(
        "attach database ? as fd", (f"file:{served.root / 'real/sequences/db.sqlite3'}?mode=ro",)
    )
    rows = conn.execute(sql).fetchall()
    assert rows and rows == local.execute(sql).fetchall()
    assert _count(served, "real/sequences/db.sqlite3")[0] > 0
    with pytest.raises(ValueError):
        conn.attach(seq_db, "x; drop")


def test_vfs_errors_are_sqlite_errors(served: Nginx, tmp_path: Path) -> None:
    conn = open_database(_spec(served, "real/aliases.sqlite3"), RangeCache(str(tmp_path / "c")))
    with pytest.raises(sqlite3.DatabaseError, match="no such table"):
        conn.execute("select * from no_such_table")
    with pytest.raises(sqlite3.DatabaseError):
        conn.execute("insert into seqalias (seq_id, namespace, alias) values ('a', 'b', 'c')")


def test_two_processes_fill_one_cache(served: Nginx, tmp_path: Path) -> None:
    rel = "gen/aliases.sqlite3"
    local = (served.root / rel).read_bytes()
    spec = _spec(served, rel)
    cache_dir = tmp_path / "shared"
    script = textwrap.dedent(f"""\
        import random, sys
        from seqrepofs.lazy import FileSpec, RangeCache, RemoteFile
        spec = FileSpec({spec.url!r}, {spec.size}, {spec.sha256!r})
        rf = RemoteFile(spec, RangeCache({str(cache_dir)!r}, 3 << 20), chunk_size=8192,
                        read_ahead=0, whole_file_below=0)
        rng = random.Random(int(sys.argv[1]))
        out = open(sys.argv[2], "w")
        for _ in range(400):
            off = rng.randrange({spec.size}); n = rng.choice([100, 8192, 50000])
            out.write(f"{{off}} {{n}} {{rf.pread(off, n).hex()}}\\n")
        """)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(i), str(tmp_path / f"o{i}")],
            env=dict(os.environ, PYTHONPATH=str(REPO)),
        )
        for i in range(2)
    ]
    for p in procs:
        assert p.wait(timeout=240) == 0
    for i in range(2):
        lines = (tmp_path / f"o{i}").read_text().splitlines()
        assert len(lines) == 400
        for line in lines:
            off, n, hexdata = line.split(" ")
            assert bytes.fromhex(hexdata) == local[int(off) : int(off) + int(n)]
    cache = RangeCache(str(cache_dir), 3 << 20)
    assert cache.disk_bytes() <= 3 << 20
    assert cache.stats().bytes == cache.disk_bytes()
    rf = RemoteFile(spec, cache, chunk_size=8192, read_ahead=0, whole_file_below=0)
    rng = random.Random(5)
    for _ in range(100):  # what the two left in the cache reads back right
        off = rng.randrange(spec.size)
        assert rf.pread(off, 3000) == local[off : off + 3000]


FIRST_ALIASES = (  # one row through the unique index: a few of the database's pages
    "select seq_id, alias from seqalias where namespace = 'MD5'"
    " and alias = '6681ac2f62509cfc220d78751b8dc524'"
)


def test_warm_cache_serves_with_server_stopped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    www = tmp_path / "www"
    shutil.copytree(REAL, www / "real")
    with Nginx(www, tmp_path / "nginx") as server:
        rel = _bgz(www / "real")
        local = (www / rel).read_bytes()
        cache = RangeCache(str(tmp_path / "c"))
        spec = _spec(server, rel)
        rf = RemoteFile(spec, cache, chunk_size=16384, http_timeout=5, whole_file_below=0)
        assert rf.pread(0, 20_000) == local[:20_000]
        dbspec = _spec(server, "real/aliases.sqlite3")
        conn = open_database(dbspec, cache)
        rows = conn.execute(FIRST_ALIASES).fetchall()
        assert rows
        assert rf.wait_idle(10) and conn.remote.wait_idle(10)
    # the server is stopped; a new reader of the same files, in a new connection: all cached
    rf2 = RemoteFile(spec, cache, chunk_size=16384, http_timeout=5, whole_file_below=0)
    assert rf2.pread(5, 19_000) == local[5:19_005]
    conn2 = open_database(dbspec, cache, http_timeout=5)
    assert conn2.execute(FIRST_ALIASES).fetchall() == rows
    # pages not cached: the VFS gives the reader the remote error, not SQLite's I/O error
    with pytest.raises(RemoteReadError, match="aliases.sqlite3: cannot read: connection refused"):
        conn2.execute("select * from log").fetchall()  # a table on pages not read yet
    # an uncached read fails, naming the URL and the reason, logged once for many reads
    caplog.set_level(logging.WARNING, logger="seqrepofs.lazy.remote_file")
    started = time.monotonic()
    for _ in range(5):
        with pytest.raises(RemoteReadError) as info:
            rf2.pread(60_000, 1000)
        assert spec.url in str(info.value)
        assert "connection refused" in str(info.value)
    assert time.monotonic() - started < 5 * 5 + 5
    assert sum("connection refused" in r.getMessage() for r in caplog.records) == 1


def test_changed_remote_file_is_refused(tmp_path: Path) -> None:
    www = tmp_path / "www"
    www.mkdir()
    target = www / "data.bin"
    original = os.urandom(300_000)
    target.write_bytes(original)
    with Nginx(www, tmp_path / "nginx") as server:
        cache = RangeCache(str(tmp_path / "c"))
        spec = FileSpec(_url(server, "data.bin"), len(original), path="data.bin")
        rf = RemoteFile(spec, cache, chunk_size=8192, read_ahead=0, whole_file_below=0)
        assert rf.pread(0, 1000) == original[:1000]
        assert rf.wait_idle(10)
        # same size, new content and mtime: the ETag differs
        target.write_bytes(os.urandom(len(original)))
        os.utime(target, (time.time() + 5, time.time() + 5))
        with pytest.raises(RemoteChangedError, match="data.bin: remote file changed"):
            rf.pread(200_000, 1000)
        # another process (another RemoteFile) sees the ETag pinned in the cache index
        rf2 = RemoteFile(spec, cache, chunk_size=8192, read_ahead=0, whole_file_below=0)
        with pytest.raises(RemoteChangedError, match="ETag"):
            rf2.pread(100_000, 1000)
        assert rf2.pread(0, 1000) == original[:1000]  # cached bytes of the right version
        # a size that is not the manifest's
        target.write_bytes(original + b"more")
        fresh = RemoteFile(spec, RangeCache(str(tmp_path / "c2")), chunk_size=8192)
        with pytest.raises(RemoteChangedError, match="where the manifest says 300000"):
            fresh.pread(0, 10)


def test_server_errors_and_stalls_name_url_and_reason(served: Nginx, tmp_path: Path) -> None:
    cache = RangeCache(str(tmp_path / "c"))
    spec = FileSpec(_url(served, "fail/x.bin"), 100_000)
    started = time.monotonic()
    with pytest.raises(RemoteReadError, match=r"fail/x\.bin: cannot read: HTTP 503"):
        RemoteFile(spec, cache, http_timeout=5).pread(0, 10)
    assert time.monotonic() - started < 6
    missing = FileSpec(_url(served, "real/nope.bin"), 100)
    with pytest.raises(RemoteReadError, match="HTTP 404"):
        RemoteFile(missing, cache).pread(0, 10)
    # a server that accepts connections and never answers: the read gives up in time
    with socket.socket() as stall:
        stall.bind(("127.0.0.1", 0))
        stall.listen(8)
        url = f"http://127.0.0.1:{stall.getsockname()[1]}/x.bin"
        started = time.monotonic()
        with pytest.raises(RemoteReadError, match="timed out"):
            RemoteFile(FileSpec(url, 1000), cache, http_timeout=1.5).pread(0, 10)
        assert time.monotonic() - started < 3.0


def _schedule(path_part: str) -> tuple[dict[str, Any], Any]:
    """A FaultProxy schedule: requests for `path_part` get `state["fault"]` while
    `state["left"]` lasts, then pass; `state["seen"]` counts them."""
    state: dict[str, Any] = {"fault": "pass", "left": 0, "seen": 0}
    lock = threading.Lock()

    def pick(_number: int, method: str, path: str) -> str:
        if path_part not in path:
            return "pass"
        with lock:
            state["seen"] += 1
            if state["left"] <= 0:
                return "pass"
            state["left"] -= 1
            return str(state["fault"])

    return state, pick


@pytest.mark.parametrize("fault", ["503", "500", "reset", "truncate"])
def test_transient_faults_are_retried_then_named(fault: str, served: Nginx, tmp_path: Path) -> None:
    """Through the fault-injecting proxy: two faulty answers are retried past; a fault that
    lasts ends the read within its timeout, naming the URL and the reason, attempts bounded."""
    rel = "gen/aliases.sqlite3"
    local = (served.root / rel).read_bytes()
    state, pick = _schedule(rel)
    with FaultProxy(served.port, pick) as proxy:
        spec = FileSpec(f"{proxy.url}/{rel}", len(local))
        rf = RemoteFile(
            spec,
            RangeCache(str(tmp_path / "c")),
            chunk_size=8192,
            whole_file_below=0,
            read_ahead=0,
            http_timeout=10,
        )
        state.update(fault=fault, left=2)
        assert rf.pread(1000, 20_000) == local[1000:21_000]
        assert state["seen"] == 3
        state.update(left=100, seen=0)
        started = time.monotonic()
        with pytest.raises(RemoteReadError) as info:
            rf.pread(500_000, 100)
        assert time.monotonic() - started < 10
        assert spec.url in str(info.value)
        assert {
            "503": "HTTP 503",
            "500": "HTTP 500",
            "reset": "connection broken",
            "truncate": "connection broken",
        }[fault] in str(info.value)
        assert state["seen"] == 4  # attempts bounded


def test_a_stalled_body_times_out(served: Nginx, tmp_path: Path) -> None:
    rel = "gen/aliases.sqlite3"
    size = (served.root / rel).stat().st_size
    state, pick = _schedule(rel)
    with FaultProxy(served.port, pick, stall=8.0) as proxy:
        rf = RemoteFile(
            FileSpec(f"{proxy.url}/{rel}", size),
            RangeCache(str(tmp_path / "c")),
            chunk_size=8192,
            whole_file_below=0,
            read_ahead=0,
            http_timeout=2,
        )
        state.update(fault="stall", left=100)
        started = time.monotonic()
        with pytest.raises(RemoteReadError, match="timed out"):
            rf.pread(0, 100_000)
        assert time.monotonic() - started < 3
