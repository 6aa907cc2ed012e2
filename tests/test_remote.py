"""Pulling and publishing snapshots against a real `rsync --daemon` on 127.0.0.1.

The server root holds snapshot A (360 generated sequences over 6 commits, so 6 sequence files)
and B = A + 4 new sequences (about 1%) in one more commit. The daemon is started with
`seqrepofs serve-rsync` and always stopped. Every CLI call runs `python -m seqrepofs` in a
subprocess, as a user would, so exit codes and one-line errors are what a shell sees.
"""

from __future__ import annotations

import filecmp
import grp
import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.cli import checkout_env, one_error_line, run_seqrepofs, seqrepofs_cmd
from support.fuse import Mounted, needs_fuse
from support.snapshots import A, B, build_two_snapshots
from support.system import free_port

from seqrepofs import SeqRepo
from seqrepofs.remote import daemon, parse_stats, tempdir
from seqrepofs.store import instances

DBS = {"aliases.sqlite3", "sequences/db.sqlite3", "collections.sqlite3"}
# rsync's own bytes on top of file data: file lists, per-file headers, block checksums
OVERHEAD = 16 * 1024


@dataclass(frozen=True)
class RsyncServer:
    root: Path
    url: str
    port: int
    pid_file: str


def ok(*args: str) -> str:
    """The standard output of `seqrepofs ARGS`, which must succeed."""
    return run_seqrepofs(*args, check=True).stdout


def fails(*args: str) -> str:
    """The one error line of `seqrepofs ARGS`, which must fail cleanly with exit 1."""
    return one_error_line(run_seqrepofs(*args))


def build_server_root(root: Path) -> None:
    build_two_snapshots(root, collections=True)
    # B's collections.sqlite3 has A's size; given A's mtime too (snapshots made in the same
    # second), only a comparison by content tells them apart
    old, new = root / A / "collections.sqlite3", root / B / "collections.sqlite3"
    assert old.stat().st_size == new.stat().st_size
    os.utime(new, ns=(old.stat().st_atime_ns, old.stat().st_mtime_ns))
    instances.update_latest(str(root), B)
    (root / f"{A}.half4made").mkdir()  # a temporary directory the daemon must not show


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RsyncServer]:
    base = tmp_path_factory.mktemp("rsync-server")
    root = base / "root"
    build_server_root(root)
    state = base / "state"
    port = free_port()
    args = ["serve-rsync", str(root), "--port", str(port), "--state-dir", str(state)]
    if os.geteuid() == 0:  # as root rsync drops to `nobody`, who cannot read pytest's tmp dirs
        args += ["--user", pwd.getpwuid(os.getuid()).pw_name]
        args += ["--group", grp.getgrgid(os.getgid()).gr_name]
    started = run_seqrepofs(*args)
    pid_file = str(state / "rsyncd.pid")
    try:
        assert started.returncode == 0, started.stderr
        assert f"rsync://127.0.0.1:{port}/seqrepo" in started.stdout
        assert daemon.read_pid(pid_file) is not None
        yield RsyncServer(root, f"rsync://127.0.0.1:{port}", port, pid_file)
    finally:
        daemon.stop(pid_file)
    assert not daemon.answers("127.0.0.1", port)


