"""`snapshot` clones the databases where the file system shares blocks, and copies them elsewhere.

On a loop-mounted XFS image made with `mkfs.xfs -m reflink=1`, a snapshot must add less than 1%
of the databases' size to the file system (measured with statvfs, not taken from what snapshot
says) and still be one consistent state when a loader commits while it runs; on the ordinary
test file system it falls back to SQLite's copy and says so.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cli import run_seqrepofs

from seqrepofs.loader.load import load
from seqrepofs.seqrepo import SeqRepo
from seqrepofs.store import instances

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "bench"))
import bench_scale  # noqa: E402
import make_scale  # noqa: E402

IMAGE_BYTES = 1 << 30
N_SEQUENCES = 9_000


def _xfs_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "mounting a loop image needs root"
    if shutil.which("mkfs.xfs") is None:
        return "mkfs.xfs is not installed (apt package xfsprogs)"
    if shutil.which("losetup") is None or not os.path.exists("/dev/loop-control"):
        return "no loop devices"
    return None


@pytest.fixture(scope="module")
def xfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A mounted XFS file system with reflink, on a sparse image file."""
    reason = _xfs_skip_reason()
    if reason:
        pytest.skip(reason)
    top = tmp_path_factory.mktemp("xfs")
    image, mnt = top / "image", top / "mnt"
    mnt.mkdir()
    with open(image, "wb") as fh:
        fh.truncate(IMAGE_BYTES)
    mkfs = subprocess.run(
        ["mkfs.xfs", "-q", "-m", "reflink=1", str(image)], capture_output=True, text=True
    )
    if mkfs.returncode != 0:
        pytest.skip(f"mkfs.xfs -m reflink=1 failed: {mkfs.stderr.strip()}")
    mount = subprocess.run(
        ["mount", "-o", "loop", str(image), str(mnt)], capture_output=True, text=True
    )
    if mount.returncode != 0:
        pytest.skip(f"cannot loop-mount the XFS image: {mount.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
        image.unlink()


@pytest.fixture(scope="module")
def fasta(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return make_scale.generate(tmp_path_factory.mktemp("gen"), N_SEQUENCES, seed=5)


def _load_release(master: Path, manifest: dict, release: str = "r1") -> None:
    for step in manifest["releases"][release]:
        load(str(master), step["files"], step["namespace"])


def _db_bytes(instance: Path) -> int:
    rels = instances.instance_databases(str(instance))
    return sum(os.path.getsize(instance / rel) for rel in rels)


def _consistency(instance: Path) -> tuple[int, int, int, str]:
    """(sequences, sequences lacking digest aliases, aliases of missing sequences, integrity)."""
    conn = sqlite3.connect(f"file:{instance / 'aliases.sqlite3'}?mode=ro", uri=True)
    try:
        conn.execute(
            "attach database ? as fd", (f"file:{instance / 'sequences' / 'db.sqlite3'}?mode=ro",)
        )
        n = conn.execute("select count(*) from fd.seqinfo").fetchone()[0]
        bare = conn.execute(
            "select count(*) from fd.seqinfo where seq_id not in"
            " (select seq_id from seqalias where namespace = 'MD5')"
        ).fetchone()[0]
        dangling = conn.execute(
            "select count(*) from seqalias where seq_id not in (select seq_id from fd.seqinfo)"
        ).fetchone()[0]
        ok = conn.execute("pragma integrity_check").fetchone()[0]
        ok_fd = conn.execute("pragma fd.integrity_check").fetchone()[0]
        return n, bare, dangling, f"{ok}/{ok_fd}"
    finally:
        conn.close()


def test_snapshot_on_xfs_clones_and_adds_under_one_percent(xfs: Path, fasta: dict) -> None:
    root = xfs / "root1"
    assert run_seqrepofs("-r", str(root), "init").returncode == 0
    _load_release(root / "master", fasta)
    db_bytes = _db_bytes(root / "master")
    assert db_bytes > 8 << 20, db_bytes  # big enough that 1% is far above metadata noise
    before = bench_scale.fs_used(xfs)
    proc = run_seqrepofs("-r", str(root), "snapshot", "-d", "2026-01-01")
    after = bench_scale.fs_used(xfs)
    assert proc.returncode == 0, proc.stderr
    assert "cloned (reflink" in proc.stdout and "; 0 bytes copied" in proc.stdout, proc.stdout
    added = after - before
    assert added < db_bytes / 100, f"snapshot added {added} bytes for {db_bytes} of databases"
    snap = root / "2026-01-01"
    assert instances.is_frozen(str(snap))
    n, bare, dangling, ok = _consistency(snap)
    assert (n, bare, dangling, ok) == (N_SEQUENCES, 0, 0, "ok/ok")
    with SeqRepo(snap) as sr, SeqRepo(root / "master") as master:
        assert sr.aliases.stats()["n_aliases"] == master.aliases.stats()["n_aliases"]
    # the clone is a file of its own: master changing afterwards leaves the snapshot as it was
    with SeqRepo(root / "master", writeable=True) as sr:
        sr.store("ACGT" * 250, [{"namespace": "refseq", "alias": "NM_000001.1"}])
        sr.store("ACGA" * 250, [{"namespace": "refseq", "alias": "NM_000001.1"}])  # re-pointed
    assert _consistency(snap) == (n, 0, 0, "ok/ok")
    with SeqRepo(snap) as sr:
        assert "refseq:NM_000001.1" not in sr
        assert sr.aliases.stats()["n_current"] == sr.aliases.stats()["n_aliases"]


def test_snapshot_clone_racing_a_commit_is_one_state(
    xfs: Path, fasta: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loader commits between the clones of aliases.sqlite3 and sequences/db.sqlite3: the
    snapshot must hold the state before that commit or after it, never half of each."""
    root = xfs / "root2"
    assert run_seqrepofs("-r", str(root), "init").returncode == 0
    load(str(root / "master"), fasta["releases"]["r1"][0]["files"][:1], "refseq")
    real_clone = instances._clone
    calls: list[str] = []
    done = threading.Event()

    def commit_in_master() -> None:
        sr = SeqRepo(root / "master", writeable=True)
        sr.store("GATTACA" * 999, [{"namespace": "refseq", "alias": "NM_999999.1"}])
        sr.close()
        done.set()

    threads: list[threading.Thread] = []

    def clone(src: str, dst: str) -> bool:
        ok = real_clone(src, dst)
        calls.append(src)
        if len(calls) == 1:  # between the two clones: a loader commits, if it can
            thread = threading.Thread(target=commit_in_master)
            thread.start()
            threads.append(thread)
            done.wait(1.0)
        return ok

    monkeypatch.setattr(instances, "_clone", clone)
    result = instances.make_snapshot(str(root), "master", "2026-02-02")
    monkeypatch.undo()
    threads[0].join(30)
    assert done.is_set(), "the racing commit never finished"
    assert result.method == "reflink" and len(calls) == 2
    n, bare, dangling, ok = _consistency(Path(result.path))
    assert (bare, dangling, ok) == (0, 0, "ok/ok"), f"half of a commit in {n} sequences"
    with SeqRepo(root / "master") as sr:
        assert "refseq:NM_999999.1" in sr  # the commit happened, after the snapshot


def test_snapshot_carries_collections_database(xfs: Path, tmp_path: Path) -> None:
    """Every database of the instance, the optional collections.sqlite3 too, on either path."""
    for top in (xfs / "root3", tmp_path / "root"):
        assert run_seqrepofs("-r", str(top), "init").returncode == 0
        with SeqRepo(top / "master", writeable=True) as sr:
            sr.store("ACGT" * 100, [{"namespace": "refseq", "alias": "NM_1.1"}])
        conn = sqlite3.connect(top / "master" / "collections.sqlite3")
        conn.execute("create table t (x)")
        conn.execute("insert into t values (42)")
        conn.commit()
        conn.close()
        result = instances.make_snapshot(str(top), "master", "2026-03-03")
        assert "collections.sqlite3" in result.databases
        conn = sqlite3.connect(
            f"file:{Path(result.path) / 'collections.sqlite3'}?mode=ro", uri=True
        )
        assert conn.execute("select x from t").fetchall() == [(42,)]
        conn.close()


def test_snapshot_elsewhere_copies_consistently(tmp_path: Path, fasta: dict) -> None:
    """On a file system that cannot share blocks (the test's own), the databases are copied
    through SQLite, the output says so and the count of bytes copied is the copies' size."""
    probe_src, probe_dst = tmp_path / "a", tmp_path / "b"
    probe_src.write_bytes(b"x" * 4096)
    if instances._clone(str(probe_src), str(probe_dst)):
        pytest.skip(f"{tmp_path} shares blocks (reflink): the copy path is not reached here")
    root = tmp_path / "root"
    assert run_seqrepofs("-r", str(root), "init").returncode == 0
    load(str(root / "master"), fasta["releases"]["r1"][0]["files"][:1], "refseq")
    proc = run_seqrepofs("-r", str(root), "snapshot", "-d", "2026-04-04")
    assert proc.returncode == 0, proc.stderr
    assert "copied (this file system cannot share blocks)" in proc.stdout, proc.stdout
    snap = root / "2026-04-04"
    copied = sum(
        os.stat(snap / rel).st_blocks * 512 for rel in instances.instance_databases(str(snap))
    )
    assert f"; {copied:,} bytes copied" in proc.stdout
    n, bare, dangling, ok = _consistency(snap)
    assert n > 0 and (bare, dangling, ok) == (0, 0, "ok/ok")
    assert not probe_dst.exists()
