"""FASTA defline parsing and alias validation, with the reference's (biocommons.seqrepo) rules.

`parse_defline` takes the first word of the header; NCBI `gi|…|ref|ACC|` headers yield one
`refseq:ACC` alias per `ref|` pair, anything else one `<namespace>:<first word>` alias.
`validate_aliases` enforces the reference's alias rules (characters `[-+./_A-Za-z0-9]`,
versioned RefSeq accessions, versioned Ensembl `ENS…` ids). They raise ValueError with a
message the loader turns into a LoadError naming file, record and line.
"""

from __future__ import annotations

import re

_NCBI_PAIR_RE = re.compile(r"(?P<namespace>ref)\|(?P<alias>[^|]+)")
# The reference's `[^-+./_\w]` applied to ASCII text (it reads FASTA as ASCII).
_INVALID_ALIAS_CHAR_RE = re.compile(r"[^-+./_\w]", re.ASCII)
_INVALID_NAMESPACE_RE = re.compile(r"[\s:]")


def check_namespace(namespace: str | None) -> str:
    """The `-n` value of a load: not empty, not `-` (the reference rejects it), no `:`/space."""
    if namespace is None or not namespace.strip():
        raise ValueError("namespace must not be empty")
    if namespace == "-":
        raise ValueError("namespace '-' is not supported (the reference rejects it too)")
    if _INVALID_NAMESPACE_RE.search(namespace):
        raise ValueError(f"namespace {namespace!r} must not contain ':' or whitespace")
    return namespace


def parse_defline(defline: str, namespace: str) -> list[dict[str, str]]:
    """[{namespace, alias}, …] for a header (with or without the leading `>`)."""
    words = defline.split(None, 1)
    if not words:
        raise ValueError("header has no name")
    name = words[0]
    if name.startswith(">"):
        name = name[1:]
        if not name:
            raise ValueError("header has no name")
    pairs = [m.groupdict() for m in _NCBI_PAIR_RE.finditer(name)]
    if pairs:
        return [{"namespace": "refseq", "alias": p["alias"]} for p in pairs]
    return [{"namespace": namespace, "alias": name}]


def validate_aliases(aliases: list[dict[str, str]]) -> None:
    """Raise ValueError naming the first alias the reference would reject."""
    for rec in aliases:
        namespace, alias = rec["namespace"], rec["alias"]
        bad = _INVALID_ALIAS_CHAR_RE.search(alias)
        if bad:
            raise ValueError(
                f"alias {alias!r} contains the invalid character {bad.group()!r}"
                " (allowed: letters, digits and - + . / _)"
            )
        if namespace.startswith("Ensembl") or namespace == "ensembl":
            if alias.startswith("ENS") and "." not in alias:
                raise ValueError(f"{namespace} alias {alias} is unversioned")
        elif (namespace == "NCBI" or namespace.lower() == "refseq") and "." not in alias:
            raise ValueError(f"{namespace} alias {alias} is unversioned")
