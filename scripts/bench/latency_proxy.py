#!/usr/bin/env python3
"""A TCP proxy that adds network latency, for benchmarks of reading over HTTP.

Every byte is held for half the round-trip time in each direction (a delay line, no
bandwidth limit), so each request/response turn costs one round trip more than on 127.0.0.1,
and a new connection costs one more round trip (the TCP handshake a real network would charge):
its first bytes reach the server no sooner than 1.5 round trips after the client connected.
What is in flight is bounded as by TCP (`Window`: slow start from 10 segments up to 4 MiB), so
a long answer ramps up per round trip, and a client that hangs up mid-answer (htslib's
open-ended ranges) costs the server about a window, as on a network, not all a loopback socket
would take. Used instead of `tc netem` because this machine's kernel has no netem qdisc.

    python3 scripts/bench/latency_proxy.py UPSTREAM_PORT [--rtt-ms 20] [--port 0]

prints `listening PORT` once it accepts connections and runs until SIGTERM/SIGINT. With
--log FILE it appends one line per connection when the connection ends (bytes each way).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

READ = 256 * 1024
INITIAL_WINDOW = 10 * 1460  # TCP's initial congestion window (RFC 6928)
MAX_WINDOW = 4 * 1024 * 1024  # about what Linux's receive-buffer autotuning reaches
SOCKET_BUFFER = 64 * 1024  # our sockets' buffers: bytes wait at the sender, not in ours


class Window:
    """TCP's sending window, roughly: at most `size` bytes in flight (read from the sender,
    not yet acknowledged, i.e. delivered half a round trip ago); slow start grows it by every
    byte acknowledged, from INITIAL_WINDOW to MAX_WINDOW, for the connection's life (no loss).
    So a long answer ramps up as it would over the network, and a sender whose reader hangs
    up has sent about one window too many, not everything a loopback socket would take."""

    def __init__(self, maximum: int) -> None:
        self.size = min(INITIAL_WINDOW, maximum)
        self.maximum = maximum
        self.in_flight = 0
        self.opened = asyncio.Event()
        self.opened.set()

    def room(self) -> int:
        return self.size - self.in_flight

    def sent(self, n: int) -> None:
        self.in_flight += n
        if self.room() <= 0:
            self.opened.clear()

    def acked(self, n: int) -> None:
        self.in_flight -= n
        self.size = min(self.maximum, self.size + n)
        if self.room() > 0:
            self.opened.set()


async def relay(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    delay: float,
    not_before: float,
    counter: list[int],
    closed: asyncio.Event,
    max_window: int,
) -> None:
    """Copy reader → writer, each piece written `delay` seconds after it was read (and not
    before `not_before`, loop time), in order, with at most a Window in flight. End of input
    or any error sets `closed`, after the delay."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
    window = Window(max_window)

    async def deliver() -> None:
        try:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    return
                writer.write(data)
                loop.call_later(delay, window.acked, len(data))  # the ACK's trip back
                await writer.drain()
        except OSError:
            pass
        finally:
            closed.set()

    sender = asyncio.create_task(deliver())
    try:
        while not sender.done():
            await window.opened.wait()
            try:
                data = await reader.read(min(READ, max(window.room(), 1)))
            except OSError:
                data = b""
            counter[0] += len(data)
            window.sent(len(data))
            queue.put_nowait((max(loop.time() + delay, not_before), data))
            if not data:
                break
        await sender
    finally:
        sender.cancel()


async def serve(
    upstream_port: int, rtt: float, port: int, log: Path | None, max_window: int
) -> None:
    half = rtt / 2
    loop = asyncio.get_running_loop()

    async def handle(c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        accepted = loop.time()
        # The client's own receive window bounds what is in flight too: a client that does
        # not read makes our writes wait, and then the window (no acknowledgements).
        c_sock = c_writer.get_extra_info("socket")
        if c_sock is not None:
            c_sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, ("127.0.0.1", upstream_port))
            s_reader, s_writer = await asyncio.open_connection(sock=sock)
        except OSError:
            sock.close()
            c_writer.close()
            return
        up, down = [0], [0]
        closed = asyncio.Event()
        # The first request waits for the handshake's round trip, then its own one-way trip.
        first = accepted + rtt + half
        tasks = [
            asyncio.create_task(relay(c_reader, s_writer, half, first, up, closed, max_window)),
            asyncio.create_task(relay(s_reader, c_writer, half, 0.0, down, closed, max_window)),
        ]
        try:
            await closed.wait()  # HTTP/1.1: one side's end ends the connection
        except asyncio.CancelledError:  # the proxy is stopping
            pass
        finally:
            for task in tasks:
                task.cancel()
            for w in (c_writer, s_writer):
                with contextlib.suppress(Exception):
                    w.close()
            if log is not None:
                with open(log, "a") as fh:
                    fh.write(
                        f"{time.time():.3f} up {up[0]} down {down[0]}"
                        f" took {loop.time() - accepted:.3f}\n"
                    )

    server = await asyncio.start_server(handle, "127.0.0.1", port, reuse_address=True)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


class LatencyProxy:
    """The proxy as a child process (its own interpreter, so it never competes for the
    caller's GIL) in front of 127.0.0.1:`upstream_port`; `url` is where to connect."""

    def __init__(self, upstream_port: int, rtt_ms: float, log: Path | None = None) -> None:
        self.upstream_port, self.rtt_ms, self.log = upstream_port, rtt_ms, log
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0
        self.url = ""

    def __enter__(self) -> LatencyProxy:
        cmd = [sys.executable, __file__, str(self.upstream_port), "--rtt-ms", str(self.rtt_ms)]
        if self.log is not None:
            cmd += ["--log", str(self.log)]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("listening "):
            self.proc.kill()
            raise RuntimeError(f"latency proxy did not start: {line!r}")
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def connections(self) -> int:
        """Connections that have ended so far (from the log)."""
        if self.log is None or not self.log.exists():
            return 0
        return len(self.log.read_text().splitlines())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("upstream_port", type=int)
    ap.add_argument("--rtt-ms", type=float, default=20.0, help="added round-trip time [20]")
    ap.add_argument("--port", type=int, default=0, help="listen port [a free one]")
    ap.add_argument(
        "--max-window",
        type=int,
        default=MAX_WINDOW,
        help=f"bytes in flight per direction at most [{MAX_WINDOW}]",
    )
    ap.add_argument("--log", type=Path, default=None, help="one line per ended connection")
    args = ap.parse_args(argv)
    asyncio.run(serve(args.upstream_port, args.rtt_ms / 1000, args.port, args.log, args.max_window))
    return 0


if __name__ == "__main__":
    sys.exit(main())
