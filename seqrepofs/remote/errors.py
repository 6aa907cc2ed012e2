"""Errors of the remote layer (rsync, HTTP, S3); each is a SeqRepoError: one line, exit 1."""

from __future__ import annotations

from ..errors import InvalidInputError, SeqRepoError


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


class ManifestError(RemoteError):
    """A published manifest or index does not parse, or has a version we do not read."""


class UnreachableError(RemoteError):
    """The server could not be reached (name lookup, refused connection, timeout)."""


class AccessDeniedError(RemoteError):
    """The server refused access (HTTP 401/403, S3 AccessDenied)."""


class RemoteNotFoundError(RemoteError):
    """The server has no such object (HTTP 404, S3 NoSuchKey/NoSuchBucket)."""


class TransferError(RemoteError):
    """A transfer kept failing (server errors, cut or truncated bodies) after its retries."""


class DigestMismatchError(RemoteError):
    """Downloaded bytes do not match the manifest's SHA-256."""


class InterruptedTransferError(RemoteError):
    """A pull or publish was interrupted (Ctrl-C); what it wrote is kept for the next run."""


class RemoteInputError(RemoteError, InvalidInputError):
    """A URL, host, module, snapshot name or option given to publish/pull is not acceptable
    (the project's InvalidInputError, caught as a RemoteError too)."""
