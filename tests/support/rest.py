"""`seqrepofs serve` on 127.0.0.1 for the REST tests: started on a free port, polled until it
answers, stopped and reaped."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from support.cli import checkout_env, seqrepofs_cmd, stop_process
from support.system import free_port


@dataclass
class RestServer:
    url: str
    proc: subprocess.Popen[bytes]
    log_file: Path | None  # the access log, if asked for
    stderr_file: Path
    client: httpx.Client  # one client: creating one per request costs ~0.1 s (TLS context)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.get(self.url + path, **kw)

    def head(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.head(self.url + path, **kw)

    def stop(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            stop_process(self.proc, 15)


def start_rest_server(
    src: str | Path,
    tmp: Path,
    *args: str,
    access_log: bool = True,
    ready: str = "/sequence/service-info",
) -> RestServer:
    """Serve `src` with `args`; return once GET `ready` answers 200 (retried on another port if
    the one picked was taken meanwhile). With `access_log`, the log goes to a file in `tmp`."""
    for attempt in range(3):
        port = free_port()
        log_file = tmp / f"access-{port}.log" if access_log else None
        err = tmp / f"stderr-{port}.log"
        log_args = ["--log-file", str(log_file)] if log_file else []
        with open(err, "wb") as fh:
            proc = subprocess.Popen(
                seqrepofs_cmd("serve", src, "--port", str(port), *log_args, *args),
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=checkout_env(),
            )
        client = httpx.Client(timeout=60)
        server = RestServer(f"http://127.0.0.1:{port}", proc, log_file, err, client)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if server.get(ready).status_code == 200:
                    return server
            except httpx.TransportError:
                time.sleep(0.1)
        server.stop()
        if "address already in use" not in err.read_text() or attempt == 2:
            raise RuntimeError(f"server did not start:\n{err.read_text()}")
    raise AssertionError("unreachable")
