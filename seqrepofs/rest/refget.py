"""GA4GH refget endpoints, v1 and v2 at the same paths (see negotiation for how one is chosen).

Handlers are plain functions: Starlette runs them in its thread pool, which is where the blocking
SQLite and BGZF reads belong, with one thread hop per request.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from .. import __version__
from .negotiation import (
    JSON_TYPES,
    SEQUENCE_TYPES,
    V1,
    V2,
    Kind,
    json_content_type,
    negotiate,
    sequence_content_type,
)
from .ranges import RangeError, parse_request, plan
from .responses import etag_matches, json_response, not_modified, problem, sequence_response
from .service import Ambiguous, Backend, NotFound, Resolved

ALGORITHMS = ["md5", "ga4gh", "trunc512"]
API_VERSIONS = [V1, V2]


class Refget:
    """The three refget endpoints for one default version (v2 at /, v1 under /refget/1)."""

    def __init__(self, backend: Backend, default: str, allowed: tuple[str, ...]) -> None:
        self.backend = backend
        self.default = default
        self.allowed = allowed

    def _version(self, request: Request, kind: Kind) -> str | None:
        return negotiate(request.headers.get("accept"), kind, self.default, self.allowed)

    def _not_acceptable(self, kind: Kind) -> Response:
        types = SEQUENCE_TYPES if kind == "sequence" else JSON_TYPES
        offered = ", ".join(types[v] for v in self.allowed)
        return problem(406, f"no acceptable media type; this endpoint offers {offered}")

    def _resolve(self, identifier: str) -> Resolved | Response:
        try:
            return self.backend.resolve_refget(identifier)
        except NotFound as exc:
            return problem(404, str(exc))
        except Ambiguous as exc:
            return problem(300, str(exc), choices=exc.choices)

    # ---- GET /sequence/{id} --------------------------------------------------------------
    def sequence(self, request: Request) -> Response:
        version = self._version(request, "sequence")
        if version is None:
            return self._not_acceptable("sequence")
        q = request.query_params
        try:
            req = parse_request(q.get("start"), q.get("end"), request.headers.get("range"))
        except RangeError as exc:
            return problem(exc.status, exc.detail)
        res = self._resolve(request.path_params["id"])
        if isinstance(res, Response):
            return res
        try:
            sl = plan(req, res.length, version, self.backend.settings.subsequence_limit)
        except RangeError as exc:
            headers = {"content-range": f"bytes */{res.length}"} if req.has_range else None
            return problem(exc.status, exc.detail, headers=headers)
        headers = {
            "etag": f'"SQ.{res.seq_id}"',
            "cache-control": f"public, max-age={self.backend.settings.max_age}, immutable",
            "vary": "Accept",
            "accept-ranges": "none" if req.has_query else "bytes",
        }
        if sl.partial:
            headers["content-range"] = f"bytes {sl.start}-{sl.end - 1}/{res.length}"
        if etag_matches(request, headers["etag"]):
            return not_modified(headers)
        return sequence_response(
            request,
            self.backend,
            res.seq_id,
            sl.start,
            sl.end,
            206 if sl.partial else 200,
            sequence_content_type(version),
            headers,
        )

    # ---- GET /sequence/{id}/metadata -----------------------------------------------------
    def metadata(self, request: Request) -> Response:
        version = self._version(request, "json")
        if version is None:
            return self._not_acceptable("json")
        res = self._resolve(request.path_params["id"])
        if isinstance(res, Response):
            return res
        md = self.backend.refget_metadata(res)
        if version == V1:
            body = {
                "id": md["md5"] or md["trunc512"],
                "md5": md["md5"],
                "trunc512": md["trunc512"],
                "length": md["length"],
                "aliases": md["aliases"],
            }
        else:
            body = {"id": md["ga4gh"], **md}
        return json_response(
            request,
            {"metadata": body},
            json_content_type(version),
            self.backend.settings.metadata_max_age,
        )

    # ---- GET /sequence/service-info ------------------------------------------------------
    def service_info(self, request: Request) -> Response:
        version = self._version(request, "json")
        if version is None:
            return self._not_acceptable("json")
        limit = self.backend.settings.subsequence_limit
        if version == V1:
            body: dict = {
                "service": {
                    "algorithms": ALGORITHMS,
                    "circular_supported": False,
                    "subsequence_limit": limit,
                    "supported_api_versions": API_VERSIONS,
                }
            }
        else:
            body = {
                "id": "org.ga4gh.refget.seqrepofs",
                "name": "seqrepofs refget server",
                "type": {"group": "org.ga4gh", "artifact": "refget", "version": V2},
                "description": "Reference sequences by digest or alias from a SeqRepo instance",
                "organization": {"name": "seqrepofs", "url": str(request.base_url)},
                "version": __version__,
                "refget": {
                    "circular_supported": False,
                    "subsequence_limit": limit,
                    "algorithms": ALGORITHMS,
                    "identifier_types": self.backend.namespaces(),
                    "supported_api_versions": API_VERSIONS,
                },
            }
        return json_response(request, body, json_content_type(version), 60)
