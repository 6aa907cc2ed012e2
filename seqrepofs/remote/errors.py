"""Errors of the rsync layer; each is a SeqRepoError so the CLI prints one line and exits 1."""

from __future__ import annotations

from ..errors import SeqRepoError


class RemoteError(SeqRepoError):
    """Something about a remote rsync server or the transfer from it went wrong."""


class RsyncNotFoundError(RemoteError):
    """The rsync program is missing or cannot be run."""


class RsyncUnsupportedError(RemoteError):
    """The rsync program is one we cannot rely on (openrsync, or too old)."""


class RsyncFailedError(RemoteError):
    """rsync ran and failed; the message says what its exit code means."""

    def __init__(self, message: str, returncode: int) -> None:
        super().__init__(message)
        self.returncode = returncode


class PullBusyError(RemoteError):
    """Another pull of the same instance holds the temporary directory."""
