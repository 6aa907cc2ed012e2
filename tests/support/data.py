"""Test data: the real instances shipped with the tests, generated repositories, and inputs
with known contents together with the read-back check that they were stored whole."""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from seqrepofs.seqrepo import SeqRepo
from seqrepofs.store.instances import snapshot, update_latest

DATA = Path(__file__).resolve().parents[1] / "data"
REAL = DATA / "real"
INSTANCES = REAL / "seqrepo-instances"
SHARED_INSTANCES = Path("/work/shared/data/real/seqrepo-instances")
REAL_NAMES = ("rest-service-2019", "seqrepo-rs-2023")


# ---- the real instances -------------------------------------------------------------------------
def real_instance(name: str) -> Path:
    """A real instance, read-only (skips the test if neither copy is present)."""
    for base in (INSTANCES, SHARED_INSTANCES):
        if (base / name / "aliases.sqlite3").exists():
            return base / name
    pytest.skip(f"real instance {name} not found under {INSTANCES} or {SHARED_INSTANCES}")


def copy_instance(name: str, dest: Path) -> Path:
    """A writable copy of a real instance, so tests never touch the originals."""
    target = dest / name
    shutil.copytree(INSTANCES / name, target)
    for dirpath, _dirs, files in os.walk(target):
        os.chmod(dirpath, 0o755)
        for f in files:
            os.chmod(os.path.join(dirpath, f), 0o644)
    return target


def new_instance(parent: Path) -> Path:
    """An empty writable instance, `parent`/master."""
    path = parent / "master"
    SeqRepo(path, writeable=True).close()
    return path


def current_aliases(sr: SeqRepo) -> dict[tuple[str, str], str]:
    """(namespace dir, alias) -> seq_id for every current alias, stored and API forms."""
    return {(r["namespace"], r["alias"]): r["seq_id"] for r in sr.aliases.find_aliases()}


# ---- a generated repository ---------------------------------------------------------------------
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


# ---- inputs with known contents (the reliability tests) -----------------------------------------
NS = "test"


def _random_residues(rng: np.random.Generator, n: int, alphabet: bytes = b"ACGT") -> bytes:
    return np.frombuffer(alphabet, np.uint8)[rng.integers(0, len(alphabet), n)].tobytes()


def write_random_fasta(
    path: Path,
    n: int,
    seed: int,
    *,
    prefix: str = "T",
    big_every: int = 0,
    big_len: int = 300_000,
    lengths: tuple[int, int] = (100, 3000),
    dup_rate: float = 0.03,
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
                length = (
                    big_len
                    if big_every and i % big_every == 5
                    else int(rng.integers(lengths[0], lengths[1] + 1))
                )
                seq = _random_residues(rng, length, b"ACGT" if i % 5 else b"ACGTNRY")
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


# ---- repositories holding an assembly's sequences (the whole-assembly views) --------------------
RESIDUES = "ACGTACGTACGTNRY"
# two unlocalized, two unplaced and two alt scaffolds
GRCH38_EXTRA = (
    "HSCHR1_CTG1_UNLOCALIZED",
    "HSCHR1_CTG2_UNLOCALIZED",
    "HSCHRUN_RANDOM_CTG1",
    "HSCHRUN_RANDOM_CTG2",
    "HSCHR1_1_CTG31",
    "HSCHR1_2_CTG31",
)
GRCH38_LEFT_OUT = frozenset({"Y", "HSCHR1_CTG2_UNLOCALIZED", "HSCHR1_2_CTG31"})
# edge lengths: one residue, exactly one line, one short of / one past a line, the rCRS size
GRCH38_LENGTHS = {"20": 1, "21": 60, "22": 59, "X": 61, "19": 120, "MT": 16569}


def grch38_subset() -> list[dict[str, Any]]:
    """GRCh38's primary report entries and GRCH38_EXTRA, in report order (bioutils' dicts)."""
    from bioutils.assemblies import get_assembly

    from support.oracles import is_primary

    return [
        s for s in get_assembly("GRCh38")["sequences"] if is_primary(s) or s["name"] in GRCH38_EXTRA
    ]


def store_report_entries(
    sr: SeqRepo,
    entries: list[dict[str, Any]],
    left_out: Collection[str],
    lengths: dict[str, int],
    seed: int,
) -> dict[str, str]:
    """Generated residues stored as refseq:<refseq_ac> for each report entry with an accession
    and not `left_out` (`lengths` fixes some lengths, the rest are 1000-3000); returns
    refseq_ac -> residues. The caller commits."""
    rng = random.Random(seed)
    seqs: dict[str, str] = {}
    for s in entries:
        if s["name"] in left_out or s["refseq_ac"] in (None, "", "na"):
            continue
        n = lengths.get(s["name"], rng.randint(1000, 3000))
        seqs[s["refseq_ac"]] = "".join(rng.choices(RESIDUES, k=n))
        sr.store(seqs[s["refseq_ac"]], [{"namespace": "refseq", "alias": s["refseq_ac"]}])
    return seqs
