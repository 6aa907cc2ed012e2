"""Faults while writing: `seqrepofs load` SIGKILLed at random moments, loads on a full disk,
`snapshot` killed or stopped midway, and readers (API and a live mount) after a writer died in
the middle of a commit.

After every fault the instance must open read-only exactly as a user opens it (no repair step
first), every alias must resolve, every stored sequence must read back equal to its input,
`seqrepofs check` must pass, and re-running the interrupted command must complete.

CI runs 6 random kills, one full-disk load plus 2 kills on the full disk, and 5 snapshot kills;
`python3 -m pytest -m slow tests/test_reliability_faults.py` runs 20 of each.
"""

from __future__ import annotations

import glob
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from support.cli import run_seqrepofs, seqrepofs_cmd
from support.data import NS, verify_instance, write_random_fasta
from support.files import remove_tree
from support.fuse import Mounted, fuse_skip_reason, needs_fuse
from support.system import resize_tmpfs, small_tmpfs, tmpfs_skip_reason

from seqrepofs.seqrepo import SeqRepo
from seqrepofs.store.instances import list_instances

pytestmark = pytest.mark.timeout(600)

BATCH = 150
SEED = int(os.environ.get("SEQREPOFS_FAULT_SEED", "7"))


def _no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr


def _load_args(root: Path, fasta: Path, batch: int = BATCH) -> list[str]:
    return ["-r", str(root), "load", "-n", NS, "--batch-size", str(batch), str(fasta)]


def _check_passes(root: Path, instance: str = "master", quick: bool = False) -> str:
    proc = run_seqrepofs("-r", str(root), "check", "-i", instance, *(["--quick"] if quick else []))
    _no_traceback(proc)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "DAMAGED" not in proc.stdout
    return proc.stdout


def _kill_at(cmd: list[str], delay: float) -> int | None:
    """Start `cmd`, SIGKILL it `delay` s later; returns its exit code if it ended first."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        proc.wait(delay)
        return proc.returncode  # finished (or failed) before the kill
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return None
    finally:
        assert proc.stderr is not None
        err = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
        assert "Traceback" not in err, err


@pytest.fixture(scope="module")
def load_input(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes], float]:
    """3000 records (6 Mb, a few of 300 kb) and how long an uninterrupted load takes."""
    tmp = tmp_path_factory.mktemp("faults-input")
    fasta = tmp / "input.fa"
    expected = write_random_fasta(fasta, 3000, SEED, big_every=700)
    root = tmp / "timing"
    assert run_seqrepofs("-r", str(root), "init").returncode == 0
    started = time.monotonic()
    proc = run_seqrepofs(*_load_args(root, fasta))
    assert proc.returncode == 0, proc.stderr
    duration = time.monotonic() - started
    shutil.rmtree(root)
    return fasta, expected, duration


def _kill_loads(
    root: Path,
    fasta: Path,
    expected: dict[str, bytes],
    moments: list[float],
    full_disk: bool = False,
) -> list[int]:
    instance = root / "master"
    found = []
    for delay in moments:
        code = _kill_at(seqrepofs_cmd(*_load_args(root, fasta)), delay)
        if not full_disk:
            assert code in (None, 0), f"load failed on its own after {delay:.2f} s"
        # the instance opens as it is (no check/repair first) and holds only input data
        found.append(verify_instance(instance, expected))
        _check_passes(root)
    assert found == sorted(found), f"committed aliases were lost: {found}"
    return found


def _finish_and_verify(root: Path, fasta: Path, expected: dict[str, bytes]) -> None:
    proc = run_seqrepofs(*_load_args(root, fasta))
    assert proc.returncode == 0, proc.stderr
    assert verify_instance(root / "master", expected) == len(expected)
    out = _check_passes(root)
    assert f"{len(set(expected.values()))} verified" in out
    assert not glob.glob(str(root / "master" / "sequences" / "**" / "*.partial"), recursive=True)


def _moments(rng: random.Random, n: int, duration: float) -> list[float]:
    """`n` kill times: one during python's start-up (~0.3 s), the rest over the load's work."""
    hi = max(duration * 0.97, 0.6)
    return sorted([rng.uniform(0.05, 0.3)] + [rng.uniform(0.3, hi) for _ in range(n - 1)])


@pytest.mark.parametrize(
    "kills",
    [pytest.param(6, id="6-kills"), pytest.param(20, id="20-kills", marks=pytest.mark.slow)],
)
def test_sigkill_load_at_random_moments(tmp_path: Path, load_input, kills: int) -> None:
    fasta, expected, duration = load_input
    root = tmp_path / "root"
    assert run_seqrepofs("-r", str(root), "init").returncode == 0
    rng = random.Random(SEED * 1000 + kills)
    moments = _moments(rng, kills, duration)
    print(f"load takes {duration:.2f} s; kills at {[round(m, 2) for m in moments]}")
    _kill_loads(root, fasta, expected, moments)
    _finish_and_verify(root, fasta, expected)


def _spill_then_die(instance: Path, n_aliases: int = 20000) -> None:
    """A writer SIGKILLed in the middle of a commit: pages already written to both databases,
    the rollback journal (hot) still there. Runs in a forked child."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child dies by SIGKILL
        try:
            sr = SeqRepo(instance, writeable=True)
            conn = sr.aliases.database.writer
            for schema in ("main", "fd"):
                conn.execute(f"pragma {schema}.cache_size = 5")  # spill before the commit
            sr.store(b"ACGT" * 50_000, [{"namespace": NS, "alias": "DOOMED.1"}])
            sr.sequences.flush_file()
            rows = [("SQ.x", "spill", f"alias-{i:08d}-" + "x" * 60) for i in range(n_aliases)]
            conn.executemany(
                "insert into seqalias (seq_id, namespace, alias) values (?, ?, ?)", rows
            )
        finally:
            os.kill(os.getpid(), signal.SIGKILL)
    os.waitpid(pid, 0)


