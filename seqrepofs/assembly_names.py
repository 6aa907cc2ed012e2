"""Assembly aliases (GRCh38:1, GRCh38:chr1, …) for stored RefSeq sequences, from bioutils'
assembly reports: what the reference's `add-assembly-names` stores, by the same rule.

A report entry is named when its relationship is "=" or "<>" and its RefSeq accession is an
NCBI alias of a stored sequence (current aliases win over former ones). Its name and its
report aliases become aliases in a namespace named after the assembly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from bioutils.assemblies import get_assemblies

from .seqrepo import SeqRepo

log = logging.getLogger(__name__)


@dataclass
class AddedNames:
    """What one run did: assemblies named, skipped as incomplete, and with nothing to name."""

    added: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)


def add_assembly_names(
    sr: SeqRepo, partial_load: bool = False, reload_all: bool = False
) -> AddedNames:
    """Store every bioutils assembly's names on the sequences of a writable SeqRepo.

    Assemblies whose namespace exists already are left alone unless `reload_all`; one that
    references accessions the repository lacks is skipped unless `partial_load` (then the
    entries it holds are named). Each assembly is committed on its own.
    """
    reports: dict[str, Any] = get_assemblies()
    loaded = set(sr.aliases.namespaces())
    names = sorted(a for a in reports if reload_all or a not in loaded)
    log.info("%d assemblies to load", len(names))
    ncbi = _ncbi_accessions(sr)
    done = AddedNames()
    for name in names:
        entries = [s for s in reports[name]["sequences"] if s["relationship"] in ("=", "<>")]
        if not entries:
            log.info("no '=' sequences to load for %s; skipping", name)
            done.empty.append(name)
            continue
        missing = [s["refseq_ac"] for s in entries if s["refseq_ac"] not in ncbi]
        if missing:
            log.warning(
                "assembly %s references %d accessions not in %s (e.g. %s)",
                name,
                len(missing),
                sr.root_dir,
                ", ".join(str(m) for m in missing[:5]),
            )
            if not partial_load:
                log.warning("skipping %s (-p to load it partially)", name)
                done.skipped.append(name)
                continue
        for s in entries:
            seq_id = ncbi.get(s["refseq_ac"])
            if seq_id is None:
                continue
            for alias in [s["name"], *s["aliases"]]:
                sr.aliases.store_alias(seq_id, name, alias)
        sr.commit()
        log.info("added names of %s", name)
        done.added.append(name)
    return done


def _ncbi_accessions(sr: SeqRepo) -> dict[str, str]:
    """RefSeq accession -> seq_id through the NCBI namespace; current rows win over history."""
    ncbi: dict[str, str] = {}
    for r in sr.aliases.find_aliases(namespace="NCBI", current_only=False):
        if r["namespace"] == "NCBI" and not r["is_current"]:
            ncbi[r["alias"]] = r["seq_id"]
    for r in sr.aliases.find_aliases(namespace="NCBI"):
        if r["namespace"] == "NCBI":
            ncbi[r["alias"]] = r["seq_id"]
    return ncbi
