"""Running the rsync program: find and vet it, run it, explain its failures, read its --stats.

We drive the real rsync rather than reimplement its protocol: it already does delta transfer,
`--link-dest` hardlinking and resumable partial files, and it is what the publishers run.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import IO, BinaryIO

from .errors import RsyncFailedError, RsyncNotFoundError, RsyncUnsupportedError

MIN_VERSION = (3, 0)
INFO_VERSION = (3, 1)  # --info=progress2 appeared in 3.1.0
_VERSION_RE = re.compile(r"^rsync\s+version\s+v?(\d+)\.(\d+)(?:\.(\d+))?")
_STATS_MARK = b"\nNumber of files:"

EXIT_MEANINGS = {
    1: "rsync rejected its command line (syntax or usage error)",
    2: "rsync protocol incompatibility with the server",
    3: "rsync could not select the files or directories to transfer",
    4: "the server does not support an action rsync asked for",
    5: "the rsync server refused the session (unknown module, access denied, or not an rsync"
    " daemon)",
    6: "the rsync daemon cannot write its log file",
    10: "cannot connect to the rsync server, or the connection failed",
    11: "file I/O error on the local side (disk full? permissions?)",
    12: "the rsync data stream broke (connection lost or server stopped)",
    13: "rsync program diagnostics failed",
    14: "rsync's inter-process communication failed",
    20: "interrupted",
    21: "rsync's waitpid() failed",
    22: "rsync ran out of memory",
    23: "some files were not transferred (missing on the server or unreadable)",
    24: "some files vanished on the server during the transfer",
    25: "rsync stopped at its --max-delete limit",
    30: "timed out waiting for data from the server",
    35: "timed out connecting to the rsync server",
}


@dataclass(frozen=True)
class Rsync:
    """A vetted rsync executable and its version."""

    exe: str
    version: tuple[int, ...]

    @property
    def has_info(self) -> bool:
        """True if `--info=progress2` is understood (rsync >= 3.1)."""
        return self.version >= INFO_VERSION


@dataclass(frozen=True)
class RsyncStats:
    """The numbers of rsync's `--stats` block (bytes unless named otherwise); `+` sums runs."""

    files: int = 0
    created_files: int = 0
    deleted_files: int = 0
    regular_files_transferred: int = 0
    total_file_size: int = 0
    total_transferred_file_size: int = 0
    literal_data: int = 0
    matched_data: int = 0
    file_list_size: int = 0
    total_bytes_sent: int = 0
    total_bytes_received: int = 0

    def __add__(self, other: RsyncStats) -> RsyncStats:
        return RsyncStats(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def format(self) -> str:
        """The numbers in rsync's own --stats wording, so `parse_stats` reads them back."""
        return "\n".join(
            f"{label}: {getattr(self, name):,}" + ("" if label.startswith("Number") else " bytes")
            for name, label in STATS_LABELS.items()
        )


STATS_LABELS = {
    "files": "Number of files",
    "created_files": "Number of created files",
    "deleted_files": "Number of deleted files",
    "regular_files_transferred": "Number of regular files transferred",
    "total_file_size": "Total file size",
    "total_transferred_file_size": "Total transferred file size",
    "literal_data": "Literal data",
    "matched_data": "Matched data",
    "file_list_size": "File list size",
    "total_bytes_sent": "Total bytes sent",
    "total_bytes_received": "Total bytes received",
}


@dataclass
class RsyncRun:
    """What one rsync process did: its command, exit code and both output streams."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def stats(self) -> RsyncStats:
        return parse_stats(self.stdout)


def find_rsync(exe: str = "rsync") -> Rsync:
    """Locate `exe` and check it is a real rsync >= 3.0, not openrsync.

    macOS ships openrsync as `rsync`; it lacks options we use and fails in confusing ways, so
    it is refused up front with a message that says what to install.
    """
    path = shutil.which(exe) if os.sep not in exe else exe
    if not path or not os.path.isfile(path):
        raise RsyncNotFoundError(
            f"rsync program not found: {exe!r} (install rsync, or point --rsync-exe at it)"
        )
    try:
        proc = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise RsyncNotFoundError(f"cannot run rsync program {path!r}: {exc}") from None
    out = (proc.stdout or proc.stderr).strip()
    first = out.splitlines()[0] if out else ""
    if "openrsync" in first.lower():
        raise RsyncUnsupportedError(
            f"{path} is openrsync ({first.strip()}), not the rsync that pull relies on;"
            " install rsync 3.x (e.g. `brew install rsync`) and pass --rsync-exe"
        )
    match = _VERSION_RE.match(first)
    if not match:
        raise RsyncUnsupportedError(
            f"{path} does not look like rsync (its --version printed {first[:60]!r})"
        )
    version = tuple(int(g) for g in match.groups() if g is not None)
    if version < MIN_VERSION:
        raise RsyncUnsupportedError(
            f"{path} is rsync {'.'.join(map(str, version))}; rsync >= 3.0 is needed"
        )
    return Rsync(path, version)


def run_rsync(
    rsync: Rsync,
    args: Sequence[str],
    *,
    echo: BinaryIO | None = None,
    pass_fds: Sequence[int] = (),
) -> RsyncRun:
    """Run rsync with `args`, capturing both streams; never raises for a non-zero exit.

    With `echo`, rsync's stdout (its progress display) is copied there as it arrives, up to the
    --stats block, which is only captured. rsync is asked to die with us (Linux), so killing
    this process never leaves an orphan still writing into a temporary directory. On Ctrl-C
    rsync gets SIGINT too and we wait for it, so it can keep its partial file for a resume.
    """
    cmd = [rsync.exe, *args]
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        pass_fds=tuple(pass_fds),
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )
    assert proc.stdout is not None and proc.stderr is not None
    err_chunks: list[bytes] = []
    err_thread = threading.Thread(target=_drain, args=(proc.stderr, err_chunks), daemon=True)
    err_thread.start()
    out = bytearray()
    try:
        _copy_progress(proc.stdout, out, echo)
        proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        _copy_progress(proc.stdout, out, None)  # keep reading so rsync can never block on us
        proc.wait()
    err_thread.join()
    return RsyncRun(
        cmd,
        proc.returncode,
        out.decode("utf-8", "replace"),
        b"".join(err_chunks).decode("utf-8", "replace"),
    )


def check(run: RsyncRun, what: str, hint: str = "") -> RsyncRun:
    """Raise RsyncFailedError with one explanatory line if `run` failed."""
    if run.returncode == 0:
        return run
    code = run.returncode
    if code < 0:
        meaning = f"rsync was killed by signal {-code}"
    else:
        meaning = EXIT_MEANINGS.get(code, "rsync failed")
    detail = "" if code == 20 else error_line(run.stderr)  # after Ctrl-C rsync only adds noise
    msg = f"{what}: {meaning} (rsync exit {code})"
    if detail:
        msg += f": {detail}"
    if hint:
        msg += f"; {hint}"
    raise RsyncFailedError(msg, code)


def error_line(stderr: str) -> str:
    """The one stderr line that says what went wrong (daemon @ERROR first, then rsync: lines)."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith("@ERROR"):
            return ln.removeprefix("@ERROR:").strip()
    for ln in lines:
        if ln.startswith("rsync:") and not ln.startswith("rsync error:"):
            return re.sub(r"^rsync:\s*(\[\w+\]\s*)?", "", ln)
    return lines[-1] if lines else ""


def parse_stats(text: str) -> RsyncStats:
    """Read rsync's --stats block ("Total bytes received: 1,234" ...) into RsyncStats."""
    by_label = {label.lower(): name for name, label in STATS_LABELS.items()}
    values: dict[str, int] = {}
    for line in text.splitlines():
        label, sep, rest = line.partition(":")
        match = re.match(r"\s*([\d,]+)", rest)
        name = by_label.get(label.strip().lower())
        if sep and match and name:
            values[name] = int(match.group(1).replace(",", ""))
    return RsyncStats(**values)


def _copy_progress(stream: IO[bytes], out: bytearray, echo: BinaryIO | None) -> None:
    keep = len(_STATS_MARK) - 1
    pending = b""
    echoing = echo is not None
    while chunk := os.read(stream.fileno(), 65536):
        out += chunk
        if not echoing:
            continue
        pending += chunk
        i = pending.find(_STATS_MARK)
        if i >= 0:
            shown = pending[:i]
            _write(echo, shown if shown.endswith(b"\n") else shown + b"\n")
            echoing = False
        elif len(pending) > keep:
            _write(echo, pending[:-keep])
            pending = pending[-keep:]
    if echoing and pending:
        _write(echo, pending)


def _write(stream: BinaryIO | None, data: bytes) -> None:
    if stream is not None and data:
        stream.write(data)
        stream.flush()


def _drain(stream: IO[bytes], chunks: list[bytes]) -> None:
    while chunk := os.read(stream.fileno(), 65536):
        chunks.append(chunk)


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to SIGTERM rsync if this process dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
