"""REST service pieces that need no server: media-type negotiation, range rules, chunking.

The end-to-end behaviour (real uvicorn, compliance suite, fuzzing) is in test_rest_server.py.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from pathlib import Path
from resource import RUSAGE_THREAD, getrusage

import pytest
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import ASGIApp

from seqrepofs import SeqRepo
from seqrepofs.rest.app import RefgetShortcut, create_app, endpoint
from seqrepofs.rest.negotiation import V1, V2, negotiate
from seqrepofs.rest.placement import BACKOFF, Placement, blocked_time
from seqrepofs.rest.protocol import HeldHeadersTransport
from seqrepofs.rest.ranges import RangeError, Requested, parse_request, plan
from seqrepofs.rest.responses import sequence_response
from seqrepofs.rest.service import Ambiguous, Backend, NotFound, Settings, resolve_source
from seqrepofs.store.nowait import WouldWait, no_waiting, waiting_allowed

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
    for req in (
        Requested(start=0, end=11),
        Requested(first=0, last=10, has_range=True),
        Requested(start=0),
    ):
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
    return Request(
        {"type": "http", "method": method, "path": "/", "headers": [], "query_string": b""}
    )


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
    head = sequence_response(
        _request("HEAD"), small_backend, seq_id, 0, 10001, 200, "text/plain", {}
    )
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


# ---- where handlers run (rest/placement.py, app.endpoint) ---------------------------------------
class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_placement_modes() -> None:
    assert Placement("auto", frozen=True, remote=False).on_loop()
    assert not Placement("auto", frozen=False, remote=False).on_loop()  # a live master
    assert Placement("loop", frozen=False, remote=False).on_loop()
    assert not Placement("threads", frozen=True, remote=False).on_loop()
    with pytest.raises(ValueError, match="reads must be one of"):
        Placement("inline", frozen=True, remote=False)


def test_placement_moves_to_threads_while_several_clients_wait_on_storage() -> None:
    clock = _Clock()
    pl = Placement("auto", frozen=True, remote=False, clock=clock)
    for _ in range(200):  # one client, however slow its storage: stays on the loop
        pl.waited(0.05, ("127.0.0.1", 1))
    assert pl.on_loop()
    pl = Placement("auto", frozen=True, remote=False, clock=clock)
    for i in range(200):  # fast requests of many clients: on the loop
        pl.waited(0.0001, ("127.0.0.1", i % 4))
    assert pl.on_loop()
    for i in range(40):  # several clients, each request waiting 5 ms on storage
        pl.waited(0.005, ("127.0.0.1", i % 4))
    assert not pl.on_loop()
    clock.now += BACKOFF - 0.1
    assert not pl.on_loop()
    clock.now += 0.2
    assert pl.on_loop()


def test_blocked_time_counts_waits_not_computing() -> None:
    before, t0 = getrusage(RUSAGE_THREAD), time.perf_counter()
    time.sleep(0.02)  # a voluntary wait, as on storage
    blocked = blocked_time(before, getrusage(RUSAGE_THREAD), time.perf_counter() - t0)
    assert 0.015 < blocked < 1.0
    before, t0 = getrusage(RUSAGE_THREAD), time.perf_counter()
    while time.perf_counter() - t0 < 0.005:  # computing only (preemption is not waiting)
        pass
    after = getrusage(RUSAGE_THREAD)
    if after.ru_nvcsw == before.ru_nvcsw:
        assert blocked_time(before, after, time.perf_counter() - t0) == 0.0


def test_endpoint_reruns_in_a_thread_what_would_wait() -> None:
    """A handler on the loop that would wait (WouldWait) is run again in a worker thread."""
    calls: list[tuple[str, bool]] = []

    def handler(request: Request) -> Response:
        calls.append((threading.current_thread().name, waiting_allowed()))
        if not waiting_allowed():
            raise WouldWait("test")
        return Response(b"ok")

    for remote in (False, True):
        calls.clear()
        call = endpoint(handler, Placement("auto", frozen=True, remote=remote))
        resp = asyncio.run(call(_request()))
        assert resp.body == b"ok"
        main = threading.main_thread().name
        assert calls[0] == (main, False) and calls[1][0] != main and calls[1][1]
        calls.clear()
        asyncio.run(endpoint(handler, None)(_request()))  # threads only: no try on the loop
        assert len(calls) == 1 and calls[0][0] != main


def test_loop_reads_leave_long_bodies_and_first_file_reads_to_threads(tmp_path: Path) -> None:
    with SeqRepo(tmp_path / "inst", writeable=True) as sr:
        sr.store("ACGT" * 20_000, [{"namespace": "test", "alias": "long"}])
    backend = Backend(Settings(str(tmp_path / "inst"), inline_max_residues=1000))
    try:
        seq_id = backend.sr.resolve("test:long")
        with no_waiting(), pytest.raises(WouldWait):  # the file was never read: not here
            backend.fetch(seq_id, 0, 10)
        assert backend.fetch(seq_id, 0, 10) == b"ACGTACGTAC"  # a thread reads it once
        with no_waiting():
            assert backend.fetch(seq_id, 4, 12) == b"ACGTACGT"  # then the loop may
            small = sequence_response(_request(), backend, seq_id, 0, 1000, 200, "t/p", {})
            assert small.body == b"ACGT" * 250
            with pytest.raises(WouldWait):  # over inline_max_residues: a thread reads it
                sequence_response(_request(), backend, seq_id, 0, 1001, 200, "t/p", {})
        assert (
            len(sequence_response(_request(), backend, seq_id, 0, 1001, 200, "t/p", {}).body)
            == 1001
        )
    finally:
        backend.close()


def test_metadata_and_resolution(small_backend: Backend, tmp_path: Path) -> None:
    """One alias query gives the same aliases as SeqRepo.aliases_of (stored and API forms, in
    its order); answers are kept only for a frozen instance."""
    sr = small_backend.sr
    seq_id = sr.resolve("test:s1")
    res = small_backend.resolve_refget("test:s1")
    assert res == (seq_id, 10001) and res.length == 10001
    md = small_backend.refget_metadata(res)
    assert [f"{a['naming_authority']}:{a['alias']}" for a in md["aliases"]] == sr.aliases_of(seq_id)
    assert md["md5"] and md["ga4gh"] == f"ga4gh:SQ.{seq_id}"
    assert small_backend.resolve_refget(md["md5"]) == res
    assert not small_backend.frozen and small_backend._resolved.get("test:s1") is None
    with SeqRepo(tmp_path / "amb", writeable=True) as w:  # two rows: the general path says why
        w.store("ACGT", [{"namespace": "a", "alias": "x"}])
        w.store("TTTT", [{"namespace": "b", "alias": "x"}])
    amb = Backend(Settings(str(tmp_path / "amb")))
    try:
        with pytest.raises(Ambiguous):
            amb.resolve_refget("x")
        with pytest.raises(NotFound):
            amb.resolve_refget("y")
        assert amb.resolve_refget("a:x").length == 4
    finally:
        amb.close()


def test_app_start_freezes_what_exists(small_backend: Backend) -> None:
    """Objects that live as long as the process are out of the collector's sight once the
    app has started, so full collections stay short."""
    app = create_app(small_backend.settings)

    async def start_and_stop() -> int:
        events: asyncio.Queue[dict] = asyncio.Queue()
        sent: list[dict] = []
        await events.put({"type": "lifespan.startup"})

        async def send(message: dict) -> None:
            sent.append(message)

        task = asyncio.create_task(
            app({"type": "lifespan", "asgi": {"version": "3.0"}}, events.get, send)
        )  # type: ignore[arg-type]
        while not sent:
            await asyncio.sleep(0.01)
        assert sent[0]["type"] == "lifespan.startup.complete"
        frozen = gc.get_freeze_count()
        await events.put({"type": "lifespan.shutdown"})
        await task
        return frozen

    gc.unfreeze()
    try:
        assert asyncio.run(start_and_stop()) > 1000
    finally:
        gc.unfreeze()


# ---- rest/protocol.py: a response's header block and body in one write -------------------------
class _Recorder:
    """Stands in for uvicorn's transport: records what reaches the socket, write by write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def test_held_headers_go_out_with_the_body() -> None:
    async def scenario() -> list[list[bytes]]:
        loop = asyncio.get_running_loop()
        rec = _Recorder()
        t = HeldHeadersTransport(rec, loop)  # type: ignore[arg-type]
        seen = []
        t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n")
        t.write(b"abc")  # the same turn: one write
        seen.append(list(rec.writes))
        rec.writes.clear()
        t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n")  # HEAD: no body write
        seen.append(list(rec.writes))
        await asyncio.sleep(0)  # the loop's next turn sends it
        seen.append(list(rec.writes))
        rec.writes.clear()
        t.write(b"plain body bytes")  # not a header block: at once
        t.write(b"HTTP/1.1 200 OK\r\n" + b"x: y\r\n" * 4000 + b"\r\n")  # too long to hold
        seen.append([w[:10] for w in rec.writes])
        rec.writes.clear()
        t.write(b"HTTP/1.1 304 Not Modified\r\n\r\n")
        t.close()  # closing sends what is held first
        seen.append(list(rec.writes))
        assert rec.closed and t.get_extra_info("peername") == "info:peername"
        return seen

    one, held, flushed, direct, closing = asyncio.run(scenario())
    assert one == [b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc"]
    assert held == [] and flushed == [b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n"]
    assert direct == [b"plain body", b"HTTP/1.1 2"]
    assert closing == [b"HTTP/1.1 304 Not Modified\r\n\r\n"]


def test_refget_shortcut_answers_as_the_full_app(small_backend: Backend) -> None:
    """RefgetShortcut (app.py) skips Starlette's router: every answer must be the same bytes
    as the full app's, edge paths included; what it does not take passes through."""
    app = create_app(Settings(small_backend.settings.instance_dir, access_log=False))
    shortcut = app.plain  # type: ignore[attr-defined]  # SelectiveGZip -> RefgetShortcut
    assert isinstance(shortcut, RefgetShortcut)
    md5 = small_backend.refget_metadata(small_backend.resolve_refget("test:s1"))["md5"]

    async def answer(
        target: ASGIApp,
        method: str,
        path: str,
        qs: bytes = b"",
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> list[dict]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": qs,
            "root_path": "",
            "headers": [(b"host", b"x"), *headers],
            "client": ("127.0.0.1", 5),
            "server": ("127.0.0.1", 80),
        }
        sent: list[dict] = []

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict) -> None:
            sent.append(message)

        await target(scope, receive, send)  # type: ignore[arg-type]
        return sent

    cases = [
        ("GET", f"/sequence/{md5}", b"start=2&end=9", ()),
        ("GET", f"/sequence/{md5}", b"", ((b"range", b"bytes=3-7"),)),
        ("HEAD", "/sequence/test:s1", b"", ()),
        ("GET", "/sequence/test:s1/metadata", b"", ((b"accept", V1_JSON.encode()),)),
        ("GET", "/refget/1/sequence/test:s1/metadata", b"", ()),
        ("GET", f"/refget/1/sequence/{md5}", b"start=0&end=20000", ()),
        ("GET", "/refget/1/sequence/test:s1", b"", ((b"accept", b"text/html"),)),
        ("GET", "/sequence/", b"", ()),
        ("GET", "/sequence//metadata", b"", ()),
        ("GET", "/sequence/service-info/metadata", b"", ()),
        ("GET", "/sequence/test:s1/metadata/metadata", b"", ()),
        ("GET", "/sequence/nothing", b"start=5&end=1", ()),
        ("GET", "/sequence/service-info", b"", ()),
        ("POST", "/sequence/test:s1", b"", ()),
        ("GET", "/sequence/test:s1/metadata", b"", ((b"origin", b"https://a.example"),)),
    ]

    async def compare() -> None:
        for method, path, qs, headers in cases:
            fast = await answer(shortcut, method, path, qs, headers)
            full = await answer(shortcut.app, method, path, qs, headers)
            assert fast == full, (method, path, qs)
            assert fast[0]["status"] in (200, 206, 300, 400, 404, 405, 406, 416, 501), path

    asyncio.run(compare())
