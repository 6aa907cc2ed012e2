"""Reading a published root: over HTTP(S) (urllib3), S3 (botocore signs, urllib3 fetches) or a
local directory (file://).

Each source answers two questions: the bytes of a small object, and a stream of a byte range
of a large one. Failures are sorted here into the ones worth retrying (`Transient`: server
errors, cut connections, short bodies, timeouts) and the final ones (403, 404, unreachable),
which become the project's one-line errors. The retrying itself, with resume, is `retry.py`.
"""

from __future__ import annotations

import os
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from .. import __version__
from .errors import (
    AccessDeniedError,
    ManifestError,
    RemoteError,
    RemoteInputError,
    RemoteNotFoundError,
)
from .manifest import INDEX_KEY, LATEST_KEY, Index, Manifest, parse, parse_index
from .retry import Retry, Transient, with_retries

READ_BLOCK = 1 << 20
URL_SCHEMES = ("http", "https", "s3", "file")


def is_url(spec: str) -> bool:
    """True if `spec` names a published root we read ourselves (not an rsync server)."""
    return urlsplit(spec.strip()).scheme.lower() in URL_SCHEMES and "://" in spec


class Source(ABC):
    """A published root: `<instance>/...` files plus the `seqrepofs/` metadata objects."""

    # True while the server answers a request for many ranges with multipart/byteranges
    multirange = False

    def __init__(self, url: str, retry: Retry) -> None:
        self.url = url.rstrip("/")
        self.retry = retry

    @abstractmethod
    def _get(self, key: str) -> bytes:
        """The whole object (one try)."""

    @abstractmethod
    @contextmanager
    def _stream(self, key: str, start: int, end: int) -> Iterator[Iterator[bytes]]:
        """Bytes [start, end) of an object as blocks (one try; may end short)."""

    def where(self, key: str) -> str:
        return f"{self.url}/{key}"

    def get(self, key: str) -> bytes:
        return with_retries(lambda: self._get(key), self.retry, self.where(key))

    @contextmanager
    def stream(self, key: str, start: int, end: int) -> Iterator[Iterator[bytes]]:
        with self._stream(key, start, end) as blocks:
            yield blocks

    @contextmanager
    def stream_ranges(
        self, key: str, spans: list[tuple[int, int]]
    ) -> Iterator[Iterator[tuple[int, bytes]]]:
        """Several byte ranges of an object in one request, as (offset, bytes) pieces; only
        for a source whose `multirange` is true (one try; pieces may stop early)."""
        raise NotImplementedError
        yield iter(())  # pragma: no cover - makes this a generator for contextmanager

    def close(self) -> None:  # noqa: B027 - only sources that hold connections override it
        """Release connections."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # the published layout, read
    def index(self) -> Index:
        try:
            data = self.get(INDEX_KEY)
        except RemoteNotFoundError:
            raise RemoteNotFoundError(
                f"{self.url}: no {INDEX_KEY} (not a root published with `seqrepofs publish`)"
            ) from None
        return parse_index(data, self.where(INDEX_KEY))

    def latest(self) -> str:
        try:
            name = self.get(LATEST_KEY).decode("utf-8", "replace").strip()
        except RemoteNotFoundError:
            names = self.index().names
            if not names:
                raise RemoteError(f"{self.url} offers no snapshots") from None
            return names[-1]
        if not name or "/" in name or name.startswith("."):
            raise ManifestError(f"{self.where(LATEST_KEY)}: does not name a snapshot")
        return name

    def manifest(self, instance: str, key: str | None = None) -> Manifest:
        key = key or f"seqrepofs/manifests/{instance}.json"
        manifest = parse(self.get(key), self.where(key))
        if manifest.instance != instance:
            raise ManifestError(f"{self.where(key)}: describes {manifest.instance}, not {instance}")
        return manifest


def open_source(
    url: str,
    *,
    endpoint_url: str | None = None,
    retry: Retry | None = None,
    connections: int = 8,
) -> Source:
    """The Source for a URL: http(s)://, s3://BUCKET/PREFIX or file:///PATH."""
    retry = retry or Retry()
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        return HttpSource(url, retry, connections)
    if scheme == "s3":
        return S3Source(url, retry, endpoint_url, connections)
    if scheme == "file":
        return FileSource(url, retry)
    raise RemoteInputError(f"{url!r}: give an http://, https://, s3:// or file:// URL")