def files_under(top: Path) -> dict[str, os.stat_result]:
    """relpath -> lstat for every file and directory below `top`."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            out[os.path.relpath(path, top)] = os.lstat(path)
    return out


def stat_state(top: Path) -> dict[str, tuple[int, int, int, int]]:
    """relpath -> (inode, size, mtime, mode): what a dry run or a no-op pull must not touch."""
    return {
        rel: (st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode)
        for rel, st in files_under(top).items()
    }


def regular_files(top: Path) -> dict[str, int]:
    """relpath -> size of each regular file of an instance."""
    return {rel: st.st_size for rel, st in files_under(top).items() if os.path.isfile(top / rel)}


def assert_same_content(local: Path, remote: Path) -> None:
    assert set(regular_files(local)) == set(regular_files(remote))
    for rel in regular_files(remote):
        assert filecmp.cmp(local / rel, remote / rel, shallow=False), rel


def assert_reads_like(local: Path, remote: Path) -> None:
    """Every current alias resolves to the same sequence in both instances."""
    with SeqRepo(local) as mine, SeqRepo(remote) as theirs:
        rows = list(theirs.aliases.find_aliases())
        assert {(r["namespace"], r["alias"], r["seq_id"]) for r in rows} == {
            (r["namespace"], r["alias"], r["seq_id"]) for r in mine.aliases.find_aliases()
        }
        assert len({r["seq_id"] for r in rows}) == len(mine.sequences)
        for r in rows:
            if r["namespace"] == "refseq":
                ident = f"refseq:{r['alias']}"
                assert mine.fetch_uri(ident) == theirs.fetch_uri(ident), ident


def test_list_remote_instances(server: RsyncServer) -> None:
    out = ok("--remote-host", server.url, "list-remote-instances")
    assert out == f"Remote instances ({server.url}/seqrepo)\n  {A}\n  {B}\n"
    # the module can be named either way
    assert ok("--remote-host", f"{server.url}/seqrepo", "list-remote-instances") == out
    assert (
        ok("--remote-host", server.url, "list-remote-instances", "--remote-module", "seqrepo")
        == out
    )
    # master and the temporary directory on the server are not even visible to a raw listing
    raw = subprocess.run(
        ["rsync", "--no-motd", f"{server.url}/seqrepo/"], capture_output=True, text=True
    )
    assert f"{A}.half4made" not in raw.stdout and "master" not in raw.stdout
    assert "latest" in raw.stdout


def test_pull_a_then_b_transfers_only_new_files(server: RsyncServer, tmp_path: Path) -> None:
    root = tmp_path / "local"
    remote_a, remote_b = server.root / A, server.root / B
    out_a = ok("-r", str(root), "--remote-host", server.url, "pull", "-i", A, "--stats")
    stats_a = parse_stats(out_a)
    files_a = regular_files(remote_a)
    assert stats_a.regular_files_transferred == len(files_a)
    assert stats_a.total_transferred_file_size == sum(files_a.values())
    assert sum(files_a.values()) <= stats_a.total_bytes_received
    assert stats_a.total_bytes_received <= sum(files_a.values()) + OVERHEAD

    out_b = ok("-r", str(root), "--remote-host", server.url, "pull", "--stats")
    assert f"pulled {B} into {root / B}" in out_b
    assert f"hardlinked from {root / A}" in out_b
    stats_b = parse_stats(out_b)
    files_b = regular_files(remote_b)
    new = {rel: size for rel, size in files_b.items() if rel not in files_a}
    assert len(new) == 3  # one .fa.bgz with its .fai and .gzi
    changed = {**new, **{db: files_b[db] for db in DBS}}
    # exactly the new sequence files and the three databases moved ...
    assert stats_b.regular_files_transferred == len(changed)
    assert stats_b.total_transferred_file_size == sum(changed.values())
    # ... and the bytes on the wire are at most those files (the databases go as deltas
    # against A's copies) plus protocol overhead, at least the new sequence data
    assert sum(new.values()) <= stats_b.total_bytes_received
    assert stats_b.total_bytes_received <= sum(changed.values()) + OVERHEAD
    assert stats_b.total_bytes_received < stats_a.total_bytes_received / 5
    print(
        f"\nA: {stats_a.total_bytes_received} bytes received for {len(files_a)} files "
        f"({sum(files_a.values())} bytes); B: {stats_b.total_bytes_received} bytes received, "
        f"{stats_b.regular_files_transferred} files transferred "
        f"({sum(new.values())} bytes of new sequence files, "
        f"{sum(files_b[db] for db in DBS)} bytes of databases)"
    )

    # unchanged sequence files are hardlinks to A's; the databases are B's own copies
    for rel in files_a:
        same = (root / A / rel).stat().st_ino == (root / B / rel).stat().st_ino
        assert same == (rel not in DBS), rel
    assert_same_content(root / A, remote_a)
    assert_same_content(root / B, remote_b)
    assert_reads_like(root / B, remote_b)
    assert sorted(os.listdir(root)) == [A, B]  # no temporary directory left behind


@needs_fuse
def test_mounted_b_matches_server(server: RsyncServer, tmp_path: Path) -> None:
    root = tmp_path / "local"
    ok("-r", str(root), "--remote-host", server.url, "pull", "-i", B)
    mounts = {
        "local": (root / B, tmp_path / "m-local"),
        "server": (server.root / B, tmp_path / "m-srv"),
    }
    with Mounted(*mounts["local"]), Mounted(*mounts["server"]):
        local_mnt, server_mnt = mounts["local"][1], mounts["server"][1]
        assert sorted(os.listdir(local_mnt)) == sorted(os.listdir(server_mnt))
        names = sorted(os.listdir(server_mnt / "refseq"))
        assert len(names) > 364 and names == sorted(os.listdir(local_mnt / "refseq"))
        for name in names:
            mine = (local_mnt / "refseq" / name).read_bytes()
            theirs = (server_mnt / "refseq" / name).read_bytes()
            # .dict files name their own path (UR:file://<mount point>/...)
            mine = mine.replace(bytes(local_mnt), b"MNT")
            assert mine == theirs.replace(bytes(server_mnt), b"MNT"), name


def _pulled_data_bytes(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(
        st.st_size
        for rel, st in files_under(path).items()
        if os.path.isfile(path / rel) and not os.path.basename(rel).startswith(".")
    )


def test_killed_pull_leaves_nothing_final_and_resumes(server: RsyncServer, tmp_path: Path) -> None:
    root = tmp_path / "local"
    args = ["-r", str(root), "--remote-host", server.url, "pull", "-i", A]
    proc = subprocess.Popen(
        seqrepofs_cmd(*args, "--bwlimit", "64"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=checkout_env(),
    )
    try:
        deadline = time.monotonic() + 30
        while True:  # wait until complete files have arrived, then kill mid-transfer
            leftovers = tempdir.leftovers(str(root), A)
            if leftovers and _pulled_data_bytes(Path(leftovers[0])) > 200_000:
                break
            assert proc.poll() is None, "the pull ended before it could be killed"
            assert time.monotonic() < deadline, "the pull made no progress"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # seqrepofs and its rsync processes
        proc.wait()
    assert not (root / A).exists()
    assert not instances.list_instances(str(root))
    [leftover] = tempdir.leftovers(str(root), A)
    partial = _pulled_data_bytes(Path(leftover))
    total = sum(regular_files(server.root / A).values())
    assert 200_000 < partial < total

    out = ok(*args, "--stats")
    assert f"(resumed {leftover})" in out
    stats = parse_stats(out)
    assert stats.total_bytes_received < total - 150_000  # what had arrived was not fetched again
    assert sorted(os.listdir(root)) == [A]
    assert_same_content(root / A, server.root / A)
    assert_reads_like(root / A, server.root / A)


def test_dry_run_changes_nothing(server: RsyncServer, tmp_path: Path) -> None:
    empty = tmp_path / "not-yet"
    out = ok("-r", str(empty), "--remote-host", server.url, "-n", "pull")
    assert "nothing was changed" in out and "would transfer" in out
    assert not empty.exists()

    root = tmp_path / "local"
    ok("-r", str(root), "--remote-host", server.url, "pull", "-i", A)
    before = stat_state(root)
    out = ok("-r", str(root), "--remote-host", server.url, "pull", "--dry-run", "--stats")
    assert f"--link-dest={root / A}/" in out
    assert "dry run: would transfer 6 files" in out  # 3 new sequence files + 3 databases
    assert parse_stats(out).regular_files_transferred == 6
    assert stat_state(root) == before


def test_existing_instance_is_left_untouched(server: RsyncServer, tmp_path: Path) -> None:
    root = tmp_path / "local"
    ok("-r", str(root), "--remote-host", server.url, "pull", "-i", A)
    before = stat_state(root)
    proc = run_seqrepofs("-r", str(root), "--remote-host", server.url, "pull", "-i", A)
    assert proc.returncode == 0
    assert (
        proc.stdout == f"{root / A} already exists; left untouched (remove it to pull it again)\n"
    )
    assert stat_state(root) == before


def test_update_latest(server: RsyncServer, tmp_path: Path) -> None:
    root = tmp_path / "local"
    out = ok("-r", str(root), "--remote-host", server.url, "pull", "-i", A, "-l")
    assert out.endswith(f"latest -> {A}\n")
    assert os.readlink(root / "latest") == A
    ok("-r", str(root), "--remote-host", server.url, "pull", "--update-latest")
    assert os.readlink(root / "latest") == B
    with SeqRepo(root / "latest") as sr:
        assert len(sr["refseq:NM_000363.1"]) >= 2000  # one of B's new sequences


def test_missing_rsync(tmp_path: Path) -> None:
    missing = str(tmp_path / "no" / "rsync")
    for command in (["pull"], ["list-remote-instances"]):
        line = fails("-r", str(tmp_path), "--rsync-exe", missing, *command)
        assert "rsync program not found" in line and missing in line
    assert not os.listdir(tmp_path)


def test_openrsync_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "rsync"
    fake.write_text('#!/bin/sh\necho "openrsync: protocol version 29"\n')
    fake.chmod(0o755)
    for command in (["pull"], ["list-remote-instances"]):
        line = fails("-r", str(tmp_path), "--rsync-exe", str(fake), *command)
        assert "openrsync" in line and "install rsync" in line


def test_nothing_listening(tmp_path: Path) -> None:
    url = f"rsync://127.0.0.1:{free_port()}"
    line = fails("-r", str(tmp_path / "r"), "--remote-host", url, "pull")
    assert "cannot connect to the rsync server" in line and "Connection refused" in line
    assert not (tmp_path / "r").exists()


def test_server_side_errors(server: RsyncServer, tmp_path: Path) -> None:
    root = ["-r", str(tmp_path / "r"), "--remote-host", server.url]
    line = fails(*root, "list-remote-instances", "--remote-module", "nope")
    assert "refused the session" in line and "Unknown module 'nope'" in line
    line = fails(*root, "pull", "-i", "2023-12-31")
    assert f"'2023-12-31' is not a snapshot on {server.url}/seqrepo" in line
    line = fails(*root, "pull", "--bwlimit", "fast")
    assert "--bwlimit" in line
    line = fails("--remote-host", "--rsh=evil", "list-remote-instances")
    assert "not a host name" in line


def test_serve_rsync_print_config(tmp_path: Path) -> None:
    out = ok("serve-rsync", str(tmp_path), "--port", "8873", "--print-config")
    assert "read only = yes" in out and f"path = {tmp_path.resolve()}" in out
    assert "port = 8873" in out and "[seqrepo]" in out
    assert f"use chroot = {'yes' if os.geteuid() == 0 else 'no'}" in out
    assert "pid file = " in out and "log file = " in out
    assert not list(tmp_path.iterdir())  # printing the config starts nothing, writes nothing
    line = fails("serve-rsync", str(tmp_path), "--module", "a b", "--print-config")
    assert "not a valid module name" in line


def test_serve_rsync_foreground_and_port_in_use(server: RsyncServer, tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / A).mkdir(parents=True)
    busy = run_seqrepofs(
        "serve-rsync", str(root), "--port", str(server.port), "--state-dir", str(tmp_path / "s1")
    )
    line = one_error_line(busy)
    assert f"cannot listen on 127.0.0.1 port {server.port}: Address already in use" in line

    port = free_port()
    state = tmp_path / "s2"
    proc = subprocess.Popen(
        seqrepofs_cmd(
            "serve-rsync", root, "--port", str(port), "--state-dir", state, "--foreground"
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=checkout_env(),
    )
    try:
        deadline = time.monotonic() + 15
        while not daemon.answers("127.0.0.1", port):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert daemon.read_pid(str(state / "rsyncd.pid")) == proc.pid  # rsync itself, exec'd
        listed = ok("--remote-host", f"rsync://127.0.0.1:{port}", "list-remote-instances")
        assert listed.splitlines()[1:] == [f"  {A}"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert not daemon.answers("127.0.0.1", port)
    shutil.rmtree(state, ignore_errors=True)
