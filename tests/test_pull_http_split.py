"""A first pull of a large database (no local copy to start from) is fetched as several Range
requests in parallel, each piece written at its offset and checked against the manifest's
chunk digests; real nginx and the fault-injecting proxy on 127.0.0.1, `seqrepofs` subprocesses.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.cli import one_error_line, run_seqrepofs
from support.fault_proxy import FaultProxy, every
from support.http_servers import NGINX, Nginx
from support.snapshots import A, build_two_snapshots, files_of

from seqrepofs.remote.fetch import MAX_RUN, SPLIT_MIN

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed")

DB = "aliases.sqlite3"


@dataclass(frozen=True)
class Site:
    src: Path
    nginx: Nginx

    @property
    def url(self) -> str:
        return f"{self.nginx.url}/pub"

    def db_gets(self) -> list[str]:
        """Range headers of the GETs of A's large database in nginx's log."""
        return [ln.range for ln in self.nginx.log() if ln.path == f"/pub/{A}/{DB}"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("split-site")
    built, src = base / "built", base / "src"
    build_two_snapshots(built)
    shutil.copytree(built / A, src / A)  # a copy: growing it must not touch a hardlinked B
    for dirpath, _dirs, files in os.walk(src):
        os.chmod(dirpath, 0o755)
        for name in files:
            os.chmod(os.path.join(dirpath, name), 0o644)
    with sqlite3.connect(src / A / DB) as db:  # a database past SPLIT_MIN, pages all different
        db.execute("create table ballast (b blob)")
        rows = (SPLIT_MIN + MAX_RUN // 2) // 8192
        db.executemany("insert into ballast values (randomblob(8000))", [()] * rows)
    db.close()
    assert (src / A / DB).stat().st_size > SPLIT_MIN
    proc = run_seqrepofs("publish", src, base / "www" / "pub")
    assert proc.returncode == 0, proc.stderr
    with Nginx(base / "www", base / "nginx") as nginx:
        yield Site(src, nginx)


def pull(root: Path, url: str, *args: str) -> str:
    proc = run_seqrepofs("--remote-host", url, "pull", "-i", A, *args, root=root, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_first_pull_fetches_a_large_database_in_several_ranges(site: Site, tmp_path: Path) -> None:
    site.nginx.clear_log()
    pull(tmp_path / "root", site.url)
    assert files_of(tmp_path / "root" / A) == files_of(site.src / A)
    ranges = site.db_gets()
    size = (site.src / A / DB).stat().st_size
    assert len(ranges) == -(-size // MAX_RUN) and all(r.startswith("bytes=") for r in ranges)
    assert sum(ln.body_bytes for ln in site.nginx.log() if ln.path.endswith(DB)) == size


def test_pieces_through_faults_end_exact(site: Site, tmp_path: Path) -> None:
    """Every kind of fault lands on the database's pieces (its own schedule: with one shared
    schedule, the parallel requests of other files could use up the faults first), some on
    the other files too; the pull still ends with exact files."""
    root = tmp_path / "root"
    on_db, on_rest = every(2, budget=5), every(3, budget=4)

    def schedule(number: int, method: str, path: str) -> str:
        return (on_db if path.endswith(DB) else on_rest)(number, method, path)

    with FaultProxy(site.nginx.port, schedule, stall=4) as proxy:
        pull(root, f"{proxy.url}/pub", "--timeout", "2")
    assert any(path.endswith(DB) for _fault, path in proxy.applied)
    assert files_of(root / A) == files_of(site.src / A)


def test_interrupted_piecewise_pull_resumes_the_pieces_it_has(site: Site, tmp_path: Path) -> None:
    """Two pieces of the database get through, then every request for it fails: the pull
    fails cleanly, and the next one fetches only what the `.part` lacks."""
    seen = {"n": 0}
    lock = threading.Lock()

    def schedule(_n: int, method: str, path: str) -> str:
        if method != "GET" or not path.endswith(DB):
            return "pass"
        with lock:
            seen["n"] += 1
            return "pass" if seen["n"] <= 2 else "503"

    root = tmp_path / "root"
    with FaultProxy(site.nginx.port, schedule) as proxy:
        argv = ("--remote-host", f"{proxy.url}/pub", "pull", "-i", A, "--jobs", "1")
        line = one_error_line(run_seqrepofs(*argv, root=root, timeout=300))
    assert "HTTP 503" in line and "pull again to resume" in line
    assert not (root / A).exists()
    site.nginx.clear_log()
    out = pull(root, site.url)
    assert "resumed" in out
    size = (site.src / A / DB).stat().st_size
    fetched = sum(ln.body_bytes for ln in site.nginx.log() if ln.path.endswith(DB))
    assert fetched == size - 2 * MAX_RUN
    assert files_of(root / A) == files_of(site.src / A)
