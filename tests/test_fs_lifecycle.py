"""Mount lifecycle with real mounts: daemon/foreground, umount, signals, busy and stale mount
points, bad sources, the mount(8)/fstab helper conventions, and mounting a root of snapshots."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support.cli import run_seqrepofs
from support.data import SNAPSHOT, build_root, real_instance
from support.fuse import Mounted, eventually, force_unmount, needs_fuse, wait_mounted

from seqrepofs.seqrepo import SeqRepo
from seqrepofs.store.instances import snapshot, update_latest

pytestmark = [needs_fuse, pytest.mark.fuse, pytest.mark.timeout(60)]

FASTA = "refseq/NM_001304430.2.fa"


@pytest.fixture
def src() -> Path:
    return real_instance("seqrepo-rs-2023")


@pytest.fixture
def mnt(tmp_path: Path):
    path = tmp_path / "mnt"
    path.mkdir()
    yield path
    force_unmount(path)
    force_unmount(path)  # a test may stack a second mount on a stale one


def _mount_line(mnt: Path) -> str:
    target = str(mnt).replace(" ", "\\040")
    lines = [ln for ln in Path("/proc/mounts").read_text().splitlines() if ln.split()[1] == target]
    return lines[-1] if lines else ""


def _daemon_pids(mnt: Path) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if str(mnt).encode() in cmd and b"mount" in cmd:
                pids.append(int(entry))
    return pids


def test_daemon_mount_then_umount(src: Path, mnt: Path) -> None:
    proc = run_seqrepofs("mount", str(src), str(mnt))
    assert proc.returncode == 0, proc.stderr
    assert os.path.ismount(mnt)  # the parent returned only once the mount was live
    line = _mount_line(mnt)
    assert line.split()[:3] == [str(src.resolve()), str(mnt), "fuse.seqrepofs"]
    assert "ro" in line.split()[3].split(",")
    assert (mnt / FASTA).read_bytes().startswith(b">NM_001304430.2\n")
    proc = run_seqrepofs("umount", str(mnt))
    assert proc.returncode == 0, proc.stderr
    assert not os.path.ismount(mnt)
    assert eventually(lambda: not _daemon_pids(mnt), 10), "the daemon did not exit after umount"
    again = run_seqrepofs("umount", str(mnt))
    assert again.returncode == 1 and "not mounted" in again.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_unmounts_cleanly(src: Path, mnt: Path, signum: int) -> None:
    m = Mounted(src, mnt).start()
    try:
        assert (mnt / FASTA).stat().st_size > 0
        m.proc.send_signal(signum)
        assert m.proc.wait(15) == 0, m.log
        assert not os.path.ismount(mnt)
    finally:
        m.stop()


def test_fusermount_unmount_ends_foreground_daemon_with_0(src: Path, mnt: Path) -> None:
    m = Mounted(src, mnt).start()
    try:
        subprocess.run(["fusermount3", "-u", str(mnt)], check=True)
        assert m.proc.wait(15) == 0, m.log
    finally:
        m.stop()


def test_second_mount_on_busy_mountpoint(src: Path, mnt: Path) -> None:
    with Mounted(src, mnt):
        proc = run_seqrepofs("mount", str(src), str(mnt))
        assert proc.returncode == 1
        assert "already a mount point" in proc.stderr and "fuse.seqrepofs" in proc.stderr
        assert proc.stderr.count("\n") == 1  # one line, no traceback
        assert os.listdir(mnt)  # the first mount is untouched


def test_missing_or_bad_source(tmp_path: Path, mnt: Path) -> None:
    proc = run_seqrepofs("mount", str(tmp_path / "nope"), str(mnt))
    assert proc.returncode == 1 and "source does not exist" in proc.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_seqrepofs("mount", str(empty), str(mnt))
    assert proc.returncode == 1 and "not a SeqRepo instance" in proc.stderr
    assert not os.path.ismount(mnt)


def test_missing_mountpoint(src: Path, tmp_path: Path) -> None:
    proc = run_seqrepofs("mount", str(src), str(tmp_path / "nope"))
    assert proc.returncode == 1 and "mount point does not exist" in proc.stderr


def test_stale_mountpoint_detected_and_forced(src: Path, mnt: Path) -> None:
    m = Mounted(src, mnt).start()
    m.proc.kill()  # SIGKILL: no chance to unmount
    m.proc.wait(10)
    with pytest.raises(OSError):
        os.listdir(mnt)
    proc = run_seqrepofs("mount", str(src), str(mnt))
    assert proc.returncode == 1
    assert "stale mount point" in proc.stderr and "--force" in proc.stderr
    proc = run_seqrepofs("mount", "--force", str(src), str(mnt))
    assert proc.returncode == 0, proc.stderr
    assert (mnt / FASTA).read_bytes().startswith(b">NM_")
    assert run_seqrepofs("umount", str(mnt)).returncode == 0


def test_umount_of_a_stale_mountpoint(src: Path, mnt: Path) -> None:
    m = Mounted(src, mnt).start()
    m.proc.kill()
    m.proc.wait(10)
    proc = run_seqrepofs("umount", str(mnt))
    assert proc.returncode == 0, proc.stderr
    assert os.listdir(mnt) == []


def test_line_width_option(src: Path, mnt: Path) -> None:
    with Mounted(src, mnt, "--line-width", "7"):
        lines = (mnt / FASTA).read_text().splitlines()
        assert {len(x) for x in lines[1:-1]} == {7}
        row = (mnt / (FASTA + ".fai")).read_text().split("\t")
        assert row[3:] == ["7", "8\n"]
        out = subprocess.run(
            ["samtools", "faidx", str(mnt / FASTA), "NM_001304430.2:5-20"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert out.splitlines()[1] == "".join(lines[1:])[4:20]


# ---- the mount(8) / fstab conventions ---------------------------------------------------------
def test_helper_form_seqrepofs_src_mnt_o(src: Path, mnt: Path) -> None:
    """What /sbin/mount.fuse3 runs for `mount -t fuse.seqrepofs SRC MNT -o ro,allow_other`."""
    proc = run_seqrepofs(str(src), str(mnt), "-o", "ro,allow_other,dev,suid,nofail,line_width=70")
    assert proc.returncode == 0, proc.stderr
    assert "allow_other" in _mount_line(mnt)
    assert len((mnt / FASTA).read_text().splitlines()[1]) == 70
    assert run_seqrepofs("umount", str(mnt)).returncode == 0


def test_fstab_main_helper(src: Path, mnt: Path) -> None:
    """`mount.fuse.seqrepofs SRC MNT -o OPTS` (the pyproject console script)."""
    code = "import sys; from seqrepofs.fs.daemon import fstab_main; sys.exit(fstab_main())"
    cmd = [sys.executable, "-c", code, str(src), str(mnt), "-n", "-o", "ro,defaults,_netdev"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    assert _mount_line(mnt).split()[2] == "fuse.seqrepofs"
    assert run_seqrepofs("umount", str(mnt)).returncode == 0
    bad = subprocess.run(
        [sys.executable, "-c", code, "/nonexistent", str(mnt)], capture_output=True, text=True
    )
    assert bad.returncode == 1 and bad.stderr.startswith("mount.fuse.seqrepofs: error:")


def _console_script() -> Path | None:
    path = Path(sys.executable).parent / "seqrepofs"
    return path if path.exists() else None


@pytest.mark.skipif(os.geteuid() != 0, reason="mount(8) with a FUSE type needs root")
@pytest.mark.skipif(
    shutil.which("mount.fuse3", path="/sbin:/usr/sbin") is None, reason="no /sbin/mount.fuse3"
)
def test_real_mount_t_fuse_prog_hash_src(src: Path, mnt: Path) -> None:
    """mount(8) -> mount.fuse3 -> `seqrepofs SRC MNT -o …` (the old `prog#src` spelling names
    the program by absolute path, since mount.fuse3 runs it with a minimal PATH)."""
    script = _console_script()
    if script is None:
        pytest.skip("the seqrepofs console script is not installed next to this python")
    proc = subprocess.run(
        ["mount", "-t", "fuse", f"{script}#{src}", str(mnt), "-o", "ro,allow_other"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    wait_mounted(str(mnt))
    assert _mount_line(mnt).split()[2] == "fuse.seqrepofs"
    assert (mnt / FASTA).read_bytes().startswith(b">NM_")
    assert subprocess.run(["umount", str(mnt)], check=False).returncode == 0


NAMESPACE_SCRIPT = r"""
set -e
mount --bind "$BIN" /usr/local/sbin
mount -t fuse.seqrepofs "$SRC" "$MNT" -o ro,allow_other
grep " $MNT fuse.seqrepofs " /proc/mounts
head -c 16 "$MNT/refseq/NM_001304430.2.fa"
umount "$MNT"
printf '%s %s fuse.seqrepofs ro,nofail,line_width=70 0 0\n' "$SRC" "$MNT" > "$FSTAB"
mount -T "$FSTAB" "$MNT"
sed -n 2p "$MNT/refseq/NM_001304430.2.fa"
umount "$MNT"
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="mount(8) with a FUSE type needs root")
@pytest.mark.skipif(shutil.which("unshare") is None, reason="no unshare(1)")
@pytest.mark.skipif(
    shutil.which("mount.fuse3", path="/sbin:/usr/sbin") is None, reason="no /sbin/mount.fuse3"
)
def test_real_mount_t_fuse_seqrepofs_and_fstab(src: Path, mnt: Path, tmp_path: Path) -> None:
    """`mount -t fuse.seqrepofs SRC MNT -o …` and an fstab line, through mount(8) and
    /sbin/mount.fuse3, which runs `seqrepofs SRC MNT -o …` with a fixed PATH. In a private
    mount namespace a temporary `seqrepofs` is bind-mounted onto /usr/local/sbin, so the host
    is untouched."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "seqrepofs").write_text(f'#!/bin/sh\nexec {sys.executable} -m seqrepofs "$@"\n')
    (bindir / "seqrepofs").chmod(0o755)
    env = dict(os.environ, BIN=str(bindir), SRC=str(src), MNT=str(mnt), FSTAB=str(tmp_path / "f"))
    proc = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", NAMESPACE_SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    if proc.returncode and "unshare failed" in proc.stderr:
        pytest.skip(f"no private mount namespace here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "fuse.seqrepofs" in lines[0] and "allow_other" in lines[0]
    assert lines[1] == ">NM_001304430.2"
    assert len(lines[2]) == 70  # line_width=70 from the fstab line
    assert not _mount_line(mnt)


# ---- a mounted root -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("root")
    build_root(path, n=20)
    return path


def test_root_mount_latest_and_new_snapshots(root: Path, mnt: Path) -> None:
    with Mounted(root, mnt):
        assert sorted(os.listdir(mnt)) == [SNAPSHOT, "latest", "master"]
        assert os.readlink(mnt / "latest") == SNAPSHOT
        assert os.path.realpath(mnt / "latest") == str(mnt / SNAPSHOT)  # resolves inside
        via_latest = (mnt / "latest" / "refseq" / "NC_000001.1.fa").read_bytes()
        assert via_latest == (mnt / SNAPSHOT / "refseq" / "NC_000001.1.fa").read_bytes()
        # samtools dict writes the resolved path as UR, as the served .dict does
        dict_out = subprocess.run(
            ["samtools", "dict", str(mnt / "latest" / "refseq" / "NC_000001.1.fa")],
            capture_output=True,
            check=True,
        ).stdout
        assert dict_out == (mnt / "latest" / "refseq" / "NC_000001.1.dict").read_bytes()

        # a sequence stored in master later, then frozen in a new snapshot
        sr = SeqRepo(root / "master", writeable=True)
        sr.store("ACGTACGTTT", [{"namespace": "refseq", "alias": "NEW_1.1"}])
        sr.close()
        assert eventually(lambda: (mnt / "master" / "refseq" / "NEW_1.1.fa").exists(), 5)
        snapshot(str(root), "master", "2025-06-01")
        update_latest(str(root))
        assert eventually(lambda: "2025-06-01" in os.listdir(mnt), 5)
        assert eventually(lambda: os.readlink(mnt / "latest") == "2025-06-01", 5)
        new = mnt / "latest" / "refseq" / "NEW_1.1.fa"
        assert eventually(new.exists, 5)
        assert new.read_bytes() == b">NEW_1.1\nACGTACGTTT\n"
        assert not (mnt / SNAPSHOT / "refseq" / "NEW_1.1.fa").exists()
