"""Errors of lazy remote reading; each names the URL and the reason, in one line."""

from __future__ import annotations

from ..remote.errors import RemoteError


class RemoteReadError(RemoteError):
    """Bytes that are not cached could not be fetched (network down, server error, timeout)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: cannot read: {reason}")
        self.url = url
        self.reason = reason


class RemoteChangedError(RemoteError):
    """The remote file is not the one the manifest describes (size, ETag or digest differ):
    serving it would mix bytes of two versions, so it is refused."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: remote file changed: {reason}; refusing it")
        self.url = url
        self.reason = reason
