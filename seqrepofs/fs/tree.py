"""Paths <-> nodes, directory listings and file contents, over a mounted source.

Synchronous and FUSE-free: `ops` calls these methods from worker threads and turns `FsError`
into the errno the kernel sees. Layout of the tree (names are `encode_name`-encoded)::

    /<namespace>/<alias>.fa | .fa.fai | .dict | .fa.dict      mounting an instance
    /<assembly>[.<style>][.primary].fa | .fa.fai | ...         (whole-assembly views)
    /<instance>/<namespace>/<alias>.fa ...  and  /latest -> <snapshot>   mounting a root
    /<instance>/<assembly>[.<style>][.primary].fa ...

A view file whose name is also a namespace directory's is hidden: the directory wins, in
listings and lookups alike.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..assemblies import AssemblyCatalog, UnknownAssemblyError, ViewFile
from ..errors import SeqRepoError
from ..fasta_view import FastaLayout, decode_name, encode_name
from .content import (
    FileKind,
    dict_bytes,
    fai_bytes,
    file_sizes,
    file_uri,
    layout,
    split_file_name,
)
from .inodes import Node, NodeKind
from .source import AliasRow, Instance, NamespaceMap, Root

log = logging.getLogger("seqrepofs.fs")

LONG_TIMEOUT = 30 * 86400.0  # snapshots never change: let the kernel cache for good
SHORT_TIMEOUT = 1.0  # root listings and a mutable master change under us
PAGE_SIZE = 128


class FsError(Exception):
    """An expected failure of a request, carrying the errno to answer with."""

    def __init__(self, err: int, message: str = "") -> None:
        super().__init__(message or os.strerror(err))
        self.errno = err


@dataclass
class FastaContent:
    """An open .fa (an alias's or a whole-assembly view's): its layout and its residues.

    `seq_ids[i]` is the stored sequence of record `i` of the layout (one record for an alias).
    `instance` is None in a mounted root until the first read resolves it (a worker thread
    may open the instance's databases; open() itself stays I/O-free).
    """

    layout: FastaLayout
    instance: Instance | None
    node: Node
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

    data: bytes

    def read(self, tree: Tree, offset: int, size: int) -> bytes:
        return self.data[offset : offset + size]


Content = FastaContent | BytesContent


class Tree:
    """The mounted source seen as a tree of nodes."""

    def __init__(self, source: Instance | Root, mountpoint: str, width: int = 60) -> None:
        if width < 1:
            raise ValueError(f"line width must be >= 1, got {width}")
        self.source = source
        self.width = width
        self.mountpoint = os.path.realpath(mountpoint).rstrip("/")

    # ---- nodes ------------------------------------------------------------------------------
    def root(self) -> Node:
        if isinstance(self.source, Root):
            return self._root_node()
        inst = self.source
        return Node(
            NodeKind.INSTANCE,
            "/",
            nlink=2 + len(inst.namespace_dirs()),
            mtime_ns=inst.mtime_ns,
            timeout=_timeout(inst),
        )

    def _root_node(self) -> Node:
        assert isinstance(self.source, Root)
        return Node(
            NodeKind.ROOT,
            "/",
            nlink=2 + len(self.source.names()),
            mtime_ns=self.source.mtime_ns(),
            timeout=SHORT_TIMEOUT,
        )

    def instance(self, node: Node) -> Instance:
        if isinstance(self.source, Instance):
            return self.source
        if not self.source.has(node.inst):
            raise FsError(errno.ENOENT, f"instance {node.inst} is gone")
        return self.source.instance(node.inst)

    def refresh(self, node: Node) -> Node:
        """Attributes that may change while mounted (root listing, `latest`)."""
        if node.kind is NodeKind.ROOT:
            return self._root_node()
        if node.kind is NodeKind.LATEST:
            return self._latest_node()
        return node

    def _instance_dir(self, name: str) -> Node:
        assert isinstance(self.source, Root)
        st = os.stat(os.path.join(self.source.path, name))
        return Node(
            NodeKind.INSTANCE,
            "/" + name,
            nlink=2 + len(self.source.instance(name).namespace_dirs()),
            mtime_ns=st.st_mtime_ns,
            timeout=SHORT_TIMEOUT,
            inst=name,
        )

    def _latest_node(self) -> Node:
        assert isinstance(self.source, Root)
        target = self.source.latest()
        if target is None:
            raise FsError(errno.ENOENT, "latest names no instance")
        return Node(
            NodeKind.LATEST,
            "/latest",
            size=len(target.encode()),
            mtime_ns=self.source.mtime_ns(),
            timeout=SHORT_TIMEOUT,
        )

    def _namespace_node(self, parent: Node, nsdir: str) -> Node:
        inst = self.instance(parent)
        return Node(
            NodeKind.NAMESPACE,
            _join(parent.path, encode_name(nsdir)),
            nlink=2,
            mtime_ns=inst.mtime_ns,
            timeout=_timeout(inst),
            inst=parent.inst,
            nsdir=nsdir,
        )

    def _file_nodes(self, ns_node: Node, inst: Instance, row: AliasRow) -> list[Node]:
        """The four files of an alias, in FileKind order."""
        stem = encode_name(row.alias)
        base = _join(ns_node.path, stem)
        fa, fai, dct = file_sizes(
            stem, row.length, self.width, file_uri(self.mountpoint + base + ".fa")
        )
        sizes = {FileKind.FASTA: fa, FileKind.FAI: fai, FileKind.DICT: dct, FileKind.FA_DICT: dct}
        mtime, timeout = inst.mtime_ns, _timeout(inst)
        return [
            Node(
                NodeKind.FILE,
                base + kind.suffix,
                size=sizes[kind],
                mtime_ns=mtime,
                timeout=timeout,
                inst=ns_node.inst,
                nsdir=ns_node.nsdir,
                alias=row.alias,
                file_kind=kind,
                seq_id=row.seq_id,
                length=row.length,
            )
            for kind in FileKind
        ]

    def _nsmap(self, ns_node: Node) -> tuple[Instance, NamespaceMap]:
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
        if parent.kind is NodeKind.ROOT:
            assert isinstance(self.source, Root)
            if name == "latest":
                return self._latest_node()
            if not self.source.has(name):
                raise FsError(errno.ENOENT)
            return self._instance_dir(name)
        if parent.kind is NodeKind.INSTANCE:
            inst = self.instance(parent)
            try:
                nsdir: str | None = decode_name(name)
            except ValueError:
                nsdir = None
            if nsdir is not None and inst.namespace(nsdir) is not None:
                return self._namespace_node(parent, nsdir)  # a namespace wins over a view
            catalog = inst.assemblies(self.width)
            vf = catalog.lookup(name)
            if vf is None:
                raise FsError(errno.ENOENT)
            return self._view_node(parent, inst, catalog, vf)
        inst, nsmap = self._nsmap(parent)
        for stem, kind in split_file_name(name):
            try:
                alias = decode_name(stem)
            except ValueError:
                continue
            row = inst.lookup(nsmap, alias)
            if row is not None:
                return self._file_nodes(parent, inst, row)[kind]
        raise FsError(errno.ENOENT)

    # ---- listing ----------------------------------------------------------------------------
    def small_listing(self, node: Node) -> list[Node]:
        """Children of the root or an instance directory (a handful of entries)."""
        if node.kind is NodeKind.ROOT:
            assert isinstance(self.source, Root)
            out = []
            for name in self.source.names():
                try:
                    out.append(self._instance_dir(name))
                except Exception as exc:  # noqa: BLE001 - one bad instance must not hide the rest
                    _log_unopenable(name, exc)
            if self.source.latest() is not None:
                out.append(self._latest_node())
            return out
        if node.kind is NodeKind.INSTANCE:
            inst = self.instance(node)
            out = [self._namespace_node(node, ns) for ns in inst.namespace_dirs()]
            return out + self._view_nodes(node, inst, {n.name for n in out})
        raise FsError(errno.ENOTDIR)

    def _view_nodes(self, parent: Node, inst: Instance, taken: set[str]) -> list[Node]:
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
        self, parent: Node, inst: Instance, catalog: AssemblyCatalog, vf: ViewFile
    ) -> Node:
        try:
            size = catalog.file_size(vf)
        except UnknownAssemblyError:
            raise FsError(errno.ENOENT, f"assembly {vf.assembly} is gone") from None
        return Node(
            NodeKind.VIEW,
            _join(parent.path, vf.filename),
            size=size,
            mtime_ns=inst.mtime_ns,
            timeout=_timeout(inst),
            inst=parent.inst,
            view=vf,
        )

    def alias_page(self, ns_node: Node, after: str | None) -> list[AliasFiles]:
        """The next page of a namespace directory after stored alias `after`, with its files."""
        inst, nsmap = self._nsmap(ns_node)
        out = []
        for row in inst.page(nsmap, after, PAGE_SIZE):
            files: list[Node | None] = list(self._file_nodes(ns_node, inst, row))
            if row.alias.endswith(".fa") and inst.lookup(nsmap, row.alias[:-3]) is not None:
                # <X.fa>.dict is the same name as <X>.fa.dict; X's file wins (see lookup)
                files[FileKind.DICT] = None
            out.append(AliasFiles(row.stored_alias, files))
        return out

    def readlink(self, node: Node) -> str:
        if node.kind is not NodeKind.LATEST:
            raise FsError(errno.EINVAL)
        assert isinstance(self.source, Root)
        target = self.source.latest()
        if target is None:
            raise FsError(errno.ENOENT)
        return target

    # ---- contents ---------------------------------------------------------------------------
    def open_pure(self, node: Node) -> Content | None:
        """Content of an alias's .fa or .fa.fai, which needs no I/O to open (else None)."""
        if node.kind is NodeKind.VIEW:
            return None
        if node.kind is not NodeKind.FILE:
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
        if node.kind is NodeKind.VIEW:
            return self._open_view(node)
        inst = self.instance(node)
        stem = encode_name(node.alias)
        fasta_path = node.path[: -len(node.file_kind.suffix)] + ".fa"  # type: ignore[union-attr]
        uri = file_uri(self.mountpoint + fasta_path)
        data = dict_bytes(stem, node.length, inst.md5(node.seq_id), uri)
        if len(data) != node.size:
            raise RuntimeError(f"{node.path}: .dict is {len(data)} bytes, stat said {node.size}")
        return BytesContent(data)

    def _open_view(self, node: Node) -> Content:
        """A view's FASTA reads like an alias's (FastaContent); its sidecars are small bytes.

        The content is fixed at open: a handle of a mutable master keeps serving the view it
        opened, whatever the instance does meanwhile.
        """
        vf = node.view
        assert vf is not None
        inst = self.instance(node)
        try:
            view = inst.assemblies(self.width).view_of(vf)
        except UnknownAssemblyError:
            raise FsError(errno.ENOENT, f"assembly {vf.assembly} is gone") from None
        if vf.kind == "fa":
            return FastaContent(view.layout, inst, node, tuple(r.seq_id for r in view.records))
        return BytesContent(view.file_bytes(vf.kind))

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
        self.source.close()


@dataclass(frozen=True, slots=True)
class AliasFiles:
    """One alias of a listing: its readdir cursor and its four files (None = hidden)."""

    stored_alias: str
    files: list[Node | None]


class Listing:
    """Per-opendir state of a namespace directory: resumable positions without OFFSET scans.

    readdir positions are `4 * ordinal + file kind`; the ordinal of an alias maps to a keyset
    cursor (the stored alias before it) through the page held here, so sequential readdir calls
    cost one indexed query per page. A position outside the held page (seekdir) is found by
    paging from the start: correct, just linear.
    """

    def __init__(self, fetch: Callable[[str | None], list[AliasFiles]]) -> None:
        self._fetch = fetch
        self._start = 0  # ordinal of self._page[0]
        self._anchor: str | None = None  # stored alias before self._page[0]
        self._page: list[AliasFiles] | None = None

    def cached(self, ordinal: int) -> list[AliasFiles] | None:
        """Aliases from `ordinal` on if the held page covers it (no I/O), else None."""
        page = self._page
        if page is not None and self._start <= ordinal < self._start + len(page):
            return page[ordinal - self._start :]
        return None

    def rows_from(self, ordinal: int) -> list[AliasFiles]:
        """Aliases from `ordinal` on, at most a page; [] at the end. May do I/O."""
        hit = self.cached(ordinal)
        if hit is not None:
            return hit
        page = self._page
        if ordinal == 0:
            after, start = None, 0
        elif page is not None and ordinal == self._start + len(page):
            after = page[-1].stored_alias if page else self._anchor
            start = ordinal
        else:  # a seek: walk from the start
            after, start = None, 0
            while True:
                rows = self._fetch(after)
                if not rows or start + len(rows) > ordinal:
                    break
                start += len(rows)
                after = rows[-1].stored_alias
            if rows and start <= ordinal:
                self._start, self._anchor, self._page = start, after, rows
                return rows[ordinal - start :]
            self._start, self._anchor, self._page = start, after, rows
            return []
        rows = self._fetch(after)
        self._start, self._anchor, self._page = start, after, rows
        return rows


def _log_unopenable(name: str, exc: Exception) -> None:
    """An instance of a mounted root that cannot be read (damaged database, removed meanwhile)
    is left out of the root listing and of statfs; a lookup of it is EIO (or ENOENT if gone)."""
    if isinstance(exc, FileNotFoundError | FsError):
        return
    if isinstance(exc, SeqRepoError):
        log.error("/%s: instance cannot be read, not listed: %s", name, exc)
    else:
        log.error("/%s: instance cannot be read, not listed", name, exc_info=exc)


def _timeout(inst: Instance) -> float:
    return LONG_TIMEOUT if inst.frozen else SHORT_TIMEOUT


def _join(parent: str, name: str) -> str:
    return parent.rstrip("/") + "/" + name
