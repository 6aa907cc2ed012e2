"""What a load records as sequence collections: each FASTA file, or all files under one name.

The loader hands every stored record here in input order (after its digests are known); a
record numbered 1 starts the next file. Collections are written in their own transaction,
digested before the loader's last sequence commit (so a refusal rolls that batch back) and
committed after it (so no committed record names an uncommitted sequence).

Re-loading a file under its name is not an error when the collection comes out identical
(same seqcol digest); a different collection under an existing name is refused unless
``replace`` (then it replaces the old one, in the same transaction).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import InvalidInputError
from ..store.collections import (
    CollectionInfo,
    CollectionWriter,
    PendingCollection,
    check_collection_name,
)
from .errors import LoadError
from .fasta import FastaRecord

_COMPRESSED = (".gz", ".bgz", ".bgzf", ".bz2")
_FASTA = (".fa", ".fasta", ".fna", ".faa", ".ffn", ".frn", ".fas", ".mfa", ".fsa", ".seq")


def default_name(path: str) -> str:
    """A file's collection name: its base name without compression and FASTA extensions."""
    if path == "-":
        raise InvalidInputError(
            "reading standard input: name its collection with --collection NAME"
        )
    name = os.path.basename(path)
    for suffixes in (_COMPRESSED, _FASTA):
        for suffix in suffixes:
            if name.lower().endswith(suffix) and len(name) > len(suffix):
                name = name[: -len(suffix)]
                break
    return name


@dataclass(frozen=True)
class CollectionPlan:
    """The collection each input file goes to (consecutive files may share one)."""

    names: tuple[str | None, ...]  # None: the file is not recorded (standard input, unnamed)
    replace: bool = False

    @property
    def records_every_file(self) -> bool:
        return None not in self.names


def plan(
    paths: Sequence[str],
    name: str | None = None,
    replace: bool = False,
    unnamed_stdin: bool = False,
) -> CollectionPlan:
    """One collection per file (named by :func:`default_name`), or all files as ``name``.

    Standard input has no name: it needs ``name``, or with ``unnamed_stdin`` is not recorded.
    Raises InvalidInputError for a bad name, or two files that would get the same default name.
    """
    if name is not None:
        check_collection_name(name)
        return CollectionPlan(tuple(name for _ in paths), replace)
    names = tuple(None if p == "-" and unnamed_stdin else default_name(p) for p in paths)
    seen: dict[str, str] = {}
    for path, n in zip(paths, names, strict=True):
        if n is None:
            continue
        try:
            check_collection_name(n)
        except ValueError as exc:
            raise InvalidInputError(f"{path}: {exc}; name it with --collection NAME") from None
        if n in seen:
            raise InvalidInputError(
                f"{seen[n]} and {path} would both be collection {n!r}; load them"
                " separately with --collection NAME, or together as one"
            )
        seen[n] = path
    return CollectionPlan(names, replace)


class Recorder:
    """Receives a load's stored records and records the planned collections."""

    def __init__(self, instance_dir: str, collection_plan: CollectionPlan) -> None:
        self.plan = collection_plan
        self._writer = CollectionWriter(instance_dir)
        self._file = -1
        self._pending: PendingCollection | None = None
        self._source: str | None = None
        self.recorded: list[CollectionInfo] = []

    def add(self, rec: FastaRecord) -> None:
        if rec.index == 1:
            self._file += 1
            name = self.plan.names[self._file]
            if self._pending is None or self._pending.name != name:
                self._finish_pending()
                if name is not None:
                    self._pending = self._writer.begin(
                        name, replace=self.plan.replace, source=rec.path
                    )
                    self._source = rec.path
        if self._pending is None:  # a file that is not recorded
            return
        try:
            self._writer.add(self._pending, rec.name, len(rec.seq), rec.digests.seq_id)
        except InvalidInputError as exc:
            raise LoadError(str(exc), rec.path, rec.index, rec.name, rec.line) from None

    def _finish_pending(self) -> None:
        if self._pending is None:
            return
        pending, self._pending = self._pending, None
        try:
            info = self._writer.finish(pending)
        except InvalidInputError as exc:  # a duplicate name in the last rows
            raise LoadError(str(exc), self._source) from None
        self.recorded.append(info)

    def finish(self) -> None:
        """Digest the last collection (may refuse: call before the last sequence commit)."""
        self._finish_pending()

    def commit(self) -> None:
        self._writer.commit()
        self._writer.close()

    def abort(self) -> None:
        self._writer.close()
        self.recorded.clear()
