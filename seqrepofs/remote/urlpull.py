"""Pull one snapshot from a published root over HTTP(S), S3 or file:// (no rsync).

Plan from the manifest: files whose SHA-256 a local snapshot already has become hardlinks,
databases are rebuilt from the newest local copy plus the changed chunks, everything else is
downloaded, `--jobs` at a time. All of it goes into `<root>/<instance>.<random>` (the same
locked, resumable temporary directory as an rsync pull) and is renamed into place once every
byte has been checked; the manifest is then kept beside the snapshot for the next pull.
"""

from __future__ import annotations

import hashlib
import os
import stat
import sys
import threading
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from ..store import instances
from . import tempdir
from .errors import InterruptedTransferError, RemoteError, RemoteInputError
from .fetch import (
    PART,
    SINGLE_RANGE_FACTOR,
    SPLIT_MIN,
    Counter,
    Job,
    local_io,
    run_job,
    run_parallel,
)
from .localfiles import LocalFiles, file_size, save_local_manifest
from .manifest import Manifest
from .retry import Retry
from .sources import Source, open_source


@dataclass(frozen=True)
class UrlPullOptions:
    jobs: int = 4
    dry_run: bool = False
    progress: bool | None = None  # None: when stderr is a terminal
    endpoint_url: str | None = None
    retry: Retry = field(default_factory=Retry)


@dataclass
class Plan:
    """What a pull of one manifest needs to do, given what is local."""

    manifest: Manifest
    done: list[str] = field(default_factory=list)  # already complete in a resumed temp dir
    links: list[tuple[str, str]] = field(default_factory=list)  # (relpath, local file)
    jobs: list[Job] = field(default_factory=list)

    @property
    def bytes_to_fetch(self) -> int:
        return sum(j.bytes_to_fetch() for j in self.jobs)


@dataclass
class UrlPullResult:
    instance: str
    path: str
    status: str  # "pulled", "exists" or "dry-run"
    plan: Plan | None = None
    received: int = 0
    resumed_from: str | None = None


def list_instances_at(url: str, endpoint_url: str | None = None) -> list[str]:
    with open_source(url, endpoint_url=endpoint_url) as source:
        return source.index().names


def pull_url(
    root: str,
    url: str,
    instance: str | None = None,
    *,
    update_latest: bool = False,
    options: UrlPullOptions | None = None,
) -> UrlPullResult:
    """Pull `instance` (default: the one the root's `latest` names) from `url` into `root`."""
    try:
        return _pull_url(root, url, instance, update_latest, options or UrlPullOptions())
    except KeyboardInterrupt:
        raise InterruptedTransferError(
            "interrupted; a pull again resumes what was fetched"
        ) from None


def _pull_url(
    root: str, url: str, instance: str | None, update_latest: bool, opts: UrlPullOptions
) -> UrlPullResult:
    if opts.jobs < 1:
        raise RemoteInputError("--jobs must be at least 1")
    root = os.path.abspath(root)
    cancel = threading.Event()
    retry = replace(opts.retry, cancel=cancel)
    # up to `jobs` files at a time, each database's changed chunks `jobs` requests at a time
    # (SINGLE_RANGE_FACTOR times more where a request carries one range)
    pool = opts.jobs * (opts.jobs * SINGLE_RANGE_FACTOR + 1)
    with open_source(url, endpoint_url=opts.endpoint_url, retry=retry, connections=pool) as src:
        index = src.index()
        name = instance or src.latest()
        if name not in index.snapshots:
            shown = ", ".join(index.names[-5:]) or "none"
            raise RemoteError(f"{name!r} is not a snapshot at {src.url} (newest there: {shown})")
        if not instances.REMOTE_SNAPSHOT_RE.match(name):
            raise RemoteError(f"{src.url}: {name!r} is not a snapshot name (YYYY-MM-DD)")
        final = os.path.join(root, name)
        if os.path.lexists(final):
            if update_latest and not opts.dry_run:
                instances.update_latest(root, name)
            return UrlPullResult(name, final, "exists")
        manifest = src.manifest(name, index.snapshots[name])
        local = LocalFiles(root, exclude=name)
        if opts.dry_run:
            leftover = tempdir.leftovers(root, name)
            dest = leftover[-1] if leftover else final
            plan = make_plan(manifest, local, dest, opts.jobs, src.multirange)
            return UrlPullResult(name, final, "dry-run", plan)
        os.makedirs(root, exist_ok=True)
        with tempdir.claim(root, name, content_id(manifest)) as pull_dir:
            plan = make_plan(manifest, local, pull_dir.path, opts.jobs, src.multirange)
            received = execute(plan, src, pull_dir.path, opts, retry, cancel)
            _freeze(pull_dir.path)
            save_local_manifest(root, manifest)
            pull_dir.publish(final)
            os.chmod(final, stat.S_IMODE(os.stat(final).st_mode) & ~0o222)
    if update_latest:
        instances.update_latest(root, name)
    resumed = pull_dir.path if pull_dir.resumed else None
    return UrlPullResult(name, final, "pulled", plan, received, resumed)


