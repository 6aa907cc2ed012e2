#!/usr/bin/env python3
"""A deterministic repository of real SeqRepo shape: many small sequences, many aliases.

Writes two releases of FASTA files into OUTDIR:

    r1/refseq_protein.faa  r1/refseq_rna.fna     load with `-n refseq`  (stored as NCBI)
    r1/ensembl_pep.fa      r1/ensembl_cdna.fa    load with `-n Ensembl`
    r2/…                   (the same four names: the second release)
    r2/changes.tsv         namespace, alias, change (new-version / repointed / gone), old alias
    manifest.json          parameters, counts and the load commands (namespace → files)

Shape (per `--n` sequences): 55% proteins of 50–3,000 aa and 45% transcripts of 300–8,000 nt,
both log-uniform (mean ~1,450 residues, as in RefSeq); RefSeq-style accessions (NP_/XP_,
NM_/XM_/NR_) with versions; ~30% of the sequences also under versioned Ensembl ids
(ENSP…/ENST…). Release 2: ~5% of the records change (half to a new version with a new
sequence, half keep their versioned name for a new sequence, which re-points the alias and
leaves a non-current row) and ~2% disappear. Each chunk of records has its own random
stream (seed, kind, chunk), so the output depends only on the arguments.

    python scripts/bench/make_scale.py OUTDIR --n 100000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

WIDTH = 80  # NCBI's FASTA line width
CHUNK = 5000  # records generated together
PROTEIN_FRACTION = 0.55
ENSEMBL_FRACTION = 0.30
CHANGE_FRACTION = 0.05
GONE_FRACTION = 0.02
AMINO = np.frombuffer(b"ACDEFGHIKLMNPQRSTVWY", dtype=np.uint8)
NUCLEOTIDE = np.frombuffer(b"ACGT", dtype=np.uint8)


@dataclass(frozen=True)
class Kind:
    """One molecule type: its length range, alphabet, accession prefixes and file names."""

    code: int
    lo: int
    hi: int
    letters: np.ndarray
    prefixes: tuple[tuple[str, float, int], ...]  # (prefix, share, digits)
    ensembl_prefix: str
    refseq_file: str
    ensembl_file: str
    description: str


PROTEIN = Kind(
    1,
    50,
    3000,
    AMINO,
    (("NP_", 0.4, 6), ("XP_", 0.6, 9)),
    "ENSP",
    "refseq_protein.faa",
    "ensembl_pep.fa",
    "hypothetical protein",
)
TRANSCRIPT = Kind(
    2,
    300,
    8000,
    NUCLEOTIDE,
    (("NM_", 0.35, 6), ("XM_", 0.5, 9), ("NR_", 0.15, 6)),
    "ENST",
    "refseq_rna.fna",
    "ensembl_cdna.fa",
    "transcript variant",
)


class Outputs:
    """The eight FASTA files and the change list, opened once."""

    def __init__(self, outdir: Path) -> None:
        self.files: dict[str, IO[bytes]] = {}
        for release in ("r1", "r2"):
            (outdir / release).mkdir(parents=True, exist_ok=True)
            for kind in (PROTEIN, TRANSCRIPT):
                for name in (kind.refseq_file, kind.ensembl_file):
                    key = f"{release}/{name}"
                    self.files[key] = open(outdir / key, "wb", buffering=1 << 20)  # noqa: SIM115
        self.changes = open(outdir / "r2" / "changes.tsv", "w")  # noqa: SIM115
        self.changes.write("namespace\talias\tchange\tprevious\n")

    def close(self) -> None:
        for fh in self.files.values():
            fh.close()
        self.changes.close()


def wrap(residues: np.ndarray, lengths: np.ndarray) -> tuple[bytes, np.ndarray]:
    """Residues of many records (concatenated) as 80-column lines; returns (text, offsets).

    Vectorised: every record is padded to whole lines, a newline column is added, and the
    padding is masked away, so there is no per-line Python work.
    """
    nlines = np.maximum((lengths + WIDTH - 1) // WIDTH, 1)
    padded = np.zeros((int(nlines.sum()), WIDTH + 1), dtype=np.uint8)
    padded[:, WIDTH] = ord("\n")
    rec_line0 = np.concatenate(([0], np.cumsum(nlines)[:-1]))
    # the residues of each record fill its lines row by row
    line_used = np.full(int(nlines.sum()), WIDTH, dtype=np.int64)
    last = rec_line0 + nlines - 1
    line_used[last] = lengths - (nlines - 1) * WIDTH
    fill = np.arange(WIDTH)[None, :] < line_used[:, None]
    padded[:, :WIDTH][fill] = residues
    keep = np.concatenate((fill, np.ones((len(line_used), 1), dtype=bool)), axis=1)
    text = padded[keep].tobytes()
    rec_bytes = lengths + nlines
    offsets = np.concatenate(([0], np.cumsum(rec_bytes)))
    return text, offsets


def mutate(record: bytes, rng: np.random.Generator, letters: np.ndarray) -> bytes:
    """The same record with 1–3 residues substituted (never a newline)."""
    buf = bytearray(record)
    length = len(buf) - buf.count(b"\n")
    for _ in range(int(rng.integers(1, 4))):
        pos = int(rng.integers(0, length))
        at = pos + pos // WIDTH
        old = buf[at]
        choices = letters[letters != old]
        buf[at] = int(choices[int(rng.integers(0, len(choices)))])
    return bytes(buf)


def accession_plan(kind: Kind, n: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """Which prefix each record of a kind gets (index into kind.prefixes), and the prefixes."""
    rng = np.random.default_rng([seed, kind.code, 0xACC])
    shares = np.array([p[1] for p in kind.prefixes])
    return rng.choice(len(shares), size=n, p=shares / shares.sum()), [p[0] for p in kind.prefixes]


def generate_kind(kind: Kind, n: int, seed: int, out: Outputs, counts: dict[str, int]) -> None:
    plan, _ = accession_plan(kind, n, seed)
    counters = [0] * len(kind.prefixes)
    ens_counter = 0
    for chunk_no, start in enumerate(range(0, n, CHUNK)):
        m = min(CHUNK, n - start)
        rng = np.random.default_rng([seed, kind.code, chunk_no])
        lengths = np.exp(rng.uniform(np.log(kind.lo), np.log(kind.hi + 1), size=m)).astype(np.int64)
        lengths = np.clip(lengths, kind.lo, kind.hi)
        codes = rng.integers(0, len(kind.letters), size=int(lengths.sum()), dtype=np.uint8)
        text, offsets = wrap(kind.letters[codes], lengths)
        versions = rng.integers(1, 5, size=m)
        ens_versions = rng.integers(1, 16, size=m)
        in_ensembl = rng.random(m) < ENSEMBL_FRACTION
        fate = rng.random(m)  # < GONE: gone; < GONE + CHANGE: changed
        repoint = rng.random(m) < 0.5
        r1_ref = out.files[f"r1/{kind.refseq_file}"]
        r1_ens = out.files[f"r1/{kind.ensembl_file}"]
        r2_ref = out.files[f"r2/{kind.refseq_file}"]
        r2_ens = out.files[f"r2/{kind.ensembl_file}"]
        for i in range(m):
            p = int(plan[start + i])
            prefix, _share, digits = kind.prefixes[p]
            counters[p] += 1
            base = f"{prefix}{counters[p]:0{digits}d}"
            version = int(versions[i])
            acc = f"{base}.{version}"
            body = text[offsets[i] : offsets[i + 1]]
            r1_ref.write(f">{acc} {kind.description} {start + i + 1}\n".encode() + body)
            counts["r1_refseq"] += 1
            ens = None
            if in_ensembl[i]:
                ens_counter += 1
                ens_base = f"{kind.ensembl_prefix}{ens_counter:011d}"
                ens = f"{ens_base}.{int(ens_versions[i])}"
                r1_ens.write(f">{ens}\n".encode() + body)
                counts["r1_ensembl"] += 1
            if fate[i] < GONE_FRACTION:
                out.changes.write(f"refseq\t{acc}\tgone\t\n")
                counts["gone"] += 1
                continue
            if fate[i] < GONE_FRACTION + CHANGE_FRACTION:
                body = mutate(body, rng, kind.letters)
                if repoint[i]:
                    new_acc, new_ens, change = acc, ens, "repointed"
                    counts["repointed"] += 1
                else:
                    new_acc = f"{base}.{version + 1}"
                    new_ens = None if ens is None else f"{ens_base}.{int(ens_versions[i]) + 1}"
                    change = "new-version"
                    counts["new_version"] += 1
                out.changes.write(f"refseq\t{new_acc}\t{change}\t{acc}\n")
                if ens is not None:
                    out.changes.write(f"Ensembl\t{new_ens}\t{change}\t{ens}\n")
                acc, ens = new_acc, new_ens
            r2_ref.write(f">{acc} {kind.description} {start + i + 1}\n".encode() + body)
            counts["r2_refseq"] += 1
            if ens is not None:
                r2_ens.write(f">{ens}\n".encode() + body)
                counts["r2_ensembl"] += 1
        counts["residues"] += int(lengths.sum())


def generate(outdir: Path, n: int, seed: int = 1) -> dict:
    """Write both releases for `n` sequences (reused if the manifest matches); the manifest."""
    manifest_path = outdir / "manifest.json"
    if manifest_path.exists():
        old = json.loads(manifest_path.read_text())
        if old.get("n") == n and old.get("seed") == seed and old.get("version") == 1:
            return old
    started = time.monotonic()
    outdir.mkdir(parents=True, exist_ok=True)
    out = Outputs(outdir)
    counts = dict.fromkeys(
        (
            "r1_refseq",
            "r1_ensembl",
            "r2_refseq",
            "r2_ensembl",
            "gone",
            "repointed",
            "new_version",
            "residues",
        ),
        0,
    )
    try:
        n_protein = round(n * PROTEIN_FRACTION)
        generate_kind(PROTEIN, n_protein, seed, out, counts)
        generate_kind(TRANSCRIPT, n - n_protein, seed, out, counts)
    finally:
        out.close()

    def files(release: str, which: str) -> list[str]:
        names = [getattr(k, which) for k in (PROTEIN, TRANSCRIPT)]
        return [str(outdir / release / name) for name in names]

    manifest = {
        "version": 1,
        "n": n,
        "seed": seed,
        "counts": counts,
        "releases": {
            r: [
                {"namespace": "refseq", "files": files(r, "refseq_file")},
                {"namespace": "Ensembl", "files": files(r, "ensembl_file")},
            ]
            for r in ("r1", "r2")
        },
        "changes": str(outdir / "r2" / "changes.tsv"),
        "bytes": sum(
            os.path.getsize(outdir / r / f)
            for r in ("r1", "r2")
            for f in os.listdir(outdir / r)
            if not f.endswith(".tsv")
        ),
        "seconds": round(time.monotonic() - started, 2),
    }
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--n", type=int, default=1_000_000, help="sequences in release 1")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    if args.n < 1:
        ap.error("--n must be at least 1")
    m = generate(args.outdir, args.n, args.seed)
    c = m["counts"]
    print(
        f"{args.n} sequences, {c['residues']:,} residues, {c['r1_ensembl']} Ensembl records;"
        f" release 2: {c['new_version']} new versions, {c['repointed']} re-pointed,"
        f" {c['gone']} gone; {m['bytes'] / 1e6:.0f} MB in {m['seconds']} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