JOURNAL_MAGIC = bytes.fromhex("d9d505f920a163d7")  # a rollback journal that is still live


def _hot_journals(instance: Path) -> list[str]:
    out = []
    for path in (
        instance / "aliases.sqlite3-journal",
        instance / "sequences" / "db.sqlite3-journal",
    ):
        if path.exists():
            with open(path, "rb") as fh:
                if fh.read(8) == JOURNAL_MAGIC:
                    out.append(str(path))
    return out


def _small_repo(instance: Path, n: int = 40, seed: int = 3) -> dict[str, bytes]:
    rng = random.Random(seed)
    expected = {
        f"S{i}.1": "".join(rng.choices("ACGT", k=rng.randint(50, 5000))).encode() for i in range(n)
    }
    sr = SeqRepo(instance, writeable=True)
    for name, seq in expected.items():
        sr.store(seq.decode(), [{"namespace": NS, "alias": name}])
    sr.close()
    return expected


def test_reader_opens_an_instance_whose_writer_died_in_a_commit(tmp_path: Path) -> None:
    """A hot journal left by a writer killed mid-commit must not make the instance unreadable:
    the API opens it and reads the last committed state (the interrupted commit rolled back)."""
    instance = tmp_path / "master"
    expected = _small_repo(instance)
    _spill_then_die(instance)
    assert _hot_journals(instance), "the fault was not injected"
    assert verify_instance(instance, expected) == len(expected)
    sr = SeqRepo(instance)
    try:
        assert "test:DOOMED.1" not in sr
        assert not list(sr.aliases.find_aliases(namespace="spill"))
    finally:
        sr.close()
    assert not _hot_journals(instance)
    _check_passes(tmp_path, "master")


def test_snapshot_of_an_instance_whose_writer_died_in_a_commit(tmp_path: Path) -> None:
    root = tmp_path / "root"
    expected = _small_repo(root / "master")
    _spill_then_die(root / "master")
    assert _hot_journals(root / "master")
    proc = run_seqrepofs("-r", str(root), "snapshot", "-d", "2024-04-04")
    assert proc.returncode == 0, proc.stderr
    assert verify_instance(root / "2024-04-04", expected) == len(expected)
    _check_passes(root, "2024-04-04")


@pytest.mark.fuse
@needs_fuse
def test_live_mount_of_master_survives_a_writer_killed_in_a_commit(tmp_path: Path) -> None:
    """The daemon's long-lived read connections meet the hot journal on their next query."""
    root = tmp_path / "root"
    expected = _small_repo(root / "master")
    with Mounted(root / "master", tmp_path / "mnt") as m:
        mnt = Path(m.mnt)
        assert (mnt / NS / "S0.1.fa").read_bytes().startswith(b">S0.1\n")
        _spill_then_die(root / "master")
        assert _hot_journals(root / "master")
        time.sleep(1.2)  # master's caches and entry timeouts are 1 s
        for name, seq in expected.items():
            data = (mnt / NS / f"{name}.fa").read_bytes()
            assert data.split(b"\n", 1)[1].replace(b"\n", b"") == seq, name
        assert not (mnt / NS / "DOOMED.1.fa").exists()
        assert "Traceback" not in m.log and "ERROR" not in m.log, m.log


