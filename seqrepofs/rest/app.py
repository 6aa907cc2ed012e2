"""The Starlette application and how uvicorn runs it.

Worker processes (``--workers N``) import :func:`app_from_env`, so the settings travel to them as
JSON in an environment variable; each worker opens its own SeqRepo.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from resource import RUSAGE_THREAD, getrusage
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..store.nowait import WouldWait, no_waiting
from .middleware import AccessLog, SelectiveGZip, access_logger
from .negotiation import V1, V2
from .openapi import openapi_document
from .placement import Placement, blocked_time
from .protocol import HTTP_PROTOCOL
from .refget import Refget
from .responses import problem
from .seqcol import SeqcolAPI
from .seqrepo_api import SeqrepoAPI
from .service import Backend, Settings

log = logging.getLogger(__name__)
SETTINGS_ENV = "SEQREPOFS_SERVE_SETTINGS"
GET = ["GET"]  # Starlette adds HEAD


def endpoint(handler: Callable[[Request], Response], placement: Placement | None) -> Callable:
    """Wrap a blocking handler: run it on the event loop or in the thread pool, as `placement`
    says (None: always the pool; see rest/placement.py for why and when).

    An unexpected error (a damaged file) becomes a logged 500 problem document here, so the
    connection stays usable instead of being closed by the server's last-resort handler.
    """

    def guarded(request: Request) -> Response:
        try:
            return handler(request)
        except WouldWait:
            raise  # not an error: the request is run again in a thread
        except Exception as exc:
            log.exception("%s %s failed", request.method, request.url.path)
            return problem(500, f"{exc.__class__.__name__}: {exc}")

    if placement is None:

        async def call_in_thread(request: Request) -> Response:
            return await run_in_threadpool(guarded, request)

        return call_in_thread

    async def call_placed(request: Request) -> Response:
        if placement.on_loop():
            before, wall = getrusage(RUSAGE_THREAD), time.perf_counter()
            try:
                with no_waiting():  # a fetch or a long read raises WouldWait: a thread does it
                    response = guarded(request)
            except WouldWait:
                pass
            else:
                # with requests in threads, a wait may have been for the GIL: not counted
                if not placement.remote and not placement.in_threads:
                    placement.waited(
                        blocked_time(before, getrusage(RUSAGE_THREAD), time.perf_counter() - wall),
                        request.scope.get("client"),
                    )
                return response
        placement.in_threads += 1
        try:
            return await run_in_threadpool(guarded, request)
        finally:
            placement.in_threads -= 1

    return call_placed


def create_app(settings: Settings) -> ASGIApp:
    """An ASGI app serving one instance: refget v2/v1, /refget/1 (v1), /seqrepo/1, OpenAPI."""
    backend = Backend(settings)
    examples = backend.example_ids()
    doc = openapi_document({"md5": examples[0], "ga4gh": examples[1]} if examples else None)
    root = Refget(backend, default=V2, allowed=(V1, V2))
    v1 = Refget(backend, default=V1, allowed=(V1,))
    srapi = SeqrepoAPI(backend)
    seqcol = SeqcolAPI(backend)  # GA4GH sequence collections, beside refget

    def openapi(request: Request) -> Response:
        return JSONResponse(doc)

    def index(request: Request) -> Response:
        return JSONResponse(
            {
                "service": "seqrepofs",
                "version": __version__,
                "instance": os.path.basename(settings.instance_dir),
                "openapi": "/openapi.json",
                "refget": "/sequence/service-info",
                "refget_v1": "/refget/1/sequence/service-info",
                "seqrepo": "/seqrepo/1/ping",
                "seqcol": "/service-info",
            }
        )

    placement = Placement(settings.reads, frozen=backend.frozen, remote=backend.remote)

    def ep(handler: Callable[[Request], Response]) -> Callable:
        return endpoint(handler, placement)

    def threaded(handler: Callable[[Request], Response]) -> Callable:
        return endpoint(handler, None)

    routes = [
        Route("/", index, methods=GET),
        Route("/openapi.json", openapi, methods=GET),
        Route("/sequence/service-info", threaded(root.service_info), methods=GET),
        Route("/sequence/{id:path}/metadata", ep(root.metadata), methods=GET),
        Route("/sequence/{id:path}", ep(root.sequence), methods=GET),
        Route("/refget/1/sequence/service-info", threaded(v1.service_info), methods=GET),
        Route("/refget/1/sequence/{id:path}/metadata", ep(v1.metadata), methods=GET),
        Route("/refget/1/sequence/{id:path}", ep(v1.sequence), methods=GET),
        Route("/seqrepo/1/ping", ep(srapi.ping), methods=GET),
        Route("/seqrepo/1/sequence/{alias:path}", ep(srapi.sequence), methods=GET),
        Route("/seqrepo/1/metadata/{alias:path}", ep(srapi.metadata), methods=GET),
        *seqcol.routes(threaded),  # collections of millions of records: not on the loop
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        log.info("serving %s", settings.instance_dir)
        # Listing namespaces scans the alias index (seconds on a full RefSeq instance): do it
        # now in the background rather than in the first service-info request.
        threading.Thread(target=backend.namespaces, name="warm-namespaces", daemon=True).start()
        # What exists now (modules, the app, the store) lives as long as the process: out of
        # the collector's sight, a full collection walks only what requests leave behind
        # (caches) and stops pausing every connection for tens of ms (docs/performance.md).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            seqcol.close()
            backend.close()

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    app.state.backend = backend
    cors = CORSMiddleware(
        app,
        allow_origins=["*"],
        allow_methods=["GET", "HEAD", "POST"],  # POST: /comparison with a local collection
        allow_headers=["Range", "If-None-Match", "Accept", "Content-Type"],
        expose_headers=["Content-Range", "Content-Length", "ETag", "Accept-Ranges"],
    )
    shortcut = RefgetShortcut(
        cors,
        {
            "/sequence/": (ep(root.metadata), ep(root.sequence)),
            "/refget/1/sequence/": (ep(v1.metadata), ep(v1.sequence)),
        },
    )
    gz = SelectiveGZip(shortcut, compresslevel=settings.gzip_level)
    logger = access_logger(settings.access_log, settings.log_file)
    return AccessLog(gz, logger) if settings.access_log else gz


class RefgetShortcut:
    """refget's sequence and metadata requests straight to their handlers, past Starlette's
    router and middleware stack (a quarter of the app's CPU for a metadata request).

    Only what those routes would do anyway: GET and HEAD of `PREFIX{id}` and
    `PREFIX{id}/metadata`, `{id}` matched as Starlette's `{id:path}` matches it (anything,
    slashes included); `service-info`, other methods, CORS requests (an Origin header) and
    every other path go through the full app. The handlers answer every error themselves
    (`endpoint`), so nothing is left for the skipped exception middleware.
    """

    def __init__(self, app: ASGIApp, routes: dict[str, tuple[Callable, Callable]]) -> None:
        self.app = app
        self.routes = list(routes.items())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            path: str = scope["path"]
            for prefix, (metadata, sequence) in self.routes:
                if not path.startswith(prefix):
                    continue
                rest = path[len(prefix) :]
                if rest == "service-info" or any(k == b"origin" for k, _v in scope["headers"]):
                    break
                if rest.endswith("/metadata"):
                    call, ident = metadata, rest[: -len("/metadata")]
                else:
                    call, ident = sequence, rest
                scope["path_params"] = {"id": ident}
                response = await call(Request(scope, receive, send))
                await response(scope, receive, _VaryOrigin(send))
                return
        await self.app(scope, receive, send)


class _VaryOrigin:
    """Adds `Origin` to Vary as the CORS middleware does on every response it passes (so the
    shortcut's answers are the same bytes as the full app's)."""

    __slots__ = ("send",)

    def __init__(self, send: Send) -> None:
        self.send = send

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            headers: list[tuple[bytes, bytes]] = message.setdefault("headers", [])
            at = [i for i, (k, _v) in enumerate(headers) if k == b"vary"]
            if at:
                value = b", ".join([*(headers[i][1] for i in at), b"Origin"])
                headers[at[0]] = (b"vary", value)
                for i in reversed(at[1:]):
                    del headers[i]
            else:
                headers.append((b"vary", b"Origin"))
        await self.send(message)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return problem(exc.status_code, exc.detail, headers=dict(exc.headers or {}))


async def _server_error(request: Request, exc: Exception) -> Response:
    """A problem document; Starlette re-raises afterwards, so uvicorn logs the traceback."""
    return problem(500, f"{exc.__class__.__name__}: {exc}")


def settings_to_env(settings: Settings) -> str:
    return json.dumps(dataclasses.asdict(settings))


def app_from_env() -> ASGIApp:
    """uvicorn factory for worker processes: settings from $SEQREPOFS_SERVE_SETTINGS."""
    raw: dict[str, Any] = json.loads(os.environ[SETTINGS_ENV])
    return create_app(Settings(**raw))


def run(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    """Serve until interrupted (uvicorn handles SIGINT/SIGTERM and drains connections)."""
    import socket

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    os.environ[SETTINGS_ENV] = settings_to_env(settings)
    config = uvicorn.Config(
        "seqrepofs.rest.app:app_from_env",
        factory=True,
        http=HTTP_PROTOCOL,
        ws="none",
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    if workers == 1:
        uvicorn.Server(config).run()
        return
    # uvicorn binds the shared socket with proto 0, so asyncio never sets TCP_NODELAY on the
    # accepted connections and every keep-alive response waits ~40 ms for the client's delayed
    # ACK (Kludex/uvicorn#3149): 2 workers served 3x fewer requests than 1. Re-wrap it as TCP.
    bound = config.bind_socket()
    sock = socket.socket(bound.family, bound.type, socket.IPPROTO_TCP, fileno=bound.detach())
    sock.set_inheritable(True)
    Multiprocess(config, sockets=[sock]).run()
