"""Inode numbers: what a node is, written into its 64-bit number and read back from it.

Why: the kernel may ask about any inode it holds (getattr, open) long after the listing or
lookup that produced it, and a listing of a namespace makes it hold millions. Writing the
node's identity into the number lets the daemon rebuild the node from the number alone, so
it keeps nothing per listed or looked-up entry and `forget` has nothing to free.

Layout (bit 63 always 0: some tools read inode numbers as signed 64-bit integers):

    alias file  1 | instance:16 | variant:3 | kind:2 | seqalias_id:41     (bit 62 set)
    collection  0 | tag:4 | instance:16 | by_digest:1 | kind:3 | collection_id:38  (tag 6)
    other       0 | tag:4 | instance:16 | name:32                          (tag >= 1)
    the mount's top directory                                             1

`instance` is 0 for a mounted instance and the instance's interned number in a mounted root;
a collection's file is named by its collection id (`store.collections`), which stands for
one content for good (`--replace` records a new id); `variant` says which directory shows the
alias row (0: its stored namespace, else an API name, `VARIANTS`); `name` is the interned
namespace directory or view file name. Interned
names are few (instances of a root, namespace directories, assembly view files): the table
grows with the repository's catalogue, never with its aliases, and is capped.
"""

from __future__ import annotations

import threading

from ..store.translate import SYNTHETIC_NAMESPACES
from .content import CollectionKind, FileKind
from .nodes import (
    AliasFile,
    CollectionFile,
    CollectionsDir,
    InstanceDir,
    LatestLink,
    NamespaceDir,
    Node,
    RootDir,
    ViewNode,
)

ROOT_INODE = 1
VARIANTS = ("", *SYNTHETIC_NAMESPACES)  # variant 0: the row's stored namespace
MAX_ROWID = (1 << 41) - 1
MAX_COLLECTION_ID = (1 << 38) - 1
MAX_NAMES = 1 << 20  # interned names of one daemon: far above any real catalogue
_FILE_BIT = 1 << 62
_INST_MAX = (1 << 16) - 1
_TAG_INSTANCE, _TAG_NAMESPACE, _TAG_VIEW, _TAG_LATEST = 1, 2, 3, 4
_TAG_COLLECTIONS, _TAG_COLLECTION_FILE = 5, 6

# What an inode number names, as a tuple the tree rebuilds the node from:
#   ("root",) ("instance", inst) ("namespace", inst, nsdir) ("view", inst, filename)
#   ("latest",) ("file", inst, variant, FileKind, rowid)
#   ("collections", inst, by_digest) ("cfile", inst, by_digest, CollectionKind, collection_id)
Key = tuple[object, ...]


class Names:
    """Small strings <-> small integers, for the daemon's lifetime (thread-safe)."""

    def __init__(self, first: int = 0, capacity: int = MAX_NAMES) -> None:
        self._index: dict[str, int] = {}
        self._names: list[str] = []
        self._first = first
        self._capacity = capacity
        self._lock = threading.Lock()

    def number(self, name: str) -> int:
        with self._lock:
            n = self._index.get(name)
            if n is None:
                if len(self._names) >= self._capacity:
                    raise OverflowError(f"more than {self._capacity} names to number")
                n = self._first + len(self._names)
                self._names.append(name)
                self._index[name] = n
            return n

    def name(self, number: int) -> str | None:
        i = number - self._first
        return self._names[i] if 0 <= i < len(self._names) else None

    def __len__(self) -> int:
        return len(self._names)


