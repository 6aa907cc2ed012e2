"""`SeqRepo(URL)`, `export URL` and `serve URL` on a snapshot published with `seqrepofs publish`
and served by nginx (and moto's S3 server) on 127.0.0.1, compared with the local copy of the
same snapshot: every answer equal; the manifest and the ranges read kept in the cache, so a
warm cache answers with the server stopped; an uncached read with the server down raises an
error naming the URL; two processes fill one cache at once; the cache size is honoured; a
file replaced on the server is refused.
"""

from __future__ import annotations

import importlib.util
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cli import checkout_env, run_seqrepofs
from support.data import SNAPSHOT
from support.fault_proxy import FaultProxy, every
from support.http_servers import NGINX, S3_ENV, MotoS3, Nginx
from support.lazy_site import BIG, BIG_LENGTH, COLLECTION, Site, build_site
from support.rest import start_rest_server

from seqrepofs.errors import AliasNotFoundError, ReadOnlyError
from seqrepofs.lazy import RangeCache, RemoteChangedError, RemoteReadError
from seqrepofs.lazy.snapshot import DATABASE_HEAD_BYTES, DATABASES
from seqrepofs.remote.errors import RemoteError
from seqrepofs.seqrepo import SeqRepo
from seqrepofs.store.collections import CollectionStore

