"""Fetching one byte range of a remote file: https://, http://, s3:// or file://.

One call, one range, with a deadline: every origin answers the bytes plus what identifies the
version it read (total size, ETag), so the caller can refuse a file that is not the manifest's.
An ETag already seen is sent back as If-Match, so a server holding a new version answers 412
instead of mixing bytes of two versions. Transient faults (connection reset, 5xx, truncated
body) are retried with backoff while the deadline allows; then RemoteReadError names the URL
and the last reason.

HTTP goes through urllib3 (keep-alive pool, redirects, timeouts), the client the HTTP pull
uses (boto3 needs it anyway, and it imports in a fraction of httpx's time); S3 through boto3,
which finds credentials, region and endpoint the standard AWS way.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from .. import __version__
from .errors import RemoteChangedError, RemoteReadError

READ_PIECE = 256 * 1024  # body read in pieces so the deadline is checked while it streams
BACKOFF = (0.1, 0.3, 0.8)  # seconds before the 2nd, 3rd, 4th attempt (while the deadline allows)
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


@dataclass(frozen=True)
class Piece:
    """Bytes [start, start + len(data)) of a file, and the version they came from."""

    data: bytes
    total_size: int | None
    etag: str | None


class Origin(Protocol):
    url: str

    def fetch(self, start: int, end: int, etag: str | None, deadline: float) -> Piece:
        """Bytes [start, end) (fewer only at the end of the file)."""
        ...


class _Transient(Exception):
    """A fault worth another attempt; its text is the reason reported if none succeeds."""


def open_origin(url: str, timeout: float = 30.0) -> Origin:
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        return HttpOrigin(url)
    if scheme == "s3":
        return S3Origin(url, timeout=timeout)
    if scheme == "file":
        return FileOrigin(url)
    raise ValueError(f"{url}: unsupported URL scheme {scheme!r} (https, http, s3 or file)")


def _remaining(deadline: float, url: str, reason: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise RemoteReadError(url, f"timed out ({reason})" if reason else "timed out")
    return left


def with_retries(url: str, deadline: float, attempt: Any) -> Piece:
    """Call `attempt(timeout)` until it succeeds, a non-transient error, or the deadline."""
    reason = ""
    for tries in range(len(BACKOFF) + 1):
        if tries:
            pause = BACKOFF[tries - 1]
            if time.monotonic() + pause >= deadline:
                break
            time.sleep(pause)
        try:
            return attempt(_remaining(deadline, url, reason))
        except _Transient as exc:
            reason = str(exc)
    raise RemoteReadError(url, reason or "timed out")


# ---- HTTP ------------------------------------------------------------------------------------
_POOLS: tuple[int, Any] | None = None
_POOLS_LOCK = threading.Lock()


def _pool_manager() -> Any:
    """One keep-alive pool per process (made again after fork: sockets are not shareable)."""
    global _POOLS
    import urllib3

    with _POOLS_LOCK:
        if _POOLS is None or _POOLS[0] != os.getpid():
            _POOLS = (
                os.getpid(),
                urllib3.PoolManager(
                    num_pools=16,
                    maxsize=16,
                    block=False,
                    retries=urllib3.Retry(
                        total=None, connect=0, read=0, status=0, other=0, redirect=5
                    ),
                    headers={
                        "User-Agent": f"seqrepofs/{__version__}",
                        "Accept-Encoding": "identity",
                    },
                ),
            )
        return _POOLS[1]


def parse_content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """(first, last, total) of a `Content-Range: bytes first-last/total` header."""
    m = _CONTENT_RANGE.fullmatch((value or "").strip())
    if m is None:
        return None
    return int(m[1]), int(m[2]), None if m[3] == "*" else int(m[3])


class HttpOrigin:
    def __init__(self, url: str) -> None:
        self.url = url

    def fetch(self, start: int, end: int, etag: str | None, deadline: float) -> Piece:
        return with_retries(
            self.url, deadline, lambda t: self._attempt(start, end, etag, t, deadline)
        )

    def _attempt(
        self, start: int, end: int, etag: str | None, timeout: float, deadline: float
    ) -> Piece:
        import urllib3

        headers = {"Range": f"bytes={start}-{end - 1}"}
        if etag and not etag.startswith("W/"):  # If-Match compares strong ETags only
            headers["If-Match"] = etag
        try:
            resp = _pool_manager().request(
                "GET",
                self.url,
                headers=headers,
                preload_content=False,
                decode_content=False,
                timeout=urllib3.Timeout(connect=timeout, read=timeout),
            )
        except urllib3.exceptions.MaxRetryError as exc:
            if "redirect" in str(exc.reason).lower():
                raise RemoteReadError(self.url, "too many redirects") from None
            raise _Transient(_describe(exc.reason or exc)) from None
        except urllib3.exceptions.HTTPError as exc:
            raise _Transient(_describe(exc)) from None
        try:
            piece = self._body(resp, start, end, deadline)
        except BaseException:
            resp.close()  # an unread rest must not reach the next request on this connection
            raise
        if resp.length_remaining == 0:
            resp.release_conn()
        else:
            resp.close()
        return piece

    def _body(self, resp: Any, start: int, end: int, deadline: float) -> Piece:
        status = resp.status
        got_etag = resp.headers.get("ETag")
        if status == 412:
            raise RemoteChangedError(self.url, "its ETag no longer matches (HTTP 412)")
        if status == 416:
            cr = parse_content_range(resp.headers.get("Content-Range"))
            now = "" if cr is None or cr[2] is None else f": it is {cr[2]} bytes"
            raise RemoteChangedError(self.url, f"bytes {start}-{end - 1} are past its end{now}")
        if status >= 500 or status in (408, 429):
            raise _Transient(f"HTTP {status} {resp.reason or ''}".strip())
        if status == 200:  # a server that ignores Range: read up to `end`, drop the rest
            length = resp.headers.get("Content-Length")
            size = int(length) if length and length.isdigit() else None
            data = _read(resp, end, deadline, self.url)
            return Piece(data[start:end], size, got_etag)
        if status != 206:
            raise RemoteReadError(self.url, f"HTTP {status} {resp.reason or ''}".strip())
        parsed = parse_content_range(resp.headers.get("Content-Range"))
        if parsed is None or parsed[0] != start:
            raise RemoteReadError(self.url, "the server answered a different byte range")
        first, last, total = parsed
        data = _read(resp, last - first + 1, deadline, self.url)
        if len(data) != last - first + 1:
            raise _Transient(f"truncated body ({len(data)} of {last - first + 1} bytes)")
        return Piece(data, total, got_etag)


def _read(resp: Any, limit: int, deadline: float, url: str) -> bytes:
    """Up to `limit` bytes of the body, in pieces, checking the deadline between them."""
    import urllib3

    parts: list[bytes] = []
    have = 0
    try:
        while have < limit:
            part = resp.read1(min(READ_PIECE, limit - have), decode_content=False)
            if not part:
                break
            parts.append(part)
            have += len(part)
            if have < limit and time.monotonic() > deadline:
                raise RemoteReadError(url, "timed out while reading the body")
    except urllib3.exceptions.HTTPError as exc:
        raise _Transient(_describe(exc)) from None
    return b"".join(parts)


def _describe(exc: BaseException) -> str:
    """The root cause of a urllib3 error in a few words (connection refused, timed out, …)."""
    import urllib3

    errors = urllib3.exceptions
    text = str(exc)
    if "refused" in text.lower():
        return "connection refused"
    if isinstance(exc, errors.NameResolutionError):
        return "cannot resolve the host name"
    if isinstance(exc, errors.NewConnectionError):  # (a subclass of the timeouts, oddly)
        return f"cannot connect ({text.split(': ', 1)[-1]})"
    if isinstance(exc, errors.TimeoutError | TimeoutError) or "timed out" in text:
        return "timed out"
    return f"connection broken ({text})" if text else type(exc).__name__


# ---- S3 --------------------------------------------------------------------------------------
_S3_CLIENTS: dict[tuple[int, str | None, float], Any] = {}
_S3_LOCK = threading.Lock()


def _s3_client(endpoint: str | None, timeout: float) -> Any:
    """The publish layer's S3 client (credentials, region, unsigned access to public buckets)
    with this reader's timeouts; one per process, endpoint and timeout."""
    from ..remote.retry import Retry
    from ..remote.sources import s3_client

    key = (os.getpid(), endpoint, timeout)
    with _S3_LOCK:
        client = _S3_CLIENTS.get(key)
        if client is None:
            policy = Retry(connect_timeout=timeout, io_timeout=timeout)
            client = _S3_CLIENTS[key] = s3_client(endpoint, policy, connections=16)
        return client


