"""Mounting and serving: `mount()` (the CLI's), `serve()` and the fstab helper `fstab_main`.

`mount()` validates everything it can in the calling process (so mistakes reach the terminal as
one line and exit code 1), then serves in the foreground or forks a daemon (`lifecycle`).
`mount -t fuse.seqrepofs` (via /sbin/mount.fuse3, which runs `seqrepofs SRC MNT -o OPTS`) and
an fstab line work through the same path; `fstab_main` is the `mount.fuse.seqrepofs` helper.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable

from ..errors import SeqRepoError
from .lifecycle import (
    SIGNALS,
    check_fuse,
    check_mountpoint,
    check_source,
    daemonize,
    setup_logging,
    unmount,
    watch_signals,
)
from .mount_options import FSTYPE, MountError, MountOptions
from .tuning import bound_store_caches, cap_malloc_arenas

log = logging.getLogger("seqrepofs.fs")

__all__ = ["MountError", "MountOptions", "fstab_main", "mount", "serve", "unmount"]


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
    bound_store_caches()  # before the store opens
    try:
        src = open_source(source, opts.lazy_options())
    except SeqRepoError as exc:  # a snapshot URL that cannot be read: its one-line reason
        raise MountError(str(exc)) from None
    tree = Tree(src, mountpoint, opts.line_width, opts.list_index_files)
    ops = Operations(tree, opts.threads)
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
        await nursery.start(watch_signals)
        await pyfuse3.main(min_tasks=2, max_tasks=max(8, 4 * opts.threads))
        nursery.cancel_scope.cancel()


def mount(source: str, mountpoint: str, opts: MountOptions) -> int:
    """Check, then serve in the foreground or as a daemon; returns the exit code."""
    src = check_source(source, opts.cache_dir, opts.http_timeout)
    mnt = check_mountpoint(mountpoint, opts.force)
    check_fuse()
    if opts.foreground:
        setup_logging(opts, daemon=False)
        return serve(src, mnt, opts)
    return daemonize(opts, lambda ready: serve(src, mnt, opts, ready))


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
