"""Permissions: the mount is read-only to everyone; with --allow-other another user reads and
cannot write, without it they are refused (EACCES); the daemon runs as a non-root user; `latest`
and `..` never lead out of the mount into the store.

The other user is `seqrepofs-rel` (created with useradd if absent, removed again if we created
it); its requests run through `setpriv` with the system Python (/usr/bin/python3, stdlib only).
The non-root daemon needs a Python that user can execute: this project's interpreter usually
lives under /root (mode 0700), so its installation prefix is bind-mounted read-only at a
world-readable path for the test, and /dev/fuse is made 0666 for the test (mode restored).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cli import REPO, stop_process
from support.data import SNAPSHOT, build_root
from support.files import tree_state
from support.fuse import Mounted, needs_fuse
from support.oracles import naive_fasta_record

from seqrepofs.seqrepo import SeqRepo

USER = "seqrepofs-rel"
SYSTEM_PYTHON = "/usr/bin/python3"

pytestmark = [
    pytest.mark.fuse,
    pytest.mark.timeout(180),
    needs_fuse,
    pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root"),
    pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is missing"),
    pytest.mark.skipif(
        not os.access(SYSTEM_PYTHON, os.X_OK),
        reason=f"{SYSTEM_PYTHON} is missing (the other user's requests use it)",
    ),
]

# What the other user tries; prints one JSON object: request -> "ok"/errno name/result.
PROBE = r"""
import errno, hashlib, json, os, sys
spec = json.loads(sys.argv[1])
mnt, fa, ns = spec["mnt"], spec["fa"], spec["ns"]
out = {}
def t(name, fn, *a):
    try:
        r = fn(*a)
        out[name] = "ok" if r is None else r
    except OSError as e:
        out[name] = errno.errorcode.get(e.errno, str(e.errno))
