"""Mount lifecycle: preflight checks, mount state, unmounting, daemonising, logging, signals.

Everything here runs around the filesystem, never inside a request: checks explain in one line
why a mount cannot work, `daemonize` forks the serving child and waits until the mount is live,
and `watch_signals` turns SIGTERM/SIGINT/SIGHUP into an orderly unmount.
"""

from __future__ import annotations

import errno
import logging
import logging.handlers
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from .mount_options import MountError, MountOptions

if TYPE_CHECKING:
    import trio

log = logging.getLogger("seqrepofs.fs")

SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
CAP_SYS_ADMIN = 21


# ---- checks ---------------------------------------------------------------------------------
def check_source(
    source: str, cache_dir: str | None = None, http_timeout: float | None = None
) -> str:
    """The real path of an instance or root directory, or MountError saying what it is not.
    A published snapshot's URL gives its instance URL (`latest` resolved now, once), after its
    manifest is read and kept in the cache directory, where the daemon finds it."""
    from ..errors import SeqRepoError
    from ..seqrepo import is_snapshot_url
    from ..store.instances import is_instance
    from .source import is_root

    if is_snapshot_url(source):
        from ..lazy.snapshot import load_manifest

        try:
            return load_manifest(source, cache_dir, http_timeout)[0]
        except SeqRepoError as exc:
            raise MountError(str(exc)) from None
    path = os.path.realpath(source)
    if not os.path.exists(path):
        raise MountError(f"{source}: source does not exist")
    if not os.path.isdir(path):
        raise MountError(f"{source}: source is not a directory")
    if not (is_instance(path) or is_root(path)):
        raise MountError(
            f"{source}: not a SeqRepo instance (aliases.sqlite3 + sequences/db.sqlite3) or root "
            "(master/ or YYYY-MM-DD/ instances)"
        )
    return path


def mount_state(path: str) -> str:
    """'absent', 'notdir', 'stale' (dead FUSE daemon), 'mounted' or 'free'.

    stat() alone can succeed on a dead FUSE mount (the kernel caches the root's attributes),
    so a mount point is also asked for statfs, which always reaches the daemon.
    """
    try:
        os.stat(path)
        if not os.path.isdir(path):
            return "notdir"
        if not os.path.ismount(path):
            return "free"
        os.statvfs(path)
    except FileNotFoundError:
        return "absent"
    except OSError as exc:
        if exc.errno in (errno.ENOTCONN, errno.ECONNABORTED):
            return "stale"
        raise MountError(f"{path}: {exc.strerror}") from None
    return "mounted"


def mount_info(path: str) -> tuple[str, str] | None:
    """(fstype, source) of the mount at `path`, from /proc/self/mountinfo (last one wins)."""
    target = os.path.abspath(path)
    found = None
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as fh:
            for line in fh:
                left, _, right = line.partition(" - ")
                fields, rfields = left.split(), right.split()
                if len(fields) > 4 and len(rfields) > 1 and _unescape(fields[4]) == target:
                    found = (rfields[0], _unescape(rfields[1]))
    except OSError:
        return None
    return found


def _unescape(text: str) -> str:
    return text.encode("latin-1", "surrogateescape").decode("unicode_escape")


def check_mountpoint(mountpoint: str, force: bool) -> str:
    path = os.path.abspath(mountpoint)
    state = mount_state(path)
    if state == "stale":
        if not force:
            raise MountError(
                f"{mountpoint}: stale mount point (transport endpoint is not connected): the "
                "daemon that served it died; run `seqrepofs umount "
                f"{mountpoint}` or mount again with --force"
            )
        log.warning("%s: lazily unmounting a stale mount (--force)", path)
        _run_unmount(path, lazy=True)
        state = mount_state(path)
    if state == "absent":
        raise MountError(f"{mountpoint}: mount point does not exist")
    if state == "notdir":
        raise MountError(f"{mountpoint}: mount point is not a directory")
    if state == "stale":
        raise MountError(f"{mountpoint}: still a stale mount point after unmounting")
    if state == "mounted":
        info = mount_info(path)
        what = f" ({info[0]} from {info[1]})" if info else ""
        raise MountError(
            f"{mountpoint}: already a mount point{what}; unmount it first "
            f"(seqrepofs umount {mountpoint})"
        )
    return os.path.realpath(path)


def _effective_caps() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return None


