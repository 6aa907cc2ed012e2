"""Response helpers shared by the refget and seqrepo endpoints."""

from __future__ import annotations

import hashlib
import json
from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ..store.nowait import WouldWait, waiting_allowed
from .service import Backend

PROBLEM_TYPE = "application/problem+json"


def json_bytes(body: Any) -> bytes:
    """ASCII JSON (non-ASCII escaped), so a `charset=us-ascii` content type is true."""
    return json.dumps(body, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def problem(
    status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    """An RFC 7807 error body; used for every error so clients parse one shape."""
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extra,
    }
    return Response(json_bytes(body), status_code=status, media_type=PROBLEM_TYPE, headers=headers)


def etag_matches(request: Request, etag: str) -> bool:
    """If-None-Match with weak comparison (RFC 9110 §13.1.2); `*` matches anything."""
    header = request.headers.get("if-none-match")
    if not header:
        return False
    wanted = etag.removeprefix("W/")
    for tag in header.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == wanted:
            return True
    return False


def not_modified(headers: dict[str, str]) -> Response:
    keep = ("etag", "cache-control", "vary", "accept-ranges", "content-location")
    return Response(status_code=304, headers={k: v for k, v in headers.items() if k in keep})


def json_response(
    request: Request, body: Any, media_type: str, max_age: int, vary: bool = True
) -> Response:
    """A cacheable JSON document with a content-hash ETag (metadata may gain aliases)."""
    data = json_bytes(body)
    etag = f'W/"{hashlib.blake2b(data, digest_size=12).hexdigest()}"'
    headers = {"etag": etag, "cache-control": f"public, max-age={max_age}"}
    if vary:
        headers["vary"] = "Accept"
    if etag_matches(request, etag):
        return not_modified(headers)
    return Response(data, media_type=media_type, headers=headers)


def sequence_response(
    request: Request,
    backend: Backend,
    seq_id: str,
    start: int,
    end: int,
    status: int,
    media_type: str,
    headers: dict[str, str],
) -> Response:
    """Residues [start, end): in one piece if small, else streamed in bounded chunks.

    On the event loop (inside `no_waiting()`) a piece longer than `inline_max_residues` raises
    WouldWait, so the request is answered from a thread instead of holding up the loop.

    Content-Length is always set (the length is known before reading), so clients can check
    they got everything even when the body is streamed; HEAD reads nothing.
    """
    headers = {**headers, "content-length": str(end - start)}
    if request.method == "HEAD":
        return Response(b"", status_code=status, media_type=media_type, headers=headers)
    settings = backend.settings
    if end - start <= settings.chunk_residues:
        if end - start > settings.inline_max_residues and not waiting_allowed():
            raise WouldWait("a long read: not on the event loop")  # rerun in a thread
        body = backend.fetch(seq_id, start, end) if end > start else b""
        return Response(body, status_code=status, media_type=media_type, headers=headers)
    return StreamingResponse(
        backend.iter_chunks(seq_id, start, end),
        status_code=status,
        media_type=media_type,
        headers=headers,
    )
