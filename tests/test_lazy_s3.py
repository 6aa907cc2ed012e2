"""Lazy reading of s3:// URLs from a real S3-compatible server on 127.0.0.1 (moto's standalone
server, a separate process speaking the S3 HTTP API with signed requests): byte-exact ranges,
coalesced requests, an object overwritten under the reader refused, SQLite through the VFS.

"""

from __future__ import annotations

import importlib.util
import os
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.http_servers import S3_ENV, MotoS3

from seqrepofs.lazy import FileSpec, RangeCache, RemoteChangedError, RemoteFile, RemoteReadError
from seqrepofs.lazy.sqlite_vfs import open_database

REAL_DB = (
    Path(__file__).resolve().parent
    / "data"
    / "real"
    / "seqrepo-instances"
    / "rest-service-2019"
    / "aliases.sqlite3"
)
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("moto") is None or importlib.util.find_spec("boto3") is None,
    reason="moto (S3-compatible test server) or boto3 not installed",
)


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """moto's S3 server (support.http_servers), with this process's AWS settings pointing at it
    the standard way (environment variables), and a boto3 client to fill it."""
    import boto3

    saved = {k: os.environ.get(k) for k in [*S3_ENV, "AWS_ENDPOINT_URL"]}
    with MotoS3(tmp_path_factory.mktemp("moto")) as server:
        os.environ.update(S3_ENV, AWS_ENDPOINT_URL=server.url)
        try:
            server.create_bucket("snapshots")
            yield boto3.client("s3")
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def test_s3_ranges_equal_local_bytes_and_overwrite_is_refused(s3: Any, tmp_path: Path) -> None:
    data = os.urandom(500_000)
    s3.put_object(Bucket="snapshots", Key="root/2026-01-01/big.bin", Body=data)
    spec = FileSpec("s3://snapshots/root/2026-01-01/big.bin", len(data))
    rf = RemoteFile(
        spec,
        RangeCache(str(tmp_path / "c")),
        chunk_size=8192,
        whole_file_below=0,
        read_ahead=0,
        http_timeout=20,
    )
    rng = random.Random(3)
    for _ in range(40):  # bounded
        off, n = rng.randrange(len(data)), rng.choice([1, 5000, 40_000])
        assert rf.pread(off, n) == data[off : off + n]
    assert rf.wait_idle(10)
    before = rf.stats.requests
    span = range(300_000 // 8192, 400_000 // 8192 + 1)
    missing = [i for i in span if not rf.cache.contains(rf._key(i))]
    runs = sum(1 for k, i in enumerate(missing) if k == 0 or missing[k - 1] != i - 1)
    assert runs < len(missing)  # some adjacent chunks to coalesce
    assert rf.pread(300_000, 100_000) == data[300_000:400_000]
    assert rf.stats.requests - before == runs  # one request per run of adjacent chunks
    assert rf.wait_idle(10)
    s3.put_object(Bucket="snapshots", Key="root/2026-01-01/big.bin", Body=os.urandom(len(data)))
    uncached = next(
        o for o in range(0, len(data), 8192) if not rf.cache.contains(rf._key(o // 8192))
    )
    with pytest.raises(RemoteChangedError, match="big.bin: remote file changed"):
        rf.pread(uncached, 10)
    with pytest.raises(RemoteReadError, match="NoSuchKey"):
        RemoteFile(FileSpec("s3://snapshots/root/none.bin", 10), rf.cache).pread(0, 5)


def test_s3_sqlite_through_the_vfs(s3: Any, tmp_path: Path) -> None:
    body = REAL_DB.read_bytes()
    s3.put_object(Bucket="snapshots", Key="root/i/aliases.sqlite3", Body=body)
    spec = FileSpec("s3://snapshots/root/i/aliases.sqlite3", len(body))
    conn = open_database(spec, RangeCache(str(tmp_path / "c")), http_timeout=20)
    sql = "select namespace, alias, seq_id from seqalias order by namespace, alias"
    local = sqlite3.connect(f"file:{REAL_DB}?mode=ro&immutable=1", uri=True)
    assert conn.execute(sql).fetchall() == local.execute(sql).fetchall()
