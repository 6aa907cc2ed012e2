"""Namespace translation between the API names and the names stored in aliases.sqlite3.

Since biocommons.seqrepo 0.6 the API accepts `refseq`, `ensembl`, `lrg`, `sha512t24u` and
`ga4gh` while the databases store `NCBI`, `Ensembl`, `LRG` and `VMC` (with a `GS_` alias
prefix). Results carry both forms. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator

_API_TO_DB = {"ensembl": "Ensembl", "lrg": "LRG"}
_DB_TO_API = {"NCBI": "refseq", "Ensembl": "ensembl", "LRG": "lrg"}
SYNTHETIC_NAMESPACES = ("refseq", "ensembl", "lrg", "sha512t24u", "ga4gh")


def api_to_db(namespace: str | None, alias: str | None) -> tuple[str | None, str | None]:
    """Map an API (namespace, alias) to the stored (namespace, alias)."""
    if namespace is None:
        return None, alias
    if namespace.lower() == "refseq":
        return "NCBI", alias
    if namespace in _API_TO_DB:
        return _API_TO_DB[namespace], alias
    if namespace == "sha512t24u":
        return "VMC", None if alias is None else "GS_" + alias
    if namespace == "ga4gh":
        if alias is None:
            return "VMC", None
        if not alias.startswith("SQ."):
            return namespace, alias  # not a ga4gh sequence id: matches nothing stored
        return "VMC", "GS_" + alias[3:]
    return namespace, alias


def db_to_api(namespace: str, alias: str) -> Iterator[tuple[str, str]]:
    """The extra API-named forms of one stored (namespace, alias), without the stored form."""
    if namespace in _DB_TO_API:
        yield _DB_TO_API[namespace], alias
    elif namespace == "VMC" and alias.startswith("GS_"):
        yield "sha512t24u", alias[3:]
        yield "ga4gh", "SQ." + alias[3:]


def api_namespaces(stored: list[str]) -> list[str]:
    """The stored namespaces plus the API names that map onto them."""
    names = set(stored)
    for ns in stored:
        if ns in _DB_TO_API:
            names.add(_DB_TO_API[ns])
        elif ns == "VMC":
            names.update(("sha512t24u", "ga4gh"))
    return sorted(names)
