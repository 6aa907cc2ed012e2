"""A small fault-injecting HTTP proxy for the pull tests: it sits between seqrepofs and a real
server (nginx, the S3 server) and, for the requests a schedule picks, answers 500/503, resets
the connection mid-body, closes it early after a full Content-Length (a truncated body), or
stalls mid-body. Other requests are forwarded unchanged (one request per connection).
"""

from __future__ import annotations

import http.client
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Callable

FAULTS = ("500", "503", "reset", "truncate", "stall")
MAX_HEAD = 64 * 1024

Schedule = Callable[[int, str, str], str]  # (request number, method, path) -> fault or "pass"


def every(n: int, faults: tuple[str, ...] = FAULTS, budget: int = 20) -> Schedule:
    """Every n-th GET of a snapshot file gets the next fault in turn, `budget` faults in all."""
    state = {"seen": 0, "used": 0}
    lock = threading.Lock()

    def pick(_number: int, method: str, path: str) -> str:
        if method != "GET" or "/seqrepofs/" in path or path.endswith("/seqrepofs"):
            return "pass"
        with lock:
            state["seen"] += 1
            if state["used"] >= budget or state["seen"] % n:
                return "pass"
            fault = faults[state["used"] % len(faults)]
            state["used"] += 1
            return fault

    return pick


class FaultProxy:
    """Listen on 127.0.0.1:<free port>, forward to `upstream_port`, apply `schedule`."""

    def __init__(self, upstream_port: int, schedule: Schedule, stall: float = 5.0) -> None:
        self.upstream_port = upstream_port
        self.schedule = schedule
        self.stall = stall
        self.applied: list[tuple[str, str]] = []
        self._count = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._handle(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        head = b""
        while b"\r\n\r\n" not in head and len(head) < MAX_HEAD:
            data = conn.recv(65536)
            if not data:
                return
            head += data
        request, _, rest = head.partition(b"\r\n\r\n")
        lines = request.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers = [tuple(h.split(":", 1)) for h in lines[1:] if ":" in h]
        with self._lock:
            self._count += 1
            number = self._count
        fault = self.schedule(number, method, target)
        if fault != "pass":
            with self._lock:
                self.applied.append((fault, target))
        if fault in ("500", "503"):
            body = f"injected {fault}\n".encode()
            conn.sendall(
                f"HTTP/1.1 {fault} Injected\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
            return
        length = int(
            dict((k.strip().lower(), v.strip()) for k, v in headers).get("content-length", 0)
        )
        body = rest
        while len(body) < length:
            data = conn.recv(65536)
            if not data:
                break
            body += data
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=30)
        try:
            upstream.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                if name.strip().lower() != "connection":
                    upstream.putheader(name.strip(), value.strip())
            upstream.putheader("Connection", "close")
            upstream.endheaders(body or None)
            resp = upstream.getresponse()
            self._relay(conn, resp, fault)
        finally:
            upstream.close()

    def _relay(self, conn: socket.socket, resp: http.client.HTTPResponse, fault: str) -> None:
        out = [f"HTTP/1.1 {resp.status} {resp.reason}"]
        for name, value in resp.getheaders():
            if name.lower() not in ("connection", "transfer-encoding", "keep-alive"):
                out.append(f"{name}: {value}")
        out.append("Connection: close")
        body = resp.read()
        if not any(h.lower().startswith("content-length:") for h in out):
            out.append(f"Content-Length: {len(body)}")
        conn.sendall(("\r\n".join(out) + "\r\n\r\n").encode("latin-1"))
        if fault == "pass" or len(body) < 2:
            conn.sendall(body)
            return
        conn.sendall(body[: len(body) // 2])
        if fault == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif fault == "stall":
            time.sleep(self.stall)
        # "truncate": just close after half the promised body
