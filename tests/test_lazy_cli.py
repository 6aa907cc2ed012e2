"""`seqrepofs cache stats|prune|clear` in a subprocess, on a cache filled through the API."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from seqrepofs.lazy import RangeCache
from seqrepofs.lazy.range_cache import ChunkKey

REPO = Path(__file__).resolve().parents[1]


def _key(i: int, n: int) -> ChunkKey:
    return ChunkKey("sha256:ab", i * n, n)


def _cli(*args: str, cache_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seqrepofs", "cache", *args, "--cache-dir", str(cache_dir)],
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cache_command(tmp_path: Path) -> None:
    cache = RangeCache(str(tmp_path), 1 << 20)
    for i in range(8):
        cache.put(_key(i, 1024), b"z" * 1024)
    cache.close()
    out = _cli("stats", cache_dir=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "chunks:       8\n" in out.stdout and "bytes:        8192 (8.0 KiB)" in out.stdout
    out = _cli("prune", "--cache-size", "3k", cache_dir=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "removed 5 chunks" in out.stdout
    out = _cli("clear", cache_dir=tmp_path)
    assert out.returncode == 0 and "removed 3 chunks" in out.stdout
    assert RangeCache(str(tmp_path)).disk_bytes() == 0
    bad = _cli("prune", "--cache-size", "lots", cache_dir=tmp_path)
    assert bad.returncode == 2 and "not a size" in bad.stderr