class HttpSource(Source):
    """Any static web server or CDN, via urllib3 (which boto3 needs anyway, and which starts
    in a fraction of httpx's time): one keep-alive pool shared by the worker threads,
    redirects followed, connect/read timeouts. urllib3's own retries are off: `retry.py`
    retries and resumes with Range where urllib3 would start a body again from byte 0."""

    def __init__(self, url: str, retry: Retry, connections: int) -> None:
        import urllib3

        super().__init__(url, retry)
        self._urllib3 = urllib3
        self.multirange = True
        self.pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=connections,
            timeout=urllib3.Timeout(connect=retry.connect_timeout, read=retry.io_timeout),
            retries=urllib3.Retry(total=None, connect=0, read=0, status=0, other=0, redirect=10),
            headers={"User-Agent": f"seqrepofs/{__version__}", "Accept-Encoding": "identity"},
        )

    def where(self, key: str) -> str:
        return f"{self.url}/{quote(key)}"

    def _url(self, key: str) -> str:
        """The URL a request for `key` goes to (`where` names it in messages)."""
        return self.where(key)

    def close(self) -> None:
        self.pool.clear()

    def _get(self, key: str) -> bytes:
        with self._request(key, None) as resp:
            return b"".join(self._raw(resp))

    @contextmanager
    def _stream(self, key: str, start: int, end: int) -> Iterator[Iterator[bytes]]:
        with self._request(key, (start, end)) as resp:
            skip = 0
            if resp.status == 200 and start > 0 and not resp.headers.get("content-range"):
                skip = start  # the server ignored Range: drop what we already have
            yield _skip(self._raw(resp), skip)

    @contextmanager
    def stream_ranges(
        self, key: str, spans: list[tuple[int, int]]
    ) -> Iterator[Iterator[tuple[int, bytes]]]:
        header = "bytes=" + ",".join(f"{a}-{b - 1}" for a, b in spans)
        with self._request(key, spans[0], header) as resp:
            if resp.status == 200:  # ranges ignored: never again, and stop this body now
                self.multirange = False
                raise NoMultirange(self.where(key))
            kind = resp.headers.get("content-type", "")
            if "multipart/byteranges" in kind:
                yield _parts(self._raw(resp), self.where(key))
            else:  # one range answered (the server may merge ranges): it starts where it says
                yield _offset_blocks(self._raw(resp), _range_start(resp, self.where(key)))

    def _raw(self, resp: Any) -> Iterator[bytes]:
        """The body as it arrives (read1): a stall or a cut loses nothing already received."""
        try:
            while block := resp.read1(READ_BLOCK, decode_content=False):
                yield block
        except self._urllib3.exceptions.HTTPError as exc:
            raise Transient(f"connection broke mid-body ({_short(exc)})") from None

    @contextmanager
    def _request(
        self, key: str, span: tuple[int, int] | None, ranges: str | None = None
    ) -> Iterator[Any]:
        errors = self._urllib3.exceptions
        where = self.where(key)
        headers = {} if span is None else {"Range": ranges or f"bytes={span[0]}-{span[1] - 1}"}
        try:
            resp = self.pool.request(
                "GET", self._url(key), headers=headers, preload_content=False, decode_content=False
            )
        except errors.MaxRetryError as exc:
            reason = exc.reason
            if isinstance(reason, errors.NewConnectionError | errors.ConnectTimeoutError):
                raise Transient(
                    f"cannot reach {where}: {_short(reason)}", unreachable=True
                ) from None
            if isinstance(reason, errors.SSLError):
                raise RemoteError(f"{where}: TLS failed ({_short(reason)})") from None
            if "redirect" in str(reason).lower():
                raise RemoteError(f"{where}: too many redirects") from None
            raise Transient(f"{where}: {_short(reason or exc)}") from None
        except (errors.NewConnectionError, errors.ConnectTimeoutError) as exc:
            raise Transient(f"cannot reach {where}: {_short(exc)}", unreachable=True) from None
        except errors.HTTPError as exc:
            raise Transient(f"{where}: {_short(exc)}") from None
        try:
            _check_status(resp.status, where)
            # a range answered: 206, or (some S3 emulators) 200 with a Content-Range
            answered = resp.status == 206 or resp.headers.get("content-range")
            if span is not None and ranges is None and answered:
                _check_content_range(resp.headers.get("content-range", ""), span, where)
            yield resp
        except BaseException:
            resp.close()  # an unread rest must not reach the next request on this connection
            raise
        if resp.length_remaining == 0:
            resp.release_conn()  # kept alive for the next request
        else:
            resp.close()