def content_id(manifest: Manifest) -> str:
    """What a leftover temporary directory is resumable for: this snapshot's exact content,
    from whichever server or mirror (every byte is checked against the manifest anyway)."""
    listing = "\n".join(f"{f.path}\t{f.size}\t{f.sha256}" for f in manifest.files)
    return f"manifest:{manifest.instance}:{hashlib.sha256(listing.encode()).hexdigest()}"


def make_plan(
    manifest: Manifest, local: LocalFiles, dest: str, jobs: int = 4, multirange: bool = True
) -> Plan:
    """Sort every file of the manifest into done / hardlink / fetch / rebuild-from-chunks
    (`multirange`: whether the source takes many ranges per request, for the byte counts)."""
    plan = Plan(manifest)
    for entry in manifest.files:
        target = os.path.join(dest, *entry.path.split("/"))
        if file_size(target) == entry.size:
            plan.done.append(entry.path)
            continue
        key = f"{manifest.instance}/{entry.path}"
        found = local.find(entry)
        if found is not None:
            plan.links.append((entry.path, found))
            continue
        job = Job(entry, key, target, parallel=jobs, multirange=multirange)
        base = local.newest_copy(entry.path) if entry.chunks else None
        if base is not None:
            job.base = base
            job.chunk_size = manifest.chunk_size
            job.base_chunks = {d: i for i, d in enumerate(local.chunks_of(base, job.chunk_size))}
        elif entry.chunks and entry.size >= SPLIT_MIN:
            job.chunk_size = manifest.chunk_size  # first pull of a large database: in pieces
        plan.jobs.append(job)
    return plan


def execute(
    plan: Plan,
    source: Source,
    dest: str,
    opts: UrlPullOptions,
    retry: Retry,
    cancel: threading.Event,
) -> int:
    """Hardlink, then fetch with `opts.jobs` worker threads; bytes downloaded."""
    for rel, found in plan.links:
        target = os.path.join(dest, *rel.split("/"))
        with local_io(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if os.path.lexists(target):
                os.unlink(target)
            try:
                os.link(found, target)
            except OSError:  # another file system, or links not allowed: copy
                _copy(found, target)
    bar = _progress_bar(plan.bytes_to_fetch, opts.progress)
    counter = Counter(bar)
    try:
        ordered = sorted(plan.jobs, key=lambda j: -j.bytes_to_fetch())
        calls = [partial(run_job, job, source, retry, counter) for job in ordered]
        run_parallel(calls, opts.jobs, cancel)
    except KeyboardInterrupt:
        cancel.set()
        raise InterruptedTransferError(
            f"interrupted; partial data kept in {dest}; pull again to resume"
        ) from None
    except RemoteError as exc:
        cancel.set()
        raise type(exc)(f"{exc}; partial data kept in {dest}; pull again to resume") from None
    finally:
        if bar is not None:
            bar.close()
    _sweep(dest, {e.path for e in plan.manifest.files})
    return counter.total


def _progress_bar(total: int, wanted: bool | None) -> Any:
    if wanted is None:
        wanted = sys.stderr.isatty()
    if not wanted or total == 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc="pull")


def _sweep(dest: str, wanted: set[str]) -> None:
    """Remove leftovers of an earlier try (stale `.part` files) that the manifest does not list."""
    for dirpath, _dirs, files in os.walk(dest):
        for name in files:
            rel = os.path.relpath(os.path.join(dirpath, name), dest).replace(os.sep, "/")
            if rel != tempdir.MARKER and rel not in wanted and (name.endswith(PART) or "/" in rel):
                os.unlink(os.path.join(dirpath, name))


def _freeze(top: str) -> None:
    """Read-only like a snapshot made by `snapshot` (the top directory after its rename)."""
    for dirpath, _dirs, files in os.walk(top, topdown=False):
        for name in files:
            if name == tempdir.MARKER:
                continue
            path = os.path.join(dirpath, name)
            os.chmod(path, stat.S_IMODE(os.lstat(path).st_mode) & ~0o222)
        if dirpath != top:
            os.chmod(dirpath, stat.S_IMODE(os.stat(dirpath).st_mode) & ~0o222)


def _copy(src: str, dst: str) -> None:
    import shutil

    shutil.copyfile(src, dst)
    os.chmod(dst, 0o444)