pytestmark = [
    pytest.mark.skipif(NGINX is None, reason="nginx not installed (apt-get install nginx)"),
    pytest.mark.timeout(180),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return build_site(tmp_path_factory.mktemp("lazy-store"))


@pytest.fixture(scope="module")
def server(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    with Nginx(site.www, tmp_path_factory.mktemp("nginx")) as nginx:
        yield nginx


DIGEST = '''
def digest_of_everything(sr):
    """One digest over every alias row and every sequence's residues."""
    import hashlib

    h = hashlib.sha256()
    for rec in sr.aliases.find_aliases():
        h.update(repr(sorted(rec.items())).encode())
    for seq_id, _length, _relpath in sr.sequences.seqinfo_rows():
        h.update(sr.sequences.fetch_bytes(seq_id))
    return h.hexdigest()
'''
READ_ALL = DIGEST + (
    "import sys\n"
    "from seqrepofs.seqrepo import SeqRepo\n"
    "with SeqRepo(sys.argv[1], cache_dir=sys.argv[2]) as sr:\n"
    "    print(digest_of_everything(sr))\n"
)


def digest_of_everything(sr: SeqRepo) -> str:
    space: dict[str, object] = {}
    exec(DIGEST, space)  # the same function the subprocesses run
    return space["digest_of_everything"](sr)  # type: ignore[operator,no-any-return]


def read_all_in_process(url: str, cache: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", READ_ALL, url, str(cache)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=checkout_env(),
    )


# ---- the API -----------------------------------------------------------------------------------
def test_seqrepo_url_answers_like_the_local_copy(site: Site, server: Nginx, tmp_path: Path) -> None:
    rng = random.Random(5)
    with (
        SeqRepo(f"{server.url}/latest", cache_dir=str(tmp_path / "c")) as r,
        SeqRepo(site.local) as local,
    ):
        assert r.root_dir == f"{server.url}/{SNAPSHOT}" and r.frozen and r.remote
        rows = list(local.aliases.find_aliases())
        assert list(r.aliases.find_aliases()) == rows
        assert r.namespaces() == local.namespaces()
        for rec in rng.sample(rows, 200):
            ns, alias = rec["namespace"], rec["alias"]
            start = rng.randrange(0, 500)
            assert r.fetch(alias, start, start + 100, ns) == local.fetch(
                alias, start, start + 100, ns
            )
            ident = f"{ns}:{alias}"
            assert r.translate_identifier(ident) == local.translate_identifier(ident)
            assert (ident in r) is True
        for seq_id, length, _relpath in local.sequences.seqinfo_rows():
            assert r.sequences.fetch(seq_id) == local.sequences.fetch(seq_id)
            assert r.sam_m5(seq_id) == local.sam_m5(seq_id)
            assert r.aliases_of(seq_id) == local.aliases_of(seq_id)
            assert r.sequence_length(seq_id) == length
        proxy = r[f"test:{BIG}"]
        assert len(proxy) == BIG_LENGTH and proxy[-70:] == site.seqs[BIG][-70:]
        assert r.translate_alias(BIG, "test", ["MD5"]) == local.translate_alias(
            BIG, "test", ["MD5"]
        )
        with pytest.raises(AliasNotFoundError):
            r.fetch("NM_NOTHERE.1", namespace="refseq")
        with pytest.raises(ReadOnlyError):
            r.store("ACGT", [{"namespace": "x", "alias": "y"}])
        # the collections database is read in place too
        with CollectionStore(r.root_dir) as rc, CollectionStore(str(site.local)) as lc:
            assert rc.page() == lc.page() and [i.name for i in rc.page()] == [COLLECTION]
            info = rc.get(COLLECTION)
            assert list(rc.iter_records(info)) == list(lc.iter_records(lc.get(COLLECTION)))
            assert rc.compare(info, info) == lc.compare(lc.get(COLLECTION), lc.get(COLLECTION))
    with pytest.raises(ReadOnlyError, match="read-only"):
        SeqRepo(f"{server.url}/latest", writeable=True)


def test_a_cold_lookup_fetches_pages_not_databases(
    site: Site, server: Nginx, tmp_path: Path
) -> None:
    server.clear_log()
    with SeqRepo(f"{server.url}/{SNAPSHOT}", cache_dir=str(tmp_path / "c")) as r:
        assert r.fetch(BIG, 1_000_000, 1_000_100, "test") == site.seqs[BIG][1_000_000:1_000_100]
    log = server.log()
    dbs = sum(p.stat().st_size for p in site.local.rglob("*.sqlite3"))
    assert len(log) <= 20, [(line.path, line.range) for line in log]
    # opening reads each database's first DATABASE_HEAD_BYTES in one request: a fixed cost
    heads = sum(min(DATABASE_HEAD_BYTES, (site.local / path).stat().st_size) for path in DATABASES)
    assert sum(line.bytes_sent for line in log) - heads < dbs / 4


def test_warm_cache_answers_with_the_server_stopped(site: Site, tmp_path: Path) -> None:
    cache = str(tmp_path / "c")
    regions = [(BIG, 10_000, 10_200), (BIG, 1_500_000, 1_500_050)]
    with Nginx(site.www, tmp_path / "nginx") as nginx:
        url = f"{nginx.url}/{SNAPSHOT}"
        with SeqRepo(url, cache_dir=cache) as r:
            warm = [r.fetch(a, s, e, "test") for a, s, e in regions]
            assert r.snapshot is not None and r.snapshot.wait_idle(30)
    # nginx is stopped: the manifest, pages and blocks read before come from the cache
    with SeqRepo(url, cache_dir=cache, http_timeout=3) as r:
        assert [r.fetch(a, s, e, "test") for a, s, e in regions] == warm
        assert warm == [site.seqs[BIG][s:e] for _a, s, e in regions]
        with pytest.raises(RemoteReadError, match=r"https?://127\.0\.0\.1:\d+/.*: cannot read"):
            r.fetch(BIG, 600_000, 600_100, "test")  # not cached: the server is needed
    with pytest.raises(RemoteError, match=f"{nginx.url}"):
        SeqRepo(f"{nginx.url}/latest", cache_dir=str(tmp_path / "cold"), http_timeout=3)


def test_two_processes_fill_one_cache_at_once(site: Site, server: Nginx, tmp_path: Path) -> None:
    cache = tmp_path / "c"
    url = f"{server.url}/{SNAPSHOT}"
    with SeqRepo(site.local) as local:
        expected = digest_of_everything(local)
    procs = [read_all_in_process(url, cache) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outs]
    assert [o[0].strip() for o in outs] == [expected, expected]
    rc = RangeCache(str(cache))
    try:
        assert rc.disk_bytes() == rc.stats().bytes > 0
    finally:
        rc.close()
    server.clear_log()
    third = read_all_in_process(url, cache)
    out, err = third.communicate(timeout=120)
    assert third.returncode == 0, err
    assert out.strip() == expected
    assert server.log() == []  # everything came from the cache the two filled


def test_cache_size_is_honoured(site: Site, server: Nginx, tmp_path: Path) -> None:
    cache, bound = str(tmp_path / "c"), 256 * 1024
    with (
        SeqRepo(f"{server.url}/{SNAPSHOT}", cache_dir=cache, cache_size=bound) as r,
        SeqRepo(site.local) as local,
    ):
        for seq_id, _n, _rel in local.sequences.seqinfo_rows():
            assert r.sequences.fetch_bytes(seq_id) == local.sequences.fetch_bytes(seq_id)
        assert list(r.aliases.find_aliases()) == list(local.aliases.find_aliases())
        assert r.snapshot is not None and r.snapshot.wait_idle(30)
    rc = RangeCache(cache, bound)
    try:
        assert 0 < rc.disk_bytes() <= bound
        assert rc.stats().bytes <= bound
    finally:
        rc.close()


def test_a_file_replaced_on_the_server_is_refused(site: Site, tmp_path: Path) -> None:
    www = tmp_path / "www"
    shutil.copytree(site.www, www, symlinks=True)
    with (
        Nginx(www, tmp_path / "nginx") as nginx,
        SeqRepo(f"{nginx.url}/{SNAPSHOT}", cache_dir=str(tmp_path / "c")) as r,
    ):
        assert r.fetch(BIG, 0, 50, "test") == site.seqs[BIG][:50]  # pins the file's ETag
        relpath = r.sequences.fetch_seqinfo(r.resolve(f"test:{BIG}"))["relpath"]
        target = www / SNAPSHOT / "sequences" / relpath
        os.chmod(target, 0o644)
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF  # same size, new content, new mtime: a new ETag
        target.write_bytes(bytes(data))
        os.utime(target, (1e9, 1e9))
        with pytest.raises(RemoteChangedError, match=f"{nginx.url}/.*{relpath}: remote file"):
            r.fetch(BIG, BIG_LENGTH - 100, BIG_LENGTH, "test")
        assert r.fetch(BIG, 0, 50, "test") == site.seqs[BIG][:50]  # cached bytes still serve


def test_server_faults_are_retried_and_every_byte_still_checked(
    site: Site, server: Nginx, tmp_path: Path
) -> None:
    faults = every(3, ("500", "503", "reset", "truncate"), budget=16)
    with (
        FaultProxy(server.port, faults) as proxy,
        SeqRepo(f"{proxy.url}/{SNAPSHOT}", cache_dir=str(tmp_path / "c"), http_timeout=20) as r,
        SeqRepo(site.local) as local,
    ):
        assert digest_of_everything(r) == digest_of_everything(local)
        assert len(proxy.applied) == 16  # every kind of fault was met, and retried


# ---- the commands ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        (),
        ("-n", "refseq", "--header", "name"),
        ("--assembly", "GRCh38", "--style", "ucsc"),
        ("--collection", COLLECTION),
    ],
    ids=["all", "namespace", "assembly", "collection"],
)
def test_export_url_equals_export_local(
    site: Site, server: Nginx, tmp_path: Path, args: tuple[str, ...]
) -> None:
    local = run_seqrepofs("export", "-i", SNAPSHOT, *args, root=site.root, check=True, text=False)
    remote = run_seqrepofs(
        "export",
        f"{server.url}/latest",
        *args,
        "--cache-dir",
        tmp_path / "c",
        check=True,
        text=False,
    )
    assert remote.stdout == local.stdout and len(local.stdout) > 1000


