"""The OpenAPI 3.0 description served at /openapi.json, written by hand.

Starlette does not derive one from the routes, and the interesting parts (the same path answering
in two media types, the status codes of refget) would not be derivable anyway. The tests fuzz the
server against this document with schemathesis, which keeps it honest.
"""

from __future__ import annotations

from typing import Any

from .. import __version__
from .negotiation import JSON_TYPES, SEQUENCE_TYPES, V1, V2
from .ranges import MAX_COORDINATE

PROBLEM = "application/problem+json"
GA4GH_PATTERN = "^ga4gh:SQ\\.[A-Za-z0-9_-]{32}$"


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


_DAMAGED = _problem("A stored sequence file or its index is damaged or missing")
_NOT_MODIFIED = {"description": "Not modified: the client's cached copy (If-None-Match) is current"}


def _coordinate(name: str, text: str) -> dict[str, Any]:
    return {
        "in": "query",
        "name": name,
        "required": False,
        "description": text,
        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_COORDINATE},
    }


def _id_param(name: str, examples: dict[str, str]) -> dict[str, Any]:
    param: dict[str, Any] = {
        "in": "path",
        "name": name,
        "required": True,
        "description": (
            "MD5 (bare or md5:), ga4gh:SQ.… or SQ.…, TRUNC512 (48 hex), or a namespaced alias"
            " such as insdc:CM000663.2 or refseq:NC_000001.11; a bare alias if it is unambiguous"
        ),
        "schema": {"type": "string", "minLength": 1},
    }
    if examples:
        param["examples"] = {k: {"value": v} for k, v in examples.items()}
    return param


_RANGE_PARAM = {
    "in": "header",
    "name": "Range",
    "required": False,
    "description": (
        "One byte range, 0-based and inclusive (bytes=0-9 is start=0&end=10); bytes=N- and"
        " bytes=-N are accepted too. Not combinable with start/end."
    ),
    "schema": {"type": "string"},
}


def _sequence_op(versions: tuple[str, ...], examples: dict[str, str], summary: str) -> dict:
    text = {SEQUENCE_TYPES[v]: {"schema": {"type": "string"}} for v in versions}
    return {
        "get": {
            "summary": summary,
            "tags": ["refget"],
            "parameters": [
                _id_param("id", examples),
                _coordinate("start", "Start of the subsequence, 0-based, inclusive"),
                _coordinate("end", "End of the subsequence, 0-based, exclusive"),
                _RANGE_PARAM,
            ],
            "responses": {
                "200": {
                    "description": "The sequence or the start/end subsequence, one line",
                    "content": text,
                },
                "206": {"description": "The subsequence a Range header asked for", "content": text},
                "300": _problem("Ambiguous alias: the body's `choices` are qualified forms"),
                "304": _NOT_MODIFIED,
                "400": _problem("Malformed start/end/Range, both given, or out of bounds (v2)"),
                "404": _problem("No sequence has this identifier"),
                "406": _problem("No acceptable media type in the Accept header"),
                "416": _problem("Range not satisfiable, out of bounds (v1), or over the limit"),
                "501": _problem("start > end: circular subsequences are not supported"),
                "500": _DAMAGED,
            },
        }
    }


def _metadata_op(versions: tuple[str, ...], examples: dict[str, str]) -> dict:
    schema = {V1: "MetadataV1", V2: "MetadataV2"}
    content = {
        JSON_TYPES[v]: {"schema": {"$ref": f"#/components/schemas/{schema[v]}"}} for v in versions
    }
    return {
        "get": {
            "summary": "Known names and digests of a sequence",
            "tags": ["refget"],
            "parameters": [_id_param("id", examples)],
            "responses": {
                "200": {"description": "Metadata", "content": content},
                "300": _problem("Ambiguous alias: the body's `choices` are qualified forms"),
                "304": _NOT_MODIFIED,
                "404": _problem("No sequence has this identifier"),
                "406": _problem("No acceptable media type in the Accept header"),
            },
        }
    }


