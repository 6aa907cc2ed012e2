"""REST service pieces that need no server: media-type negotiation, range rules, chunking.

The end-to-end behaviour (real uvicorn, compliance suite, fuzzing) is in test_rest_server.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.responses import StreamingResponse

from seqrepofs import SeqRepo
from seqrepofs.rest.negotiation import V1, V2, negotiate
from seqrepofs.rest.ranges import RangeError, Requested, parse_request, plan
from seqrepofs.rest.responses import sequence_response
from seqrepofs.rest.service import Backend, Settings, resolve_source

V1_TEXT = "text/vnd.ga4gh.refget.v1.0.0+plain"
V2_TEXT = "text/vnd.ga4gh.refget.v2.0.0+plain"
V1_JSON = "application/vnd.ga4gh.refget.v1.0.0+json"
V2_JSON = "application/vnd.ga4gh.refget.v2.0.0+json"


@pytest.mark.parametrize(
    ("accept", "kind", "default", "expected"),
    [
        (None, "sequence", V2, V2),
        ("", "sequence", V1, V1),
        ("*/*", "sequence", V2, V2),
        ("text/plain", "sequence", V1, V1),
        (V1_TEXT, "sequence", V2, V1),
        (V2_TEXT, "sequence", V2, V2),
        (f"{V2_TEXT}; charset=us-ascii", "sequence", V1, V2),
        ("text/vnd.ga4gh.refget.v1.0.1+plain", "sequence", V2, V1),
        (f"{V1_TEXT};q=0.5, {V2_TEXT}", "sequence", V1, V2),
        (f"{V1_TEXT}, {V2_TEXT}", "sequence", V2, V1),  # equal q: the earlier one
        (f"*/*, {V1_TEXT}", "sequence", V2, V1),  # equal q: the versioned one
        ("text/plain;q=0", "sequence", V2, None),
        ("embl/some_json", "sequence", V2, None),
        ("application/json", "sequence", V2, None),
        (V1_JSON, "sequence", V2, None),
        ("garbage", "sequence", V2, None),
        ("application/json", "json", V2, V2),
        (V1_JSON, "json", V2, V1),
        (V2_JSON, "json", V1, V2),
        ("text/plain", "json", V2, None),
        ("embl/some_json", "json", V2, None),
    ],
)
def test_negotiate(accept: str | None, kind: str, default: str, expected: str | None) -> None:
    assert negotiate(accept, kind, default) == expected  # type: ignore[arg-type]


def test_negotiate_v1_only_paths_refuse_v2() -> None:
    assert negotiate(V2_TEXT, "sequence", V1, (V1,)) is None
    assert negotiate(f"{V2_TEXT}, {V1_TEXT};q=0.1", "sequence", V1, (V1,)) == V1


@pytest.mark.parametrize(
    ("start", "end", "range_header", "status"),
    [
        ("abc", None, None, 400),
        ("-1", None, None, 400),
        ("1.5", None, None, 400),
        ("", None, None, 400),
        ("+5", None, None, 400),
        ("4294967296", None, None, 400),
        (None, "1e3", None, 400),
        ("1", None, "bytes=1-2", 400),
        (None, None, "units=20-30", 400),
        (None, None, "bytes=ab-19", 400),
        (None, None, "bytes=-10--19", 400),
        (None, None, "bytes=10--19", 400),
        (None, None, "bytes=-10-", 400),
        (None, None, "bytes==10-19", 400),
        (None, None, "bytes=-", 400),
        (None, None, "bytes=1-2,5-6", 400),
        (None, None, "bytes=59-50", 416),
    ],
)
def test_parse_request_refuses(
    start: str | None, end: str | None, range_header: str | None, status: int
) -> None:
    with pytest.raises(RangeError) as info:
        parse_request(start, end, range_header)
    assert info.value.status == status


LEN = 1000


@pytest.mark.parametrize(
    ("req", "version", "expected"),
    [
        # (start, end) -> slice, or an int status; see the table in seqrepofs/rest/ranges.py
        (Requested(), V2, (0, LEN, False)),
        (Requested(start=10, end=20), V2, (10, 20, False)),
        (Requested(start=10, end=10), V1, (10, 10, False)),
        (Requested(start=LEN, end=LEN), V2, (LEN, LEN, False)),
        (Requested(start=LEN, end=LEN), V1, 416),
        (Requested(start=LEN), V2, (LEN, LEN, False)),
        (Requested(start=LEN), V1, 416),
        (Requested(start=LEN + 1), V2, 400),
        (Requested(end=LEN + 1), V2, 400),
        (Requested(end=LEN + 1), V1, 416),
        (Requested(start=20, end=10), V2, 501),
        (Requested(start=20, end=10), V1, 501),
        (Requested(start=LEN + 5, end=10), V1, 416),
        (Requested(first=10, last=19, has_range=True), V2, (10, 20, True)),
        (Requested(first=10, last=10**9, has_range=True), V1, (10, LEN, True)),
        (Requested(first=10, has_range=True), V2, (10, LEN, True)),
        (Requested(last=5, has_range=True), V2, (LEN - 5, LEN, True)),
        (Requested(last=5000, has_range=True), V2, (0, LEN, True)),
        (Requested(last=0, has_range=True), V2, 416),
        (Requested(first=LEN, last=LEN + 4, has_range=True), V1, 416),
        (Requested(first=LEN, last=LEN + 4, has_range=True), V2, 400),
    ],
)
def test_plan(req: Requested, version: str, expected: tuple[int, int, bool] | int) -> None:
    if isinstance(expected, int):
        with pytest.raises(RangeError) as info:
            plan(req, LEN, version)
        assert info.value.status == expected
    else:
        sl = plan(req, LEN, version)
        assert (sl.start, sl.end, sl.partial) == expected


def test_plan_limit_applies_to_subsequences_only() -> None:
    assert plan(Requested(), LEN, V2, limit=10).size == LEN
    assert plan(Requested(start=0, end=10), LEN, V2, limit=10).size == 10
    for req in (Requested(start=0, end=11), Requested(first=0, last=10, has_range=True),
                Requested(start=0)):
        with pytest.raises(RangeError) as info:
            plan(req, LEN, V2, limit=10)
        assert info.value.status == 416


@pytest.fixture
def small_backend(tmp_path: Path) -> Backend:
    seq = ("ACGT" * 2500) + "N"
    with SeqRepo(tmp_path / "inst", writeable=True) as sr:
        sr.store(seq, [{"namespace": "test", "alias": "s1"}])
    backend = Backend(Settings(str(tmp_path / "inst"), chunk_residues=1000))
    yield backend
    backend.close()


def _request(method: str = "GET") -> Request:
    return Request({"type": "http", "method": method, "path": "/", "headers": [],
                    "query_string": b""})


def test_large_bodies_stream_in_bounded_chunks(small_backend: Backend) -> None:
    """A body over one chunk is a StreamingResponse whose pieces never exceed the chunk."""
    seq_id = small_backend.sr.resolve("test:s1")
    chunks = list(small_backend.iter_chunks(seq_id, 5, 10001))
    assert max(len(c) for c in chunks) == 1000 and len(chunks) == 10
    assert b"".join(chunks) == small_backend.fetch(seq_id, 5, 10001)
    resp = sequence_response(_request(), small_backend, seq_id, 0, 10001, 200, "text/plain", {})
    assert isinstance(resp, StreamingResponse)
    assert resp.headers["content-length"] == "10001"
    small = sequence_response(_request(), small_backend, seq_id, 0, 1000, 200, "text/plain", {})
    assert not isinstance(small, StreamingResponse) and small.body == b"ACGT" * 250
    head = sequence_response(_request("HEAD"), small_backend, seq_id, 0, 10001, 200,
                             "text/plain", {})
    assert head.body == b"" and head.headers["content-length"] == "10001"


def test_resolve_source(tmp_path: Path) -> None:
    with SeqRepo(tmp_path / "root" / "2026-01-02", writeable=True) as sr:
        sr.store("ACGT", [{"namespace": "test", "alias": "a"}])
    (tmp_path / "root" / "latest").symlink_to("2026-01-02")
    inst = str((tmp_path / "root" / "2026-01-02").resolve())
    assert resolve_source(str(tmp_path / "root")) == inst
    assert resolve_source(inst) == inst
    with pytest.raises(OSError, match="neither a SeqRepo instance"):
        resolve_source(str(tmp_path))
