"""Real servers on 127.0.0.1 for the HTTP/S3 publish and pull tests (and scripts/bench).

* `Nginx`: the Debian nginx as a foreground process with a generated config in a temporary
  directory; its access log records each request's bytes sent (Range support is built in).
* `MotoS3`: moto's standalone S3-compatible server (`python -m moto.server`), a separate
  process speaking the S3 HTTP API; boto3 signs every request to it as it would for AWS.
* `FaultProxy` (support/fault_proxy.py) sits between a client and either of them.

Each starts on a free port, waits (bounded) until it answers, and is stopped on exit.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from support.system import free_port

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "seqrepofs-test",
    "AWS_SECRET_ACCESS_KEY": "seqrepofs-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def wait_listening(
    port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited at start with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout} s")


def stop(proc: subprocess.Popen[bytes], grace: float = 10) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(grace)


NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {state}/nginx.pid;
error_log {state}/error.log warn;
events {{ worker_connections 512; }}
http {{
    log_format bytes '$request_method $uri $status $bytes_sent $body_bytes_sent'
                     ' $msec $request_time "$http_range"';
    access_log {state}/access.log bytes;
    client_body_temp_path {state}/body;
    proxy_temp_path {state}/proxy;
    fastcgi_temp_path {state}/fastcgi;
    uwsgi_temp_path {state}/uwsgi;
    scgi_temp_path {state}/scgi;
    default_type application/octet-stream;
    types {{ application/json json; }}
    sendfile on;
    keepalive_requests 10000;
    server {{
        listen 127.0.0.1:{port}{ssl};
        root {root};
{extra}
    }}
}}
"""


@dataclass
class LogLine:
    method: str
    path: str
    status: int
    bytes_sent: int
    body_bytes: int
    range: str
    end: float = 0.0  # when the response ended (epoch seconds, ms resolution)
    took: float = 0.0  # the request's duration in seconds

    @property
    def start(self) -> float:
        return self.end - self.took


class Nginx:
    """nginx serving `root` (or proxying to `upstream`) on a free port, one process."""

    def __init__(
        self,
        root: Path,
        state: Path,
        upstream: str | None = None,
        extra: str = "",
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        if NGINX is None:
            raise RuntimeError("nginx is not installed (Debian package nginx)")
        self.root, self.state, self.port = root, state, free_port()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        state.mkdir(parents=True, exist_ok=True)
        if tls is not None:  # HTTPS with this certificate and key
            extra += f"        ssl_certificate {tls[0]};\n        ssl_certificate_key {tls[1]};\n"
        if upstream is not None:  # a logging reverse proxy (in front of the S3 server)
            extra += (
                f"        location / {{ proxy_pass {upstream}; proxy_set_header Host $http_host;"
                " proxy_buffering off; proxy_request_buffering off;"
                " client_max_body_size 0; }"
            )
        (state / "nginx.conf").write_text(
            NGINX_CONF.format(
                state=state, port=self.port, root=root, extra=extra, ssl=" ssl" if tls else ""
            )
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Nginx:
        cmd = [str(NGINX), "-p", str(self.state), "-c", str(self.state / "nginx.conf")]
        err = open(self.state / "stderr.log", "wb")  # noqa: SIM115 - lives as long as nginx
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        err.close()
        wait_listening(self.port, self.proc, "nginx")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            stop(self.proc)

    def log(self) -> list[LogLine]:
        out = []
        try:
            text = (self.state / "access.log").read_text()
        except FileNotFoundError:
            return []
        for line in text.splitlines():
            head, _, rng = line.partition(' "')
            method, path, status, sent, body, end, took = head.split()
            line = LogLine(method, path, int(status), int(sent), int(body), rng.rstrip('"'))
            line.end, line.took = float(end), float(took)
            out.append(line)
        return out

    def bytes_sent(self) -> int:
        return sum(line.bytes_sent for line in self.log())

    def clear_log(self) -> None:
        """Start a fresh count (nginx appends to the file it holds open)."""
        path = self.state / "access.log"
        if path.exists():
            os.truncate(path, 0)


class MotoS3:
    """moto's S3-compatible server as its own process on a free port."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> MotoS3:
        self.state.mkdir(parents=True, exist_ok=True)
        log = open(self.state / "moto.log", "wb")  # noqa: SIM115 - lives as long as moto
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env={**os.environ, **S3_ENV},
        )
        log.close()
        wait_listening(self.port, self.proc, "moto server")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc is not None:
            stop(self.proc)

    def client(self) -> Any:
        """A boto3 client for this server, with the test credentials."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
        )

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made with the openssl program."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key
