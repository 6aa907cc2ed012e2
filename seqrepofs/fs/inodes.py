"""Nodes (what a path names) and the inode table the kernel's lookup counts keep alive.

Inode numbers are derived from the node's identity (a 63-bit hash of its path key), so the same
file gets the same number across remounts and `forget` is a dict deletion. The table holds only
nodes the kernel still references (lookup count > 0): it cannot be an LRU, because the kernel may
ask about any inode it has not forgotten, but it is bounded by the kernel's own inode cache.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field

from ..assemblies import ViewFile
from .content import FileKind

ROOT_INODE = 1
_INO_MASK = (1 << 63) - 1


class NodeKind(enum.Enum):
    ROOT = "root"  # a mounted root: one directory per instance, plus `latest`
    INSTANCE = "instance"  # an instance: namespace directories and assembly view files
    NAMESPACE = "namespace"  # one namespace: four files per alias
    FILE = "file"  # a file of an alias, in a namespace directory
    VIEW = "view"  # a file of a whole-assembly view, in an instance directory
    LATEST = "latest"  # the `latest` symlink of a mounted root


@dataclass(frozen=True, slots=True)
class Node:
    """Everything `getattr`, `open` and the error log need about one path."""

    kind: NodeKind
    path: str  # inside the mount, for logs and the .dict UR ("/" for the mount root)
    size: int = 0
    nlink: int = 1
    mtime_ns: int = 0
    timeout: float = 1.0  # entry/attr cache time the kernel may use
    inst: str = ""  # instance name in a mounted root ("" when an instance is mounted)
    nsdir: str = ""
    alias: str = ""
    file_kind: FileKind | None = None
    seq_id: str = ""
    length: int = 0
    view: ViewFile | None = None  # what a VIEW node serves (seqrepofs.assemblies)
    key: tuple[str, ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        """The identity of the path (computed once: listings hash millions of them)."""
        key: tuple[str, ...]
        if self.kind is NodeKind.FILE:
            assert self.file_kind is not None
            key = ("f", self.inst, self.nsdir, self.alias, self.file_kind.suffix)
        elif self.kind is NodeKind.VIEW:
            assert self.view is not None
            key = ("v", self.inst, self.view.filename)
        elif self.kind is NodeKind.NAMESPACE:
            key = ("n", self.inst, self.nsdir)
        elif self.kind is NodeKind.INSTANCE:
            key = ("i", self.inst)
        else:
            key = (self.kind.value,)
        object.__setattr__(self, "key", key)

    @property
    def is_dir(self) -> bool:
        return self.kind in (NodeKind.ROOT, NodeKind.INSTANCE, NodeKind.NAMESPACE)

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


def key_inode(key: tuple[str, ...]) -> int:
    digest = hashlib.blake2b("\0".join(key).encode("utf-8", "surrogatepass"), digest_size=8)
    ino = int.from_bytes(digest.digest(), "little") & _INO_MASK
    return ino if ino > ROOT_INODE else ino + 2


class InodeTable:
    """ino <-> node for every node the kernel holds, with its lookup count.

    An inode number is the hash of the node's key, so no key -> ino map is kept (a listing of
    a million aliases makes the kernel hold four million inodes); the rare hash collision is
    resolved by probing and remembered in `_moved`. Used only from the trio thread.
    """

    def __init__(self, root: Node) -> None:
        self._entries: dict[int, list] = {ROOT_INODE: [root, 1]}  # ino -> [node, count]
        self._moved: dict[tuple[str, ...], int] = {root.key: ROOT_INODE}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, ino: int) -> Node | None:
        entry = self._entries.get(ino)
        return entry[0] if entry is not None else None

    def inode_for(self, node: Node) -> int:
        """The inode `node` has or would get (no reference taken)."""
        key = node.key
        if self._moved:
            moved = self._moved.get(key)
            if moved is not None:
                return moved
        ino = key_inode(key)
        entry = self._entries.get(ino)
        if entry is None or entry[0].key == key:
            return ino
        while ino in self._entries or ino <= ROOT_INODE:  # a hash collision: probe
            ino = (ino + 1) & _INO_MASK
        return ino

    def remember(self, node: Node, ino: int | None = None) -> int:
        """Record one kernel reference to `node` (a lookup or an accepted readdirplus entry).

        `ino` is what inode_for(node) just returned, if the caller has it.
        """
        if ino is None:
            ino = self.inode_for(node)
        entry = self._entries.get(ino)
        if entry is None:
            self._entries[ino] = [node, 1]
            if ino != key_inode(node.key):
                self._moved[node.key] = ino
        else:
            if ino != ROOT_INODE:
                entry[0] = node  # refresh: attributes of a mutable instance may change
            entry[1] += 1
        return ino

    def update(self, ino: int, node: Node) -> None:
        """Replace the node of a known inode with fresher attributes (same key)."""
        entry = self._entries.get(ino)
        if entry is not None and entry[0].key == node.key:
            entry[0] = node

    def forget(self, ino: int, nlookup: int) -> None:
        entry = self._entries.get(ino)
        if ino == ROOT_INODE or entry is None:
            return
        entry[1] -= nlookup
        if entry[1] > 0:
            return
        del self._entries[ino]
        key = entry[0].key
        if self._moved.get(key) == ino:
            del self._moved[key]
