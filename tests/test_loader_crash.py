"""Crash safety and memory of real `seqrepofs load` processes.

A load is SIGKILLed at several points (right after a commit, shortly after, between commits, at
start-up); after each kill the instance must open and be consistent (every alias points at a
stored sequence, every seqinfo row at a complete indexed file), and re-running the same load
must finish the job with exactly the expected counts. Memory: a long single record is held
once, not twice.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from support.cli import run_seqrepofs, seqrepofs_cmd

from seqrepofs import SeqRepo
from seqrepofs.check import check
from seqrepofs.digests import seq_id_of

BATCH = 150


def make_fasta(path: Path, seed: int = 11) -> tuple[int, int]:
    """A few MB of records (some duplicated under new names); returns (unique seqs, names)."""
    rng = random.Random(seed)
    seqs: list[str] = []
    with open(path, "w") as fh:
        for i in range(2600):
            if seqs and rng.random() < 0.03:
                seq = rng.choice(seqs)
            else:
                n = 300_000 if i % 650 == 5 else rng.randint(200, 2500)
                seq = "".join(rng.choices("ACGT", k=n))
                seqs.append(seq)
            fh.write(f">T{i}.1 record {i}\n")
            for j in range(0, len(seq), 70):
                fh.write(seq[j : j + 70] + "\n")
    return len(set(seqs)), 2600


def load_cmd(root: Path, fasta: Path) -> list[str]:
    return seqrepofs_cmd("-v", "-r", root, "load", "-n", "test", "--batch-size", str(BATCH), fasta)


def assert_consistent(instance: Path) -> tuple[int, int]:
    """Opens, and every alias/seqinfo row is backed; returns (sequences, current aliases).

    A kill during a commit leaves a hot SQLite journal, which read-only connections cannot
    roll back; `check` rolls it back first (as SQLite does on any read-write open, e.g. the
    re-run's), so it runs first.
    """
    report = check(str(instance), full=False)
    assert report.damage == [], report.damage
    sr = SeqRepo(instance)
    try:
        n_seqs = sr.sequences.stats()["n_sequences"]
        n_aliases = sr.aliases.stats()["n_current"] or 0
    finally:
        sr.close()
    conn = sqlite3.connect(f"file:{instance / 'aliases.sqlite3'}?mode=ro", uri=True)
    conn.execute(
        "attach database ? as fd", (f"file:{instance / 'sequences' / 'db.sqlite3'}?mode=ro",)
    )
    dangling = conn.execute(
        "select count(*) from seqalias where seq_id not in (select seq_id from fd.seqinfo)"
    ).fetchone()[0]
    conn.close()
    assert dangling == 0
    return n_seqs, n_aliases


def kill_after(cmd: list[str], commits: int | None, delay: float) -> str:
    """Start a load; SIGKILL it `delay` s after its `commits`-th commit (or after start)."""
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    seen = 0
    log: list[str] = []
    if commits:
        assert proc.stderr is not None
        for line in proc.stderr:
            log.append(line)
            if "committed (" in line:
                seen += 1
                if seen >= commits:
                    break
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return "".join(log)


@pytest.fixture(scope="module")
def crash_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, int]:
    tmp = tmp_path_factory.mktemp("crash")
    fasta = tmp / "input.fa"
    unique, names = make_fasta(fasta)
    return fasta, unique, names


def test_kill_at_many_points_then_rerun_completes(tmp_path: Path, crash_data) -> None:
    fasta, unique, names = crash_data
    root = tmp_path / "root"
    run_seqrepofs("init", root=root, check=True)
    instance = root / "master"
    cmd = load_cmd(root, fasta)
    counts = []
    # (commits to wait for, then seconds): right after a commit, a little and a lot after one,
    # before the first commit (parsing/writing the first batch), and at start-up
    for commits, delay in ((1, 0.0), (1, 0.02), (2, 0.15), (3, 0.4), (None, 0.8), (None, 0.05)):
        kill_after(cmd, commits, delay)
        counts.append(assert_consistent(instance))
    assert counts[0][0] >= BATCH  # the first kill came after a whole batch was committed
    assert counts == sorted(counts)  # committed batches are never lost
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    n_seqs, n_aliases = assert_consistent(instance)
    assert n_seqs == unique
    assert n_aliases == 4 * unique + names
    # nothing left behind: no partial or unreferenced files, no duplicate rows
    leftovers = [p for p in (instance / "sequences").rglob("*") if p.name.endswith(".partial")]
    assert leftovers == []
    report = check(str(instance), full=True)
    assert report.ok and report.notes == [] and report.verified == unique
    # and a second complete run adds nothing
    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode == 0
    assert assert_consistent(instance) == (n_seqs, n_aliases)


def test_sigkill_during_commit_of_a_large_file(tmp_path: Path) -> None:
    """Kill while the last file is being compressed/renamed/committed, repeatedly."""
    fasta = tmp_path / "big.fa"
    rng = np.random.default_rng(5)
    with open(fasta, "wb") as fh:
        for i in range(3):
            seq = np.frombuffer(b"ACGT", np.uint8)[rng.integers(0, 4, 3_000_000)].tobytes()
            fh.write(f">C{i}.1\n".encode())
            fh.write(b"\n".join(seq[j : j + 60] for j in range(0, len(seq), 60)) + b"\n")
    root = tmp_path / "root"
    SeqRepo(root / "master", writeable=True).close()
    cmd = load_cmd(root, fasta)
    for delay in (0.3, 0.6, 0.9, 1.2):
        kill_after(cmd, None, delay)
        assert_consistent(root / "master")
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    assert assert_consistent(root / "master") == (3, 12 + 3)


def peak_rss_mib(root: Path, fasta: Path) -> float:
    code = (
        "from seqrepofs.loader import load;"
        f"load({str(root / 'master')!r}, [{str(fasta)!r}], 'test');"
        "print([int(l.split()[1]) for l in open('/proc/self/status')"
        " if l.startswith('VmHWM')][0] / 1024)"
    )  # VmHWM, not ru_maxrss: Linux keeps the parent's ru_maxrss across exec
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def test_a_long_record_is_held_once(tmp_path: Path) -> None:
    n = 80_000_000
    big, small = tmp_path / "big.fa", tmp_path / "small.fa"
    rng = np.random.default_rng(1)
    step = 8_000_000
    with open(big, "wb") as fh:
        fh.write(b">chr.1\n")
        for _ in range(0, n, step):
            seq = np.frombuffer(b"ACGTN", np.uint8)[rng.integers(0, 5, step, dtype=np.uint8)]
            lines = np.empty((step // 80, 81), np.uint8)
            lines[:, :80] = seq.reshape(-1, 80)
            lines[:, 80] = 10
            fh.write(lines.tobytes())
    small.write_bytes(b">s.1\nACGT\n")
    for name in ("a", "b"):
        SeqRepo(tmp_path / name / "master", writeable=True).close()
    baseline = peak_rss_mib(tmp_path / "a", small)
    peak = peak_rss_mib(tmp_path / "b", big)
    size_mib = n / 2**20
    print(f"peak RSS {peak:.0f} MiB, baseline {baseline:.0f} MiB, sequence {size_mib:.0f} MiB")
    # one copy of the sequence plus bounded buffers (read-ahead and hashing queues of 4 MiB
    # chunks, bytearray growth slack, BGZF blocks); a second copy would add another 76 MiB
    assert peak - baseline < size_mib + 80, (baseline, peak)
    sr = SeqRepo(tmp_path / "b" / "master")
    try:
        assert sr.sequences.fetch_seqinfo(seq_id_of(sr["test:chr.1"][:]))["len"] == n
    finally:
        sr.close()
    os.remove(big)


def _fresh_instance(tmp_path: Path) -> tuple[Path, Path, tuple[Path, Path], list]:
    """(root, instance, its two databases, their fresh index sets) of a new instance."""
    root = tmp_path / "root"
    run_seqrepofs("init", root=root, check=True)
    instance = root / "master"
    dbs = (instance / "aliases.sqlite3", instance / "sequences" / "db.sqlite3")
    return root, instance, dbs, [_indexes(db) for db in dbs]


def _indexes(db: Path) -> set[tuple[str, str]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return set(conn.execute("select name, sql from sqlite_master where type = 'index'"))
    finally:
        conn.close()


def test_a_first_load_builds_its_indexes_at_the_end_and_a_kill_gets_them_back(
    tmp_path: Path, crash_data
) -> None:
    """A load into an empty instance drops the random-key indexes with its first commit and
    builds them with its last; killed in between, the next writable open builds them, with the
    reference's SQL, and the re-run completes."""
    fasta, unique, names = crash_data
    root, instance, dbs, fresh = _fresh_instance(tmp_path)
    assert {"seqalias_seq_id_idx", "seqalias_alias_idx"} <= {n for n, _ in fresh[0]}
    kill_after(load_cmd(root, fasta), 1, 0.0)
    assert_consistent(instance)  # readable, every row backed, without those indexes
    missing = [
        {n for n, _ in f} - {n for n, _ in _indexes(db)} for f, db in zip(fresh, dbs, strict=True)
    ]
    assert missing == [{"seqalias_seq_id_idx", "seqalias_alias_idx"}, {"seqinfo_seq_id_idx"}]
    SeqRepo(instance, writeable=True).close()
    assert [_indexes(db) for db in dbs] == fresh
    done = subprocess.run(load_cmd(root, fasta), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert assert_consistent(instance) == (unique, 4 * unique + names)
    assert [_indexes(db) for db in dbs] == fresh


def test_a_completed_first_load_has_the_reference_indexes(tmp_path: Path, crash_data) -> None:
    fasta, unique, _names = crash_data
    root, instance, dbs, fresh = _fresh_instance(tmp_path)
    done = subprocess.run(load_cmd(root, fasta), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert [_indexes(db) for db in dbs] == fresh
    conn = sqlite3.connect(f"file:{dbs[0]}?mode=ro", uri=True)
    plan = conn.execute("explain query plan select * from seqalias where seq_id = 'x'").fetchall()
    conn.close()
    assert "seqalias_seq_id_idx" in str(plan)  # built, and used
    assert check(str(instance), full=True).verified == unique
