"""Publishing a root read-only with a real `rsync --daemon`: the config, starting and stopping.

The generated rsyncd.conf is the documented way to publish; `serve-rsync` just writes it and
runs rsync. `master` and temporary directories (`<name>.<random>`) are excluded, so a client
never sees an instance that is still being written, made or pulled.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass

from .endpoint import DEFAULT_MODULE, check_module
from .errors import RemoteError, RemoteInputError
from .rsync import Rsync

SYSTEM_PID_FILE = "/var/run/seqrepofs-rsyncd.pid"
SYSTEM_LOG_FILE = "/var/log/seqrepofs-rsyncd.log"


@dataclass(frozen=True)
class DaemonConfig:
    """Everything rsyncd.conf needs to publish `root` as one read-only module."""

    root: str
    port: int
    address: str = "127.0.0.1"
    module: str = DEFAULT_MODULE
    pid_file: str = SYSTEM_PID_FILE
    log_file: str = SYSTEM_LOG_FILE
    user: str | None = None
    group: str | None = None
    as_root: bool = False

    def __post_init__(self) -> None:
        check_module(self.module)
        for value in (self.root, self.pid_file, self.log_file, self.address, self.user, self.group):
            if value is not None and ("\n" in value or "\r" in value):
                raise RemoteInputError(f"{value!r}: line breaks cannot go into rsyncd.conf")

    def render(self) -> str:
        """The rsyncd.conf text.

        chroot needs root; without it rsync runs with `use chroot = no` (its symlink munging
        then keeps links inside the module). uid/gid only mean something when started as root,
        where rsync's default is the unprivileged `nobody`.
        """
        lines = [
            "# rsyncd.conf written by seqrepofs serve-rsync: one read-only SeqRepo root",
            f"pid file = {self.pid_file}",
            f"log file = {self.log_file}",
            f"port = {self.port}",
            f"address = {self.address}",
            "reverse lookup = no",
            "",
            f"[{self.module}]",
            f"    path = {os.path.abspath(self.root)}",
            "    comment = SeqRepo snapshots (seqrepofs)",
            "    read only = yes",
            "    write only = no",
            "    list = yes",
            f"    use chroot = {'yes' if self.as_root else 'no'}",
            "    timeout = 600",
            "    # only finished snapshots: not the writable master (it may be mid-write),",
            "    # half-made snapshots or pulls (<name>.<random>), nor dot files",
            "    exclude = /master /.* /*.*",
        ]
        if self.as_root and self.user:
            lines.append(f"    uid = {self.user}")
        if self.as_root and self.group:
            lines.append(f"    gid = {self.group}")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Daemon:
    """A started daemon: its pid and files."""

    pid: int
    config_file: str
    pid_file: str
    log_file: str


def state_dir_for(port: int, state_dir: str | None) -> str:
    """Where the conf, pid and log files go: `state_dir`, else a fresh private temp dir."""
    if state_dir:
        os.makedirs(state_dir, exist_ok=True)
        return os.path.abspath(state_dir)
    return tempfile.mkdtemp(prefix=f"seqrepofs-rsyncd-{port}-")


def write_config(config: DaemonConfig, path: str) -> None:
    with open(path, "w") as fh:
        fh.write(config.render())


def daemon_command(rsync: Rsync, config_file: str, *, log_to_stderr: bool = False) -> list[str]:
    cmd = [rsync.exe, "--daemon", "--no-detach", f"--config={config_file}"]
    if log_to_stderr:
        cmd.append("--log-file=/dev/stderr")
    return cmd


def start(rsync: Rsync, config: DaemonConfig, config_file: str, wait: float = 15.0) -> Daemon:
    """Start the daemon in the background (its own session) and wait until it answers."""
    preflight(config)
    with open(config.log_file, "ab") as log:
        proc = subprocess.Popen(
            daemon_command(rsync, config_file),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    deadline = time.monotonic() + wait
    while True:
        if proc.poll() is not None:
            raise RemoteError(
                f"rsync daemon exited at start (code {proc.returncode}): {last_log_line(config)}"
            )
        if answers(config.address, config.port) and proc.poll() is None:
            return Daemon(proc.pid, config_file, config.pid_file, config.log_file)
        if time.monotonic() > deadline:
            os.kill(proc.pid, signal.SIGTERM)
            raise RemoteError(f"rsync daemon did not answer on port {config.port} in {wait:.0f}s")
        time.sleep(0.05)


def preflight(config: DaemonConfig) -> None:
    """What would make rsync fail at start, checked first so the message is ours and clear."""
    clear_stale_pid_file(config.pid_file)
    check_port_free(config.address, config.port)


def check_port_free(address: str, port: int) -> None:
    """Fail clearly before starting rsync if the port is taken (or privileged).

    Otherwise a daemon already on the port would answer our readiness probe while the new
    one quietly fails to bind.
    """
    try:
        infos = socket.getaddrinfo(address or None, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise RemoteError(f"cannot listen on {address!r}: {exc.strerror}") from None
    family, kind, proto, _name, sockaddr = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(sockaddr)
        except PermissionError:
            raise RemoteError(f"port {port} needs root (ports below 1024 are privileged)") from None
        except OSError as exc:
            raise RemoteError(f"cannot listen on {address} port {port}: {exc.strerror}") from None


def answers(address: str, port: int) -> bool:
    """True if an rsync daemon greets us (`@RSYNCD: ...`) on address:port."""
    probe = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(address, address)
    try:
        with socket.create_connection((probe, port), timeout=2) as sock:
            return sock.recv(64).startswith(b"@RSYNCD:")
    except OSError:
        return False


def stop(pid_file: str, timeout: float = 10.0) -> bool:
    """SIGTERM the daemon named in `pid_file` and wait for it; False if none was running."""
    pid = read_pid(pid_file)
    if pid is None or not running(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while running(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    return True


def read_pid(pid_file: str) -> int | None:
    try:
        with open(pid_file) as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


def running(pid: int) -> bool:
    """True if `pid` is alive and not a zombie (a daemon we no longer parent may linger as one)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def clear_stale_pid_file(pid_file: str) -> None:
    """rsync refuses to start over an existing pid file; remove it if its daemon is gone."""
    pid = read_pid(pid_file)
    if pid is not None and running(pid):
        raise RemoteError(f"an rsync daemon is already running (pid {pid}, {pid_file})")
    if os.path.lexists(pid_file):
        os.unlink(pid_file)


def last_log_line(config: DaemonConfig) -> str:
    try:
        with open(config.log_file, errors="replace") as fh:
            lines = [ln.strip() for ln in fh if ln.strip()]
    except OSError:
        return "(no log)"
    return lines[-1] if lines else "(empty log)"
