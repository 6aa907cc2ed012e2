"""ASGI middleware: the request log and gzip that stays off the refget paths.

refget says responses "may be compressed using transfer-coding, not content-coding", and the
compliance suite checks Content-Length against the residue count while its client asks for gzip;
so gzip (on Accept-Encoding) applies to the seqrepo API and the documents only.
"""

from __future__ import annotations

import logging
import sys
import time
from logging.handlers import WatchedFileHandler

from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ACCESS_LOGGER = "seqrepofs.rest.access"
NO_GZIP_PREFIXES = ("/sequence/", "/refget/")


class SelectiveGZip:
    """GZipMiddleware for every path except refget's."""

    def __init__(self, app: ASGIApp, minimum_size: int = 500, compresslevel: int = 1) -> None:
        self.plain = app
        self.gzip = GZipMiddleware(app, minimum_size=minimum_size, compresslevel=compresslevel)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(NO_GZIP_PREFIXES):
            await self.gzip(scope, receive, send)
        else:
            await self.plain(scope, receive, send)


class AccessLog:
    """One line per request: client, request line, status, body bytes sent, milliseconds.

    Our own rather than uvicorn's access log because it records the duration and the bytes
    actually sent (after gzip), and it logs requests that die mid-stream (status 'aborted').
    """

    def __init__(self, app: ASGIApp, logger: logging.Logger) -> None:
        self.app = app
        self.log = logger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status: int | str = "-"
        sent = 0

        async def send_logged(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_logged)
        except BaseException:
            status = f"{status}/aborted"
            raise
        finally:
            client = scope.get("client")
            qs = scope.get("query_string", b"").decode("latin-1")
            target = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
            if qs:
                target += "?" + qs
            self.log.info(
                '%s "%s %s HTTP/%s" %s %d %.1fms',
                f"{client[0]}:{client[1]}" if client else "-",
                scope["method"],
                target,
                scope.get("http_version", "1.1"),
                status,
                sent,
                (time.perf_counter() - t0) * 1000,
            )


def access_logger(enabled: bool, log_file: str | None) -> logging.Logger:
    """The request logger, writing to `log_file` (reopened if rotated) or stderr."""
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.propagate = False
    for old in list(logger.handlers):
        logger.removeHandler(old)
        old.close()
    if not enabled:
        logger.disabled = True
        return logger
    logger.disabled = False
    handler: logging.Handler = (
        WatchedFileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return logger
