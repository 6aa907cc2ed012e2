"""Subsequence requests: `start`/`end` query parameters and the `Range: bytes=` header.

refget v1 and v2 give different status codes for the same out-of-bounds request, so the rules
take the negotiated version:

==========================================  =====  =====
condition                                    v1     v2
==========================================  =====  =====
start/end not an unsigned 32-bit integer     400    400
Range header malformed or multi-range        400    400
Range header and start/end together          400    400
Range first > last                           416    416
Range first >= length                        416    400
start >= length (v1) / start > length (v2)   416    400
end > length                                 416    400
start > end (no circular support)            501    501
longer than the subsequence limit            416    416
==========================================  =====  =====

v1's column is what the GA4GH compliance suite checks; v2's follows the v2.0.0 text ("Bad Request
if start is larger than the total sequence length", "Bad Request if one or more ranges are out of
bounds"). A Range whose last byte lies past the end is clipped, as RFC 7233 says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .negotiation import V1

MAX_COORDINATE = 2**32 - 1
_DIGITS = re.compile(r"[0-9]{1,20}")
_RANGE = re.compile(r"bytes=([0-9]{0,20})-([0-9]{0,20})")


class RangeError(Exception):
    """A request the server refuses; `status` is the HTTP code to answer with."""

    def __init__(self, status: int, detail: str, length: int | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.length = length


@dataclass(frozen=True)
class Requested:
    """What the client asked for, before the sequence length is known."""

    start: int | None = None
    end: int | None = None
    first: int | None = None  # Range header, inclusive byte positions; None = open end
    last: int | None = None
    has_range: bool = False

    @property
    def has_query(self) -> bool:
        return self.start is not None or self.end is not None


@dataclass(frozen=True)
class Slice:
    """Residues [start, end) to send; `partial` answers with 206 and Content-Range."""

    start: int
    end: int
    partial: bool = False
    via_query: bool = False

    @property
    def size(self) -> int:
        return self.end - self.start


def parse_coordinate(name: str, value: str | None) -> int | None:
    """An unsigned 32-bit integer, or None if absent; anything else is a 400."""
    if value is None:
        return None
    if not _DIGITS.fullmatch(value) or int(value) > MAX_COORDINATE:
        raise RangeError(400, f"{name} must be an unsigned 32-bit integer, not {value!r}")
    return int(value)


def parse_request(start: str | None, end: str | None, range_header: str | None) -> Requested:
    """Check everything that does not need the sequence: syntax and the Range/start-end clash."""
    s = parse_coordinate("start", start)
    e = parse_coordinate("end", end)
    if range_header is None:
        return Requested(start=s, end=e)
    if s is not None or e is not None:
        raise RangeError(400, "a Range header may not be combined with start/end parameters")
    m = _RANGE.fullmatch(range_header.strip())
    if m is None or (not m.group(1) and not m.group(2)):
        raise RangeError(400, f"cannot parse Range header {range_header!r}; use bytes=FIRST-LAST")
    first = int(m.group(1)) if m.group(1) else None
    last = int(m.group(2)) if m.group(2) else None
    if first is not None and last is not None and first > last:
        raise RangeError(416, f"Range first byte {first} is after its last byte {last}")
    return Requested(first=first, last=last, has_range=True)


def plan(req: Requested, length: int, version: str, limit: int | None = None) -> Slice:
    """The residues to send for a refget request on a sequence of `length` residues."""
    if req.has_range:
        sl = _plan_range(req, length, version)
    elif req.has_query:
        sl = _plan_query(req, length, version)
    else:
        return Slice(0, length)
    if limit is not None and sl.size > limit:
        raise RangeError(
            416, f"subsequence of {sl.size} residues exceeds this server's limit of {limit}", length
        )
    return sl


def _plan_range(req: Requested, length: int, version: str) -> Slice:
    out_of_bounds = 416 if version == V1 else 400
    if req.first is None:  # suffix range: the last N residues
        assert req.last is not None
        if req.last == 0:
            raise RangeError(416, "a suffix Range of 0 bytes selects nothing", length)
        first, last = max(0, length - req.last), length - 1
    else:
        first = req.first
        last = length - 1 if req.last is None else min(req.last, length - 1)
    if first >= length:
        raise RangeError(
            out_of_bounds, f"Range starts at {first}, beyond the sequence ({length})", length
        )
    return Slice(first, last + 1, partial=True)


def _plan_query(req: Requested, length: int, version: str) -> Slice:
    start = 0 if req.start is None else req.start
    end = length if req.end is None else req.end
    if version == V1:
        if req.start is not None and start >= length and not (start == 0 == length):
            raise RangeError(416, f"start {start} is not inside the sequence ({length})", length)
        if end > length:
            raise RangeError(416, f"end {end} is beyond the sequence ({length})", length)
    else:
        if start > length:
            raise RangeError(400, f"start {start} is beyond the sequence ({length})", length)
        if end > length:
            raise RangeError(400, f"end {end} is beyond the sequence ({length})", length)
    if start > end:
        raise RangeError(501, "start > end requests a circular subsequence; not supported", length)
    return Slice(start, end, via_query=True)
