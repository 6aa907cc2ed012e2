"""A mounted root while a writer holds its master's alias database.

Lookups of a master's files are answered on the daemon's event loop when the database can be
read at once, and handed to a worker thread when a writer holds it (SQLITE_BUSY at once on
the loop's connection). So while a loader holds the lock, a lookup of the master waits in a
worker and then answers correctly, and the rest of the mount (the snapshot beside it) keeps
answering meanwhile: the loop never waits on the lock.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from support.fuse import Mounted, needs_fuse
from support.oracles import naive_fasta_record
from support.scale_repo import SCALE_SNAPSHOT, build_scale_root

from seqrepofs.seqrepo import SeqRepo

pytestmark = [needs_fuse, pytest.mark.fuse, pytest.mark.timeout(300)]

HOLD = 2.0  # seconds the writer holds the lock
PROMPT = 1.0  # what a snapshot lookup may take meanwhile (a loaded machine: far above its cost)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lock") / "root"
    build_scale_root(root, 300)
    return root


def test_lookups_of_a_locked_master_wait_in_a_worker(root: Path, tmp_path: Path) -> None:
    with SeqRepo(root / "master") as sr:
        want = {a: naive_fasta_record(a, sr.fetch(a)) for a in ("NP_000010.1", "NP_000011.1")}
    with Mounted(root, tmp_path / "mnt") as m:
        mnt = Path(m.mnt)
        master, snap = mnt / "master" / "refseq", mnt / SCALE_SNAPSHOT / "refseq"
        assert (master / "NP_000001.1.fa").stat().st_size > 0  # master's connections exist
        assert (snap / "NP_000001.1.fa").stat().st_size > 0
        db = sqlite3.connect(root / "master" / "aliases.sqlite3", isolation_level=None)
        assert db.execute("pragma journal_mode").fetchone()[0] != "wal"  # readers are locked out
        got: dict[str, bytes | BaseException] = {}

        def read(alias: str) -> None:
            try:
                got[alias] = (master / f"{alias}.fa").read_bytes()
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                got[alias] = exc

        db.execute("begin exclusive")
        locked = time.monotonic()
        try:
            readers = [threading.Thread(target=read, args=(a,)) for a in want]
            for t in readers:
                t.start()
            time.sleep(0.3)
            assert not got, got  # the master's lookups wait for the writer ...
            for i in range(20, 40):  # ... while the loop answers the snapshot's at once
                t0 = time.monotonic()
                assert (snap / f"NP_{i:06d}.1.fa.fai").read_bytes().startswith(b"NP_")
                assert time.monotonic() - t0 < PROMPT
            time.sleep(max(0.0, HOLD - (time.monotonic() - locked)))
            assert not got, got
        finally:
            db.execute("rollback")
            db.close()
        for t in readers:
            t.join(timeout=30)
        assert got == want
        assert (master / "NP_000012.1.fa").stat().st_size > 0  # the loop answers again
        assert "Traceback" not in m.log, m.log
