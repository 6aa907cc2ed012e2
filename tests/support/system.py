"""Facilities of the machine the tests use: a small tmpfs that fills up, a free TCP port on
127.0.0.1, a process's resident memory."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (a server may still lose a race)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def vm_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


@contextlib.contextmanager
def small_tmpfs(size: str = "3m") -> Iterator[Path]:
    """A tmpfs of `size` mounted on a new directory, unmounted and removed afterwards."""
    mnt = Path(tempfile.mkdtemp(prefix="seqrepofs-full-"))
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(mnt)],
        check=True,
        capture_output=True,
    )
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, check=False)
        with contextlib.suppress(OSError):
            os.rmdir(mnt)


def resize_tmpfs(mnt: Path, size: str) -> None:
    subprocess.run(
        ["mount", "-o", f"remount,size={size}", str(mnt)], check=True, capture_output=True
    )


def tmpfs_skip_reason() -> str | None:
    """Why a test cannot mount a tmpfs here, or None."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    mnt = tempfile.mkdtemp(prefix="seqrepofs-probe-")
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt], capture_output=True, check=False
    )
    if proc.returncode == 0:
        subprocess.run(["umount", mnt], capture_output=True, check=False)
    os.rmdir(mnt)
    return None if proc.returncode == 0 else "mount -t tmpfs failed (no CAP_SYS_ADMIN?)"
