"""Pull one snapshot from an rsync server, transferring only files the newest local one lacks.

The reference's recipe: rsync `-rtH` (no -p/-o/-g, so permissions come from the receiving side)
into `<root>/<instance>.<random>` with `--link-dest` to the newest local snapshot, which makes
every unchanged sequence file a hardlink instead of a download, then one atomic rename.

One change to it, in two passes: the sequence files are immutable and uniquely named, so
rsync's quick check (same size and mtime) safely decides "unchanged, hardlink it". The
databases (the two of every instance, and `collections.sqlite3` where there is one) are not:
every snapshot has its own copy under the same name, and two snapshots made within the same
second can have equal sizes and mtimes but different content, which a single pass would
silently hardlink from the old snapshot. So the databases get a second pass with
`--ignore-times`, delta-transferred against the local copy (cheap) and never hardlinked.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
from dataclasses import dataclass, field
from typing import BinaryIO

from ..store import instances
from . import tempdir
from .endpoint import Endpoint
from .errors import RemoteError, RemoteInputError
from .listing import CONNECT_TIMEOUT, list_remote_instances
from .rsync import Rsync, RsyncStats, check, run_rsync

log = logging.getLogger(__name__)

DEFAULT_IO_TIMEOUT = 600
_BWLIMIT_RE = re.compile(r"^\d+(\.\d+)?[KMGkmg]?$")


@dataclass
class PullResult:
    """What a pull did. `status` is "pulled", "exists" (left untouched) or "dry-run".

    `stats` sums the rsync passes; `commands` are the rsync command lines that ran.
    """

    instance: str
    path: str
    status: str
    commands: list[list[str]] = field(default_factory=list)
    stats: RsyncStats | None = None
    link_dest: str | None = None
    resumed_from: str | None = None
    removed_stale: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PullOptions:
    """How to run rsync for a pull (the parts that do not depend on where data goes)."""

    dry_run: bool = False
    progress: BinaryIO | None = None
    bwlimit: str | None = None
    io_timeout: int = DEFAULT_IO_TIMEOUT


def pull(
    root: str,
    endpoint: Endpoint,
    rsync: Rsync,
    instance: str | None = None,
    *,
    update_latest: bool = False,
    options: PullOptions | None = None,
) -> PullResult:
    """Pull `instance` (default: the newest remote snapshot) into `root`.

    An instance that already exists locally is never touched. A failed or killed pull leaves
    only its temporary directory, which the next pull of the same instance resumes.
    """
    opts = options or PullOptions()
    if opts.bwlimit is not None and not _BWLIMIT_RE.match(opts.bwlimit):
        raise RemoteInputError(
            f"--bwlimit {opts.bwlimit!r}: give a rate such as 500 (KiB/s) or 20M"
        )
    root = os.path.abspath(root)
    name = choose_instance(list_remote_instances(endpoint, rsync), instance, endpoint)
    final = os.path.join(root, name)
    if os.path.lexists(final):
        if update_latest and not opts.dry_run:
            instances.update_latest(root, name)
        return PullResult(name, final, "exists")
    for path in tempdir.leftovers(root):
        if tempdir.snapshot_of(path) != name:
            log.warning(
                "unfinished pull in %s: pull its snapshot with -i to resume, or remove it", path
            )
    link_dest = newest_local_instance(root)
    source = endpoint.source(f"{name}/")

    if opts.dry_run:
        dest = (tempdir.leftovers(root, name) or [final])[-1]
        commands, stats = transfer(rsync, source, dest, link_dest, opts, f"dry run of {name}")
        return PullResult(name, final, "dry-run", commands, stats, link_dest)

    os.makedirs(root, exist_ok=True)
    with tempdir.claim(root, name, str(endpoint)) as pull_dir:
        commands, stats = transfer(
            rsync,
            source,
            pull_dir.path,
            link_dest,
            opts,
            f"pulling {name} from {endpoint}",
            hint=f"partial data kept in {pull_dir.path}; pull again to resume",
            lock_fd=pull_dir.lock_fd,
        )
        pull_dir.publish(final)
    if update_latest:
        instances.update_latest(root, name)
    resumed = pull_dir.path if pull_dir.resumed else None
    return PullResult(name, final, "pulled", commands, stats, link_dest, resumed, pull_dir.removed)


def transfer(
    rsync: Rsync,
    source: str,
    dest: str,
    link_dest: str | None,
    opts: PullOptions,
    what: str,
    *,
    hint: str = "",
    lock_fd: int | None = None,
) -> tuple[list[list[str]], RsyncStats]:
    """Run both rsync passes into `dest`; the command lines and the summed statistics.

    The lock fd is inherited by rsync, so the temporary directory stays locked for as long as
    any rsync writing into it is alive, even if this process is killed.
    """
    commands: list[list[str]] = []
    stats = RsyncStats()
    for args in pass_args(rsync, source, dest, link_dest, opts):
        log.info("running rsync %s", shlex.join(args))
        fds = () if lock_fd is None else (lock_fd,)
        run = check(run_rsync(rsync, args, echo=opts.progress, pass_fds=fds), what, hint)
        commands.append(run.args)
        stats = stats + run.stats
    return commands, stats


def pass_args(
    rsync: Rsync, source: str, dest: str, link_dest: str | None, opts: PullOptions
) -> list[list[str]]:
    """rsync arguments of the two passes: sequence files, then the databases.

    `--partial` keeps a file cut short by a normal interruption for the next run; `--delete`
    only ever acts inside our own temporary directory, where it sweeps rsync temporaries that a
    killed run left behind; the lock marker and the databases are excluded from the first pass,
    which also protects them from its deletion.
    """
    common = [
        "-rtH",
        "--partial",
        "--no-motd",
        "--stats",
        f"--contimeout={CONNECT_TIMEOUT}",
        f"--timeout={opts.io_timeout}",
    ]
    if opts.dry_run:
        common.append("--dry-run")
    if opts.progress is not None:
        common += ["--info=progress2", "--no-inc-recursive"] if rsync.has_info else ["--progress"]
    if opts.bwlimit:
        common.append(f"--bwlimit={opts.bwlimit}")
    ends = [source, dest.rstrip("/") + "/"]
    dbs = [f"/{rel}" for rel in (*instances.DB_FILES, *instances.OPTIONAL_DB_FILES)]
    files = [*common, "--delete", f"--exclude=/{tempdir.MARKER}"]
    files += [f"--exclude={db}" for db in dbs]
    databases = [*common, "--ignore-times", "--include=/sequences/"]
    databases += [f"--include={db}" for db in dbs] + ["--exclude=*"]
    if link_dest:
        files.append(f"--link-dest={link_dest}/")
        databases.append(f"--copy-dest={link_dest}/")
    return [files + ends, databases + ends]


def choose_instance(remote: list[str], wanted: str | None, endpoint: Endpoint) -> str:
    """`wanted` if the server has it, else the newest remote snapshot when none was asked for."""
    if not remote:
        raise RemoteError(f"{endpoint} offers no snapshots (no YYYY-MM-DD directories)")
    if wanted is None:
        return remote[-1]
    if wanted not in remote:
        shown = ", ".join(remote[-5:])
        raise RemoteError(f"{wanted!r} is not a snapshot on {endpoint} (newest there: {shown})")
    return wanted


def newest_local_instance(root: str) -> str | None:
    """Absolute path of the newest complete local snapshot, the `--link-dest` basis."""
    if not os.path.isdir(root):
        return None
    names = [n for n in instances.list_instances(root) if instances.is_instance(f"{root}/{n}")]
    return os.path.join(root, names[-1]) if names else None
