"""Two-snapshot roots for the publish/pull tests: A, then B = A + new sequences + a re-pointed
alias (so B's databases differ from A's in a few chunks and B has one new sequence file)."""

from __future__ import annotations

import os
import random
from pathlib import Path

from seqrepofs.seqrepo import SeqRepo
from seqrepofs.store import instances

A, B = "2024-01-01", "2024-01-02"


def store_random(sr: SeqRepo, rng: random.Random, first: int, count: int) -> None:
    for k in range(first, first + count):
        seq = "".join(rng.choices("ACGT", k=rng.randint(2000, 10000)))
        sr.store(seq, [{"namespace": "refseq", "alias": f"NM_{k:06d}.1"}])


def build_two_snapshots(root: Path, per_commit: int = 60, commits: int = 6, new: int = 4) -> None:
    """root/A (commits × per_commit sequences) and root/B (A + `new` sequences, one of which
    takes over alias NM_000000.1)."""
    rng = random.Random(8)
    sr = SeqRepo(root / "master", writeable=True)
    for commit in range(commits):
        store_random(sr, rng, commit * per_commit, per_commit)
        sr.commit()
    sr.close()
    instances.snapshot(str(root), "master", A)
    sr = SeqRepo(root / "master", writeable=True)
    store_random(sr, rng, commits * per_commit, new)
    seq = "".join(rng.choices("ACGT", k=3000))
    sr.store(seq, [{"namespace": "refseq", "alias": "NM_000000.1"}])
    sr.commit()
    sr.close()
    instances.snapshot(str(root), "master", B)


def files_of(top: Path) -> dict[str, bytes]:
    """relpath -> content of every regular file below `top` (dot files and dirs left out)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not name.startswith("."):
                path = os.path.join(dirpath, name)
                out[os.path.relpath(path, top)] = Path(path).read_bytes()
    return out
