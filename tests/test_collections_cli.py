"""`seqrepofs load` records collections, `collections` lists them, `export --collection` writes
one back; bad input gives one error line and records nothing.

Oracles: the input FASTA files read independently (support.oracles.read_fasta, naive_fasta),
refget's seqcol digest of those arrays, and the instance's files before and after a refusal.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

from refget.utils import seqcol_digest
from support.cli import one_error_line, run_seqrepofs
from support.oracles import naive_fasta, read_fasta

from seqrepofs.digests import seq_id_of

DATA = Path(__file__).parent / "data" / "real"
SEQCOL = DATA / "seqcol-compliance"


def init(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    run_seqrepofs("init", root=root, check=True)
    return root


def files_of(root: Path) -> dict[str, str]:
    inst = root / "master"
    return {
        str(p.relative_to(inst)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(inst.rglob("*"))
        if p.is_file()
    }


def digest_of(path: Path) -> str:
    recs = read_fasta(path)
    return seqcol_digest(
        {
            "names": [h.split()[0] for h, _ in recs],
            "sequences": ["SQ." + seq_id_of(s) for _, s in recs],
            "lengths": [len(s) for _, s in recs],
        }
    )


def listing(root: Path) -> list[list[str]]:
    out = run_seqrepofs("collections", root=root, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


def test_load_list_export_round_trip(tmp_path: Path) -> None:
    root = init(tmp_path)
    rng = random.Random(7)
    genome = tmp_path / "toy.genome.fa"
    records = [
        (f"chr{i}", "".join(rng.choices("acgtN", k=rng.randint(1, 500)))) for i in range(1, 9)
    ]
    genome.write_text("".join(f">{n} some description\n{s}\n" for n, s in records))
    run_seqrepofs("load", genome, *sorted(SEQCOL.glob("*.fa")), root=root, check=True)
    rows = listing(root)
    assert rows[0] == ["name", "digest", "records", "total_length"]
    by_name = {r[0]: r[1:] for r in rows[1:]}
    assert set(by_name) == {"toy.genome"} | {p.stem for p in SEQCOL.glob("*.fa")}
    assert by_name["toy.genome"] == [digest_of(genome), "8", str(sum(len(s) for _, s in records))]
    assert by_name["pair_swap"][0] == digest_of(SEQCOL / "pair_swap.fa")
    out = run_seqrepofs("export", "--collection", "toy.genome", root=root, check=True).stdout
    assert out == naive_fasta([(n, s.upper()) for n, s in records]).decode()
    narrow = run_seqrepofs(
        "export", "--collection", "base", "--line-width", "3", root=root, check=True
    ).stdout
    assert narrow == naive_fasta([(h, s) for h, s in read_fasta(SEQCOL / "base.fa")], 3).decode()


def test_collection_option_namespace_and_replace(tmp_path: Path) -> None:
    root = init(tmp_path)
    run_seqrepofs(
        "load", "--collection", "g", "-n", "test", SEQCOL / "base.fa", root=root, check=True
    )
    assert run_seqrepofs("export", "-n", "test", "chrX", root=root, check=True).stdout
    before = files_of(root)
    err = one_error_line(
        run_seqrepofs("load", "--collection", "g", SEQCOL / "pair_swap.fa", root=root)
    )
    assert "collection 'g' exists" in err and "--replace" in err
    assert files_of(root) == before
    run_seqrepofs(
        "load", "--collection", "g", "--replace", SEQCOL / "pair_swap.fa", root=root, check=True
    )
    assert [r[:2] for r in listing(root)[1:]] == [["g", digest_of(SEQCOL / "pair_swap.fa")]]


def test_bad_input_one_line_nothing_recorded(tmp_path: Path) -> None:
    root = init(tmp_path)
    run_seqrepofs("load", SEQCOL / "base.fa", root=root, check=True)
    before = files_of(root)
    dup = tmp_path / "dup.fa"
    dup.write_text(">a\nACGT\n>a\nGGGG\n")
    empty = tmp_path / "empty.fa"
    empty.write_text("")
    cases = [
        (("load", dup), "duplicate record name 'a'"),
        (("load", empty), "no FASTA records"),
        (("load", "--collection", "two words", SEQCOL / "subset.fa"), "whitespace"),
        (("load", "--collection", "tab\tx", SEQCOL / "subset.fa"), "whitespace"),
        (("export", "--collection", "nope"), "no collection named 'nope'"),
    ]
    for args, message in cases:
        line = one_error_line(run_seqrepofs(*args, root=root))
        assert message in line, line
        assert files_of(root) == before, args
    usage = run_seqrepofs("load", "--no-collection", SEQCOL / "subset.fa", root=root)
    assert usage.returncode == 2 and "NAMESPACE" in usage.stderr


def test_snapshot_carries_collections(tmp_path: Path) -> None:
    root = init(tmp_path)
    run_seqrepofs("load", SEQCOL / "base.fa", SEQCOL / "subset.fa", root=root, check=True)
    run_seqrepofs("snapshot", "-d", "2026-01-02", root=root, check=True)
    frozen = run_seqrepofs("collections", "-i", "2026-01-02", root=root, check=True).stdout
    assert frozen == run_seqrepofs("collections", "-i", "master", root=root, check=True).stdout
    assert len(frozen.splitlines()) == 3
    out = run_seqrepofs(
        "export", "-i", "2026-01-02", "--collection", "subset", root=root, check=True
    ).stdout
    assert out == naive_fasta(read_fasta(SEQCOL / "subset.fa")).decode()
