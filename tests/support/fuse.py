"""Real mounts: why they cannot run here, a daemon serving a source, and errno helpers."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.cli import checkout_env, seqrepofs_cmd, stop_process

MOUNT_TIMEOUT = 20.0


def fuse_skip_reason() -> str | None:
    """Why real mounts cannot run here, or None."""
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is absent"
    helper = shutil.which("fusermount3")
    if helper is None:
        return "fusermount3 is not installed"
    if os.geteuid() != 0 and not os.stat(helper).st_mode & 0o4000:
        return "fusermount3 is not setuid root and we are not root"
    if os.geteuid() == 0:
        try:
            os.close(os.open("/dev/fuse", os.O_RDWR))
        except OSError as exc:
            return f"/dev/fuse cannot be opened: {exc.strerror}"
    return None


needs_fuse = pytest.mark.skipif(fuse_skip_reason() is not None, reason=str(fuse_skip_reason()))


def errno_of(fn: Callable[..., object], *args: object) -> int:
    """The errno `fn(*args)` fails with; 0 if it succeeds."""
    try:
        fn(*args)
    except OSError as exc:
        return exc.errno or 0
    return 0


def errno_name(fn: Callable[..., object], *args: object) -> str:
    """The errno name (EROFS, ...) `fn(*args)` fails with; "ok" if it succeeds."""
    code = errno_of(fn, *args)
    return errno.errorcode[code] if code else "ok"


def fuse_errno(handler: Callable[..., Any], *args: object) -> int:
    """The errno of the FUSEError an Operations handler raises, called in-process under trio;
    0 if it returns."""
    import pyfuse3
    import trio

    async def call() -> int:
        try:
            await handler(*args)
        except pyfuse3.FUSEError as exc:
            return exc.errno
        return 0

    return trio.run(call)


def eventually(check: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Whether `check()` holds within `timeout` s (an OSError counts as not yet): a mount
    catches up with its source after its caches expire."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except OSError:
            pass
        time.sleep(interval)
    return False


def force_unmount(mnt: str | os.PathLike[str]) -> None:
    """Detach a mount lazily (never hangs); nothing happens if it is not mounted."""
    subprocess.run(["fusermount3", "-u", "-z", os.fspath(mnt)], capture_output=True, check=False)


def wait_mounted(mnt: str, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Return once `mnt` is a mount point; fail if `proc` (its daemon) exits first."""
    deadline = time.monotonic() + MOUNT_TIMEOUT
    while time.monotonic() < deadline:
        if os.path.ismount(mnt):
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"mount daemon exited with {proc.returncode} before mounting")
        time.sleep(0.05)
    raise TimeoutError(f"{mnt} not mounted after {MOUNT_TIMEOUT} s")


class Mounted:
    """A foreground daemon serving `src` at `mnt`; its stderr is kept in `log_path`."""

    def __init__(self, src: str | os.PathLike[str], mnt: str | os.PathLike[str], *args: str):
        self.src, self.mnt, self.args = os.fspath(src), os.fspath(mnt), args
        self.log_path = Path(self.mnt + ".log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Mounted:
        os.makedirs(self.mnt, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                seqrepofs_cmd("mount", self.src, self.mnt, "-f", *self.args),
                stderr=log,
                env=checkout_env(),
            )
        try:
            wait_mounted(self.mnt, self.proc)
        except BaseException:
            self.stop()
            raise RuntimeError(f"mount failed: {self.log}") from None
        return self

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> int | None:
        """Unmount (lazily, so it never hangs) and reap the daemon; returns its exit code."""
        force_unmount(self.mnt)
        return None if self.proc is None else stop_process(self.proc)

    def __enter__(self) -> Mounted:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
