"""Reading a published snapshot in place: byte ranges fetched on demand and kept on disk.

Modules, one job each: `transport` (one Range request to https/http/s3/file URLs), `range_cache`
(the on-disk chunk cache shared by processes), `remote_file` (random-access reads of one
published file through the cache), `sqlite_vfs` (SQLite databases queried page by page over
a RemoteFile). See docs/lazy.md.
"""

from __future__ import annotations

from .errors import RemoteChangedError, RemoteReadError
from .range_cache import DEFAULT_CACHE_BYTES, RangeCache, default_cache_dir, parse_size
from .remote_file import FileSpec, RemoteFile

__all__ = [
    "DEFAULT_CACHE_BYTES",
    "FileSpec",
    "RangeCache",
    "RemoteChangedError",
    "RemoteFile",
    "RemoteReadError",
    "default_cache_dir",
    "parse_size",
]
