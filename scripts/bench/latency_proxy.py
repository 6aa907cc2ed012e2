#!/usr/bin/env python3
"""A TCP proxy that adds network latency, for benchmarks of reading over HTTP.

Every byte is held for half the round-trip time in each direction (a delay line, not a
bandwidth limit), so each request/response turn costs one round trip more than on 127.0.0.1,
and a new connection costs one more round trip (the TCP handshake a real network would charge):
its first bytes reach the server no sooner than 1.5 round trips after the client connected.
Used instead of `tc netem` because this machine's kernel has no netem qdisc.

    python3 scripts/bench/latency_proxy.py UPSTREAM_PORT [--rtt-ms 20] [--port 0]

prints `listening PORT` once it accepts connections and runs until SIGTERM/SIGINT. With
--log FILE it appends one line per connection when the connection ends (bytes each way).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import subprocess
import sys
import time
from pathlib import Path

READ = 256 * 1024
QUEUED = 16  # pieces of up to READ bytes waiting per direction: at most 4 MiB in flight


async def relay(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    delay: float,
    not_before: float,
    counter: list[int],
    closed: asyncio.Event,
) -> None:
    """Copy reader → writer, each piece written `delay` seconds after it was read (and not
    before `not_before`, loop time), in order. At most QUEUED pieces wait, so a sender is held
    back as a real link's window would (an open-ended Range answer does not race ahead into
    the proxy's memory). End of input or any error sets `closed`, after the delay."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(QUEUED)

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
                await writer.drain()
        except OSError:
            pass
        finally:
            closed.set()

    sender = asyncio.create_task(deliver())
    try:
        while not sender.done():
            try:
                data = await reader.read(READ)
            except OSError:
                data = b""
            counter[0] += len(data)
            await queue.put((max(loop.time() + delay, not_before), data))
            if not data:
                break
        await sender
    finally:
        sender.cancel()


async def serve(upstream_port: int, rtt: float, port: int, log: Path | None) -> None:
    half = rtt / 2
    loop = asyncio.get_running_loop()

    async def handle(c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        accepted = loop.time()
        try:
            s_reader, s_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        except OSError:
            c_writer.close()
            return
        up, down = [0], [0]
        closed = asyncio.Event()
        # The first request waits for the handshake's round trip, then its own one-way trip.
        first = accepted + rtt + half
        tasks = [
            asyncio.create_task(relay(c_reader, s_writer, half, first, up, closed)),
            asyncio.create_task(relay(s_reader, c_writer, half, 0.0, down, closed)),
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
    ap.add_argument("--log", type=Path, default=None, help="one line per ended connection")
    args = ap.parse_args(argv)
    asyncio.run(serve(args.upstream_port, args.rtt_ms / 1000, args.port, args.log))
    return 0


if __name__ == "__main__":
    sys.exit(main())
