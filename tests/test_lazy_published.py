"""A snapshot published with `seqrepofs publish`, served by nginx, read in place: the URL and
`latest` resolve through the manifest, every file reads back byte for byte, the alias database
answers SQL through the VFS with each page checked against the manifest's chunk digests, and a
page altered on the server (ETag kept) is refused by its digest."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from support.http_servers import NGINX, Nginx

from seqrepofs.lazy import RangeCache, RemoteChangedError, RemoteFile
from seqrepofs.lazy.specs import snapshot_specs
from seqrepofs.lazy.sqlite_vfs import LazyConnection, open_database

REPO = Path(__file__).resolve().parents[1]
REAL = REPO / "tests" / "data" / "real" / "seqrepo-instances" / "rest-service-2019"
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx not installed (apt-get install nginx)")


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("lazy-pub")
    (base / "root").mkdir()
    shutil.copytree(REAL, base / "root" / "2019-05-20")
    subprocess.run(
        [sys.executable, "-m", "seqrepofs", "publish", str(base / "root"), str(base / "www")],
        check=True,
        capture_output=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    with Nginx(base / "www", base / "nginx") as server:
        yield server


def test_every_file_reads_back_through_latest(published: Nginx, tmp_path: Path) -> None:
    name, specs = snapshot_specs(f"{published.url}/latest")
    assert name == "2019-05-20"
    local = published.root / name
    on_disk = {str(p.relative_to(local)) for p in local.rglob("*") if p.is_file()}
    assert set(specs) == on_disk
    cache = RangeCache(str(tmp_path / "c"))
    for path, spec in specs.items():
        rf = RemoteFile(spec, cache, chunk_size=4096, whole_file_below=0)
        data = (local / path).read_bytes()
        assert rf.pread(0, spec.size + 10) == data, path
        assert rf.pread(spec.size // 3, 5000) == data[spec.size // 3 : spec.size // 3 + 5000]


def test_sql_through_the_vfs_with_every_page_checked(published: Nginx, tmp_path: Path) -> None:
    _name, specs = snapshot_specs(f"{published.url}/2019-05-20")
    spec = specs["aliases.sqlite3"]
    assert spec.chunk_size == 4096 and spec.chunk_digests
    cache = RangeCache(str(tmp_path / "c"))
    conn = open_database(spec, cache)
    conn.attach(
        RemoteFile(
            specs["sequences/db.sqlite3"], cache, chunk_size=4096, read_ahead=0, whole_file_below=0
        ),
        "fd",
    )
    sql = (
        "select a.namespace, a.alias, s.len from seqalias a join fd.seqinfo s"
        " on s.seq_id = a.seq_id order by 1, 2"
    )
    local = sqlite3.connect(
        f"file:{published.root / '2019-05-20' / 'aliases.sqlite3'}?mode=ro", uri=True
    )
    local.execute(
        "attach database ? as fd",
        (f"file:{published.root / '2019-05-20/sequences/db.sqlite3'}?mode=ro",),
    )
    assert conn.execute(sql).fetchall() == local.execute(sql).fetchall()


def test_a_page_altered_on_the_server_is_refused_by_its_digest(
    published: Nginx, tmp_path: Path
) -> None:
    _name, specs = snapshot_specs(f"{published.url}/2019-05-20")
    target = published.root / "2019-05-20" / "aliases.sqlite3"
    original = target.read_bytes()
    st = os.stat(target)
    db = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
    page = db.execute("select rootpage from sqlite_master where name = 'seqalias'").fetchone()[0]
    db.close()
    at = (page - 1) * 4096
    try:
        altered = bytearray(original)
        altered[at + 100] ^= 0xFF  # one byte of the table's root page; same size
        os.chmod(target, 0o644)
        target.write_bytes(bytes(altered))
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))  # nginx's ETag stays the same
        rf = RemoteFile(
            specs["aliases.sqlite3"],
            RangeCache(str(tmp_path / "c")),
            chunk_size=4096,
            read_ahead=0,
            whole_file_below=0,
        )
        assert rf.pread(0, 4096) == original[:4096]  # an untouched page is served
        with pytest.raises(RemoteChangedError, match=f"bytes {at}-{at + 4095} differ"):
            rf.pread(at, 10)
        with pytest.raises(RemoteChangedError, match="aliases.sqlite3: remote file changed"):
            LazyConnection(rf).execute("select * from seqalias").fetchall()
    finally:
        target.write_bytes(original)
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
