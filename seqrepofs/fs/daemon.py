"""Mount lifecycle: checks, options, daemonising, signals, unmounting, the fstab helper.

`mount()` validates everything it can in the calling process (so mistakes reach the terminal as
one line and exit code 1), then forks: the child mounts and serves, the parent waits on a pipe
until the mount is live or the child failed, and exits accordingly. `mount -t fuse.seqrepofs`
(via /sbin/mount.fuse3, which runs `seqrepofs SRC MNT -o OPTS`) and an fstab line work through
the same path; `fstab_main` is the `mount.fuse.seqrepofs` helper entry point.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import logging
import logging.handlers
import os
import shutil
import signal
import subprocess
import sys
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..errors import SeqRepoError

log = logging.getLogger("seqrepofs.fs")

FSTYPE = "fuse.seqrepofs"
SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
CAP_SYS_ADMIN = 21
# Options only mount(8)/fstab understand; libfuse would reject them.
_MOUNT_ONLY = {
    "defaults", "auto", "noauto", "nofail", "user", "users", "owner", "group", "_netdev",
    "nobootwait", "drop_privileges", "ro",
}  # fmt: skip
_MOUNT_ONLY_PREFIXES = ("x-", "comment=", "setuid=")


class MountError(SeqRepoError):
    """Mounting or unmounting cannot proceed; the message says why in one line."""


@dataclass
class MountOptions:
    foreground: bool = False
    allow_other: bool = False
    allow_root: bool = False
    line_width: int = 60
    threads: int = 4
    force: bool = False
    log_file: str | None = None
    fuse: list[str] = field(default_factory=list)  # passed to libfuse unchanged

    def parse(self, option_lists: Iterable[str]) -> MountOptions:
        """Apply `-o a,b=c` strings: our own options, fstab-only ones dropped, rest to libfuse."""
        for text in option_lists:
            for opt in filter(None, (o.strip() for o in text.split(","))):
                name, _, value = opt.partition("=")
                if name in ("line_width", "width"):
                    self.line_width = _positive_int(opt, value)
                elif name == "threads":
                    self.threads = _positive_int(opt, value)
                elif name == "log_file":
                    self.log_file = value or None
                elif opt == "allow_other":
                    self.allow_other = True
                elif opt == "allow_root":
                    self.allow_root = True
                elif opt == "rw":
                    log.warning("seqrepofs is read-only: ignoring option 'rw'")
                elif opt in _MOUNT_ONLY or opt.startswith(_MOUNT_ONLY_PREFIXES):
                    continue
                else:
                    self.fuse.append(opt)
        if self.allow_other and self.allow_root:
            raise MountError("options allow_other and allow_root exclude each other")
        return self

    def fuse_options(self, source: str) -> set[str]:
        opts = {
            "ro",
            "default_permissions",  # the kernel checks our 0444/0555 modes
            f"fsname={_fsname(source)}",
            f"subtype={FSTYPE.split('.', 1)[1]}",
            *self.fuse,
        }
        if self.allow_other:
            opts.add("allow_other")
        if self.allow_root:
            opts.add("allow_root")
        return opts


def _positive_int(opt: str, value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise MountError(f"option {opt!r}: expected a positive integer")
    return n


def _fsname(source: str) -> str:
    """The source as /proc/mounts shows it; libfuse splits options at unescaped commas."""
    if not source.isascii():
        source = urllib.parse.quote(source, safe="/ ")
    return source.replace("\\", "\\\\").replace(",", "\\,")


# ---- checks ---------------------------------------------------------------------------------
def check_source(source: str) -> str:
    """The real path of an instance or root directory, or MountError saying what it is not."""
    from ..store.instances import is_instance
    from .source import is_root

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


# ---- serving --------------------------------------------------------------------------------
MALLOC_ARENAS = 2  # glibc malloc arenas the daemon may use (see cap_malloc_arenas)
_M_ARENA_MAX = -8  # glibc's mallopt() parameter number for that cap


def cap_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Let glibc's malloc use at most `arenas` arenas in this process; False where it cannot.

    Why: glibc gives each new thread an arena of its own (up to 8 per core), and the daemon's
    threads (trio's, the inflate pool's, the worker pool's) each allocate and free inflated
    blocks. Freed blocks stay in the arena of the thread that allocated them, so every arena
    keeps its share of the block cache's churn. Measured: with every read on the worker
    threads, a `samtools faidx` + `bedtools getfasta` session peaked at 143 MB, 131-136 MB with
    two arenas; cold `cat` and cold faidx times did not change beyond the noise (the threads
    mostly take turns holding the GIL, so they hardly contend for malloc).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # a C library without mallopt
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, arenas))


def serve(
    source: str, mountpoint: str, opts: MountOptions, ready: Callable[[], None] | None = None
) -> int:
    """Mount and serve until unmounted or signalled; returns the exit code.

    Signals are blocked from before the mount until the trio signal receiver exists, so a
    SIGTERM can never kill the daemon without unmounting.
    """
    import pyfuse3
    import trio

    from .ops import Operations
    from .source import open_source
    from .tree import Tree

    cap_malloc_arenas()  # before the daemon starts its threads
    ops = Operations(Tree(open_source(source), mountpoint, opts.line_width), opts.threads)
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        try:
            pyfuse3.init(ops, mountpoint, opts.fuse_options(source))
        except RuntimeError as exc:
            raise MountError(
                f"{mountpoint}: FUSE mount failed ({exc}); libfuse's reason is printed above"
            ) from None
        try:
            log.info("mounted %s on %s", source, mountpoint)
            if ready is not None:
                ready()
            trio.run(_main, opts)
        finally:
            signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
            pyfuse3.close(unmount=True)
            log.info("unmounted %s", mountpoint)
    finally:
        ops.close()
    return 0


async def _main(opts: MountOptions) -> None:
    import pyfuse3
    import trio

    async with trio.open_nursery() as nursery:
        await nursery.start(_watch_signals)
        await pyfuse3.main(min_tasks=2, max_tasks=max(8, 4 * opts.threads))
        nursery.cancel_scope.cancel()


async def _watch_signals(task_status: object) -> None:
    """First SIGTERM/SIGINT/SIGHUP ends the main loop (then serve() unmounts); later ones wait."""
    import pyfuse3
    import trio

    with trio.open_signal_receiver(*SIGNALS) as signals:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
        task_status.started()  # type: ignore[attr-defined]
        terminated = False
        async for signum in signals:
            if not terminated:
                log.info("%s: unmounting", signal.Signals(signum).name)
                pyfuse3.terminate()
                terminated = True


def _setup_logging(opts: MountOptions, daemon: bool) -> None:
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


def mount(source: str, mountpoint: str, opts: MountOptions) -> int:
    """Check, then serve in the foreground or as a daemon; returns the exit code."""
    src = check_source(source)
    mnt = check_mountpoint(mountpoint, opts.force)
    check_fuse()
    if opts.foreground:
        _setup_logging(opts, daemon=False)
        return serve(src, mnt, opts)
    return _daemonize(src, mnt, opts)


def _daemonize(source: str, mountpoint: str, opts: MountOptions) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: detach, mount, report, serve
        os.close(rfd)
        code = 1
        try:
            os.setsid()
            _setup_logging(opts, daemon=True)
            code = serve(source, mountpoint, opts, ready=lambda: _detach(wfd))
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


# ---- mount(8) helper ------------------------------------------------------------------------
def fstab_main(argv: list[str] | None = None) -> int:
    """`mount.fuse.seqrepofs SRC MNT [-o OPTS]`: the helper convention of mount(8)/fstab.

    mount(8) may add -n/-s/-v/-N NS/-t TYPE; -f means "fake" there (do nothing). The daemon is
    always backgrounded, as mount(8) waits for its helper.
    """
    parser = argparse.ArgumentParser(prog="mount.fuse.seqrepofs")
    parser.add_argument("source")
    parser.add_argument("mountpoint")
    parser.add_argument("-o", dest="options", action="append", default=[])
    parser.add_argument("-t", dest="type", default=FSTYPE)
    parser.add_argument("-N", dest="namespace")
    for flag in ("-n", "-s", "-v"):
        parser.add_argument(flag, action="store_true")
    parser.add_argument("-f", dest="fake", action="store_true")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    if args.fake:
        return 0
    try:
        return mount(args.source, args.mountpoint, MountOptions().parse(args.options))
    except MountError as exc:
        print(f"mount.fuse.seqrepofs: error: {exc}", file=sys.stderr)
        return 1