def test_export_aliases_from_a_published_root(site: Site, server: Nginx, tmp_path: Path) -> None:
    local = run_seqrepofs("export-aliases", "-i", SNAPSHOT, root=site.root, check=True)
    remote = run_seqrepofs(
        "export-aliases", "--cache-dir", tmp_path / "c", root=server.url, check=True
    )
    assert remote.stdout == local.stdout


def test_serve_url_answers_like_serve_local(site: Site, server: Nginx, tmp_path: Path) -> None:
    with SeqRepo(site.local) as sr:
        big_id = sr.resolve(f"test:{BIG}")
        md5 = sr.sam_m5(big_id)
    paths = [
        f"/sequence/SQ.{big_id}?start=1000&end=1100",
        f"/sequence/md5:{md5}?start=1999900",
        f"/sequence/SQ.{big_id}/metadata",
        "/sequence/refseq:NC_000001.11",
        "/seqrepo/1/sequence/test:big?start=5&end=60",
        "/seqrepo/1/metadata/refseq:NC_000001.11",
        "/sequence/refseq:NM_NOTHERE.1",
        f"/collection/{'x' * 32}",
    ]
    local = start_rest_server(site.local, tmp_path, access_log=False)
    try:
        remote = start_rest_server(
            f"{server.url}/latest", tmp_path, "--cache-dir", str(tmp_path / "c"), access_log=False
        )
        try:
            for path in paths:
                a, b = local.get(path), remote.get(path)
                assert (b.status_code, b.content) == (a.status_code, a.content), path
            a = local.get(f"/sequence/SQ.{big_id}", headers={"Range": "bytes=5-99"})
            b = remote.get(f"/sequence/SQ.{big_id}", headers={"Range": "bytes=5-99"})
            assert (b.status_code, b.content) == (a.status_code, a.content) == (206, a.content)
        finally:
            remote.stop()
    finally:
        local.stop()


@pytest.mark.skipif(
    importlib.util.find_spec("moto") is None, reason="moto (S3-compatible test server) missing"
)
def test_s3_snapshot_url_answers_like_the_local_copy(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with MotoS3(tmp_path / "moto") as s3:
        s3.create_bucket("snapshots")
        env = dict(S3_ENV, AWS_ENDPOINT_URL=s3.url)
        run_seqrepofs(
            "publish", site.root, "s3://snapshots/seqrepo", check=True, env=checkout_env(**env)
        )
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        with (
            SeqRepo("s3://snapshots/seqrepo/latest", cache_dir=str(tmp_path / "c")) as r,
            SeqRepo(site.local) as local,
        ):
            assert r.root_dir == f"s3://snapshots/seqrepo/{SNAPSHOT}"
            assert digest_of_everything(r) == digest_of_everything(local)
