"""Accept-header negotiation between refget v1 and v2, which share the same paths.

refget v1 and v2 differ only in their media types, so the version a client speaks is read from
the Accept header. A request that names no version (no Accept, ``*/*``, ``text/plain``,
``application/json``) gets the endpoint's default version: v2 at ``/sequence/…`` and v1 under
``/refget/1/…`` (where the reference service put it). Nothing acceptable -> None (HTTP 406).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

V1 = "1.0.0"
V2 = "2.0.0"
Kind = Literal["sequence", "json"]

SEQUENCE_TYPES = {
    V1: "text/vnd.ga4gh.refget.v1.0.0+plain",
    V2: "text/vnd.ga4gh.refget.v2.0.0+plain",
}
JSON_TYPES = {
    V1: "application/vnd.ga4gh.refget.v1.0.0+json",
    V2: "application/vnd.ga4gh.refget.v2.0.0+json",
}

# Versioned types map to a version; v1.0.x and the pre-release "seq" name count as v1.
_VERSIONED = {
    "sequence": re.compile(r"^text/vnd\.ga4gh\.(?:refget|seq)\.v(\d)\.0\.\d+\+plain$"),
    "json": re.compile(r"^application/vnd\.ga4gh\.(?:refget|seq)\.v(\d)\.0\.\d+\+json$"),
}
_GENERIC = {
    "sequence": {"*/*", "text/*", "text/plain"},
    "json": {"*/*", "application/*", "application/json"},
}


@dataclass(frozen=True)
class MediaRange:
    """One element of an Accept header."""

    type: str
    q: float
    position: int


def parse_accept(header: str) -> list[MediaRange]:
    """Media ranges with their q values; malformed elements are skipped, not fatal."""
    out: list[MediaRange] = []
    for position, part in enumerate(header.split(",")):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        if media.count("/") != 1:
            continue
        q = 1.0
        for param in fields[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = -1.0
        if 0.0 <= q <= 1.0:
            out.append(MediaRange(media, q, position))
    return out


def negotiate(
    accept: str | None, kind: Kind, default: str, allowed: tuple[str, ...] = (V1, V2)
) -> str | None:
    """The refget version to answer in, or None if no acceptable media type is offered.

    Highest q wins; on equal q a versioned type beats a wildcard, then the earlier element.
    """
    if accept is None or not accept.strip():
        return default
    best: tuple[float, int, int] | None = None
    chosen: str | None = None
    for mr in parse_accept(accept):
        if mr.q <= 0.0:
            continue
        m = _VERSIONED[kind].match(mr.type)
        if m:
            version = {"1": V1, "2": V2}.get(m.group(1))
            specificity = 1
        elif mr.type in _GENERIC[kind]:
            version = default
            specificity = 0
        else:
            continue
        if version is None or version not in allowed:
            continue
        key = (mr.q, specificity, -mr.position)
        if best is None or key > best:
            best, chosen = key, version
    return chosen


def sequence_content_type(version: str) -> str:
    return f"{SEQUENCE_TYPES[version]}; charset=us-ascii"


def json_content_type(version: str) -> str:
    return f"{JSON_TYPES[version]}; charset=us-ascii"