t("stat-root", lambda: os.stat(mnt) and None)
t("listdir-root", lambda: sorted(os.listdir(mnt)))
t("listdir-ns", lambda: len(os.listdir(ns)))
t("read", lambda: hashlib.md5(open(fa, "rb").read()).hexdigest())
t("readlink-latest", os.readlink, os.path.join(mnt, "latest"))
t("realpath-latest", lambda: os.path.realpath(os.path.join(mnt, "latest")))
t("dotdot", lambda: os.stat(os.path.join(mnt, "..")).st_ino)
t("open-w", lambda: os.close(os.open(fa, os.O_WRONLY)))
t("open-rw", lambda: os.close(os.open(fa, os.O_RDWR)))
t("open-trunc", lambda: os.close(os.open(fa, os.O_RDONLY | os.O_TRUNC)))
t("create", lambda: os.close(os.open(os.path.join(ns, "new.fa"), os.O_WRONLY | os.O_CREAT, 0o644)))
t("mkdir", os.mkdir, os.path.join(ns, "newdir"))
t("unlink", os.unlink, fa)
t("rename", os.rename, fa, os.path.join(ns, "renamed.fa"))
t("symlink", os.symlink, "/etc/passwd", os.path.join(ns, "link"))
t("chmod", os.chmod, fa, 0o666)
t("utime", os.utime, fa, (1, 1))
t("truncate", os.truncate, fa, 0)
t("setxattr", os.setxattr, fa, "user.x", b"1")
t("access-w", lambda: os.access(fa, os.W_OK))
t("uid", os.getuid)
print(json.dumps(out))
"""

WRITES = (
    "open-w",
    "open-rw",
    "open-trunc",
    "create",
    "mkdir",
    "unlink",
    "rename",
    "symlink",
    "chmod",
    "utime",
    "truncate",
    "setxattr",
)


@pytest.fixture(scope="module")
def other_user() -> Iterator[pwd.struct_passwd]:
    created = False
    try:
        entry = pwd.getpwnam(USER)
    except KeyError:
        proc = subprocess.run(
            ["useradd", "-M", "-r", "-s", "/usr/sbin/nologin", USER],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            pytest.skip(f"cannot create user {USER}: {proc.stderr.strip()}")
        created = True
        entry = pwd.getpwnam(USER)
    yield entry
    if created:
        subprocess.run(["userdel", USER], capture_output=True, check=False)


def as_user(user: str, *cmd: str, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--reset-env", *cmd],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        **kw,
    )


def probe(user: str, mnt: Path, fa_rel: str) -> dict:
    fa = mnt / fa_rel
    spec = {"mnt": str(mnt), "fa": str(fa), "ns": str(fa.parent)}
    proc = as_user(user, SYSTEM_PYTHON, "-c", PROBE, json.dumps(spec))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def shared_root() -> Iterator[Path]:
    """A root (snapshot, master, latest) under a world-traversable directory of /tmp."""
    top = Path(tempfile.mkdtemp(prefix="seqrepofs-perm-"))
    os.chmod(top, 0o755)
    root = top / "root"
    build_root(root, n=20)
    try:
        yield root
    finally:
        for dirpath, _dirs, _files in os.walk(top):
            os.chmod(dirpath, 0o755)
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(scope="module")
def expected_md5(shared_root: Path) -> str:
    sr = SeqRepo(shared_root / SNAPSHOT)
    try:
        seq = sr.fetch("NC_000005.1", namespace="refseq")
    finally:
        sr.close()
    return hashlib.md5(naive_fasta_record("NC_000005.1", seq)).hexdigest()


FA = f"{SNAPSHOT}/refseq/NC_000005.1.fa"


def _mnt(shared_root: Path, name: str) -> Path:
    mnt = shared_root.parent / name
    mnt.mkdir(exist_ok=True)
    os.chmod(mnt, 0o755)
    return mnt


def test_allow_other_lets_others_read_but_never_write(
    shared_root: Path, other_user, expected_md5: str
) -> None:
    before = tree_state(shared_root)
    with Mounted(shared_root, _mnt(shared_root, "mnt-allow"), "--allow-other") as m:
        mnt = Path(m.mnt)
        got = probe(USER, mnt, FA)
        assert got["uid"] == other_user.pw_uid
        assert got["read"] == expected_md5
        assert got["listdir-root"] == sorted(["2020-01-01", "latest", "master"])
        assert got["listdir-ns"] > 0
        # `latest` is relative and resolves inside the mount; `..` of the root is the kernel's
        assert got["readlink-latest"] == SNAPSHOT
        assert got["realpath-latest"] == str(mnt / SNAPSHOT)
        assert got["dotdot"] == os.stat(mnt.parent).st_ino
        for req in WRITES:
            assert got[req] == "EROFS", (req, got[req])
        assert got["access-w"] is False
        assert m.proc is not None and m.proc.poll() is None
        assert (mnt / FA).stat().st_mode & 0o222 == 0
    assert tree_state(shared_root) == before


def test_without_allow_other_others_are_refused(shared_root: Path, other_user) -> None:
    with Mounted(shared_root, _mnt(shared_root, "mnt-private")) as m:
        mnt = Path(m.mnt)
        got = probe(USER, mnt, FA)
        for req in (
            "stat-root",
            "listdir-root",
            "listdir-ns",
            "read",
            "readlink-latest",
            "open-w",
            "create",
            "mkdir",
            "unlink",
            "chmod",
        ):
            assert got[req] == "EACCES", (req, got[req])
        assert (mnt / FA).read_bytes().startswith(b">NC_000005.1\n")  # the owner reads


def test_a_snapshot_is_as_readable_as_its_source(shared_root: Path, other_user) -> None:
    """`snapshot` builds in a mkdtemp directory (mode 0700): the snapshot must not stay private
    to the user who made it when master is readable by all."""
    master, snap = shared_root / "master", shared_root / SNAPSHOT
    assert stat.S_IMODE(os.stat(master).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(snap).st_mode) == 0o555
    for path in (snap / "aliases.sqlite3", snap / "sequences" / "db.sqlite3"):
        assert _user_can_read(USER, path), path


# ---- the daemon as a non-root user --------------------------------------------------------------
def _user_can_read(user: str, path: Path) -> bool:
    return as_user(user, "/usr/bin/test", "-r", str(path)).returncode == 0


@contextlib.contextmanager
def _dev_fuse_mode(mode: int) -> Iterator[None]:
    old = stat.S_IMODE(os.stat("/dev/fuse").st_mode)
    os.chmod("/dev/fuse", mode)
    try:
        yield
    finally:
        os.chmod("/dev/fuse", old)


@contextlib.contextmanager
def _python_for(user: str) -> Iterator[tuple[str, dict[str, str]]]:
    """(interpreter, environment) with which `user` runs this checkout of seqrepofs."""
    prefix = Path(sys.prefix).resolve()
    exe = Path(sys.executable).resolve()
    if _user_can_read(user, exe) and _user_can_read(user, REPO / "seqrepofs" / "cli.py"):
        yield str(exe), {"PYTHONPATH": str(REPO)}
        return
    if not _user_can_read(user, REPO / "seqrepofs" / "cli.py"):
        pytest.skip(f"{USER} cannot read the checkout {REPO} (a parent directory is private)")
    # the interpreter sits under a private directory (/root, mode 0700): show its installation
    # prefix read-only at a public path; libpython's RUNPATH is absolute, so point the loader
    # at the bound lib/ too
    top = Path(tempfile.mkdtemp(prefix="seqrepofs-py-"))
    os.chmod(top, 0o755)
    bound = top / "prefix"
    bound.mkdir()
    proc = subprocess.run(
        ["mount", "--bind", "-o", "ro", str(prefix), str(bound)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        os.rmdir(bound)
        os.rmdir(top)
        pytest.skip(f"cannot bind-mount {prefix} for {USER}: {proc.stderr.strip()}")
    try:
        rel = exe.relative_to(prefix)
        env = {
            "PYTHONPATH": str(REPO),
            "LD_LIBRARY_PATH": str(
                bound / Path(sysconfig.get_config_var("LIBDIR")).relative_to(prefix)
            ),
        }
        yield str(bound / rel), env
    finally:
        subprocess.run(["umount", "-l", str(bound)], capture_output=True, check=False)
        os.rmdir(bound)
        os.rmdir(top)


def _in_mountinfo(mnt: Path) -> bool:
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as fh:
        return any(line.split()[4] == str(mnt) for line in fh)


def test_daemon_runs_as_a_non_root_user(shared_root: Path, other_user, expected_md5) -> None:
    if (
        shutil.which("fusermount3") is None
        or not os.stat(shutil.which("fusermount3")).st_mode & stat.S_ISUID
    ):
        pytest.skip("a non-root mount needs fusermount3 installed setuid root")
    before = tree_state(shared_root)
    mnt = _mnt(shared_root, "mnt-user")
    os.chown(mnt, other_user.pw_uid, other_user.pw_gid)
    log = shared_root.parent / "mnt-user.log"
    with _dev_fuse_mode(0o666), _python_for(USER) as (python, env):
        check = as_user(
            USER,
            "/usr/bin/env",
            *(f"{k}={v}" for k, v in env.items()),
            python,
            "-c",
            "import seqrepofs, pyfuse3; print(seqrepofs.__file__)",
        )
        if check.returncode != 0:
            pytest.skip(f"{USER} cannot run this Python: {check.stderr.strip()[-300:]}")
        with open(log, "wb") as fh:
            daemon = subprocess.Popen(
                [
                    "setpriv",
                    f"--reuid={USER}",
                    f"--regid={USER}",
                    "--init-groups",
                    "--reset-env",
                    "/usr/bin/env",
                    *(f"{k}={v}" for k, v in env.items()),
                    python,
                    "-m",
                    "seqrepofs",
                    "mount",
                    str(shared_root),
                    str(mnt),
                    "-f",
                ],
                stderr=fh,
            )
        try:
            deadline = time.monotonic() + 20
            while not _in_mountinfo(mnt):  # root may not stat it: ismount() cannot tell
                assert daemon.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "not mounted after 20 s"
                time.sleep(0.05)
            status = Path(f"/proc/{daemon.pid}/status").read_text()
            uids = next(ln for ln in status.splitlines() if ln.startswith("Uid:")).split()[1:]
            assert {int(u) for u in uids} == {other_user.pw_uid}, uids
            got = probe(USER, mnt, FA)  # the owner of the mount reads it
            assert got["read"] == expected_md5, (json.dumps(got), log.read_text(errors="replace"))
            assert got["readlink-latest"] == SNAPSHOT
            for req in WRITES:
                assert got[req] == "EROFS", (req, got[req])
            # root is another user for this mount (no allow_other): the kernel refuses it too
            with pytest.raises(PermissionError):
                os.listdir(mnt)
        finally:
            subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True)
            for _ in range(200):
                if not _in_mountinfo(mnt):
                    break
                time.sleep(0.05)
            stop_process(daemon)
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text
    assert tree_state(shared_root) == before
