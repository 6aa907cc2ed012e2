"""A published snapshot for the lazy-reading tests: built, published with `seqrepofs publish`
and served by nginx on 127.0.0.1, beside the local copy it must read exactly like.

The snapshot holds GRCh38's primary report entries and a few scaffolds with every bioutils
assembly's names (so whole-assembly views exist), one 5 Mb sequence (BGZF reads over many
blocks, read-ahead), and a recorded collection (collections.sqlite3).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from bioutils.assemblies import get_assembly_names

from seqrepofs.seqrepo import SeqRepo
from seqrepofs.store.instances import snapshot, update_latest
from support.cli import run_seqrepofs
from support.data import (
    GRCH38_LEFT_OUT,
    GRCH38_LENGTHS,
    SNAPSHOT,
    grch38_subset,
    store_report_entries,
)
from support.oracles import add_assembly_names
from support.snapshots import record_collection

BIG = "big"  # test:big, the 5 Mb sequence
BIG_LENGTH = 5_000_000  # its BGZF file is larger than the 1 MiB fetched whole
COLLECTION = "set"


@dataclass
class Site:
    root: Path  # the local root: root/SNAPSHOT is the local copy
    www: Path  # the published root (nginx's document root)
    seqs: dict[str, str]  # refseq_ac (and test:big) -> residues

    @property
    def local(self) -> Path:
        return self.root / SNAPSHOT


def build_site(base: Path) -> Site:
    """root/SNAPSHOT (and latest), published into base/www."""
    root = base / "root"
    with SeqRepo(root / "master", writeable=True) as sr:
        seqs = store_report_entries(sr, grch38_subset(), GRCH38_LEFT_OUT, GRCH38_LENGTHS, 6)
        letters = np.frombuffer(b"ACGTN", dtype=np.uint8)
        picks = np.random.default_rng(3).choice(5, BIG_LENGTH, p=[0.3, 0.2, 0.2, 0.29, 0.01])
        big = letters[picks].tobytes().decode()
        sr.store(big, [{"namespace": "test", "alias": BIG}])
        sr.commit()
        add_assembly_names(sr, get_assembly_names())
        records = [(ac, len(seqs[ac]), sr.resolve(f"refseq:{ac}")) for ac in list(seqs)[:12]]
    seqs[BIG] = big
    record_collection(root / "master", records)
    snapshot(str(root), "master", SNAPSHOT)
    update_latest(str(root))
    run_seqrepofs("publish", root, base / "www", check=True, timeout=120)
    return Site(root, base / "www", seqs)


def files_below(top: Path) -> list[str]:
    """Every path below `top` (relative, sorted), directories with a trailing slash."""
    out = []
    for dirpath, dirnames, filenames in os.walk(top):
        rel = os.path.relpath(dirpath, top)
        for d in dirnames:
            out.append(os.path.normpath(os.path.join(rel, d)) + "/")
        for f in filenames:
            out.append(os.path.normpath(os.path.join(rel, f)))
    return sorted(out)