# ---- a full disk ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def big_input(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    """17 Mb of residues: about 5 MB of BGZF, more than the 3 MB tmpfs holds."""
    tmp = tmp_path_factory.mktemp("full-input")
    fasta = tmp / "big.fa"
    expected = write_random_fasta(
        fasta, 400, SEED + 1, big_every=40, big_len=1_000_000, lengths=(1000, 30000)
    )
    return fasta, expected


@pytest.mark.parametrize(
    "kills",
    [pytest.param(2, id="2-kills"), pytest.param(20, id="20-kills", marks=pytest.mark.slow)],
)
def test_disk_full_load_and_kills_then_rerun_after_freeing_space(big_input, kills: int) -> None:
    reason = tmpfs_skip_reason()
    if reason:
        pytest.skip(reason)
    fasta, expected = big_input
    with small_tmpfs("3m") as disk:
        root = disk / "root"
        assert run_seqrepofs("-r", str(root), "init").returncode == 0
        proc = run_seqrepofs(*_load_args(root, fasta, batch=50))
        # the disk fills up: one clear line, exit 1, no traceback
        assert proc.returncode == 1, proc.stderr
        _no_traceback(proc)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        assert "No space left on device" in lines[0] or "disk is full" in lines[0], lines
        assert os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize < 1 << 20
        first = verify_instance(root / "master", expected)
        assert first > 0, "nothing was committed before the disk filled up"
        _check_passes(root)
        # SIGKILL loads that run against the full disk
        rng = random.Random(SEED * 1000 + 77 + kills)
        moments = sorted(rng.uniform(0.3, 2.0) for _ in range(kills))
        found = _kill_loads(root, fasta, expected, moments, full_disk=True)
        assert found[0] >= first
        # free space: the interrupted load completes
        resize_tmpfs(disk, "64m")
        _finish_and_verify(root, fasta, expected)


# ---- snapshot killed midway -------------------------------------------------------------------
@pytest.fixture(scope="module")
def snapshot_root(tmp_path_factory: pytest.TempPathFactory, load_input) -> tuple[Path, float]:
    """A master of 3000 sequences in 300 files (900 hardlinks and 15000 aliases to copy), and how
    long `snapshot` works after it has created its temporary directory."""
    fasta, expected, _ = load_input
    root = tmp_path_factory.mktemp("snap") / "root"
    assert run_seqrepofs("-r", str(root), "init").returncode == 0
    proc = run_seqrepofs(*_load_args(root, fasta, batch=10))
    assert proc.returncode == 0, proc.stderr
    # pad the alias database so copying it takes a while too
    conn = sqlite3.connect(root / "master" / "aliases.sqlite3")
    seq_id = conn.execute("select seq_id from seqalias limit 1").fetchone()[0]
    conn.executemany(
        "insert into seqalias (seq_id, namespace, alias) values (?, 'pad', ?)",
        [(seq_id, f"PAD{i:07d}" + "p" * 80) for i in range(100_000)],
    )
    conn.commit()
    conn.close()
    timings = [_snapshot_until_exit(root, f"2001-01-0{i}") for i in (1, 2)]
    for name in ("2001-01-01", "2001-01-02"):
        remove_tree(root / name)
    return root, min(timings)


def _tmp_dirs(root: Path, name: str) -> list[str]:
    return glob.glob(str(root / f"{name}.*"))


def _snapshot_until_exit(root: Path, name: str) -> float:
    """Run a snapshot; seconds from its temporary directory appearing to its exit."""
    proc = subprocess.Popen(seqrepofs_cmd("-r", str(root), "snapshot", "-d", name))
    while not _tmp_dirs(root, name) and proc.poll() is None:
        time.sleep(0.001)
    started = time.monotonic()
    assert proc.wait() == 0
    return time.monotonic() - started


