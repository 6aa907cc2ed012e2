"""Shared test helpers: where the real data lives and an independent FASTA reader."""

from __future__ import annotations

import gzip
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
REAL = DATA / "real"
INSTANCES = REAL / "seqrepo-instances"


def read_fasta(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """(header, sequence) pairs, read naively and independently of seqrepofs' loader."""
    opener = gzip.open if str(path).endswith(".gz") else open
    records: list[tuple[str, str]] = []
    header: str | None = None
    parts: list[str] = []
    with opener(path, "rt") as fh:
        for line in fh:
            line = line.rstrip("\r\n")
            if line.startswith(">"):
                if header is not None:
                    records.append((header, "".join(parts)))
                header, parts = line[1:], []
            elif header is not None:
                parts.append(line.strip())
    if header is not None:
        records.append((header, "".join(parts)))
    return records


def naive_fasta(records: list[tuple[str, str]], width: int = 60) -> bytes:
    """The FASTA a plain line-by-line writer produces: the independent oracle for exports."""
    parts = []
    for name, seq in records:
        parts.append(f">{name}\n")
        parts.extend(seq[i : i + width] + "\n" for i in range(0, len(seq), width))
    return "".join(parts).encode()


def copy_instance(name: str, dest: Path) -> Path:
    """A writable copy of a real instance, so tests never touch the originals."""
    target = dest / name
    shutil.copytree(INSTANCES / name, target)
    for dirpath, _dirs, files in os.walk(target):
        os.chmod(dirpath, 0o755)
        for f in files:
            os.chmod(os.path.join(dirpath, f), 0o644)
    return target


@pytest.fixture
def real_instances(tmp_path: Path) -> dict[str, Path]:
    return {n: copy_instance(n, tmp_path) for n in ("rest-service-2019", "seqrepo-rs-2023")}


def add_assembly_names(sr, assemblies: Iterable[str]) -> None:
    """What ``seqrepo add-assembly-names --partial-load`` does (biocommons.seqrepo cli.py).

    Maps refseq_ac to seq_id through the NCBI namespace (non-current rows included), takes the
    entries with relationship "=" or "<>", and stores ``<assembly>:<name>`` and
    ``<assembly>:<alias>`` for each entry the repository holds. An independent oracle for the
    CLI's add-assembly-names, shared by the assembly tests.
    """
    from bioutils.assemblies import get_assembly

    ncbi = {
        r["alias"]: r["seq_id"]
        for r in sr.aliases.find_aliases(namespace="NCBI", current_only=False)
        if r["namespace"] == "NCBI"
    }
    for assembly in sorted(assemblies):
        for s in get_assembly(assembly)["sequences"]:
            if s["relationship"] not in ("=", "<>") or s["refseq_ac"] not in ncbi:
                continue
            for alias in [s["name"], *s["aliases"]]:
                sr.aliases.store_alias(ncbi[s["refseq_ac"]], assembly, alias)
    sr.commit()