class Inodes:
    """Encodes nodes as inode numbers and decodes numbers back to keys."""

    def __init__(self) -> None:
        self._instances = Names(first=1, capacity=_INST_MAX)  # 0: a mounted instance
        self._names = Names()

    def _inst(self, inst: str) -> int:
        return self._instances.number(inst) if inst else 0

    def number(self, node: Node) -> int:
        """The inode number of `node` (the same for the same node, in every request)."""
        if isinstance(node, AliasFile):
            if not 0 < node.rowid <= MAX_ROWID:
                raise OverflowError(f"alias row id {node.rowid} does not fit an inode number")
            return (
                _FILE_BIT
                | self._inst(node.inst) << 46
                | node.variant << 43
                | int(node.file_kind) << 41
                | node.rowid
            )
        if isinstance(node, RootDir) or (isinstance(node, InstanceDir) and not node.inst):
            return ROOT_INODE
        if isinstance(node, InstanceDir):
            return self._other(_TAG_INSTANCE, node.inst, 0)
        if isinstance(node, NamespaceDir):
            return self._other(_TAG_NAMESPACE, node.inst, self._names.number(node.nsdir))
        if isinstance(node, ViewNode):
            return self._other(_TAG_VIEW, node.inst, self._names.number(node.view.filename))
        if isinstance(node, LatestLink):
            return self._other(_TAG_LATEST, "", 0)
        if isinstance(node, CollectionsDir):
            return self._other(_TAG_COLLECTIONS, node.inst, int(node.by_digest))
        if isinstance(node, CollectionFile):
            if not 0 < node.cid <= MAX_COLLECTION_ID:
                raise OverflowError(f"collection id {node.cid} does not fit an inode number")
            return self.collection_bases(node.inst, node.by_digest)[node.file_kind] | node.cid
        raise TypeError(f"no inode number for {node!r}")

    def file_bases(self, inst: str, variant: int) -> tuple[int, ...]:
        """For a listing: the inode number of file kind k of alias row r shown in a directory
        is `bases[k] | r` (what `number` computes, without a node per entry)."""
        base = _FILE_BIT | self._inst(inst) << 46 | variant << 43
        return tuple(base | int(kind) << 41 for kind in FileKind)

    def collection_bases(self, inst: str, by_digest: bool) -> tuple[int, ...]:
        """For a /collections listing: file kind k of collection id c is `bases[k] | c`."""
        base = _TAG_COLLECTION_FILE << 58 | self._inst(inst) << 42 | int(by_digest) << 41
        return tuple(base | int(kind) << 38 for kind in CollectionKind)

    def _other(self, tag: int, inst: str, name: int) -> int:
        return tag << 58 | self._inst(inst) << 42 | name

    def key(self, ino: int) -> Key | None:
        """What `ino` names, or None if no node of this daemon has that number."""
        if ino == ROOT_INODE:
            return ("root",)
        if ino <= 0 or ino >> 63:
            return None
        inst = self._inst_name(ino >> 46 & _INST_MAX if ino & _FILE_BIT else ino >> 42 & _INST_MAX)
        if inst is None:
            return None
        if ino & _FILE_BIT:
            variant = ino >> 43 & 7
            if variant >= len(VARIANTS):
                return None
            return ("file", inst, variant, FileKind(ino >> 41 & 3), ino & MAX_ROWID)
        tag, name_no = ino >> 58, ino & 0xFFFFFFFF
        if tag == _TAG_COLLECTION_FILE:
            kind_no, cid = ino >> 38 & 7, ino & MAX_COLLECTION_ID
            if kind_no >= len(CollectionKind) or not cid:
                return None
            return ("cfile", inst, bool(ino >> 41 & 1), CollectionKind(kind_no), cid)
        if tag == _TAG_COLLECTIONS:
            return ("collections", inst, bool(name_no)) if name_no < 2 else None
        if tag == _TAG_INSTANCE and inst and not name_no:
            return ("instance", inst)
        if tag == _TAG_LATEST and not inst and not name_no:
            return ("latest",)
        name = self._names.name(name_no)
        if name is None:
            return None
        if tag == _TAG_NAMESPACE:
            return ("namespace", inst, name)
        if tag == _TAG_VIEW:
            return ("view", inst, name)
        return None

    def _inst_name(self, number: int) -> str | None:
        return "" if number == 0 else self._instances.name(number)

    def interned(self) -> int:
        """How many names the tables hold (what the daemon keeps besides its caches)."""
        return len(self._instances) + len(self._names)