def _service_info_op(versions: tuple[str, ...]) -> dict:
    schema = {V1: "ServiceInfoV1", V2: "ServiceInfoV2"}
    content = {
        JSON_TYPES[v]: {"schema": {"$ref": f"#/components/schemas/{schema[v]}"}} for v in versions
    }
    return {
        "get": {
            "summary": "What this refget server supports",
            "tags": ["refget"],
            "responses": {
                "200": {"description": "Service info", "content": content},
                "406": _problem("No acceptable media type in the Accept header"),
            },
        }
    }


def _alias_param() -> dict[str, Any]:
    return {
        "in": "path",
        "name": "alias",
        "required": True,
        "description": (
            "ns:alias used verbatim; otherwise the namespace is inferred from the accession"
            " syntax, then a hex string of 8+ characters is an MD5/TRUNC512 prefix"
        ),
        "schema": {"type": "string", "minLength": 1},
    }


def _components() -> dict[str, Any]:
    alias = {
        "type": "object",
        "required": ["alias", "naming_authority"],
        "properties": {"alias": {"type": "string"}, "naming_authority": {"type": "string"}},
    }
    aliases = {"type": "array", "items": {"$ref": "#/components/schemas/Alias"}}
    nullable_str = {"type": "string", "nullable": True}
    return {
        "schemas": {
            "Alias": alias,
            "Problem": {
                "type": "object",
                "description": "RFC 7807 problem details",
                "required": ["title", "status"],
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "detail": {"type": "string"},
                    "choices": {"type": "array", "items": {"type": "string"}},
                },
            },
            "MetadataV1": {
                "type": "object",
                "required": ["metadata"],
                "properties": {
                    "metadata": {
                        "type": "object",
                        "required": ["id", "md5", "trunc512", "length", "aliases"],
                        "properties": {
                            "id": {"type": "string"},
                            "md5": nullable_str,
                            "trunc512": {"type": "string", "pattern": "^[0-9a-f]{48}$"},
                            "length": {"type": "integer", "minimum": 0},
                            "aliases": aliases,
                        },
                    }
                },
            },
            "MetadataV2": {
                "type": "object",
                "required": ["metadata"],
                "properties": {
                    "metadata": {
                        "type": "object",
                        "required": ["id", "md5", "ga4gh", "trunc512", "length", "aliases"],
                        "properties": {
                            "id": {"type": "string"},
                            "md5": nullable_str,
                            "ga4gh": {"type": "string", "pattern": GA4GH_PATTERN},
                            "trunc512": {"type": "string", "pattern": "^[0-9a-f]{48}$"},
                            "length": {"type": "integer", "minimum": 0},
                            "aliases": aliases,
                        },
                    }
                },
            },
            "ServiceInfoV1": {
                "type": "object",
                "required": ["service"],
                "properties": {
                    "service": {
                        "type": "object",
                        "required": [
                            "algorithms",
                            "circular_supported",
                            "subsequence_limit",
                            "supported_api_versions",
                        ],
                        "properties": {
                            "algorithms": {"type": "array", "items": {"type": "string"}},
                            "circular_supported": {"type": "boolean"},
                            "subsequence_limit": {"type": "integer", "nullable": True},
                            "supported_api_versions": {
                                "type": "array",
                                "items": {"type": "string"},
                            },
                        },
                    }
                },
            },
            "ServiceInfoV2": {
                "type": "object",
                "description": "GA4GH service-info with the refget extension",
                "required": ["id", "name", "type", "organization", "version", "refget"],
                "properties": {
                    "id": {"type": "string"},
                    "name": {"type": "string"},
                    "description": {"type": "string"},
                    "type": {
                        "type": "object",
                        "required": ["group", "artifact", "version"],
                        "properties": {
                            "group": {"type": "string"},
                            "artifact": {"type": "string"},
                            "version": {"type": "string"},
                        },
                    },
                    "organization": {
                        "type": "object",
                        "required": ["name", "url"],
                        "properties": {"name": {"type": "string"}, "url": {"type": "string"}},
                    },
                    "version": {"type": "string"},
                    "refget": {
                        "type": "object",
                        "required": ["circular_supported", "algorithms"],
                        "properties": {
                            "circular_supported": {"type": "boolean"},
                            "subsequence_limit": {"type": "integer", "nullable": True},
                            "algorithms": {"type": "array", "items": {"type": "string"}},
                            "identifier_types": {"type": "array", "items": {"type": "string"}},
                            "supported_api_versions": {
                                "type": "array",
                                "items": {"type": "string"},
                            },
                        },
                    },
                },
            },
            "SeqrepoMetadata": {
                "type": "object",
                "required": ["added", "aliases", "alphabet", "length"],
                "properties": {
                    "added": nullable_str,
                    "aliases": {"type": "array", "items": {"type": "string"}},
                    "alphabet": nullable_str,
                    "length": {"type": "integer", "minimum": 0},
                },
            },
        }
    }


