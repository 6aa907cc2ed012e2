"""Run the seqrepofs command, or another program, in a subprocess.

Subprocesses run this checkout's code (PYTHONPATH names it first), so a test never exercises an
older installed copy by accident.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"


def checkout_env(**extra: str) -> dict[str, str]:
    """os.environ with this checkout and tests/ first on PYTHONPATH, plus `extra`."""
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO), str(TESTS), env.get("PYTHONPATH")])
    )
    return env


def seqrepofs_cmd(*args: str | os.PathLike[str]) -> list[str]:
    """The argv of `seqrepofs ARGS` run by this interpreter."""
    return [sys.executable, "-m", "seqrepofs", *(os.fspath(a) for a in args)]


def run_seqrepofs(
    *args: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
    check: bool = False,
    text: bool = True,
    timeout: float = 300,
    **kw: Any,
) -> subprocess.CompletedProcess[Any]:
    """`seqrepofs [-r ROOT] ARGS`, output captured (unless `stdout`/`stderr` are given).

    With `check`, the command must exit 0 (the assertion shows its stderr).
    """
    argv = seqrepofs_cmd(*(["-r", root] if root is not None else []), *args)
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    kw.setdefault("env", checkout_env())
    proc = subprocess.run(argv, text=text, timeout=timeout, check=False, **kw)
    if check:
        err = proc.stderr if text or proc.stderr is None else proc.stderr.decode(errors="replace")
        assert proc.returncode == 0, err
    return proc


def stdout_of(*argv: str | os.PathLike[str]) -> str:
    """The standard output of a program that must succeed (samtools, bedtools, ls, ...)."""
    return subprocess.run(
        [os.fspath(a) for a in argv], check=True, capture_output=True, text=True
    ).stdout


def stop_process(proc: subprocess.Popen[Any], grace: float = 10) -> int:
    """Reap `proc`, which should be ending: wait `grace` s, then SIGTERM and 5 s more, then
    SIGKILL. Returns its exit code."""
    try:
        return proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def one_error_line(proc: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """The one stderr line of a command that failed cleanly, after checking it: exit `code`, no
    traceback, `seqrepofs: error: …` (a usage error, code 2, may name its command and
    subcommand)."""
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    prefix = r"seqrepofs: error: " if code == 1 else r"seqrepofs( [\w-]+)*: error: "
    assert re.match(prefix, lines[0]), lines[0]
    return lines[0]