def _db_rows(instance: Path) -> tuple[list[tuple], list[tuple]]:
    conn = sqlite3.connect(f"file:{instance / 'aliases.sqlite3'}?mode=ro", uri=True)
    seqs = instance / "sequences" / "db.sqlite3"
    conn.execute("attach database ? as fd", (f"file:{seqs}?mode=ro",))
    try:
        aliases = conn.execute(
            "select seq_id, namespace, alias, is_current from seqalias order by seqalias_id"
        ).fetchall()
        seqinfo = conn.execute("select seq_id, len, relpath from fd.seqinfo order by seq_id")
        return aliases, seqinfo.fetchall()
    finally:
        conn.close()


def _assert_complete_snapshot(root: Path, name: str, expected: dict[str, bytes] | None) -> None:
    """The snapshot holds master's rows and hardlinks of all its files, passes `check --quick`,
    is read-only; with `expected`, every alias and sequence is also read back through the API."""
    snap = root / name
    aliases, seqinfo = _db_rows(snap)
    assert (aliases, seqinfo) == _db_rows(root / "master")
    for relpath in {r[2] for r in seqinfo}:
        for suffix in ("", ".fai", ".gzi"):
            rel = Path("sequences") / (relpath + suffix)
            assert os.stat(snap / rel).st_ino == os.stat(root / "master" / rel).st_ino
    _check_passes(root, name, quick=True)
    assert not os.stat(snap).st_mode & 0o222
    if expected is not None:
        assert verify_instance(snap, expected) == len(expected)


def _visible(root: Path, name: str) -> bool:
    listed = run_seqrepofs("-r", str(root), "list-local-instances").stdout.split()
    return name in listed or name in list_instances(str(root)) or (root / name).exists()


@pytest.mark.parametrize(
    "kills",
    [pytest.param(5, id="5-kills"), pytest.param(20, id="20-kills", marks=pytest.mark.slow)],
)
def test_snapshot_killed_midway_is_never_visible_and_a_retry_succeeds(
    snapshot_root, load_input, kills: int
) -> None:
    root, work = snapshot_root
    _, expected, _ = load_input
    rng = random.Random(SEED * 1000 + 5 + kills)
    print(f"snapshot works {work:.3f} s after creating its temporary directory")
    for k in range(kills):
        name = f"2002-02-{k + 1:02d}"
        delay = rng.uniform(0, work)
        proc = subprocess.Popen(seqrepofs_cmd("-r", str(root), "snapshot", "-d", name))
        while not _tmp_dirs(root, name) and proc.poll() is None:
            time.sleep(0.0005)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        code = proc.wait()
        finished = (root / name).exists()
        if finished:  # renamed into place before the kill (or no kill): then it is complete
            _assert_complete_snapshot(root, name, None)
        else:
            assert code != 0
            assert not _visible(root, name), f"half snapshot {name} visible (kill at {delay:.3f})"
        # a retry under the same name succeeds (or says it exists, if the first finished)
        retry = run_seqrepofs("-r", str(root), "snapshot", "-d", name)
        _no_traceback(retry)
        if finished:
            assert retry.returncode == 1 and "already exists" in retry.stderr
        else:
            assert retry.returncode == 0, retry.stderr
        _assert_complete_snapshot(root, name, expected if k == kills - 1 else None)


def test_snapshot_stopped_midway_shows_nothing_under_its_name(snapshot_root, load_input) -> None:
    """SIGSTOP the snapshot while it copies: the root, list-local-instances and a mount of the
    root show no instance of that name; then kill it and retry."""
    root, _work = snapshot_root
    _, expected, _ = load_input
    name = "2003-03-03"
    proc = subprocess.Popen(seqrepofs_cmd("-r", str(root), "snapshot", "-d", name))
    try:
        while not _tmp_dirs(root, name):
            assert proc.poll() is None, "snapshot ended before it could be stopped"
            time.sleep(0.0005)
        time.sleep(0.02)
        proc.send_signal(signal.SIGSTOP)
        assert _tmp_dirs(root, name)
        assert not _visible(root, name)
        if fuse_skip_reason() is None:
            with Mounted(root, root.parent / "mnt") as m:
                listing = os.listdir(m.mnt)
                assert not [n for n in listing if n.startswith(name)], listing
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not _visible(root, name)
    retry = run_seqrepofs("-r", str(root), "snapshot", "-d", name)
    assert retry.returncode == 0, retry.stderr
    _assert_complete_snapshot(root, name, expected)
