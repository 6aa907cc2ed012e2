"""A repository of real shape at test size: many short sequences, many aliases, several
namespaces, loaded through the CLI's loader (the fastest way in).

`build_scale_root(root, n)` makes `root/master` holding n sequences of 20-80 residues:
refseq NP_ accessions for all, Ensembl ids for the first 60%, LRG ids for the first 40%,
plus the four digest aliases the loader adds to each (MD5, SHA1, SEGUID, VMC): 7.0 aliases a
sequence, so n = 43,000 gives ~300,000 aliases. Then snapshot SNAPSHOT of it (read-only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqrepofs.store.instances import snapshot
from support.cli import run_seqrepofs

SCALE_SNAPSHOT = "2021-01-01"
NAMES = {  # namespace -> (share of the sequences, accession pattern)
    "refseq": (1.0, b"NP_%06d.1"),
    "Ensembl": (0.6, b"ENSP%011d.1"),
    "LRG": (0.4, b"LRG_%d"),
}


def build_scale_root(root: Path, n: int, seed: int = 11) -> Path:
    """The snapshot's path; `root/master` stays writable."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(20, 81, size=n)
    bases = np.frombuffer(b"ACGT", dtype=np.uint8)
    residues = bases[rng.integers(0, 4, size=int(lengths.sum()))].tobytes()
    starts = np.concatenate(([0], np.cumsum(lengths)))
    root.mkdir(parents=True, exist_ok=True)
    files = []
    for ns, (share, pattern) in NAMES.items():
        path = root / f"{ns}.fa"
        with open(path, "wb") as fh:
            for i in range(int(n * share)):
                fh.write(b">%s\n%s\n" % (pattern % (i + 1), residues[starts[i] : starts[i + 1]]))
        files.append((ns, path))
    run_seqrepofs("init", root=root, check=True)
    for ns, path in files:
        run_seqrepofs("load", "-n", ns, path, root=root, check=True, timeout=600)
        path.unlink()
    return Path(snapshot(str(root), "master", SCALE_SNAPSHOT))
