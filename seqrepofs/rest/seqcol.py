"""GA4GH Sequence Collections 1.0 endpoints, beside refget, over the instance's collections.

The handlers translate requests into :class:`~seqrepofs.store.collections.CollectionStore`
calls and :mod:`seqrepofs.seqcol` results; they hold nothing between requests (the store keeps
one SQLite connection per thread). ``/service-info`` at the root describes both APIs: the
refget block of ``/sequence/service-info`` plus the seqcol block with its schema.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from .. import __version__, seqcol
from ..store.collections import CollectionInfo, CollectionStore
from .refget import ALGORITHMS, API_VERSIONS
from .responses import etag_matches, json_response, not_modified, problem
from .service import Backend

JSON = "application/json"
MAX_PAGE_SIZE = 1000
MAX_POST_BYTES = 64 << 20  # about a million records as names, lengths and sequences
SEQCOL_VERSION = "1.0.0"

#: The JSON schema the service publishes (what seqrepofs stores and digests).
SCHEMA: dict[str, Any] = {
    "description": "A collection of reference sequences, as one loaded FASTA file holds them.",
    "type": "object",
    "properties": {
        "names": {
            "type": "array",
            "collated": True,
            "items": {"type": "string"},
            "description": "Record names: the first word of each FASTA header.",
        },
        "lengths": {
            "type": "array",
            "collated": True,
            "items": {"type": "integer"},
            "description": "Residues in each sequence.",
        },
        "sequences": {
            "type": "array",
            "collated": True,
            "items": {"type": "string", "description": "refget v2 identifier (SQ.<sha512t24u>)."},
        },
        "sorted_sequences": {
            "type": "array",
            "collated": False,
            "items": {"type": "string"},
            "description": "The sequence identifiers in sorted order.",
        },
        "name_length_pairs": {
            "type": "array",
            "collated": True,
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "length": {"type": "integer"}},
            },
            "description": "Each record's name and length.",
        },
        "sorted_name_length_pairs": {
            "type": "array",
            "collated": False,
            "items": {"type": "string"},
            "description": "Sorted digests of the name-length pairs (the coordinate system).",
        },
    },
    "required": ["names", "lengths", "sequences"],
    "ga4gh": {
        "inherent": list(seqcol.INHERENT),
        "transient": list(seqcol.TRANSIENT),
        "passthru": [],
    },
}


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


class SeqcolAPI:
    """The seqcol endpoints for one instance (and the combined /service-info)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.store = CollectionStore(backend.settings.instance_dir)

    def close(self) -> None:
        self.store.close()

    def routes(self, ep: Callable[[Callable[[Request], Response]], Callable]) -> list[Route]:
        """Routes, each blocking handler wrapped by the app's ``ep`` (thread pool, 500s)."""
        get = ["GET"]
        return [
            Route("/service-info", ep(self.service_info), methods=get),
            Route("/collection/{digest}", ep(self.collection), methods=get),
            Route("/comparison/{digest1}/{digest2}", ep(self.comparison), methods=get),
            Route("/comparison/{digest1}", self.comparison_posted, methods=["POST"]),
            Route("/list/collection", ep(self.list_collections), methods=get),
            Route("/list/attributes/{attribute}", ep(self.list_attributes), methods=get),
            Route("/attribute/collection/{attribute}/{digest}", ep(self.attribute), methods=get),
        ]

    # ---- helpers -------------------------------------------------------------------------

    def _json(self, request: Request, body: Any, max_age: int = 60) -> Response:
        return json_response(request, body, JSON, max_age, vary=False)

    def _collection(self, digest: str) -> CollectionInfo | Response:
        info = self.store.by_digest(digest)
        if info is None:
            return problem(404, f"no sequence collection with digest {digest!r}")
        return info

    @staticmethod
    def _paging(request: Request) -> tuple[int, int] | Response:
        q = request.query_params
        try:
            page = int(q.get("page", "0"))
            size = int(q.get("page_size", "100"))
        except ValueError:
            return problem(400, "page and page_size must be integers")
        if page < 0 or not 1 <= size <= MAX_PAGE_SIZE:
            return problem(400, f"page must be >= 0 and page_size 1..{MAX_PAGE_SIZE}")
        return page, size

    # ---- GET /service-info ---------------------------------------------------------------

    def service_info(self, request: Request) -> Response:
        settings = self.backend.settings
        body = {
            "id": "org.ga4gh.seqrepofs",
            "name": "seqrepofs refget and sequence collections server",
            "type": {"group": "org.ga4gh", "artifact": "refget-seqcol", "version": SEQCOL_VERSION},
            "description": "Reference sequences (refget 2.0) and the collections they were "
            "loaded in (sequence collections 1.0) from a SeqRepo instance",
            "organization": {"name": "seqrepofs", "url": str(request.base_url)},
            "version": __version__,
            "refget": {
                "service_info": "/sequence/service-info",
                "circular_supported": False,
                "subsequence_limit": settings.subsequence_limit,
                "algorithms": ALGORITHMS,
                "identifier_types": self.backend.namespaces(),
                "supported_api_versions": API_VERSIONS,
            },
            "seqcol": {
                "schema": SCHEMA,
                "sorted_name_length_pairs": True,
                "collections": self.store.count(),
            },
        }
        return self._json(request, body)

    # ---- GET /collection/{digest}?level=1|2 ----------------------------------------------

    def collection(self, request: Request) -> Response:
        level = request.query_params.get("level", "2")
        if level not in ("1", "2"):
            return problem(400, f"level must be 1 or 2, not {level!r}")
        info = self._collection(request.path_params["digest"])
        if isinstance(info, Response):
            return info
        if level == "1":
            return self._json(request, dict(info.level1), self.backend.settings.metadata_max_age)
        return self._stream(
            request, f'"{info.digest}.2"', self._level2_json(info, seqcol.ARRAY_ATTRIBUTES)
        )

    # ---- GET /comparison/{digest1}/{digest2}, POST /comparison/{digest1} -----------------

    def comparison(self, request: Request) -> Response:
        a, b = request.path_params["digest1"], request.path_params["digest2"]
        infos = [self._collection(d) for d in (a, b)]
        for info in infos:
            if isinstance(info, Response):
                return info
        ia, ib = (i for i in infos if isinstance(i, CollectionInfo))
        body = {"digests": {"a": a, "b": b}, **self.store.compare(ia, ib)}
        return self._json(request, body, self.backend.settings.metadata_max_age)

    def _compare_posted(self, request: Request, raw: bytes) -> Response:
        a = request.path_params["digest1"]
        try:
            posted = json.loads(raw, parse_constant=_no_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            return problem(400, f"the body is not JSON: {exc}")
        if not isinstance(posted, dict) or not all(isinstance(v, list) for v in posted.values()):
            return problem(
                400,
                "the body must be a level-2 sequence collection: an object of"
                " arrays (names, lengths, sequences, ...)",
            )
        info = self._collection(a)
        if isinstance(info, Response):
            return info
        body = {"digests": {"a": a, "b": "POSTed seqcol"}, **self.store.compare(info, posted)}
        return self._json(request, body, 0)

    async def comparison_posted(self, request: Request) -> Response:
        """POST: the body is read (bounded) on the loop, the comparison runs in a thread."""
        length = request.headers.get("content-length")
        too_big = problem(413, f"a POSTed collection may have at most {MAX_POST_BYTES} bytes")
        if length is not None and length.isdigit() and int(length) > MAX_POST_BYTES:
            return too_big
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_POST_BYTES:
                return too_big
            chunks.append(chunk)
        return await run_in_threadpool(self._compare_posted, request, b"".join(chunks))

    # ---- GET /list/collection, /list/attributes/{attribute} ------------------------------

    def list_collections(self, request: Request) -> Response:
        paging = self._paging(request)
        if isinstance(paging, Response):
            return paging
        page, size = paging
        filters = {k: v for k, v in request.query_params.items() if k in seqcol.LEVEL1_ATTRIBUTES}
        results, total = self.store.digests(filters, page, size)
        return self._json(
            request,
            {
                "results": results,
                "pagination": {"page": page, "page_size": size, "total": total},
            },
        )

    def list_attributes(self, request: Request) -> Response:
        attribute = request.path_params["attribute"]
        if attribute not in seqcol.ARRAY_ATTRIBUTES:
            return problem(
                404, f"no attribute {attribute!r}; attributes: {', '.join(seqcol.ARRAY_ATTRIBUTES)}"
            )
        paging = self._paging(request)
        if isinstance(paging, Response):
            return paging
        page, size = paging
        results, total = self.store.attribute_digests(attribute, page, size)
        return self._json(
            request,
            {
                "results": results,
                "pagination": {"page": page, "page_size": size, "total": total},
            },
        )

    # ---- GET /attribute/collection/{attribute}/{digest} ----------------------------------

    def attribute(self, request: Request) -> Response:
        attribute, digest = request.path_params["attribute"], request.path_params["digest"]
        if attribute in seqcol.TRANSIENT:
            return problem(404, f"{attribute} is transient: it has a digest but no value")
        if attribute not in seqcol.ARRAY_ATTRIBUTES:
            return problem(
                404, f"no attribute {attribute!r}; attributes: {', '.join(seqcol.ARRAY_ATTRIBUTES)}"
            )
        owner = self.store.attribute_owner(attribute, digest)
        if owner is None:
            return problem(404, f"no {attribute} with digest {digest!r}")
        return self._stream(request, f'"{attribute}.{digest}"', self._array_json(owner, attribute))

    # ---- streamed level-2 values (a collection may have millions of records) -------------

    def _array_json(self, info: CollectionInfo, attribute: str) -> Iterator[bytes]:
        return seqcol.json_array(self.store.iter_attribute(info, attribute))

    def _level2_json(self, info: CollectionInfo, attributes: Sequence[str]) -> Iterator[bytes]:
        return seqcol.level2_json(
            attributes, lambda attribute: self.store.iter_attribute(info, attribute)
        )

    def _stream(self, request: Request, etag: str, body: Iterator[bytes]) -> Response:
        """A streamed JSON body; its ETag names the content (a digest fixes it for good)."""
        headers = {
            "etag": etag,
            "cache-control": f"public, max-age={self.backend.settings.metadata_max_age}",
        }
        if etag_matches(request, etag):
            return not_modified(headers)
        if request.method == "HEAD":
            return Response(b"", media_type=JSON, headers=headers)
        return StreamingResponse(body, media_type=JSON, headers=headers)
