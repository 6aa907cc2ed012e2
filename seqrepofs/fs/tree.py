"""Paths <-> nodes, directory listings and file contents, over a mounted source.

Synchronous and FUSE-free: `ops` calls what touches sqlite from worker threads, and the pure
opens (`open_pure`) and a snapshot's file reads on the trio thread; it turns `FsError` into the
errno the kernel sees. Layout of the tree (names are `encode_name`-encoded)::

    /<namespace>/<alias>.fa | .fa.fai | .dict | .fa.dict      mounting an instance
    /<assembly>[.<style>][.primary].fa | .fa.fai | ...         (whole-assembly views)
    /<instance>/<namespace>/<alias>.fa ...  and  /latest -> <snapshot>   mounting a root
    /<instance>/<assembly>[.<style>][.primary].fa ...
    /collections/<name>.fa | .fa.fai | .dict | .fa.dict | .chrom.sizes | .seqcol.json
    /collections/by-digest/<seqcol digest>.fa ...               (in every instance)

A view file whose name is also a namespace directory's is hidden: the directory wins, in
listings and lookups alike; so does a namespace named `collections`.

Nothing is kept per listed or looked-up entry: the kernel names a node by its inode number
(`identity`), and `node()` rebuilds it from the number (one row query for an alias file),
with a bounded cache of the immutable nodes answered lately.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np
from cachetools import LRUCache

from ..assemblies import AssemblyCatalog, UnknownAssemblyError, ViewFile
from ..errors import SeqRepoError
from ..fasta_view import FastaLayout, decode_name, encode_name
from ..store.collections import CollectionInfo
from .collection_views import (
    CollectionGoneError,
    CollectionViews,
    GenomeFasta,
    StreamedContent,
    added_ns,
    open_index,
)
from .content import (
    CollectionKind,
    FileKind,
    dict_bytes,
    fai_bytes,
    file_sizes,
    file_uri,
    layout,
    split_collection_file_name,
    split_file_name,
)
from .identity import MAX_COLLECTION_ID, MAX_ROWID, VARIANTS, Inodes, Key
from .nodes import (
    SHORT_TIMEOUT,
    AliasFile,
    CollectionFile,
    CollectionsDir,
    Directory,
    InstanceDir,
    LatestLink,
    NamespaceDir,
    Node,
    RootDir,
    ViewNode,
)
from .source import AliasRow, Instance, NamespaceMap, Root

log = logging.getLogger("seqrepofs.fs")

PAGE_SIZE = 1024  # alias rows per listing query (one worker hop each)
NODE_CACHE_SIZE = 4096  # recently answered immutable nodes, so getattr/open skip the database
COLLECTION_PAGE_SIZE = 256  # collections per /collections listing query
COLLECTIONS = "collections"  # the directory of an instance's sequence collections
BY_DIGEST = "by-digest"  # its subdirectory naming them by seqcol digest
DIR_NODE_TTL = SHORT_TIMEOUT / 2  # a mutable directory's node is reused this long (seconds)
_QUICK = frozenset({"root", "latest", "instance", "namespace", "file"})  # see Tree.quick


class FsError(Exception):
    """An expected failure of a request, carrying the errno to answer with."""

    def __init__(self, err: int, message: str = "") -> None:
        super().__init__(message or os.strerror(err))
        self.errno = err


@dataclass
class FastaContent:
    """An open alias .fa: its one-record layout and its residues (whole-genome files, a
    collection's or a whole-assembly view's, are `GenomeFasta`).

    `seq_ids[i]` is the stored sequence of record `i` of the layout.
    `instance` is None in a mounted root until the first read resolves it (a worker thread
    may open the instance's databases; open() itself stays I/O-free).
    """

    inline: ClassVar[bool] = True  # reads may run on the trio thread (ops.ReadPlacement)
    layout: FastaLayout
    instance: Instance | None
    node: AliasFile | ViewNode
    seq_ids: tuple[str, ...]

    def read(self, tree: Tree, offset: int, size: int) -> bytes | np.ndarray:
        """The file's bytes [offset, offset+size) as any contiguous buffer (pyfuse3 takes one)."""
        if self.instance is None:
            self.instance = tree.instance(self.node)
        inst, ids = self.instance, self.seq_ids
        return self.layout.render_buffer(offset, size, lambda r, a, b: inst.fetch(ids[r], a, b))

    def read_cached(self, offset: int, size: int) -> bytes | np.ndarray | None:
        """The bytes if every residue is already in memory, else None: never does I/O."""
        inst, ids = self.instance, self.seq_ids
        if inst is None:
            return None

        def fetch(r: int, a: int, b: int) -> bytes | np.ndarray:
            data = inst.fetch_cached(ids[r], a, b)
            if data is None:
                raise _NotCached
            return data

        try:
            return self.layout.render_buffer(offset, size, fetch)
        except _NotCached:
            return None


class _NotCached(Exception):
    """Raised inside render when a residue range is not in memory."""


@dataclass
class BytesContent:
    """An open index file: small, synthesised in full at open time."""

    inline: ClassVar[bool] = True
    data: bytes

    def read(self, tree: Tree, offset: int, size: int) -> bytes:
        return self.data[offset : offset + size]


Content = FastaContent | BytesContent | GenomeFasta | StreamedContent


class Tree:
    """The mounted source seen as a tree of nodes, each named by its inode number."""

    def __init__(
        self,
        source: Instance | Root,
        mountpoint: str,
        width: int = 60,
        list_index_files: bool = True,
    ) -> None:
        if width < 1:
            raise ValueError(f"line width must be >= 1, got {width}")
        self.source = source
        self.width = width
        self.list_index_files = list_index_files
        self.mountpoint = os.path.realpath(mountpoint).rstrip("/")
        self.inodes = Inodes()
        self._recent: LRUCache = LRUCache(NODE_CACHE_SIZE)  # ino -> immutable node
        # ino -> (expiry, node): directories that may change (a master's), briefly; one entry
        # per directory asked about, so bounded by the directories, never by the files
        self._dirs: dict[int, tuple[float, Node]] = {}
        self.collections = CollectionViews(width)

    # ---- inode numbers <-> nodes -----------------------------------------------------------
    def ino(self, node: Node) -> int:
        return self.inodes.number(node)

    def cached(self, ino: int) -> Node | None:
        """The node of `ino` if it is immutable and was answered lately, or a directory
        answered less than DIR_NODE_TTL ago (no I/O)."""
        node = self._recent.get(ino)
        if node is None:
            hit = self._dirs.get(ino)
            if hit is not None and hit[0] > time.monotonic():
                return hit[1]
        return node  # type: ignore[no-any-return]

    def remember(self, ino: int, node: Node) -> None:
        """Keep an immutable node in the bounded cache (a lookup is usually followed by a
        getattr or an open of the same inode), and a mutable directory for DIR_NODE_TTL:
        every lookup of a master's file first asks for its directory, which otherwise is
        rebuilt each time (a few memoised facts, re-read once a second anyway)."""
        if node.immutable:
            self._recent[ino] = node
        elif node.is_dir:
            self._dirs[ino] = (time.monotonic() + DIR_NODE_TTL, node)

    def node(self, ino: int) -> Node:
        """The node an inode number names, rebuilt from the number (FsError ESTALE if none)."""
        node = self.cached(ino)
        if node is not None:
            return node
        key = self.inodes.key(ino)
        if key is None:
            raise FsError(errno.ESTALE, f"unknown inode {ino}")
        node = self._node_of(key)
        self.remember(ino, node)
        return node

    def quick(self, ino: int) -> bool:
        """Whether rebuilding the node of `ino` costs at most a query or two and opens
        nothing: directories above the files, `latest` and alias files. Whole-assembly views
        and collections may be built or sized first (seconds): not these."""
        key = self.inodes.key(ino)
        return key is not None and key[0] in _QUICK

    def describe(self, ino: int) -> str:
        """A path for the log, without I/O (the key when the node is not at hand)."""
        node = self.cached(ino)
        if node is not None:
            return node.path
        key = self.inodes.key(ino)
        if key is None:
            return f"inode {ino}"
        what = key[0]
        top = f"/{key[1]}" if len(key) > 1 and key[1] else ""
        if what in ("namespace", "view"):
            return f"{top}/{key[2]}"
        if what == "collections":
            return f"{top}/{COLLECTIONS}" + (f"/{BY_DIGEST}" if key[2] else "")
        if what == "cfile":
            _w, _i, by_digest, ckind, cid = key
            assert isinstance(ckind, CollectionKind)
            sub = f"/{BY_DIGEST}" if by_digest else ""
            return f"{top}/{COLLECTIONS}{sub}/(collection {cid}){ckind.suffix}"
        if what == "file":
            _what, _inst, variant, kind, rowid = key
            assert isinstance(variant, int) and isinstance(kind, FileKind)
            return f"{top}/{VARIANTS[variant] or '(stored)'}/(alias row {rowid}){kind.suffix}"
        return {"root": "/", "latest": "/latest"}.get(str(what), top)

    def _node_of(self, key: Key) -> Node:
        what = key[0]
        if what == "root":
            return self.root()
        if what == "latest":
            return self._latest_node()
        inst = str(key[1])
        if what == "instance":
            if not isinstance(self.source, Root) or not self.source.has(inst):
                raise FsError(errno.ENOENT, f"instance {inst} is gone")
            return self._instance_dir(inst)
        parent = self._instance_node(inst)
        if what == "namespace":
            nsdir = str(key[2])
            if self.instance(parent).namespace(nsdir) is None:
                raise FsError(errno.ENOENT, f"namespace {nsdir} is gone")
            return self._namespace_node(parent, nsdir)
        if what == "collections":
            return self._collections_node(parent, bool(key[2]))
        if what == "cfile":
            _w, _i, by_digest, ckind, cid = key
            assert isinstance(ckind, CollectionKind) and isinstance(cid, int)
            cdir = self._collections_node(parent, bool(by_digest))
            info = self.collections.store(self.instance(parent)).by_id(cid)
            if info is None:
                raise FsError(errno.ESTALE, f"collection {cid} does not exist")
            return self._collection_file(cdir, info, ckind)
        if what == "view":
            instance = self.instance(parent)
            catalog = instance.assemblies(self.width)
            vf = catalog.lookup(str(key[2]))
            if vf is None:
                raise FsError(errno.ENOENT, f"view {key[2]} is gone")
            return self._view_node(parent, instance, catalog, vf)
        _what, _inst, variant, kind, rowid = key
        assert isinstance(variant, int) and isinstance(kind, FileKind) and isinstance(rowid, int)
        return self._file_of_row(parent, variant, kind, rowid)

    def _file_of_row(
        self, parent: InstanceDir, variant: int, kind: FileKind, rowid: int
    ) -> AliasFile:
        inst = self.instance(parent)
        stored = inst.row(rowid)
        if stored is None:
            raise FsError(errno.ESTALE, f"alias row {rowid} does not exist")
        nsdir = VARIANTS[variant] or stored.namespace
        nsmap = inst.namespace(nsdir)
        alias = None
        if nsmap is not None and nsmap.stored == stored.namespace:
            alias = nsmap.to_dir(stored.alias)
        if nsmap is None or alias is None:
            raise FsError(errno.ESTALE, f"alias row {rowid} is not shown in {nsdir}")
        row = AliasRow(
            rowid,
            alias,
            encode_name(alias),
            stored.alias,
            stored.seq_id,
            stored.length,
            stored.added_ns,
        )
        return self._alias_file(self._namespace_node(parent, nsdir), inst, nsmap, row, kind)

    # ---- nodes ------------------------------------------------------------------------------
    def root(self) -> Directory:
        if isinstance(self.source, Root):
            return RootDir(
                path="/",
                mtime_ns=self.source.mtime_ns(),
                frozen=False,
                instances=len(self.source.names()),
            )
        inst = self.source
        return InstanceDir(
            path="/",
            mtime_ns=inst.mtime_ns,
            frozen=inst.frozen,
            # over a URL, counting the namespaces is a walk of remote index pages that the
            # first lookup of every path would wait for: the link count says "not counted"
            namespaces=None if inst.remote else _subdirectories(inst),
        )

    def instance(self, node: Node) -> Instance:
        if isinstance(self.source, Instance):
            return self.source
        name = getattr(node, "inst", "")
        if not self.source.has(name):
            raise FsError(errno.ENOENT, f"instance {name} is gone")
        return self.source.instance(name)

    def _instance_node(self, inst: str) -> InstanceDir:
        """The instance directory `inst` ("" for a mounted instance)."""
        if not inst:
            root = self.root()
            assert isinstance(root, InstanceDir)
            return root
        assert isinstance(self.source, Root)
        if not self.source.has(inst):
            raise FsError(errno.ENOENT, f"instance {inst} is gone")
        return self._instance_dir(inst)

    def _instance_dir(self, name: str) -> InstanceDir:
        assert isinstance(self.source, Root)
        st = os.stat(os.path.join(self.source.path, name))
        inst = self.source.instance(name)
        return InstanceDir(
            path="/" + name,
            mtime_ns=st.st_mtime_ns,
            frozen=False,  # a root's listing changes: its instance directories are re-read
            inst=name,
            namespaces=_subdirectories(inst),
        )

    def _latest_node(self) -> LatestLink:
        assert isinstance(self.source, Root)
        target = self.source.latest()
        if target is None:
            raise FsError(errno.ENOENT, "latest names no instance")
        return LatestLink(
            path="/latest", mtime_ns=self.source.mtime_ns(), frozen=False, target=target
        )

    def _namespace_node(self, parent: InstanceDir, nsdir: str) -> NamespaceDir:
        inst = self.instance(parent)
        return NamespaceDir(
            path=_join(parent.path, encode_name(nsdir)),
            mtime_ns=inst.mtime_ns,
            frozen=inst.frozen,
            inst=parent.inst,
            nsdir=nsdir,
        )

    def _alias_file(
        self,
        ns_node: NamespaceDir,
        inst: Instance,
        nsmap: NamespaceMap,
        row: AliasRow,
        kind: FileKind,
    ) -> AliasFile:
        """One of the four files of an alias row.

        A snapshot's files share the instance's one mtime; a master's carry their row's
        `added` time, which never changes, so a re-pointed alias's new file has a new mtime
        and the kernel never sees an inode's attributes change.
        """
        base = _join(ns_node.path, row.stem)
        fa, fai, dct = file_sizes(
            row.stem, row.length, self.width, file_uri(self.mountpoint + base + ".fa")
        )
        return AliasFile(
            path=base + kind.suffix,
            mtime_ns=inst.mtime_ns if inst.frozen else row.added_ns,
            frozen=inst.frozen,
            inst=ns_node.inst,
            nsdir=ns_node.nsdir,
            variant=_variant(nsmap),
            rowid=row.rowid,
            alias=row.alias,
            seq_id=row.seq_id,
            length=row.length,
            file_kind=kind,
            file_size=(fa, fai, dct, dct)[kind],
        )

    def _nsmap(self, ns_node: NamespaceDir) -> tuple[Instance, NamespaceMap]:
        inst = self.instance(ns_node)
        nsmap = inst.namespace(ns_node.nsdir)
        if nsmap is None:
            raise FsError(errno.ENOENT, f"namespace {ns_node.nsdir} is gone")
        return inst, nsmap

    # ---- lookup -----------------------------------------------------------------------------
    def lookup(self, parent: Node, name: str) -> Node:
        """The child `name` of `parent`; FsError(ENOENT) for anything not in the tree."""
        if not parent.is_dir:
            raise FsError(errno.ENOTDIR)
        if name in (".", ".."):
            raise FsError(errno.ENOENT)  # the kernel resolves these itself
        if isinstance(parent, RootDir):
            assert isinstance(self.source, Root)
            if name == "latest":
                return self._latest_node()
            if not self.source.has(name):
                raise FsError(errno.ENOENT)
            return self._instance_dir(name)
        if isinstance(parent, InstanceDir):
            inst = self.instance(parent)
            try:
                nsdir: str | None = decode_name(name)
            except ValueError:
                nsdir = None
            if nsdir is not None and inst.namespace(nsdir) is not None:
                return self._namespace_node(parent, nsdir)  # a namespace wins over a view
            if name == COLLECTIONS:
                return self._collections_node(parent, False)
            catalog = inst.assemblies(self.width)
            vf = catalog.lookup(name)
            if vf is None:
                raise FsError(errno.ENOENT)
            return self._view_node(parent, inst, catalog, vf)
        if isinstance(parent, CollectionsDir):
            return self._lookup_collection(parent, name)
        assert isinstance(parent, NamespaceDir)
        inst, nsmap = self._nsmap(parent)
        for stem, kind in split_file_name(name):
            try:
                alias = decode_name(stem)
            except ValueError:
                continue
            row = inst.lookup(nsmap, alias)
            if row is not None:
                return self._alias_file(parent, inst, nsmap, row, kind)
        raise FsError(errno.ENOENT)

    # ---- listing ----------------------------------------------------------------------------
    def small_listing(self, node: Node) -> list[Node]:
        """Children of the root or an instance directory (a handful of entries)."""
        if isinstance(node, RootDir):
            assert isinstance(self.source, Root)
            out: list[Node] = []
            for name in self.source.names():
                try:
                    out.append(self._instance_dir(name))
                except Exception as exc:  # noqa: BLE001 - one bad instance must not hide the rest
                    _log_unopenable(name, exc)
            if self.source.latest() is not None:
                out.append(self._latest_node())
            return out
        if isinstance(node, InstanceDir):
            inst = self.instance(node)
            dirs: list[Node] = [self._namespace_node(node, ns) for ns in inst.namespace_dirs()]
            taken = {n.name for n in dirs}
            if COLLECTIONS not in taken:
                dirs.append(self._collections_node(node, False))
            return dirs + self._view_nodes(node, inst, taken | {COLLECTIONS})
        raise FsError(errno.ENOTDIR)

    def _view_nodes(self, parent: InstanceDir, inst: Instance, taken: set[str]) -> list[Node]:
        """The whole-assembly view files of an instance directory, in catalog order.

        Names in `taken` (namespace directories) are skipped. Listing needs exact sizes, so
        every view is resolved here (once for a snapshot); an assembly whose views fail to
        build is logged and left out of the listing, and a lookup of its files is EIO.
        """
        catalog = inst.assemblies(self.width)
        out: list[Node] = []
        failed: set[str] = set()
        for name in catalog.filenames():
            vf = catalog.lookup(name)
            if name in taken or vf is None or vf.assembly in failed:
                continue
            try:
                out.append(self._view_node(parent, inst, catalog, vf))
            except FsError:
                continue  # the assembly went away (a mutable master changed under us)
            except Exception:
                log.exception(
                    "%s: assembly %s: cannot build its views; not listed", parent.path, vf.assembly
                )
                failed.add(vf.assembly)
        return out

    def _view_node(
        self, parent: InstanceDir, inst: Instance, catalog: AssemblyCatalog, vf: ViewFile
    ) -> ViewNode:
        try:
            size = catalog.file_size(vf)
        except UnknownAssemblyError:
            raise FsError(errno.ENOENT, f"assembly {vf.assembly} is gone") from None
        return ViewNode(
            path=_join(parent.path, vf.filename),
            mtime_ns=inst.mtime_ns,
            frozen=inst.frozen,
            inst=parent.inst,
            view=vf,
            file_size=size,
        )

    def alias_page(self, ns_node: NamespaceDir, after: int) -> list[ListedAlias]:
        """The next page of a namespace directory: aliases with row ids above `after`, each
        with the sizes of the files a listing shows (the .fa only, unless index files are
        listed). No node per entry: a listing may run over millions of them."""
        inst, nsmap = self._nsmap(ns_node)
        uri_dir = file_uri(self.mountpoint + ns_node.path + "/")  # stems hold no tab or newline
        frozen_mtime = inst.mtime_ns if inst.frozen else None
        index_files, width = self.list_index_files, self.width
        out = []
        for row in inst.page(nsmap, after, PAGE_SIZE):
            if row.rowid > MAX_ROWID:
                log.warning("%s: row %d beyond inode numbers, not listed", ns_node.path, row.rowid)
                continue
            uri = None if uri_dir is None else uri_dir + row.stem + ".fa"
            fa, fai, dct = file_sizes(row.stem, row.length, width, uri)
            sizes = (fa, fai, dct, dct) if index_files else (fa, -1, -1, -1)
            if index_files and row.alias.endswith(".fa"):
                if inst.lookup(nsmap, row.alias[:-3]) is not None:
                    # <X.fa>.dict is the same name as <X>.fa.dict; X's file wins (see lookup)
                    sizes = (fa, fai, -1, dct)
            mtime = row.added_ns if frozen_mtime is None else frozen_mtime
            out.append(ListedAlias(row.rowid, row.stem.encode("utf-8"), sizes, mtime))
        return out

    def listing_bases(self, ns_node: NamespaceDir) -> tuple[int, ...]:
        """Inode number bases of a namespace listing (`Inodes.file_bases`)."""
        _inst, nsmap = self._nsmap(ns_node)
        return self.inodes.file_bases(ns_node.inst, _variant(nsmap))

    def readlink(self, node: Node) -> str:
        if not isinstance(node, LatestLink):
            raise FsError(errno.EINVAL)
        assert isinstance(self.source, Root)
        target = self.source.latest()
        if target is None:
            raise FsError(errno.ENOENT)
        return target

    # ---- contents ---------------------------------------------------------------------------
    def open_pure(self, node: Node) -> Content | None:
        """Content of an alias's .fa or .fa.fai, which needs no I/O to open (else None)."""
        if isinstance(node, ViewNode | CollectionFile):
            return None
        if not isinstance(node, AliasFile):
            raise FsError(errno.EISDIR if node.is_dir else errno.EINVAL)
        stem = encode_name(node.alias)
        if node.file_kind is FileKind.FASTA:
            inst = self.source if isinstance(self.source, Instance) else None
            lay = layout(stem, node.length, self.width)
            return FastaContent(lay, inst, node, (node.seq_id,))
        if node.file_kind is FileKind.FAI:
            return BytesContent(fai_bytes(stem, node.length, self.width))
        return None

    def open(self, node: Node) -> Content:
        """Content of any file (a .dict looks up the stored MD5: run in a worker thread)."""
        content = self.open_pure(node)
        if content is not None:
            return content
        if isinstance(node, ViewNode):
            return self._open_view(node)
        if isinstance(node, CollectionFile):
            return self._open_collection(node)
        assert isinstance(node, AliasFile)
        inst = self.instance(node)
        stem = encode_name(node.alias)
        fasta_path = node.path[: -len(node.file_kind.suffix)] + ".fa"
        uri = file_uri(self.mountpoint + fasta_path)
        data = dict_bytes(stem, node.length, inst.sr.sam_m5(node.seq_id), uri)
        if len(data) != node.size:
            raise RuntimeError(f"{node.path}: .dict is {len(data)} bytes, stat said {node.size}")
        return BytesContent(data)

    def _open_view(self, node: ViewNode) -> Content:
        """A view's FASTA reads like a collection's (GenomeFasta); its sidecars are small bytes.

        The content is fixed at open: a handle of a mutable master keeps serving the view it
        opened, whatever the instance does meanwhile.
        """
        vf = node.view
        inst = self.instance(node)
        try:
            view = inst.assemblies(self.width).view_of(vf)
        except UnknownAssemblyError:
            raise FsError(errno.ENOENT, f"assembly {vf.assembly} is gone") from None
        if vf.kind == "fa":
            return GenomeFasta(view.genome, inst)
        return BytesContent(view.file_bytes(vf.kind))

    # ---- collections --------------------------------------------------------------------------
    def _collections_node(self, parent: InstanceDir, by_digest: bool) -> CollectionsDir:
        inst = self.instance(parent)
        path = _join(parent.path, COLLECTIONS)
        return CollectionsDir(
            path=_join(path, BY_DIGEST) if by_digest else path,
            mtime_ns=inst.mtime_ns,
            frozen=inst.frozen,
            inst=parent.inst,
            by_digest=by_digest,
        )

    def _collection_file(
        self, cdir: CollectionsDir, info: CollectionInfo, kind: CollectionKind
    ) -> CollectionFile:
        inst = self.instance(cdir)
        try:
            lay = self.collections.layout(inst, info)
        except CollectionGoneError:
            raise FsError(errno.ENOENT, f"collection {info.name} is gone") from None
        stem = info.digest if cdir.by_digest else info.name
        mtime = None if inst.frozen else added_ns(info)
        return CollectionFile(
            path=_join(cdir.path, stem + kind.suffix),
            mtime_ns=inst.mtime_ns if mtime is None else mtime,
            frozen=inst.frozen,
            inst=cdir.inst,
            by_digest=cdir.by_digest,
            cid=info.id,
            file_kind=kind,
            stem=stem,
            file_size=lay.size(kind),
        )

    def _lookup_collection(self, parent: CollectionsDir, name: str) -> Node:
        if name == BY_DIGEST and not parent.by_digest:
            return self._collections_node(self._instance_node(parent.inst), True)
        store = self.collections.store(self.instance(parent))
        for stem, kind in split_collection_file_name(name):
            info = store.first_with_digest(stem) if parent.by_digest else store.find(stem)
            if info is not None and 0 < info.id <= MAX_COLLECTION_ID:
                return self._collection_file(parent, info, kind)
        raise FsError(errno.ENOENT)

    def collection_page(self, cdir: CollectionsDir, after: int) -> list[ListedCollection]:
        """The next page of /collections (or by-digest): collections with ids above `after`,
        each with its six files' sizes (-1: not listed). No node per entry."""
        inst = self.instance(cdir)
        store = self.collections.store(inst)
        out = []
        for info in store.page_by_id(after, COLLECTION_PAGE_SIZE, cdir.by_digest):
            if info.id > MAX_COLLECTION_ID:
                log.warning("%s: collection id %d beyond inode numbers", cdir.path, info.id)
                continue
            try:
                sizes = list(self.collections.layout(inst, info).sizes)
            except CollectionGoneError:
                continue  # replaced meanwhile
            stem = info.digest if cdir.by_digest else info.name
            if not self.list_index_files:
                sizes[1:] = [-1] * (len(sizes) - 1)  # list=fa: the .fa only, as in namespaces
            elif not cdir.by_digest and stem.endswith(".fa") and store.find(stem[:-3]):
                sizes[CollectionKind.DICT] = -1  # <x.fa>.dict is <x>.fa.dict: x's file wins
            mtime = None if inst.frozen else added_ns(info)
            out.append(
                ListedCollection(
                    info.id,
                    stem.encode("utf-8"),
                    tuple(sizes),
                    inst.mtime_ns if mtime is None else mtime,
                )
            )
        return out

    def collection_bases(self, cdir: CollectionsDir) -> tuple[int, ...]:
        """Inode number bases of a /collections listing (`Inodes.collection_bases`)."""
        return self.inodes.collection_bases(cdir.inst, cdir.by_digest)

    def _open_collection(self, node: CollectionFile) -> Content:
        """The FASTA renders blocks of records on each read; an index file is rendered whole
        when small, else generated front to back per handle."""
        inst = self.instance(node)
        store = self.collections.store(inst)
        info = store.by_id(node.cid)
        if info is None:
            raise FsError(errno.ENOENT, f"collection {node.stem} is gone")
        kind = node.file_kind
        try:
            lay = self.collections.layout(inst, info)
            if kind is CollectionKind.FASTA:
                return GenomeFasta.open(lay, inst)
            content = open_index(lay, kind, inst, node.path)
        except CollectionGoneError:
            raise FsError(errno.ENOENT, f"collection {node.stem} is gone") from None
        return BytesContent(content) if isinstance(content, bytes) else content

    def total_residues(self) -> int:
        if isinstance(self.source, Instance):
            return self.source.total_residues()
        total = 0
        for name in self.source.names():
            try:
                total += self.source.instance(name).total_residues()
            except Exception as exc:  # noqa: BLE001 - statfs must answer (umount relies on it)
                _log_unopenable(name, exc)
        return total

    def close(self) -> None:
        self.collections.close()
        self.source.close()


class ListedCollection(NamedTuple):
    """One collection of a /collections listing."""

    cid: int  # the readdir cursor and, with the directory's bases, the inode numbers
    stem: bytes  # the collection's name (or digest)
    sizes: tuple[int, ...]  # by CollectionKind; -1: not listed
    mtime_ns: int


class ListedAlias(NamedTuple):
    """One alias of a namespace listing: what readdir needs, and no more (a tuple: cheap)."""

    rowid: int  # the readdir cursor and, with a directory's bases, the inode numbers
    stem: bytes  # file name without suffix
    sizes: tuple[int, int, int, int]  # by FileKind; -1: not listed
    mtime_ns: int


def _variant(nsmap: NamespaceMap) -> int:
    """Which directory shows a row (identity.VARIANTS)."""
    return 0 if nsmap.identity else VARIANTS.index(nsmap.dirname)


def _log_unopenable(name: str, exc: Exception) -> None:
    """An instance of a mounted root that cannot be read (damaged database, removed meanwhile)
    is left out of the root listing and of statfs; a lookup of it is EIO (or ENOENT if gone)."""
    if isinstance(exc, FileNotFoundError | FsError):
        return
    if isinstance(exc, SeqRepoError):
        log.error("/%s: instance cannot be read, not listed: %s", name, exc)
    else:
        log.error("/%s: instance cannot be read, not listed", name, exc_info=exc)


def _join(parent: str, name: str) -> str:
    return parent.rstrip("/") + "/" + name


__all__ = ["SHORT_TIMEOUT", "Tree"]


def _subdirectories(inst: Instance) -> int:
    """An instance directory's subdirectories: its namespaces and `collections` (unless a
    namespace of that name hides it)."""
    dirs = inst.namespace_dirs()
    return len(dirs) + (COLLECTIONS not in dirs)