def _check_status(status: int, where: str) -> None:
    if status in (200, 206):
        return
    if status in (401, 403):
        raise AccessDeniedError(f"{where}: access denied (HTTP {status})")
    if status in (404, 410):
        raise RemoteNotFoundError(f"{where}: not found (HTTP {status})")
    if status in (408, 425, 429) or status >= 500:
        raise Transient(f"{where}: server error (HTTP {status})")
    raise RemoteError(f"{where}: unexpected HTTP {status}")


def _check_content_range(value: str, span: tuple[int, int], where: str) -> None:
    """A 206 must start where we asked: anything else would splice wrong bytes into the file."""
    try:
        unit, rest = value.split(" ", 1)
        first = int(rest.split("-", 1)[0])
    except ValueError:
        raise Transient(f"{where}: malformed Content-Range {value!r}") from None
    if unit != "bytes" or first != span[0]:
        raise Transient(f"{where}: server answered range {value!r}, asked from {span[0]}")


class NoMultirange(Exception):
    """The server answered a request for several ranges with the whole object."""


_PART_RANGE = re.compile(rb"content-range:[ \t]*bytes[ \t]+(\d+)-(\d+)/", re.IGNORECASE)
_MAX_PART_HEAD = 16 * 1024


def _parts(blocks: Iterator[bytes], where: str) -> Iterator[tuple[int, bytes]]:
    """(offset, bytes) pieces of a multipart/byteranges body, in the order they come. Each
    part's head is read up to its blank line; its Content-Range says where the data goes.
    Stops at the closing boundary or where the body ends (the caller sees what is missing)."""
    buf = b""
    feed = iter(blocks)
    while True:
        while b"\r\n\r\n" not in buf:
            block = next(feed, None)
            if block is None:
                return
            buf += block
            if len(buf) > _MAX_PART_HEAD and b"\r\n\r\n" not in buf:
                raise Transient(f"{where}: malformed multipart/byteranges answer")
        head, buf = buf.split(b"\r\n\r\n", 1)
        match = _PART_RANGE.search(head)
        if match is None:
            return  # the closing boundary
        pos, left = int(match[1]), int(match[2]) - int(match[1]) + 1
        while left > 0:
            if not buf:
                block = next(feed, None)
                if block is None:
                    return
                buf = block
            piece, buf = buf[:left], buf[left:]
            yield pos, piece
            pos += len(piece)
            left -= len(piece)


def _offset_blocks(blocks: Iterator[bytes], start: int) -> Iterator[tuple[int, bytes]]:
    for block in blocks:
        yield start, block
        start += len(block)


def _range_start(resp: Any, where: str) -> int:
    value = resp.headers.get("content-range", "")
    match = _PART_RANGE.search(b"content-range: " + value.encode("latin-1", "replace"))
    if match is None:
        raise Transient(f"{where}: malformed Content-Range {value!r}")
    return int(match[1])


def _skip(blocks: Iterator[bytes], n: int) -> Iterator[bytes]:
    for block in blocks:
        if n >= len(block):
            n -= len(block)
            continue
        yield block[n:] if n else block
        n = 0


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__


class S3Source(HttpSource):
    """An S3-compatible bucket (AWS, R2, MinIO, Ceph). botocore finds the credentials and region
    the standard AWS way (unsigned requests without credentials: a public bucket) and presigns
    one GET URL per object (SigV4, its own addressing rules for AWS and custom endpoints); the
    requests themselves, ranges included, go through HttpSource's urllib3 pool. A botocore
    `get_object` costs about 1.1 ms of CPU a request here against 0.45 ms for urllib3 with the
    signature, and a database's changed chunks are thousands of single-range requests (S3
    answers one range per request); boto3 itself, which only the uploads need, is not loaded.
    A URL is presigned for an hour and replaced after ten minutes, so a retry never carries an
    expired one, nor one signed with rotated temporary credentials."""

    URL_EXPIRES = 3600
    URL_REUSE = 600.0

    def __init__(self, url: str, retry: Retry, endpoint_url: str | None, connections: int) -> None:
        super().__init__(url, retry, connections)
        self.multirange = False  # S3 answers a request for several ranges with the whole object
        self.bucket, self.prefix = split_s3_url(url)
        self.client = s3_client(endpoint_url, retry, connections, managed=False)
        self._urls: dict[str, tuple[float, str]] = {}
        self._urls_lock = threading.Lock()

    def where(self, key: str) -> str:
        return f"{self.url}/{key}"

    def _url(self, key: str) -> str:
        now = time.monotonic()
        with self._urls_lock:
            made = self._urls.get(key)
        if made is not None and now - made[0] < self.URL_REUSE:
            return made[1]
        with s3_errors(self.where(key)):
            url: str = self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": f"{self.prefix}{key}"},
                ExpiresIn=self.URL_EXPIRES,
            )
        with self._urls_lock:
            self._urls[key] = (now, url)
        return url


