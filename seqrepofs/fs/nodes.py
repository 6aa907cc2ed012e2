"""What a path of the mount names: one small type per kind of node.

Nodes are built per request and dropped after it: nothing keeps them, so a listing of a
million aliases costs no memory. Everything a handler needs later is rebuilt from the inode
number (`identity`). Each type carries only its own fields; `frozen` (the instance is a
snapshot: `store.instances.is_frozen`) decides the caching the kernel may do.

Caching. An alias file (`AliasFile`) is one alias row of the store shown in one layout: a row
never changes once written (re-pointing an alias adds a row), so its bytes and attributes are
fixed for good, on a live master too: the kernel keeps its pages (keep_cache) and attributes.
Only the name -> file mapping may change on a master, so entries (names) expire after
SHORT_TIMEOUT there. Directories, `latest` and whole-assembly views of a master may change in
place: short timeouts, no keep_cache. Everything of a snapshot is cached for LONG_TIMEOUT.

A new kind of node is a subclass here, a tag in `identity` (so
its inode number names it), and its lookup, listing and contents in `tree`.
"""

from __future__ import annotations

import enum
import stat
from dataclasses import dataclass
from typing import ClassVar

from ..assemblies import ViewFile
from .content import CollectionKind, FileKind

LONG_TIMEOUT = 30 * 86400.0  # nothing that never changes needs asking again
SHORT_TIMEOUT = 1.0  # what a mutable master or a root's listing may change
FILE_MODE = stat.S_IFREG | 0o444
DIR_MODE = stat.S_IFDIR | 0o555
LINK_MODE = stat.S_IFLNK | 0o777


class NodeKind(enum.Enum):
    ROOT = "root"  # a mounted root: one directory per instance, plus `latest`
    INSTANCE = "instance"  # an instance: namespace directories and assembly view files
    NAMESPACE = "namespace"  # one namespace: four files per alias
    FILE = "file"  # a file of an alias, in a namespace directory
    VIEW = "view"  # a file of a whole-assembly view, in an instance directory
    LATEST = "latest"  # the `latest` symlink of a mounted root
    COLLECTIONS = "collections"  # /collections or /collections/by-digest of an instance
    COLLECTION_FILE = "collection_file"  # a file of a sequence collection


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """What every node has: its path (for logs and the .dict UR) and its stat fields."""

    kind: ClassVar[NodeKind]
    mode: ClassVar[int] = FILE_MODE
    path: str  # inside the mount ("/" for the mount root)
    mtime_ns: int
    frozen: bool  # the instance is a snapshot (always False for a root and `latest`)

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def is_dir(self) -> bool:
        return self.mode == DIR_MODE

    @property
    def size(self) -> int:
        return 0

    @property
    def nlink(self) -> int:
        return 2 if self.is_dir else 1

    @property
    def immutable(self) -> bool:
        """Bytes and attributes never change: the kernel may keep both (keep_cache)."""
        return self.frozen

    @property
    def entry_timeout(self) -> float:
        return LONG_TIMEOUT if self.frozen else SHORT_TIMEOUT

    @property
    def attr_timeout(self) -> float:
        return LONG_TIMEOUT if self.immutable else SHORT_TIMEOUT


@dataclass(frozen=True, slots=True, kw_only=True)
class RootDir(Node):
    """The top of a mounted root: its listing is re-read from disk."""

    kind: ClassVar[NodeKind] = NodeKind.ROOT
    mode: ClassVar[int] = DIR_MODE
    instances: int = 0

    @property
    def nlink(self) -> int:
        return 2 + self.instances


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceDir(Node):
    """An instance: the mount's top (`inst` "") or one directory of a mounted root."""

    kind: ClassVar[NodeKind] = NodeKind.INSTANCE
    mode: ClassVar[int] = DIR_MODE
    inst: str = ""
    namespaces: int | None = 0  # subdirectories; None: not counted (1 link, as find(1) reads it)

    @property
    def nlink(self) -> int:
        return 1 if self.namespaces is None else 2 + self.namespaces


@dataclass(frozen=True, slots=True, kw_only=True)
class NamespaceDir(Node):
    """One namespace directory (stored name or API name) of an instance."""

    kind: ClassVar[NodeKind] = NodeKind.NAMESPACE
    mode: ClassVar[int] = DIR_MODE
    inst: str
    nsdir: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AliasFile(Node):
    """One of the four files of an alias row (see the module docstring: immutable)."""

    kind: ClassVar[NodeKind] = NodeKind.FILE
    inst: str
    nsdir: str
    variant: int  # which directory shows the row (identity.VARIANTS)
    rowid: int  # seqalias_id: names (namespace, alias, seq_id) for good
    alias: str  # as the directory shows it
    seq_id: str
    length: int
    file_kind: FileKind
    file_size: int

    @property
    def size(self) -> int:
        return self.file_size

    @property
    def immutable(self) -> bool:
        return True


@dataclass(frozen=True, slots=True, kw_only=True)
class ViewNode(Node):
    """A file of a whole-assembly view (`seqrepofs.assemblies`); rebuilt when a master changes."""

    kind: ClassVar[NodeKind] = NodeKind.VIEW
    inst: str
    view: ViewFile
    file_size: int

    @property
    def size(self) -> int:
        return self.file_size


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectionsDir(Node):
    """`/collections` (by name) or `/collections/by-digest` (by seqcol digest) of an instance."""

    kind: ClassVar[NodeKind] = NodeKind.COLLECTIONS
    mode: ClassVar[int] = DIR_MODE
    inst: str
    by_digest: bool = False

    @property
    def nlink(self) -> int:
        return 2 if self.by_digest else 3


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectionFile(Node):
    """A file of one collection (`fs.collection_views`). A collection id names one content
    for good (--replace records a new id), so its bytes and attributes never change."""

    kind: ClassVar[NodeKind] = NodeKind.COLLECTION_FILE
    inst: str
    by_digest: bool
    cid: int  # the collection's row id
    file_kind: CollectionKind
    stem: str  # the collection's name, or its digest under by-digest
    file_size: int

    @property
    def size(self) -> int:
        return self.file_size

    @property
    def immutable(self) -> bool:
        return True


@dataclass(frozen=True, slots=True, kw_only=True)
class LatestLink(Node):
    """The `latest` symlink of a mounted root."""

    kind: ClassVar[NodeKind] = NodeKind.LATEST
    mode: ClassVar[int] = LINK_MODE
    target: str

    @property
    def size(self) -> int:
        return len(self.target.encode())


Directory = RootDir | InstanceDir | NamespaceDir | CollectionsDir
