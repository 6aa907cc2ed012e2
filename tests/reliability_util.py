"""Helpers of the reliability tests (tests/test_reliability_*.py): inputs with known contents,
read-back verification through the API, whole-tree checksums, and a tmpfs that fills up.

The expectations here come from the inputs the tests write, never from seqrepofs itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from seqrepofs.seqrepo import SeqRepo

NS = "test"
REPO = Path(__file__).resolve().parent.parent


def cli(*args: str, timeout: float = 120, **kw: object) -> subprocess.CompletedProcess[str]:
    """`seqrepofs ARGS` in a new process (this checkout's code), output captured as text."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "seqrepofs", *args],
        capture_output=True, text=True, timeout=timeout, check=False, env=env, **kw,
    )


def cli_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "seqrepofs", *args]


def random_seq(rng: np.random.Generator, n: int, alphabet: bytes = b"ACGT") -> bytes:
    return np.frombuffer(alphabet, np.uint8)[rng.integers(0, len(alphabet), n)].tobytes()


def write_fasta(
    path: Path, n: int, seed: int, *, prefix: str = "T", big_every: int = 0,
    big_len: int = 300_000, lengths: tuple[int, int] = (100, 3000), dup_rate: float = 0.03,
) -> dict[str, bytes]:
    """A FASTA of `n` records named `<prefix><i>.1` (70-column lines, a few records repeat an
    earlier sequence under a new name, some lower-case); returns name -> stored sequence
    (upper-cased, as seqrepofs stores it)."""
    rng = np.random.default_rng(seed)
    out: dict[str, bytes] = {}
    seqs: list[bytes] = []
    with open(path, "wb") as fh:
        for i in range(n):
            if seqs and rng.random() < dup_rate:
                seq = seqs[int(rng.integers(0, len(seqs)))]
            else:
                length = big_len if big_every and i % big_every == 5 else int(
                    rng.integers(lengths[0], lengths[1] + 1))
                seq = random_seq(rng, length, b"ACGT" if i % 5 else b"ACGTNRY")
                seqs.append(seq)
            name = f"{prefix}{i}.1"
            out[name] = seq
            text = seq.lower() if i % 11 == 0 else seq
            fh.write(f">{name} record {i}\n".encode())
            fh.write(b"".join(text[j : j + 70] + b"\n" for j in range(0, len(text), 70)))
    return out


def verify_instance(instance: Path, expected: dict[str, bytes], ns: str = NS) -> int:
    """Open the instance read-only, as a user would right after a crash (no repair first), and
    check that every current alias of `ns` is one of the input's and reads back as its input
    sequence, and that every stored sequence is some input sequence. Returns the number of
    aliases of `ns` found."""
    by_seq = set(expected.values())
    sr = SeqRepo(instance)
    try:
        found = 0
        for rec in sr.aliases.find_aliases(namespace=ns):
            name = rec["alias"]
            assert name in expected, f"alias {ns}:{name} was never loaded"
            got = sr.fetch(name, namespace=ns).encode()
            assert got == expected[name], f"{ns}:{name} reads back wrong"
            assert len(sr[f"{ns}:{name}"]) == len(expected[name])
            found += 1
        for seq_id, length, _relpath in sr.sequences.seqinfo_rows():
            data = sr.sequences.fetch_bytes(seq_id)
            assert len(data) == length and data in by_seq, f"{seq_id} is not an input sequence"
    finally:
        sr.close()
    return found


def tree_state(top: Path) -> dict[str, tuple[str, int, str]]:
    """Every entry under `top`: relative path -> (kind, mode, md5 of a file / link target)."""
    out: dict[str, tuple[str, int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, top)
            st = os.lstat(path)
            if os.path.islink(path):
                out[rel] = ("link", st.st_mode, os.readlink(path))
            elif os.path.isdir(path):
                out[rel] = ("dir", st.st_mode, "")
            else:
                digest = hashlib.md5()
                with open(path, "rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        digest.update(chunk)
                out[rel] = ("file", st.st_mode, digest.hexdigest())
    return out


def vm_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


@contextlib.contextmanager
def small_tmpfs(size: str = "3m") -> Iterator[Path]:
    """A tmpfs of `size` mounted on a new directory, unmounted and removed afterwards."""
    mnt = Path(tempfile.mkdtemp(prefix="seqrepofs-full-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(mnt)],
                   check=True, capture_output=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, check=False)
        with contextlib.suppress(OSError):
            os.rmdir(mnt)


def resize_tmpfs(mnt: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(mnt)], check=True,
                   capture_output=True)


def can_mount_tmpfs() -> str | None:
    """Why a test cannot mount a tmpfs here, or None."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    with small_tmpfs_probe() as ok:
        return None if ok else "mount -t tmpfs failed (no CAP_SYS_ADMIN?)"


@contextlib.contextmanager
def small_tmpfs_probe() -> Iterator[bool]:
    mnt = tempfile.mkdtemp(prefix="seqrepofs-probe-")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt],
                          capture_output=True, check=False)
    try:
        yield proc.returncode == 0
    finally:
        if proc.returncode == 0:
            subprocess.run(["umount", mnt], capture_output=True, check=False)
        os.rmdir(mnt)