def split_s3_url(url: str) -> tuple[str, str]:
    """(bucket, key prefix ending in '/' or empty) of s3://BUCKET[/PREFIX]."""
    parts = urlsplit(url)
    bucket = parts.netloc
    if not bucket:
        raise RemoteInputError(f"{url!r}: give s3://BUCKET or s3://BUCKET/PREFIX")
    prefix = parts.path.strip("/")
    return bucket, (prefix + "/" if prefix else "")


def s3_client(
    endpoint_url: str | None, retry: Retry, connections: int = 8, *, managed: bool = True
) -> Any:
    """An S3 client; unsigned when no credentials are configured anywhere. `managed`: a boto3
    client, with boto3's managed transfers (upload_file, copy); otherwise a plain botocore
    client, which starts without importing boto3 and s3transfer."""
    from botocore import UNSIGNED
    from botocore.config import Config

    if managed:
        import boto3

        session: Any = boto3.session.Session()
        region = session.region_name
    else:
        import botocore.session

        session = botocore.session.get_session()
        region = session.get_config_variable("region")
    config = Config(
        connect_timeout=retry.connect_timeout,
        read_timeout=retry.io_timeout,
        retries={"max_attempts": 2, "mode": "standard"},
        max_pool_connections=connections,
    )
    if session.get_credentials() is None:
        config = config.merge(Config(signature_version=UNSIGNED))
    elif not managed:  # presigned URLs: SigV4 (botocore's default for them is still SigV2)
        config = config.merge(Config(signature_version="s3v4"))
    region = region or "us-east-1"
    create = session.client if managed else session.create_client
    return create("s3", endpoint_url=endpoint_url, region_name=region, config=config)


@contextmanager
def s3_errors(where: str) -> Iterator[None]:
    """botocore's exceptions as ours (final) or Transient (worth another try)."""
    from botocore import exceptions as bx

    try:
        yield
    except bx.ClientError as exc:
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in ("NoSuchKey", "NoSuchBucket", "404", "NotFound") or status == 404:
            raise RemoteNotFoundError(f"{where}: not found ({code or status})") from None
        if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403") or (
            status in (401, 403)
        ):
            raise AccessDeniedError(f"{where}: access denied ({code or status})") from None
        if status >= 500 or code in ("SlowDown", "InternalError", "ServiceUnavailable"):
            raise Transient(f"{where}: server error ({code or status})") from None
        raise RemoteError(f"{where}: {code or status}: {err.get('Message', '')}".rstrip()) from None
    except (bx.EndpointConnectionError, bx.ConnectTimeoutError) as exc:
        raise Transient(f"cannot reach {where}: {_short(exc)}", unreachable=True) from None
    except bx.NoCredentialsError:
        raise AccessDeniedError(
            f"{where}: no AWS credentials (environment, ~/.aws files or a profile)"
        ) from None
    except (bx.BotoCoreError, OSError) as exc:
        raise Transient(f"{where}: {_short(exc)}") from None


class FileSource(Source):
    """A published root on a local or network file system (file:///PATH)."""

    def __init__(self, url: str, retry: Retry) -> None:
        super().__init__(url, retry)
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise RemoteInputError(f"{url!r}: file:// URLs name a local path (file:///PATH)")
        self.root = unquote(parts.path)

    def _path(self, key: str) -> str:
        return os.path.join(self.root, *key.split("/"))

    def _get(self, key: str) -> bytes:
        with _file_errors(self.where(key)), open(self._path(key), "rb") as fh:
            return fh.read()

    @contextmanager
    def _stream(self, key: str, start: int, end: int) -> Iterator[Iterator[bytes]]:
        with _file_errors(self.where(key)), open(self._path(key), "rb") as fh:
            fh.seek(start)
            yield _read_blocks(fh, end - start)


def _read_blocks(fh: Any, n: int) -> Iterator[bytes]:
    while n > 0:
        block = fh.read(min(READ_BLOCK, n))
        if not block:
            return
        n -= len(block)
        yield block


@contextmanager
def _file_errors(where: str) -> Iterator[None]:
    try:
        yield
    except FileNotFoundError:
        raise RemoteNotFoundError(f"{where}: not found") from None
    except PermissionError:
        raise AccessDeniedError(f"{where}: permission denied") from None
