"""The on-disk range cache on its own: size bound, LRU order, prune/clear, several processes,
and the `seqrepofs cache` command (remote reading over a real server: test_lazy_remote.py)."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from seqrepofs.lazy import FileSpec, RangeCache, RemoteChangedError, RemoteFile, parse_size
from seqrepofs.lazy.range_cache import TOUCH_FLUSH_COUNT, ChunkKey
from seqrepofs.lazy.remote_file import FAULTS
from seqrepofs.lazy.specs import file_specs, manifest_digest

REPO = Path(__file__).resolve().parents[1]


def _key(i: int, n: int = 1000, file_id: str = "sha256:ab") -> ChunkKey:
    return ChunkKey(file_id, i * n, n)


@pytest.mark.parametrize(
    "text,expected",
    [("4096", 4096), ("500M", 500 << 20), ("10G", 10 << 30), ("1.5GiB", 3 << 29), ("2k", 2048)],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "ten", "5X", "-1G"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


def test_put_get_and_keys_keep_versions_apart(tmp_path: Path) -> None:
    cache = RangeCache(str(tmp_path), 1 << 20)
    cache.put(_key(0), b"a" * 1000)
    assert cache.get(_key(0)) == b"a" * 1000
    assert cache.get(_key(0, file_id="sha256:cd")) is None  # another version of the file
    assert cache.get(_key(1)) is None
    with pytest.raises(ValueError):
        cache.put(_key(2), b"short")


def test_size_bound_holds_and_eviction_is_lru(tmp_path: Path) -> None:
    cache = RangeCache(str(tmp_path), 10_000, memory_bytes=0)  # the disk's order alone
    for i in range(10):
        cache.put(_key(i), bytes([i]) * 1000)
        time.sleep(0.002)
    assert cache.get(_key(0)) is not None  # used again: now the most recent
    cache._flush_touches()
    for i in range(10, 25):
        cache.put(_key(i), bytes([i % 256]) * 1000)
        assert cache.disk_bytes() <= 10_000
        assert cache.stats().bytes <= 10_000
    present = [i for i in range(25) if cache.get(_key(i)) is not None]
    assert present == list(range(15, 25)), present
    assert cache.stats().chunks == 10


def test_chunks_of_one_fetch_share_a_run_file(tmp_path: Path) -> None:
    cache = RangeCache(str(tmp_path), 1 << 20)
    cache.put(_key(3), b"c" * 1000)
    cache.put_many([(_key(i), bytes([i]) * 1000) for i in range(1, 7)])  # 3 is cached already
    expected = [b"c" * 1000 if i == 3 else bytes([i]) * 1000 for i in range(1, 7)]
    assert [cache.get(_key(i)) for i in range(1, 7)] == expected
    st = cache.stats()
    assert (st.chunks, st.runs, st.bytes) == (6, 3, 6000)  # [3], [1, 2], [4, 5, 6]
    assert cache.disk_bytes() == 6000


def test_chunk_larger_than_cache_is_not_kept(tmp_path: Path) -> None:
    cache = RangeCache(str(tmp_path), 500, memory_bytes=0)
    cache.put(_key(0), b"x" * 1000)
    assert cache.get(_key(0)) is None
    assert cache.disk_bytes() == 0


def test_prune_and_clear(tmp_path: Path) -> None:
    cache = RangeCache(str(tmp_path), 100_000, memory_bytes=0)
    for i in range(20):
        cache.put(_key(i), b"y" * 1000)
    removed, freed = cache.prune(5_000)
    assert (removed, freed) == (15, 15_000)
    assert cache.disk_bytes() == cache.stats().bytes == 5_000
    # a run file deleted behind the index's back is dropped from it by prune
    run = next((tmp_path / "runs").glob("*/*"))
    run.unlink()
    cache.prune()
    assert cache.stats().chunks == 4 and cache.stats().runs == 4
    assert cache.clear() == (4, 4_000)
    assert cache.disk_bytes() == 0 and cache.stats().chunks == 0


def test_pinned_etag_is_shared_and_follows_the_manifest(tmp_path: Path) -> None:
    a = RangeCache(str(tmp_path))
    b = RangeCache(str(tmp_path))
    assert a.pin_etag("http://h/f", "m1|sha256:1", '"e1"') == '"e1"'
    assert b.pin_etag("http://h/f", "m1|sha256:1", '"e2"') == '"e1"'  # first one wins
    assert b.pinned_etag("http://h/f", "m1|sha256:1") == '"e1"'
    assert b.pin_etag("http://h/f", "m2|sha256:1", '"e3"') == '"e3"'  # a new manifest
    assert a.pinned_etag("http://h/f", "m1|sha256:1") is None


def test_processes_filling_one_small_cache_keep_the_bound(tmp_path: Path) -> None:
    """Four processes put 300 chunks each into a 64 KB cache at once: every read answers
    right bytes or a miss, and the chunk files never add up to more than the bound."""
    script = textwrap.dedent(f"""\
        import sys
        from seqrepofs.lazy.range_cache import ChunkKey, RangeCache
        cache = RangeCache({str(tmp_path)!r}, 64_000)
        me = int(sys.argv[1])
        for i in range(300):
            key = ChunkKey("sha256:same", (i % 120) * 1000, 1000)
            cache.put(key, bytes([(i % 120) % 251]) * 1000)
            got = cache.get(ChunkKey("sha256:same", ((i * 7 + me) % 120) * 1000, 1000))
            assert got is None or got == bytes([((i * 7 + me) % 120) % 251]) * 1000
        """)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    procs = [subprocess.Popen([sys.executable, "-c", script, str(i)], env=env) for i in range(4)]
    cache = RangeCache(str(tmp_path), 64_000)
    deadline = time.monotonic() + 120
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        assert cache.disk_bytes() <= 64_000
        time.sleep(0.01)
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    assert cache.disk_bytes() <= 64_000
    assert cache.stats().bytes <= 64_000


def test_remote_file_over_file_url(tmp_path: Path) -> None:
    data = os.urandom(200_000)
    (tmp_path / "f.bin").write_bytes(data)
    spec = FileSpec((tmp_path / "f.bin").as_uri(), len(data))
    rf = RemoteFile(spec, RangeCache(str(tmp_path / "c")), chunk_size=4096, whole_file_below=0)
    assert rf.pread(123, 50_000) == data[123:50_123]
    assert rf.pread(199_990, 100) == data[199_990:]
    assert rf.pread(300_000, 10) == b""
    assert rf.stats.requests == 2


def test_file_specs_from_a_manifest_verify_chunks(tmp_path: Path) -> None:
    """FileSpecs built from a manifest's fields: a fetch that covers a manifest chunk is
    checked against its digest, so a file whose bytes differ is refused."""

    @dataclass(frozen=True)
    class Entry:
        path: str
        size: int
        sha256: str
        chunks: tuple[str, ...]

    @dataclass(frozen=True)
    class Manifest:
        files: tuple[Entry, ...]
        chunk_size: int

    data = os.urandom(50_000)
    (tmp_path / "snap" / "sub dir").mkdir(parents=True)
    (tmp_path / "snap" / "sub dir" / "a.sqlite3").write_bytes(data)
    chunks = tuple(hashlib.sha256(data[i : i + 16384]).hexdigest() for i in range(0, 50_000, 16384))
    manifest = Manifest(
        (Entry("sub dir/a.sqlite3", 50_000, hashlib.sha256(data).hexdigest(), chunks),), 16384
    )
    specs = file_specs((tmp_path / "snap").as_uri() + "/", manifest, manifest_digest(b"{}"))
    spec = specs["sub dir/a.sqlite3"]
    assert spec.url.endswith("/snap/sub%20dir/a.sqlite3")
    rf = RemoteFile(spec, RangeCache(str(tmp_path / "c")), chunk_size=4096, whole_file_below=0)
    assert rf.pread(0, 20_000) == data[:20_000]  # covers chunk 0 (checked), part of chunk 1
    bad = Manifest((Entry("sub dir/a.sqlite3", 50_000, "0" * 64, ("0" * 64,) * 4),), 16384)
    bad_spec = file_specs((tmp_path / "snap").as_uri(), bad, "x")["sub dir/a.sqlite3"]
    bad_rf = RemoteFile(
        bad_spec, RangeCache(str(tmp_path / "c2")), chunk_size=4096, whole_file_below=0
    )
    assert bad_rf.pread(100, 1000) == data[100:1100]  # covers no whole manifest chunk
    with pytest.raises(RemoteChangedError, match="bytes 16384-32767 differ"):
        bad_rf.pread(16384, 16384)


def test_a_cache_of_another_format_is_emptied(tmp_path: Path) -> None:
    cache = RangeCache(str(tmp_path))
    cache.put(_key(0), b"q" * 1000)
    cache.close()
    db = sqlite3.connect(tmp_path / "index.sqlite3")
    db.execute("pragma user_version = 1")
    db.commit()
    db.close()
    again = RangeCache(str(tmp_path))
    assert again.get(_key(0)) is None
    assert again.stats().chunks == 0 and again.disk_bytes() == 0
    again.put(_key(0), b"r" * 1000)
    assert again.get(_key(0)) == b"r" * 1000


def test_nothing_grows_with_reads(tmp_path: Path) -> None:
    """A long-lived reader's memory is bounded: after thousands of reads nothing is in flight,
    and the batched last-use times stay under their flush bound."""
    data = os.urandom(2_000_000)
    (tmp_path / "f.bin").write_bytes(data)
    cache = RangeCache(str(tmp_path / "c"), 300_000)  # far smaller than the file: evicting
    rf = RemoteFile(
        FileSpec((tmp_path / "f.bin").as_uri(), len(data)),
        cache,
        chunk_size=4096,
        whole_file_below=0,
        read_ahead=0,
    )
    rng = random.Random(2)
    for _ in range(3000):  # bounded
        off = rng.randrange(len(data))
        assert rf.pread(off, 100) == data[off : off + 100]
    assert rf.wait_idle(10)
    assert not rf._inflight
    assert len(cache._touched) < TOUCH_FLUSH_COUNT
    assert cache.disk_bytes() <= 300_000
    assert len(FAULTS._seen) <= FAULTS.MAX_CAUSES


def test_memory_front_serves_without_disk_and_is_bounded(tmp_path: Path) -> None:
    cache = RangeCache(str(tmp_path), 1 << 20, memory_bytes=5_000)
    for i in range(10):
        cache.put(_key(i), bytes([i]) * 1000)
    assert cache._memory.currsize <= 5_000
    shutil.rmtree(tmp_path / "runs")  # the disk copies gone: the recent ones are in memory
    assert [cache.get(_key(i)) is not None for i in range(10)] == [False] * 5 + [True] * 5
    assert cache.get(_key(9)) == bytes([9]) * 1000
    assert cache.clear() == (10, 10_000)
    assert cache.get(_key(9)) is None
