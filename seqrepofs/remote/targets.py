"""Where `publish` writes: a local directory (served by any static web server) or S3.

A target only knows objects: whether one is already there complete, how to put a local file,
how to copy an object it already holds (hardlink / server-side copy) and how to put small
metadata. Every write is atomic per object, so an interrupted publish leaves either nothing or
a whole object under each name, and re-running it skips the whole ones.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from typing import Any
from urllib.parse import urlsplit

from .errors import RemoteError, RemoteInputError, RemoteNotFoundError
from .retry import Retry
from .sources import s3_client, s3_errors, split_s3_url


class Target(ABC):
    url: str

    @abstractmethod
    def has(self, key: str, size: int, sha256: str, path: str) -> bool:
        """True if `key` already holds the content of local file `path` (size and SHA-256
        given), from an earlier, interrupted publish."""

    @abstractmethod
    def put_file(self, key: str, path: str, sha256: str) -> None: ...

    @abstractmethod
    def copy(self, src_key: str, key: str, sha256: str) -> None:
        """`key` gets the content of `src_key`, without uploading it again."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes, content_type: str) -> None: ...

    @abstractmethod
    def get_bytes(self, key: str) -> bytes | None:
        """A small object, None if absent."""

    def finish_snapshot(self, instance: str) -> None:  # noqa: B027 - optional hook
        """Called once a snapshot's data files are all in place."""


def open_target(dest: str, endpoint_url: str | None = None) -> Target:
    scheme = urlsplit(dest).scheme.lower() if "://" in dest else ""
    if scheme == "s3":
        return S3Target(dest, endpoint_url)
    if scheme == "file":
        return DirTarget(urlsplit(dest).path)
    if scheme:
        raise RemoteInputError(f"{dest!r}: publish to a local directory or s3://BUCKET/PREFIX")
    return DirTarget(dest)


class DirTarget(Target):
    """A directory tree: files are written under a temporary name and renamed; a file already
    published under an earlier snapshot is hardlinked. The published tree stays a valid
    SeqRepo root (each snapshot read-only, as `snapshot` leaves it)."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.url = self.root
        os.makedirs(self.root, exist_ok=True)

    def _path(self, key: str) -> str:
        return os.path.join(self.root, *key.split("/"))

    def has(self, key: str, size: int, sha256: str, path: str) -> bool:
        """Same size and mtime as the source (files are copied with their mtime, and an
        interrupted write never has the final name), so a snapshot re-made under the same
        name is published again rather than mixed with the old one."""
        try:
            here, there = os.stat(self._path(key)), os.stat(path)
        except OSError:
            return False
        return here.st_size == size and here.st_mtime_ns == there.st_mtime_ns

    def put_file(self, key: str, path: str, sha256: str) -> None:
        def write(tmp: str) -> None:
            shutil.copyfile(path, tmp)
            shutil.copystat(path, tmp)  # the mtime too, so rsync serving DEST sees it unchanged

        self._atomic(key, write, 0o444)

    def copy(self, src_key: str, key: str, sha256: str) -> None:
        dst = self._path(key)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if os.path.lexists(dst):
            os.unlink(dst)
        try:
            os.link(self._path(src_key), dst)
        except OSError:
            self.put_file(key, self._path(src_key), sha256)

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        def write(tmp: str) -> None:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())

        self._atomic(key, write, 0o644)

    def get_bytes(self, key: str) -> bytes | None:
        try:
            with open(self._path(key), "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            return None

    def _atomic(self, key: str, write: Any, mode: int) -> None:
        dst = self._path(key)
        parent = os.path.dirname(dst)
        os.makedirs(parent, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=".publish-")
        os.close(fd)
        try:
            write(tmp)
            os.chmod(tmp, mode)
            os.replace(tmp, dst)
        except BaseException:
            if os.path.lexists(tmp):
                os.unlink(tmp)
            raise

    def finish_snapshot(self, instance: str) -> None:
        """Drop write bits on the snapshot's directories, as `snapshot` does."""
        top = self._path(instance)
        for dirpath, _dirs, _files in os.walk(top, topdown=False):
            os.chmod(dirpath, os.stat(dirpath).st_mode & ~0o222)


class S3Target(Target):
    """An S3-compatible bucket via boto3 (multipart uploads for large files; server-side
    CopyObject for a file an earlier snapshot already published). Each object carries its
    SHA-256 as `x-amz-meta-sha256`, so a re-run can tell a complete upload by a HEAD."""

    def __init__(self, url: str, endpoint_url: str | None) -> None:
        self.url = url.rstrip("/")
        self.bucket, self.prefix = split_s3_url(url)
        self.client = s3_client(endpoint_url, Retry(io_timeout=300))

    def _key(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def has(self, key: str, size: int, sha256: str, path: str) -> bool:
        try:
            with s3_errors(f"{self.url}/{key}"):
                head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except RemoteNotFoundError:
            return False
        # metadata names are HTTP headers: some servers give them back capitalised
        meta = {str(k).lower(): v for k, v in head.get("Metadata", {}).items()}
        return head.get("ContentLength") == size and meta.get("sha256") == sha256

    def put_file(self, key: str, path: str, sha256: str) -> None:
        from boto3.exceptions import S3UploadFailedError
        from boto3.s3.transfer import TransferConfig

        config = TransferConfig(multipart_threshold=64 << 20, multipart_chunksize=64 << 20)
        extra = {"Metadata": {"sha256": sha256}, "ContentType": "application/octet-stream"}
        with s3_errors(f"{self.url}/{key}"):
            try:
                self.client.upload_file(
                    path, self.bucket, self._key(key), ExtraArgs=extra, Config=config
                )
            except S3UploadFailedError as exc:
                # boto3 wraps the service's answer (no such bucket, access denied, ...): judge
                # that, as for every other request
                if isinstance(exc.__context__, Exception):
                    raise exc.__context__ from None
                raise RemoteError(f"{self.url}/{key}: {exc}") from None

    def copy(self, src_key: str, key: str, sha256: str) -> None:
        from boto3.s3.transfer import TransferConfig

        # one CopyObject up to S3's 5 GiB limit for it, rather than boto3's multipart copy
        # from 8 MB on: one request instead of many, and some S3-compatible servers
        # (rclone's) answer UploadPartCopy without the ETag boto3 needs
        config = TransferConfig(multipart_threshold=5 << 30)
        source = {"Bucket": self.bucket, "Key": self._key(src_key)}
        extra = {"Metadata": {"sha256": sha256}, "MetadataDirective": "REPLACE"}
        with s3_errors(f"{self.url}/{key}"):
            self.client.copy(source, self.bucket, self._key(key), ExtraArgs=extra, Config=config)

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        with s3_errors(f"{self.url}/{key}"):
            self.client.put_object(
                Bucket=self.bucket,
                Key=self._key(key),
                Body=data,
                ContentType=content_type,
                CacheControl="no-cache",
            )

    def get_bytes(self, key: str) -> bytes | None:
        try:
            with s3_errors(f"{self.url}/{key}"):
                resp = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
                data: bytes = resp["Body"].read()
                return data
        except RemoteNotFoundError:
            return None
        except RemoteError:
            raise
