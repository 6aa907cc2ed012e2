"""Independent oracles: expected bytes and names written from the documented rules and the
formats' specifications, never from seqrepofs code, so a test comparing against them checks
both. add_assembly_names re-states what biocommons.seqrepo's command does.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterable
from typing import Any

import pytest


def read_fasta(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """(header, sequence) pairs, read naively and independently of seqrepofs' loader."""
    opener: Any = gzip.open if str(path).endswith(".gz") else open
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


def naive_fasta_record(name: str, seq: str, width: int = 60) -> bytes:
    """One record as a plain line-by-line writer puts it: header, `width` residues a line."""
    lines = [f">{name}\n"] + [seq[i : i + width] + "\n" for i in range(0, len(seq), width)]
    return "".join(lines).encode()


def naive_fasta(records: Iterable[tuple[str, str]], width: int = 60) -> bytes:
    """The FASTA a plain line-by-line writer produces: the oracle for exports and views."""
    return b"".join(naive_fasta_record(name, seq, width) for name, seq in records)


def encode(alias: str) -> str:
    """The documented file-name rule: printable ASCII except % and / pass; the rest is %XX of
    the UTF-8 bytes (uppercase hex); "." and ".." are escaped whole."""
    if alias in (".", ".."):
        return "%2E" * len(alias)
    out = []
    for ch in alias:
        if 0x21 <= ord(ch) <= 0x7E and ch not in "%/":
            out.append(ch)
        else:
            out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8")))
    return "".join(out)


def fai(name: str, seq: str, width: int = 60) -> bytes:
    """The .fai line samtools writes for a one-record file of naive_fasta_record."""
    if not seq:
        return b""
    bases = min(len(seq), width)
    return f"{name}\t{len(seq)}\t{len(name) + 2}\t{bases}\t{bases + 1}\n".encode()


def sam_dict(name: str, seq: str, fasta_path: str) -> bytes:
    """The .dict samtools dict writes for a one-record FASTA at `fasta_path`."""
    md5 = hashlib.md5(seq.upper().encode()).hexdigest()
    return (
        "@HD\tVN:1.0\tSO:unsorted\n"
        f"@SQ\tSN:{name}\tLN:{len(seq)}\tM5:{md5}\tUR:file://{fasta_path}\n"
    ).encode()


def add_assembly_names(sr: Any, assemblies: Iterable[str]) -> None:
    """What ``seqrepo add-assembly-names --partial-load`` does (biocommons.seqrepo cli.py).

    Maps refseq_ac to seq_id through the NCBI namespace (non-current rows included), takes the
    entries with relationship "=" or "<>", and stores ``<assembly>:<name>`` and
    ``<assembly>:<alias>`` for each entry the repository holds. Kept apart from seqrepofs'
    own add-assembly-names, which the assembly tests check against it.
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


# ---- the tools that read FASTA files -------------------------------------------------------------
SAMTOOLS = shutil.which("samtools")
BEDTOOLS = shutil.which("bedtools")
needs_tools = pytest.mark.skipif(
    SAMTOOLS is None or BEDTOOLS is None, reason="samtools and bedtools are the oracles"
)


# ---- biocommons.seqrepo, the reference implementation --------------------------------------------
SEQREPO = shutil.which("seqrepo")  # biocommons.seqrepo's command, a test extra


def reference_cli(root: str | os.PathLike[str], *args: str) -> bytes:
    """The standard output of biocommons.seqrepo's `seqrepo -r ROOT ARGS`, which must succeed."""
    assert SEQREPO is not None
    proc = subprocess.run([SEQREPO, "-r", os.fspath(root), *args], capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


# ---- whole-assembly views (docs/mount.md), straight from the bioutils report ---------------------
PRIMARY_UNITS = ("Primary Assembly", "non-nuclear")


def is_primary(s: dict[str, Any]) -> bool:
    """A report entry of the `.primary` views: an assembled molecule, nuclear or not."""
    return s["sequence_role"] == "assembled-molecule" and s["assembly_unit"] in PRIMARY_UNITS


def _variant(assembly: str, primary: bool) -> list[dict[str, Any]]:
    from bioutils.assemblies import get_assembly

    return [s for s in get_assembly(assembly)["sequences"] if is_primary(s) or not primary]


def _view_name(s: dict[str, Any], style: str) -> str | None:
    return {"ncbi": s["name"], "ucsc": (s["aliases"] or [None])[0], "refseq": s["refseq_ac"]}[style]


def view_records(
    assembly: str, seqs: dict[str, str], style: str, primary: bool
) -> list[tuple[str, str]]:
    """(FASTA name, residues) of a view in report order: the entries of the variant whose RefSeq
    accession `seqs` (refseq_ac -> residues) holds, named in `style`."""
    out = []
    for s in _variant(assembly, primary):
        name = _view_name(s, style)
        if s["refseq_ac"] in seqs and name not in (None, "na"):
            out.append((name, seqs[s["refseq_ac"]]))
    return out


def view_missing(assembly: str, seqs: dict[str, str], style: str, primary: bool) -> set[str]:
    """Report names of the variant's entries that the view cannot carry."""
    kept = {name for name, _ in view_records(assembly, seqs, style, primary)}
    return {s["name"] for s in _variant(assembly, primary) if _view_name(s, style) not in kept}
