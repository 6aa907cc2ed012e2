"""Which snapshots a remote rsync module offers (the reference's `list-remote-instances`)."""

from __future__ import annotations

import re

from ..store.instances import REMOTE_SNAPSHOT_RE
from .endpoint import Endpoint
from .rsync import Rsync, check, run_rsync

CONNECT_TIMEOUT = 30
IO_TIMEOUT = 120
_ENTRY_RE = re.compile(
    r"^(?P<type>[dl-])[rwxsStT-]{9}\s+[\d,.]+\s+\d{4}/\d\d/\d\d\s+\d\d:\d\d:\d\d\s+(?P<name>.+)$"
)


def list_remote_instances(endpoint: Endpoint, rsync: Rsync) -> list[str]:
    """Snapshot names (YYYY-MM-DD) in the module, oldest first.

    `--copy-dirlinks` makes a symlinked snapshot look like the directory it points to, as in
    the reference; `latest` and anything not named like a date are left out.
    """
    run = run_rsync(
        rsync,
        [
            "--no-motd",
            "--copy-dirlinks",
            f"--contimeout={CONNECT_TIMEOUT}",
            f"--timeout={IO_TIMEOUT}",
            endpoint.source(),
        ],
    )
    check(run, f"listing {endpoint}")
    return parse_listing(run.stdout)


def parse_listing(text: str) -> list[str]:
    """Directory names matching the remote snapshot pattern in an rsync listing."""
    names = set()
    for line in text.splitlines():
        match = _ENTRY_RE.match(line.rstrip("\r\n"))
        if match and match["type"] == "d" and REMOTE_SNAPSHOT_RE.match(match["name"]):
            names.add(match["name"])
    return sorted(names)
