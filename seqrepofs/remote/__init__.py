"""Pull snapshots from, and publish a root to, rsync servers, web servers and S3.

rsync (the real program): `endpoint` (what --remote-host means), `rsync` (finding, running and
explaining rsync), `listing` (remote snapshot names), `pull` (the transfer), `daemon`
(rsyncd.conf and the daemon). HTTP(S), S3 and file:// (docs/remote.md): `manifest` (the
published layout's metadata), `sources` (reading a published root), `retry` (bounded retries),
`localfiles` (what the local root has, by digest), `fetch` (one file, resumably), `urlpull`
(a whole snapshot), `targets` and `publish` (writing a published root). Shared: `tempdir`
(the locked, resumable temporary directory of a pull) and `errors`.
"""

from __future__ import annotations

from .daemon import DaemonConfig
from .endpoint import DEFAULT_MODULE, Endpoint, parse_endpoint
from .errors import (
    PullBusyError,
    RemoteError,
    RsyncFailedError,
    RsyncNotFoundError,
    RsyncUnsupportedError,
)
from .listing import list_remote_instances
from .pull import PullResult, pull
from .rsync import Rsync, RsyncStats, find_rsync, parse_stats

__all__ = [
    "DEFAULT_MODULE",
    "DaemonConfig",
    "Endpoint",
    "PullBusyError",
    "PullResult",
    "RemoteError",
    "Rsync",
    "RsyncFailedError",
    "RsyncNotFoundError",
    "RsyncStats",
    "RsyncUnsupportedError",
    "find_rsync",
    "list_remote_instances",
    "parse_endpoint",
    "parse_stats",
    "pull",
]
