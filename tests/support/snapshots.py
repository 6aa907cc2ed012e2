"""Two-snapshot roots for the publish/pull tests: A, then B = A + new sequences + a re-pointed
alias (so B's databases differ from A's in a few chunks and B has one new sequence file).
With `collections=True` both also have a `collections.sqlite3` whose one collection B records
anew over other sequences: the same size as A's file, different content."""

from __future__ import annotations

import os
import random
import sqlite3
from pathlib import Path

from seqrepofs.digests import normalise, sha512t24u
from seqrepofs.seqrepo import SeqRepo
from seqrepofs.store import instances
from seqrepofs.store.collections import CollectionWriter

A, B = "2024-01-01", "2024-01-02"


Record = tuple[str, int, str]  # (name, length, seq_id), as a collection holds it


def store_random(sr: SeqRepo, rng: random.Random, first: int, count: int) -> list[Record]:
    stored = []
    for k in range(first, first + count):
        seq = "".join(rng.choices("ACGT", k=rng.randint(2000, 10000)))
        name = f"NM_{k:06d}.1"
        sr.store(seq, [{"namespace": "refseq", "alias": name}])
        stored.append((name, len(seq), sha512t24u(normalise(seq))))
    return stored


def record_collection(instance: Path, records: list[Record]) -> None:
    """(Re)record the collection `set` in `instance` (a master) as `records`; vacuumed, so
    that equal record counts give files of equal size."""
    with CollectionWriter(str(instance)) as writer:
        writer.record("set", records, replace=True)
        writer.commit()
    conn = sqlite3.connect(instance / "collections.sqlite3")
    conn.execute("vacuum")
    conn.close()


def build_two_snapshots(
    root: Path,
    per_commit: int = 60,
    commits: int = 6,
    new: int = 4,
    *,
    collections: bool = False,
) -> None:
    """root/A (commits × per_commit sequences) and root/B (A + `new` sequences, one of which
    takes over alias NM_000000.1); with `collections`, the collection `set` is A's first
    commit in A and its second commit in B."""
    rng = random.Random(8)
    sr = SeqRepo(root / "master", writeable=True)
    batches = []
    for commit in range(commits):
        batches.append(store_random(sr, rng, commit * per_commit, per_commit))
        sr.commit()
    sr.close()
    if collections:
        record_collection(root / "master", batches[0])
    instances.snapshot(str(root), "master", A)
    sr = SeqRepo(root / "master", writeable=True)
    store_random(sr, rng, commits * per_commit, new)
    seq = "".join(rng.choices("ACGT", k=3000))
    sr.store(seq, [{"namespace": "refseq", "alias": "NM_000000.1"}])
    sr.commit()
    sr.close()
    if collections:
        record_collection(root / "master", batches[1])
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
