"""The seqrepo REST API (`/seqrepo/1/…`) as biocommons' seqrepo-rest-service answers it.

biocommons.seqrepo's HTTP data proxy (`seqrepo+http://HOST:PORT/seqrepo`) requests
`sequence/{alias}?start&end` and `metadata/{alias}` here and treats 404 as KeyError, so the
statuses, the identifier guessing and the metadata body follow the reference exactly:
start > end -> 422 (checked before the lookup), unknown -> 404, ambiguous -> 422, and
coordinates past the end are clipped rather than refused. Errors carry an RFC 7807 body (the
reference's 404 had none; clients only look at the status).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import __version__
from .ranges import RangeError, parse_coordinate
from .responses import etag_matches, not_modified, problem, sequence_response
from .service import Backend

TEXT = "text/plain; charset=utf-8"


class SeqrepoAPI:
    """Handlers for /seqrepo/1/{ping,sequence,metadata}."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def _seq_id(self, alias: str) -> str | Response:
        seq_ids = self.backend.seqrepo_api_seq_ids(alias)
        if not seq_ids:
            return problem(404, f"no sequence is known as {alias!r}")
        if len(seq_ids) > 1:
            return problem(422, f"Multiple sequences exist for alias '{alias}'")
        return seq_ids[0]

    def sequence(self, request: Request) -> Response:
        q = request.query_params
        try:
            start = parse_coordinate("start", q.get("start"))
            end = parse_coordinate("end", q.get("end"))
        except RangeError as exc:
            return problem(exc.status, exc.detail)
        if start is not None and end is not None and start > end:
            return problem(422, "Invalid coordinates: start > end")
        seq_id = self._seq_id(request.path_params["alias"])
        if isinstance(seq_id, Response):
            return seq_id
        length = self.backend.seqinfo_length(seq_id)
        e = length if end is None else min(end, length)
        s = min(0 if start is None else start, e)
        headers = {
            "etag": f'"SQ.{seq_id}"',
            "cache-control": f"public, max-age={self.backend.settings.max_age}, immutable",
            "accept-ranges": "none",
        }
        if etag_matches(request, headers["etag"]):
            return not_modified(headers)
        return sequence_response(request, self.backend, seq_id, s, e, 200, TEXT, headers)

    def metadata(self, request: Request) -> Response:
        seq_id = self._seq_id(request.path_params["alias"])
        if isinstance(seq_id, Response):
            return seq_id
        return JSONResponse(self.backend.seqrepo_api_metadata(seq_id))

    def ping(self, request: Request) -> Response:
        """Versions and the served instance, shaped like the reference's ping."""
        import bioutils

        return JSONResponse(
            {
                "version": __version__,
                "url": "seqrepofs",
                "dependencies": {
                    "seqrepo": {
                        "version": __version__,
                        "root": self.backend.settings.instance_dir,
                        "url": "seqrepofs (SeqRepo-compatible store)",
                    },
                    "bioutils": {"version": getattr(bioutils, "__version__", None)},
                },
            }
        )