def openapi_document(examples: dict[str, str] | None = None) -> dict[str, Any]:
    """The whole description; `examples` are identifiers of the served instance, if any."""
    ex = examples or {}
    both = (V2, V1)
    json_obj = {"application/json": {"schema": {"type": "object"}}}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "seqrepofs REST service",
            "version": __version__,
            "description": (
                "GA4GH refget v2.0.0 and v1.0.0 at the same paths, chosen by the Accept media"
                " type; a request without a versioned Accept type gets v2 at /sequence/… and v1"
                " under /refget/1/…. Also the seqrepo REST API of seqrepo-rest-service under"
                " /seqrepo/1/. Ambiguous aliases answer 300 with the qualified choices."
                " Circular subsequences are not supported (501)."
            ),
        },
        "tags": [{"name": "refget"}, {"name": "seqrepo"}, {"name": "service"}],
        "paths": {
            "/": {
                "get": {
                    "summary": "Links to the APIs",
                    "tags": ["service"],
                    "responses": {"200": {"description": "Index", "content": json_obj}},
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "tags": ["service"],
                    "responses": {"200": {"description": "OpenAPI", "content": json_obj}},
                }
            },
            "/sequence/service-info": _service_info_op(both),
            "/sequence/{id}": _sequence_op(both, ex, "A sequence or subsequence (refget v2/v1)"),
            "/sequence/{id}/metadata": _metadata_op(both, ex),
            "/refget/1/sequence/service-info": _service_info_op((V1,)),
            "/refget/1/sequence/{id}": _sequence_op((V1,), ex, "A sequence (refget v1 only)"),
            "/refget/1/sequence/{id}/metadata": _metadata_op((V1,), ex),
            "/seqrepo/1/ping": {
                "get": {
                    "summary": "Service status (seqrepo REST API)",
                    "tags": ["seqrepo"],
                    "responses": {
                        "200": {"description": "Versions and instance", "content": json_obj}
                    },
                }
            },
            "/seqrepo/1/sequence/{alias}": {
                "get": {
                    "summary": "A sequence by any alias (seqrepo REST API)",
                    "tags": ["seqrepo"],
                    "parameters": [
                        _alias_param(),
                        _coordinate("start", "Interbase start; clipped to the sequence"),
                        _coordinate("end", "Interbase end; clipped to the sequence"),
                    ],
                    "responses": {
                        "200": {
                            "description": "The (sub)sequence",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        "304": _NOT_MODIFIED,
                        "400": _problem("start or end is not an unsigned 32-bit integer"),
                        "404": _problem("No sequence has this alias"),
                        "422": _problem("start > end, or the alias names several sequences"),
                        "500": _DAMAGED,
                    },
                }
            },
            "/seqrepo/1/metadata/{alias}": {
                "get": {
                    "summary": "Length, alphabet, date added and aliases (seqrepo REST API)",
                    "tags": ["seqrepo"],
                    "parameters": [_alias_param()],
                    "responses": {
                        "200": {
                            "description": "Metadata",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/SeqrepoMetadata"}
                                }
                            },
                        },
                        "404": _problem("No sequence has this alias"),
                        "422": _problem("The alias names several sequences"),
                    },
                }
            },
        },
        "components": _components(),
    }
