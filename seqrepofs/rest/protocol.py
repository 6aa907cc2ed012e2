"""uvicorn's httptools protocol, sending a response's header block and body in one write.

uvicorn writes the status line and headers to the socket as soon as the app sends
`http.response.start`, and the body separately. With TCP_NODELAY (set on every connection)
those are two `send()` calls and two TCP segments for a 300-byte refget answer, and the client
wakes up twice. Here a header block is held until the next write (the body, normally in the
same turn of the event loop) or the loop's next turn, whichever comes first, so a small
response leaves in one segment (docs/performance.md, "REST at 1 M"). Nothing else changes:
every other call goes to uvicorn's transport.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HTTP_PROTOCOL = "seqrepofs.rest.protocol:CoalescingHttpToolsProtocol"  # for uvicorn's `http=`
HOLD_MAX = 16384  # a header block longer than this is written at once


class HeldHeadersTransport:
    """A transport wrapper that holds one header block until the next write or loop turn."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + data)
        elif (
            isinstance(data, bytes)
            and len(data) <= HOLD_MAX
            and data.startswith(b"HTTP/")
            and data.endswith(b"\r\n\r\n")
        ):
            self._held = data
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held)

    def writelines(self, data: Any) -> None:
        self.flush()
        self._transport.writelines(data)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol over a HeldHeadersTransport."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(HeldHeadersTransport(transport, self.loop))  # type: ignore[arg-type]
