"""Pull snapshots from, and publish a root to, rsync servers (the real rsync program).

Modules, one job each: `endpoint` (what --remote-host means), `rsync` (finding, running and
explaining rsync), `listing` (remote snapshot names), `tempdir` (the locked, resumable temporary
directory of a pull), `pull` (the transfer itself), `daemon` (rsyncd.conf and the daemon).
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
