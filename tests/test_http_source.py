"""HttpSource against small real HTTP servers on 127.0.0.1 that answer a Range request the
ways servers do: 206 (the standard), 200 with the whole body (Range ignored), and 200 with a
Content-Range and only the range (gofakes3, the S3 emulator behind `rclone serve s3`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from seqrepofs.remote.retry import Retry
from seqrepofs.remote.sources import HttpSource

BODY = bytes(range(256)) * 64  # 16 KiB


def handler(style: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            first, last = 0, len(BODY) - 1
            wanted = self.headers.get("Range")
            if wanted and style != "ignore":
                a, b = wanted.removeprefix("bytes=").split("-")
                first, last = int(a), int(b)
            data = BODY[first : last + 1]
            self.send_response(206 if wanted and style == "206" else 200)
            if wanted and style != "ignore":
                self.send_header("Content-Range", f"bytes {first}-{last}/{len(BODY)}")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture(params=["206", "ignore", "200-with-content-range"])
def source(request: pytest.FixtureRequest) -> Iterator[HttpSource]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler(request.param))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with HttpSource(f"http://127.0.0.1:{server.server_address[1]}", Retry(), 2) as src:
            yield src
    finally:
        server.shutdown()
        server.server_close()


def test_a_range_starts_where_asked(source: HttpSource) -> None:
    """A stream starts at the range's first byte (a caller stops at its end: a server that
    ignored Range sends on to the end of the object)."""
    for start, end in ((4096, 8192), (0, 100), (16000, len(BODY))):
        with source.stream("f", start, end) as blocks:
            got = b"".join(blocks)
        assert got[: end - start] == BODY[start:end]
