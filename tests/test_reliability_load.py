"""Load: 16 concurrent readers (8 threads + 8 processes) over a real mount and over the API,
reading random ranges of snapshots, `latest` and a master that a loader is writing to, while a
`snapshot` of the same root is taken; every byte is compared with the input. Zero wrong bytes,
zero errors, the daemon's RSS bounded.

CI runs 20 s; `python3 -m pytest -m slow tests/test_reliability_load.py` runs 3 minutes with
several loads and snapshots.
"""

from __future__ import annotations

import json
import pickle
import sqlite3
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest
from support import load_reader
from support.cli import checkout_env, run_seqrepofs, seqrepofs_cmd
from support.data import NS, verify_instance, write_random_fasta
from support.fuse import Mounted, needs_fuse
from support.system import vm_rss_kib

from seqrepofs.seqrepo import SeqRepo
from seqrepofs.store import instances

pytestmark = pytest.mark.timeout(900)

RSS_LIMIT_MIB = 300


# ---- a snapshot racing a commit (deterministic) -------------------------------------------------
def _small_master(path: Path, n: int = 20) -> None:
    sr = SeqRepo(path, writeable=True)
    for i in range(n):
        sr.store("ACGT" * (50 + i) + "A" * i, [{"namespace": NS, "alias": f"S{i}.1"}])
    sr.close()


def _db_consistency(instance: Path) -> tuple[int, int, int]:
    """(seqinfo rows, sequences lacking digest aliases, aliases pointing at nothing)."""
    conn = sqlite3.connect(f"file:{instance / 'aliases.sqlite3'}?mode=ro", uri=True)
    conn.execute(
        "attach database ? as fd", (f"file:{instance / 'sequences' / 'db.sqlite3'}?mode=ro",)
    )
    try:
        n = conn.execute("select count(*) from fd.seqinfo").fetchone()[0]
        bare = conn.execute(
            "select count(*) from fd.seqinfo s where not exists (select 1 from"
            " seqalias a where a.seq_id = s.seq_id and a.namespace = 'MD5')"
        ).fetchone()[0]
        dangling = conn.execute(
            "select count(*) from seqalias where seq_id not in (select seq_id from fd.seqinfo)"
        ).fetchone()[0]
        return n, bare, dangling
    finally:
        conn.close()