class S3Origin:
    """`s3://BUCKET/KEY`; the endpoint comes from $AWS_ENDPOINT_URL (R2, MinIO, …) if set."""

    def __init__(self, url: str, endpoint_url: str | None = None, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        self.url = url
        self.timeout = timeout
        self.bucket = parts.netloc
        self.key = unquote(parts.path.lstrip("/"))
        self.endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None

    def fetch(self, start: int, end: int, etag: str | None, deadline: float) -> Piece:
        return with_retries(self.url, deadline, lambda t: self._attempt(start, end, etag, t))

    def _attempt(self, start: int, end: int, etag: str | None, timeout: float) -> Piece:
        from botocore.exceptions import BotoCoreError, ClientError

        args: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self.key,
            "Range": f"bytes={start}-{end - 1}",
        }
        if etag:
            args["IfMatch"] = etag
        try:
            resp = _s3_client(self.endpoint_url, self.timeout).get_object(**args)
            data = resp["Body"].read()
        except ClientError as exc:
            err = exc.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            if code == "PreconditionFailed" or status == 412:
                raise RemoteChangedError(self.url, "its ETag no longer matches") from None
            if code == "InvalidRange" or status == 416:
                reason = f"bytes {start}-{end - 1} are past its end"
                raise RemoteChangedError(self.url, reason) from None
            if status >= 500 or status == 429:
                raise _Transient(f"HTTP {status} {code}") from None
            reason = f"{code or status}: {err.get('Message', '')}"
            raise RemoteReadError(self.url, reason) from None
        except BotoCoreError as exc:
            raise _Transient(str(exc)) from None
        parsed = parse_content_range(resp.get("ContentRange"))
        size = parsed[2] if parsed else resp.get("ContentLength")
        return Piece(data, size, resp.get("ETag"))


# ---- file:// ---------------------------------------------------------------------------------
class FileOrigin:
    """A local file as if it were remote (tests, and snapshots on a network filesystem); its
    ETag is made of inode, size and modification time, like a web server's."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = unquote(urlsplit(url).path)

    def fetch(self, start: int, end: int, etag: str | None, deadline: float) -> Piece:
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise RemoteReadError(self.url, exc.strerror or str(exc)) from None
        try:
            st = os.fstat(fd)
            got = f'"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"'
            if etag is not None and etag != got:
                raise RemoteChangedError(self.url, "its ETag no longer matches")
            if start > st.st_size:
                raise RemoteChangedError(self.url, f"bytes {start}-{end - 1} are past its end")
            data = os.pread(fd, end - start, start)
        finally:
            os.close(fd)
        return Piece(data, st.st_size, got)
