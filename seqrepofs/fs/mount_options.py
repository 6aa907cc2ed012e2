"""Mount options: the `-o a,b=c` strings of the CLI, mount(8) and fstab, parsed once.

Our own options (line_width, threads, log_file, list; cache_dir, cache_size, http_timeout for
a snapshot URL) are taken out, options only mount(8)
understands are dropped, and the rest go to libfuse unchanged.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..errors import SeqRepoError
from ..lazy.options import LazyOptions

log = logging.getLogger("seqrepofs.fs")

FSTYPE = "fuse.seqrepofs"
# Options only mount(8)/fstab understand; libfuse would reject them.
_MOUNT_ONLY = {
    "defaults", "auto", "noauto", "nofail", "user", "users", "owner", "group", "_netdev",
    "nobootwait", "drop_privileges", "ro",
}  # fmt: skip
_MOUNT_ONLY_PREFIXES = ("x-", "comment=", "setuid=")


class MountError(SeqRepoError):
    """Mounting or unmounting cannot proceed; the message says why in one line."""


@dataclass
class MountOptions:
    foreground: bool = False
    allow_other: bool = False
    allow_root: bool = False
    line_width: int = 60
    threads: int = 4
    force: bool = False
    log_file: str | None = None
    list_index_files: bool = True  # list=all (default) or list=fa: see Tree
    # a published snapshot's URL: its cache and timeout (None: environment or default)
    cache_dir: str | None = None
    cache_size: int | None = None
    http_timeout: float | None = None
    fuse: list[str] = field(default_factory=list)  # passed to libfuse unchanged

    def parse(self, option_lists: Iterable[str]) -> MountOptions:
        """Apply `-o a,b=c` strings: our own options, fstab-only ones dropped, rest to libfuse."""
        for text in option_lists:
            for opt in filter(None, (o.strip() for o in text.split(","))):
                name, _, value = opt.partition("=")
                if name in ("line_width", "width"):
                    self.line_width = _positive_int(opt, value)
                elif name == "threads":
                    self.threads = _positive_int(opt, value)
                elif name == "log_file":
                    self.log_file = value or None
                elif name == "list":
                    if value not in ("all", "fa"):
                        raise MountError(f"option {opt!r}: expected list=all or list=fa")
                    self.list_index_files = value == "all"
                elif name == "cache_dir":
                    self.cache_dir = value or None
                elif name == "cache_size":
                    self.cache_size = _size(opt, value)
                elif name == "http_timeout":
                    self.http_timeout = _seconds(opt, value)
                elif opt == "allow_other":
                    self.allow_other = True
                elif opt == "allow_root":
                    self.allow_root = True
                elif opt == "rw":
                    log.warning("seqrepofs is read-only: ignoring option 'rw'")
                elif opt in _MOUNT_ONLY or opt.startswith(_MOUNT_ONLY_PREFIXES):
                    continue
                else:
                    self.fuse.append(opt)
        if self.allow_other and self.allow_root:
            raise MountError("options allow_other and allow_root exclude each other")
        return self

    def lazy_options(self) -> LazyOptions:
        return LazyOptions(self.cache_dir, self.cache_size, self.http_timeout)

    def fuse_options(self, source: str) -> set[str]:
        opts = {
            "ro",
            "default_permissions",  # the kernel checks our 0444/0555 modes
            f"fsname={_fsname(source)}",
            f"subtype={FSTYPE.split('.', 1)[1]}",
            *self.fuse,
        }
        if self.allow_other:
            opts.add("allow_other")
        if self.allow_root:
            opts.add("allow_root")
        return opts


def _positive_int(opt: str, value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise MountError(f"option {opt!r}: expected a positive integer")
    return n


def _size(opt: str, value: str) -> int:
    from ..lazy.range_cache import parse_size

    try:
        return parse_size(value)
    except ValueError:
        raise MountError(f"option {opt!r}: expected a size such as 500M or 20G") from None


def _seconds(opt: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not seconds >= 0.1:
        raise MountError(f"option {opt!r}: expected seconds (at least 0.1)")
    return seconds


def _fsname(source: str) -> str:
    """The source as /proc/mounts shows it; libfuse splits options at unescaped commas."""
    if not source.isascii():
        source = urllib.parse.quote(source, safe="/ ")
    return source.replace("\\", "\\\\").replace(",", "\\,")