def test_snapshot_racing_a_commit_copies_one_consistent_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loader commits (sequences and aliases in one transaction over both databases) between
    the moments snapshot copies aliases.sqlite3 and sequences/db.sqlite3. The snapshot must hold
    the state before that commit or after it, never half of each."""
    root = tmp_path / "root"
    _small_master(root / "master")
    real_connect = sqlite3.connect
    writer_done = threading.Event()
    state = {"backups": 0, "thread": None}

    def commit_in_master() -> None:
        sr = SeqRepo(root / "master", writeable=True)
        sr.store("GATTACA" * 999, [{"namespace": NS, "alias": "RACER.1"}])
        sr.close()
        writer_done.set()

    class Source:
        def __init__(self, conn: sqlite3.Connection) -> None:
            self._conn = conn

        def __getattr__(self, name: str):
            return getattr(self._conn, name)

        def backup(self, target, *args, **kwargs):
            self._conn.backup(target, *args, **kwargs)
            state["backups"] += 1
            if state["backups"] == 1:  # between the two copies: a loader commits, if it can
                thread = threading.Thread(target=commit_in_master)
                thread.start()
                state["thread"] = thread
                writer_done.wait(1.0)

    def connect(database, *args, **kwargs):
        conn = real_connect(database, *args, **kwargs)
        return Source(conn) if "mode=ro" in str(database) else conn

    shim = types.SimpleNamespace(
        **{k: getattr(sqlite3, k) for k in dir(sqlite3) if not k.startswith("__")}
    )
    shim.connect = connect
    monkeypatch.setattr(instances, "sqlite3", shim)
    snap = Path(instances.snapshot(str(root), "master", "2021-01-01"))
    monkeypatch.undo()
    state["thread"].join(30)
    assert writer_done.is_set(), "the racing commit never finished"
    n, bare, dangling = _db_consistency(snap)
    assert (bare, dangling) == (0, 0), (
        f"snapshot holds {n} sequences, {bare} without their digest aliases and {dangling}"
        " aliases of missing sequences: half of a commit"
    )
    proc = run_seqrepofs("-r", str(root), "check", "-i", "2021-01-01")
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---- 16 readers -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def load_env(tmp_path_factory: pytest.TempPathFactory):
    """A root: master loaded with input A, snapshot 2020-01-01, latest; inputs B1..B3 to load
    while reading; the expected sequences pickled for the reader processes."""
    tmp = tmp_path_factory.mktemp("load")
    root = tmp / "root"
    fa = tmp / "a.fa"
    expected = write_random_fasta(fa, 1500, 21, prefix="A", big_every=300, big_len=400_000)
    later = []
    for k in range(1, 4):
        path = tmp / f"b{k}.fa"
        expected_b = write_random_fasta(
            path, 2500, 30 + k, prefix=f"B{k}_", big_every=500, big_len=300_000
        )
        expected.update(expected_b)
        later.append(path)
    assert run_seqrepofs("-r", str(root), "init").returncode == 0
    proc = run_seqrepofs("-r", str(root), "load", "-n", NS, str(fa))
    assert proc.returncode == 0, proc.stderr
    assert run_seqrepofs("-r", str(root), "snapshot", "-d", "2020-01-01").returncode == 0
    assert run_seqrepofs("-r", str(root), "update-latest").returncode == 0
    expected_path = tmp / "expected.pickle"
    expected_path.write_bytes(pickle.dumps(expected))
    return root, expected, expected_path, later


def _run_load_scenario(tmp_path: Path, load_env, seconds: float, loads: int, month: int) -> None:
    root, expected, expected_path, later = load_env
    mnt = tmp_path / "mnt"
    deadline = time.time() + seconds
    with Mounted(root, mnt) as m:
        assert m.proc is not None
        daemon_pid = m.proc.pid
        rss: list[int] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                rss.append(vm_rss_kib(daemon_pid))
                stop.wait(0.25)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "support.load_reader",
                    json.dumps(
                        {
                            "mode": "mount" if i % 2 else "api",
                            "mnt": str(mnt),
                            "root": str(root),
                            "expected": str(expected_path),
                            "seed": 100 + i,
                            "deadline": deadline,
                        }
                    ),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=checkout_env(),
            )
            for i in range(8)
        ]
        results: list[dict] = []
        lock = threading.Lock()

        def thread_reader(i: int) -> None:
            res = load_reader.read_loop(  # the loop the reader processes run
                "mount" if i % 2 else "api", mnt, root, expected, 200 + i, deadline
            )
            with lock:
                results.append(res)

        threads = [threading.Thread(target=thread_reader, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        # the writers: loads into master, each followed by a snapshot taken while the next
        # load runs (the first snapshot races the first load)
        time.sleep(min(2.0, seconds / 10))
        snapshots = []
        for k in range(loads):
            load = subprocess.Popen(
                seqrepofs_cmd(
                    "-r",
                    str(root),
                    "load",
                    "-n",
                    NS,
                    "--batch-size",
                    "200",
                    str(later[k % len(later)]),
                ),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            time.sleep(0.8)
            name = f"2020-{month:02d}-{k + 1:02d}"
            snap = run_seqrepofs("-r", str(root), "snapshot", "-d", name)
            assert snap.returncode == 0, snap.stderr
            snapshots.append(name)
            _out, err = load.communicate(timeout=600)
            assert load.returncode == 0, err
        for t in threads:
            t.join()
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
        stop.set()
        sampler.join()
        alive = m.proc.poll() is None
        log = m.log
    reads = sum(r["reads"] for r in results)
    wrong = [w for r in results for w in r["wrong"]]
    errors = [e for r in results for e in r["errors"]]
    print(
        f"{len(results)} readers, {reads} reads, {sum(r['bytes'] for r in results)} bytes,"
        f" {sum(r['absent'] for r in results)} not-yet-loaded; daemon RSS max"
        f" {max(rss) / 1024:.0f} MiB over {len(rss)} samples; snapshots {snapshots}"
    )
    assert len(results) == 16
    assert wrong == [], wrong[:5]
    assert errors == [], errors[:5]
    assert all(r["reads"] > 20 for r in results), [r["reads"] for r in results]
    assert alive and "Traceback" not in log, log[-3000:]
    assert max(rss) < RSS_LIMIT_MIB * 1024, f"daemon RSS reached {max(rss) / 1024:.0f} MiB"
    # what was written is whole: master and every snapshot read back equal to the input
    assert verify_instance(root / "master", expected) >= 1500 + 2500 * min(loads, len(later))
    for name in snapshots:
        assert verify_instance(root / name, expected) >= 1500
        proc = run_seqrepofs("-r", str(root), "check", "-i", name, "--quick")
        assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.fuse
@needs_fuse
def test_sixteen_readers_while_loading_and_snapshotting(tmp_path: Path, load_env) -> None:
    _run_load_scenario(tmp_path, load_env, seconds=20, loads=1, month=2)


@pytest.mark.slow
@pytest.mark.fuse
@needs_fuse
def test_sixteen_readers_for_minutes(tmp_path: Path, load_env) -> None:
    _run_load_scenario(tmp_path, load_env, seconds=180, loads=3, month=3)
