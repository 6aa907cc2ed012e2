"""`publish`: put local snapshots where plain HTTP or S3 readers can pull them.

Per snapshot, oldest first: the data files (a file whose SHA-256 an earlier published snapshot
already has is hardlinked / server-side copied, not uploaded), then its manifest, then the
index and `latest`. A reader therefore never finds a manifest whose files are missing, and a
re-run after an interruption skips every object already complete.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import NotASeqRepoError
from ..store import instances
from .errors import InterruptedTransferError, ManifestError, RemoteError, RemoteInputError
from .localfiles import save_local_manifest
from .manifest import (
    CHUNK_SIZE,
    INDEX_KEY,
    LATEST_KEY,
    DigestCache,
    Index,
    build,
    manifest_key,
    parse,
    parse_index,
)
from .retry import Transient
from .targets import Target, open_target


@dataclass
class Published:
    """What publishing one snapshot did."""

    instance: str
    status: str  # "published" or "already published"
    uploaded: int = 0
    uploaded_bytes: int = 0
    linked: int = 0  # hardlinked / server-side copied from an earlier snapshot
    kept: int = 0  # already complete from an interrupted run


def snapshots_to_publish(src: str, instance: str | None) -> tuple[str, list[str]]:
    """(root, snapshot names): SRC is one instance, or a root of dated snapshots."""
    src = os.path.realpath(src)
    if instances.is_instance(src):
        name = os.path.basename(src)
        if instance and instance != name:
            raise RemoteInputError(f"{src} is one instance ({name}); -i {instance} does not apply")
        names = [name]
        root = os.path.dirname(src)
    else:
        root = src
        found = [n for n in instances.list_instances(src) if instances.is_instance(f"{src}/{n}")]
        if instance:
            if instance not in found:
                raise NotASeqRepoError(f"{src}/{instance}: no such snapshot")
            found = [instance]
        names = found
        if not names:
            raise NotASeqRepoError(f"{src}: holds no YYYY-MM-DD snapshots to publish")
    for name in names:
        if not instances.REMOTE_SNAPSHOT_RE.match(name):
            raise RemoteInputError(
                f"{name!r}: only snapshots named YYYY-MM-DD are published "
                "(make one with `seqrepofs snapshot`)"
            )
    return root, names


def publish(
    src: str,
    dest: str,
    instance: str | None = None,
    *,
    endpoint_url: str | None = None,
    chunk_size: int = CHUNK_SIZE,
    report: Callable[[Published], None] | None = None,
) -> list[Published]:
    """Publish SRC's snapshots (or one) to DEST; returns what happened to each."""
    root, names = snapshots_to_publish(src, instance)
    target = open_target(dest, endpoint_url)
    if ":" not in dest.split("/")[0] and os.path.realpath(dest) == os.path.realpath(root):
        raise RemoteInputError(f"{dest}: publish to another directory than the source root")
    try:
        return _publish_all(root, names, target, chunk_size, report)
    except Transient as exc:
        raise RemoteError(f"{exc} (run publish again to finish)") from None
    except KeyboardInterrupt:
        raise InterruptedTransferError("interrupted; run publish again to finish") from None


def _publish_all(
    root: str,
    names: list[str],
    target: Target,
    chunk_size: int,
    report: Callable[[Published], None] | None,
) -> list[Published]:
    raw = target.get_bytes(INDEX_KEY)
    index = parse_index(raw, f"{target.url}/{INDEX_KEY}") if raw is not None else Index()
    published = _published_digests(target, index)
    cache = DigestCache()
    results = []
    for name in names:
        if name in index.snapshots and target.get_bytes(index.snapshots[name]) is not None:
            result = Published(name, "already published")
        else:
            result = _publish_one(root, name, target, chunk_size, cache, published)
            index.snapshots[name] = manifest_key(name)
            target.put_bytes(INDEX_KEY, index.to_json(), "application/json")
            target.put_bytes(LATEST_KEY, f"{index.names[-1]}\n".encode(), "text/plain")
        results.append(result)
        if report is not None:
            report(result)
    return results


def _publish_one(
    root: str,
    name: str,
    target: Target,
    chunk_size: int,
    cache: DigestCache,
    published: dict[str, str],
) -> Published:
    instance_dir = os.path.join(root, name)
    manifest = build(instance_dir, name, chunk_size, cache)
    result = Published(name, "published")
    for entry in manifest.files:
        key = f"{name}/{entry.path}"
        path = os.path.join(instance_dir, entry.path)
        if target.has(key, entry.size, entry.sha256, path):
            result.kept += 1
        elif entry.sha256 in published:
            target.copy(published[entry.sha256], key, entry.sha256)
            result.linked += 1
        else:
            target.put_file(key, path, entry.sha256)
            result.uploaded += 1
            result.uploaded_bytes += entry.size
        published.setdefault(entry.sha256, key)
    target.finish_snapshot(name)
    target.put_bytes(manifest_key(name), manifest.to_json(), "application/json")
    save_local_manifest(root, manifest)
    return result


def _published_digests(target: Target, index: Index) -> dict[str, str]:
    """SHA-256 -> object key, over every snapshot already published."""
    found: dict[str, str] = {}
    for name in index.names:
        data = target.get_bytes(index.snapshots[name])
        if data is None:
            continue
        try:
            manifest = parse(data, f"{target.url}/{index.snapshots[name]}")
        except ManifestError:
            continue
        for f in manifest.files:
            found.setdefault(f.sha256, f"{name}/{f.path}")
    return found
