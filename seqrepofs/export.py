"""Export stored sequences as FASTA, streaming (a chromosome is never held whole).

Two header styles:
- `aliases` (default): the reference's header, `>` + the sorted, space-separated `ns:alias`
  list of the selected alias records (all current aliases when exporting everything);
- `name`: `>` + `fasta_view.encode_name(alias)` for the alias in the requested namespace, one
  record per alias: the exact bytes a mount serves for `/<NS>/<alias>.fa`.
The body is `width` residues per line, LF, the last line shorter, newline-terminated (the rule
`fasta_view.FastaLayout` uses).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from .errors import AliasNotFoundError, InvalidInputError
from .fasta_view import encode_name
from .seqrepo import SeqRepo, split_identifier

WINDOW_LINES = 65536  # lines per fetch: bounds memory for any sequence length


@dataclass(frozen=True)
class ExportRecord:
    """One FASTA record to write: header text (without `>`) and the sequence's seq_id."""

    header: str
    seq_id: str


def wrap(residues: bytes, width: int) -> bytes:
    """`residues` as lines of `width` (a multiple of `width` long, or the last piece)."""
    n = len(residues)
    full = n // width
    arr = np.frombuffer(residues, dtype=np.uint8)
    out = np.empty((full, width + 1), dtype=np.uint8)
    out[:, :width] = arr[: full * width].reshape(full, width)
    out[:, width] = 10
    data = out.tobytes()
    if n % width:
        data += residues[full * width :] + b"\n"
    return data


def write_sequence(sr: SeqRepo, seq_id: str, out: BinaryIO, width: int) -> None:
    """Write a stored sequence wrapped at `width`, fetching a window at a time."""
    for piece in sr.iter_bytes(seq_id, window=width * WINDOW_LINES):
        out.write(wrap(piece, width))


def header_of(records: Iterable[dict[str, Any]]) -> str:
    """The reference's header: `ns:alias` sorted by (namespace, alias), space-separated."""
    pairs = sorted({(r["namespace"], r["alias"]) for r in records})
    return " ".join(f"{ns}:{alias}" for ns, alias in pairs)


def _api_namespace(namespace: str) -> str:
    """The namespace as the translated records name it (any-case `refseq` -> `refseq`)."""
    return "refseq" if namespace.lower() == "refseq" and namespace != "NCBI" else namespace


def select(
    sr: SeqRepo,
    namespace: str | None = None,
    aliases: Sequence[str] = (),
    header: str = "aliases",
) -> Iterator[ExportRecord]:
    """The records to export, as the reference selects them.

    ALIASES given: those (each optionally `ns:alias`; `namespace` applies to bare ones); all
    are resolved before anything is yielded, so a missing one fails before any output.
    Else with `namespace`: every sequence with an alias there. Else everything.
    """
    if header not in ("aliases", "name"):
        raise InvalidInputError(f"unknown header style {header!r} (use 'aliases' or 'name')")
    if aliases:
        return iter(_select_aliases(sr, namespace, aliases, header))
    if header == "name":
        if namespace is None:
            raise InvalidInputError("--header name needs a namespace (-n NS) or ns:alias arguments")
        target = _api_namespace(namespace)
        return (
            ExportRecord(_fasta_name(namespace, r["alias"]), r["seq_id"])
            for r in sr.aliases.find_aliases(namespace=namespace)
            if r["namespace"] == target
        )
    rows = sr.aliases.find_aliases(namespace=namespace)
    return (
        ExportRecord(header_of(group), seq_id)
        for seq_id, group in itertools.groupby(rows, key=lambda r: r["seq_id"])
    )


def _fasta_name(namespace: str, alias: str) -> str:
    """The record name a mount gives /<namespace>/<alias>.fa; an alias no name can represent
    (empty, or not valid Unicode) stops the export with a message naming it."""
    try:
        return encode_name(alias)
    except ValueError as exc:
        raise InvalidInputError(f"{namespace}:{alias!r}: no FASTA name for it ({exc})") from None


def _select_aliases(
    sr: SeqRepo, namespace: str | None, aliases: Sequence[str], header: str
) -> list[ExportRecord]:
    out: list[ExportRecord] = []
    seen: set[tuple[str | None, str]] = set()
    for given in aliases:
        ns, alias = (namespace, given) if namespace else split_identifier(given)
        if (ns, alias) in seen:
            continue
        seen.add((ns, alias))
        records = list(sr.aliases.find_aliases(namespace=ns, alias=alias))
        if not records:
            raise AliasNotFoundError(f"{given}: no such alias" + (f" in {ns}" if ns else ""))
        by_seq: dict[str, list[dict[str, Any]]] = {r["seq_id"]: [] for r in records}
        for r in records:
            by_seq[r["seq_id"]].append(r)
        if header == "name":
            if ns is None:
                raise InvalidInputError(
                    f"{given}: --header name needs a namespace (-n NS or {given!r} as ns:alias)"
                )
            if len(by_seq) > 1:
                raise InvalidInputError(f"{ns}:{alias} names {len(by_seq)} sequences")
            out.append(ExportRecord(_fasta_name(ns, alias), records[0]["seq_id"]))
        else:
            out.extend(ExportRecord(header_of(rs), seq_id) for seq_id, rs in by_seq.items())
    return out


def export(
    sr: SeqRepo,
    out: BinaryIO,
    namespace: str | None = None,
    aliases: Sequence[str] = (),
    width: int = 60,
    header: str = "aliases",
) -> int:
    """Write FASTA for the selected records to `out`; returns the number of records."""
    if width < 1:
        raise InvalidInputError(f"line width must be at least 1, not {width}")
    n = 0
    for rec in select(sr, namespace, aliases, header):
        out.write(b">" + rec.header.encode("utf-8") + b"\n")
        write_sequence(sr, rec.seq_id, out, width)
        n += 1
    return n


def alias_line(records: Iterable[dict[str, Any]]) -> str:
    """One sequence's line of `export-aliases`: its `ns:alias` tab-separated, VMC first and
    written as its GA4GH form (`VMC:GS_x` -> `GA4GH:SQ.x`), as the reference writes it."""
    nsaliases = [f"{r['namespace']}:{r['alias']}" for r in records]
    nsaliases.sort(key=lambda a: (not a.startswith("VMC:"), a))
    nsaliases[0] = nsaliases[0].replace("VMC:GS_", "GA4GH:SQ.")
    return "\t".join(nsaliases)


def export_aliases(sr: SeqRepo, out: BinaryIO, namespace: str | None = None) -> int:
    """Write one alias_line per sequence (those with an alias in `namespace` if given);
    returns the number of lines."""
    n = 0
    rows = sr.aliases.find_aliases()
    for _seq_id, group in itertools.groupby(rows, key=lambda r: r["seq_id"]):
        records = list(group)
        if namespace and not any(r["namespace"] == namespace for r in records):
            continue
        out.write((alias_line(records) + "\n").encode("utf-8"))
        n += 1
    return n