def check_fuse() -> None:
    """Explain in one line why FUSE cannot work here (no /dev/fuse, no CAP_SYS_ADMIN…)."""
    if not os.path.exists("/dev/fuse"):
        raise MountError(
            "/dev/fuse is missing: FUSE is not available (load the fuse module; in a container "
            "add --device /dev/fuse --cap-add SYS_ADMIN)"
        )
    if os.geteuid() == 0:
        caps = _effective_caps()
        if caps is not None and not caps >> CAP_SYS_ADMIN & 1:
            raise MountError(
                "mounting needs CAP_SYS_ADMIN, which this process lacks (in a container add "
                "--cap-add SYS_ADMIN)"
            )
        try:
            os.close(os.open("/dev/fuse", os.O_RDWR))
        except OSError as exc:
            raise MountError(
                f"cannot open /dev/fuse: {exc.strerror} (in a container add --device /dev/fuse)"
            ) from None
        return
    helper = shutil.which("fusermount3")
    if helper is None or not os.stat(helper).st_mode & 0o4000:
        raise MountError(
            "mounting as a normal user needs fusermount3 installed setuid root (package fuse3)"
        )


# ---- unmounting -----------------------------------------------------------------------------
def _run_unmount(path: str, lazy: bool) -> None:
    """fusermount3 -u [-z]; as root fall back to umount [-l]. MountError with the reason."""
    errors = []
    commands = []
    if shutil.which("fusermount3"):
        commands.append(["fusermount3", "-u", *(["-z"] if lazy else []), path])
    if os.geteuid() == 0 and shutil.which("umount"):
        commands.append(["umount", *(["-l"] if lazy else []), path])
    for cmd in commands:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode == 0:
            return
        errors.append(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else cmd[0])
    raise MountError(f"{path}: cannot unmount: {'; '.join(errors) or 'no fusermount3/umount'}")


def unmount(mountpoint: str, lazy: bool = False) -> None:
    path = os.path.abspath(mountpoint)
    state = mount_state(path)
    if state in ("absent", "notdir", "free"):
        raise MountError(f"{mountpoint}: not mounted")
    if state == "mounted":
        info = mount_info(path)
        if info is not None and not info[0].startswith("fuse"):
            raise MountError(f"{mountpoint}: a {info[0]} mount, not seqrepofs; use umount(8)")
    _run_unmount(path, lazy)


# ---- daemonising, logging, signals --------------------------------------------------------
def daemonize(opts: MountOptions, serve: Callable[[Callable[[], None]], int]) -> int:
    """Fork; the child detaches and runs `serve(ready)`; the parent waits until the child
    calls `ready` (the mount is live: exit 0) or fails (MountError with its one-line reason)."""
    sys.stdout.flush()
    sys.stderr.flush()
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: detach, mount, report, serve
        os.close(rfd)
        code = 1
        try:
            os.setsid()
            setup_logging(opts, daemon=True)
            code = serve(lambda: _detach(wfd))
        except BaseException as exc:  # noqa: BLE001 - report whatever stopped the mount
            what = str(exc) if isinstance(exc, MountError) else f"{type(exc).__name__}: {exc}"
            _report(wfd, what)
            log.exception("daemon failed")
        finally:
            os._exit(code)
    os.close(wfd)
    chunks = []
    while chunk := os.read(rfd, 65536):
        chunks.append(chunk)
    os.close(rfd)
    message = b"".join(chunks).decode("utf-8", "replace")
    if message == "OK":
        return 0
    _pid, status = os.waitpid(pid, 0)
    if not message:
        message = f"the filesystem daemon exited before mounting (status {status})"
    raise MountError(message)


def _report(fd: int, message: str) -> None:
    try:
        os.write(fd, message.encode("utf-8", "replace"))
        os.close(fd)
    except OSError:
        pass


def _detach(wfd: int) -> None:
    """The mount is live: release the waiting parent and leave the terminal."""
    _report(wfd, "OK")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    os.chdir("/")


def setup_logging(opts: MountOptions, daemon: bool) -> None:
    """Foreground: stderr (set up by the CLI). Daemon: --log-file, else syslog if present."""
    handler: logging.Handler | None = None
    if opts.log_file:
        handler = logging.FileHandler(opts.log_file)
    elif daemon and os.path.exists("/dev/log"):
        handler = logging.handlers.SysLogHandler("/dev/log")
        handler.setFormatter(logging.Formatter("seqrepofs[%(process)d]: %(message)s"))
    if handler is not None:
        if not isinstance(handler, logging.handlers.SysLogHandler):
            handler.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
            )
        logger = logging.getLogger("seqrepofs")
        logger.addHandler(handler)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)


async def watch_signals(task_status: trio.TaskStatus[None]) -> None:
    """First SIGTERM/SIGINT/SIGHUP ends the main loop (then serve() unmounts); later ones wait."""
    import pyfuse3
    import trio

    with trio.open_signal_receiver(*SIGNALS) as signals:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
        task_status.started()
        terminated = False
        async for signum in signals:
            if not terminated:
                log.info("%s: unmounting", signal.Signals(signum).name)
                pyfuse3.terminate()
                terminated = True
