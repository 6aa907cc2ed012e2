"""Helpers for tests that really mount: skip reasons, a mount context, independent oracles.

The oracles here (file naming, FASTA wrapping, .fai/.dict text) are written from the documented
rules, not from seqrepofs code, so a test comparing the mount against them checks both.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from seqrepofs.seqrepo import SeqRepo
from seqrepofs.store.instances import snapshot, update_latest

SHARED_INSTANCES = Path("/work/shared/data/real/seqrepo-instances")
LOCAL_INSTANCES = Path(__file__).parent / "data" / "real" / "seqrepo-instances"
REAL_NAMES = ("rest-service-2019", "seqrepo-rs-2023")
MOUNT_TIMEOUT = 20.0


def real_instance(name: str) -> Path:
    for base in (LOCAL_INSTANCES, SHARED_INSTANCES):
        if (base / name / "aliases.sqlite3").exists():
            return base / name
    pytest.skip(f"real instance {name} not found under {LOCAL_INSTANCES} or {SHARED_INSTANCES}")


def fuse_skip_reason() -> str | None:
    """Why real mounts cannot run here, or None."""
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is absent"
    helper = shutil.which("fusermount3")
    if helper is None:
        return "fusermount3 is not installed"
    if os.geteuid() != 0 and not os.stat(helper).st_mode & 0o4000:
        return "fusermount3 is not setuid root and we are not root"
    if os.geteuid() == 0:
        try:
            os.close(os.open("/dev/fuse", os.O_RDWR))
        except OSError as exc:
            return f"/dev/fuse cannot be opened: {exc.strerror}"
    return None


needs_fuse = pytest.mark.skipif(fuse_skip_reason() is not None, reason=str(fuse_skip_reason()))


def seqrepofs_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "seqrepofs", *args]


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        seqrepofs_cmd(*args), capture_output=True, text=True, timeout=timeout, check=False
    )


def force_unmount(mnt: str | os.PathLike[str]) -> None:
    subprocess.run(["fusermount3", "-u", "-z", os.fspath(mnt)], capture_output=True, check=False)


def wait_mounted(mnt: str, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + MOUNT_TIMEOUT
    while time.monotonic() < deadline:
        if os.path.ismount(mnt):
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"mount daemon exited with {proc.returncode} before mounting")
        time.sleep(0.05)
    raise TimeoutError(f"{mnt} not mounted after {MOUNT_TIMEOUT} s")


def wait_unmounted(mnt: str, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not os.path.ismount(mnt):
            return True
        time.sleep(0.05)
    return False


class Mounted:
    """A foreground daemon serving `src` at `mnt`; its stderr is kept in `log_path`."""

    def __init__(self, src: str | os.PathLike[str], mnt: str | os.PathLike[str], *args: str):
        self.src, self.mnt, self.args = os.fspath(src), os.fspath(mnt), args
        self.log_path = Path(self.mnt + ".log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Mounted:
        os.makedirs(self.mnt, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                seqrepofs_cmd("mount", self.src, self.mnt, "-f", *self.args), stderr=log
            )
        try:
            wait_mounted(self.mnt, self.proc)
        except BaseException:
            self.stop()
            raise RuntimeError(f"mount failed: {self.log}") from None
        return self

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> int | None:
        """Unmount (lazily, so it never hangs) and reap the daemon; returns its exit code."""
        force_unmount(self.mnt)
        if self.proc is None:
            return None
        try:
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait()

    def __enter__(self) -> Mounted:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def mounted(
    src: str | os.PathLike[str], mnt: str | os.PathLike[str], *args: str
) -> Iterator[Mounted]:
    m = Mounted(src, mnt, *args)
    with m:
        yield m


# ---- independent oracles ----------------------------------------------------------------------
def encode(alias: str) -> str:
    """The documented file-name rule: printable ASCII except % and / pass; the rest is %XX of
    the UTF-8 bytes (uppercase hex); "." and ".." are escaped whole."""
    if alias in (".", ".."):
        return "%2E" * len(alias)
    out = []
    for ch in alias:
        if 0x21 <= ord(ch) <= 0x7E and ch not in "%/":
            out.append(ch)
        else:
            out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8")))
    return "".join(out)


def wrap(name: str, seq: str, width: int = 60) -> bytes:
    lines = [f">{name}\n"] + [seq[i : i + width] + "\n" for i in range(0, len(seq), width)]
    return "".join(lines).encode()


def fai(name: str, seq: str, width: int = 60) -> bytes:
    if not seq:
        return b""
    bases = min(len(seq), width)
    return f"{name}\t{len(seq)}\t{len(name) + 2}\t{bases}\t{bases + 1}\n".encode()


def sam_dict(name: str, seq: str, fasta_path: str) -> bytes:
    md5 = hashlib.md5(seq.upper().encode()).hexdigest()
    return (
        "@HD\tVN:1.0\tSO:unsorted\n"
        f"@SQ\tSN:{name}\tLN:{len(seq)}\tM5:{md5}\tUR:file://{fasta_path}\n"
    ).encode()


def current_aliases(sr: SeqRepo) -> dict[tuple[str, str], str]:
    """(namespace dir, alias) -> seq_id for every current alias, stored and API forms."""
    return {(r["namespace"], r["alias"]): r["seq_id"] for r in sr.aliases.find_aliases()}


def random_regions(
    rng: random.Random, length: int, n: int, max_len: int = 300
) -> list[tuple[int, int]]:
    """1-based inclusive (start, end) regions inside a sequence of `length` residues."""
    out = []
    for _ in range(n):
        start = rng.randint(1, length)
        end = min(length, start + rng.randint(0, max_len))
        out.append((start, end))
    return out


# ---- a generated repository -------------------------------------------------------------------
ODD_ALIASES = [
    "with space",
    "a/b",
    "100%",
    "ünïcode",
    "foo",
    "foo.fa",
    "x,y",
    "chr1:1-5",
    ".",
    "..",
    "tab\there",
    "%41",
]
BIG_LENGTH = 3_000_000


SNAPSHOT = "2020-01-01"


def build_root(root: Path, n: int = 300, seed: int = 4) -> Path:
    """A root with `master` (see build_repo) frozen into snapshot SNAPSHOT, `latest` -> it.

    Returns the snapshot's path: a read-only instance, as users mount them.
    """
    build_repo(root / "master", n, seed)
    path = Path(snapshot(str(root), "master", SNAPSHOT))
    update_latest(str(root))
    return path


def build_repo(path: Path, n: int = 300, seed: int = 4) -> None:
    """A writable instance of `n` sequences (one empty, one of 3 Mb) with awkward aliases."""
    rng = random.Random(seed)
    lengths = [0, 1, 59, 60, 61, 119, 120, 121, BIG_LENGTH]
    lengths += [rng.randint(1, 20_000) for _ in range(n - len(lengths))]
    sr = SeqRepo(path, writeable=True)
    for i, length in enumerate(lengths):
        alphabet = "ACGT" if i % 7 else "ACGTNRY"
        seq = "".join(rng.choices(alphabet, k=length))
        aliases = [{"namespace": "refseq", "alias": f"NC_{i:06d}.1"}]
        if i % 3 == 0:
            aliases.append({"namespace": "ensembl", "alias": f"ENSG{i:011d}"})
        if i < len(ODD_ALIASES):
            aliases.append({"namespace": "odd ns", "alias": ODD_ALIASES[i]})
        sr.store(seq, aliases)
    sr.commit()
    sr.close()
