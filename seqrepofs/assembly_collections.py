"""Whole-assembly views recorded as sequence collections (built from the assembly reports).

A view of :mod:`seqrepofs.assemblies` (``GRCh38.ucsc.primary`` …) is a list of (name, length,
seq_id) in report order: exactly a collection. Recording it in the collections database gives
the assembly the same digest, REST endpoints and listing as a loaded FASTA, and a reader (the
mount) can serve both from the one store. The collection is named by the view's base name
(``GRCh38``, ``GRCh38.ucsc``, ``GRCh38.primary``, ``GRCh38.ucsc.primary``, …) and its
``source`` says which report it came from; views with no records are not recorded.

A collection of that name that did not come from an assembly report (a FASTA loaded as
``GRCh38.fa``) is never overwritten: it is left as it is and reported as skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from .assemblies import STYLES, get_view, known_assemblies
from .seqrepo import SeqRepo
from .store.collections import CollectionInfo, CollectionWriter

log = logging.getLogger(__name__)

SOURCE_PREFIX = "assembly report "


@dataclass
class AssemblyRecording:
    recorded: list[CollectionInfo] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # names held by other collections


def record_assembly_collections(
    instance_dir: str, assemblies: Sequence[str] | None = None
) -> AssemblyRecording:
    """Record (or refresh) the views of ``assemblies`` (default: every known assembly) as
    collections, in one transaction; holds the instance's writer lock meanwhile."""
    out = AssemblyRecording()
    with SeqRepo(instance_dir, writeable=True) as sr:  # the writer lock
        names = list(assemblies) if assemblies is not None else known_assemblies(sr)
        writer = CollectionWriter(instance_dir)
        try:
            for assembly in names:
                for style in STYLES:
                    for primary in (False, True):
                        view = get_view(sr, assembly, style, primary)
                        if not view.records:
                            continue
                        _record_view(
                            writer,
                            out,
                            view.base_name,
                            assembly,
                            view.seqcol_digest,
                            [(r.name, r.length, r.seq_id) for r in view.records],
                        )
            writer.commit()
        finally:
            writer.close()
    return out


def _record_view(
    writer: CollectionWriter,
    out: AssemblyRecording,
    name: str,
    assembly: str,
    digest: str,
    records: list[tuple[str, int, str]],
) -> None:
    old = writer.exists(name)
    source = SOURCE_PREFIX + assembly
    if old is not None and old.source != source:
        log.warning(
            "collection %s exists (from %s); the %s view is not recorded under its name",
            name,
            old.source,
            name,
        )
        out.skipped.append(name)
        return
    if old is not None and old.digest == digest:
        out.unchanged.append(name)
        return
    out.recorded.append(writer.record(name, records, replace=True, source=source))
