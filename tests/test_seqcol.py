"""seqrepofs.seqcol against the refget package (the seqcol 1.0 reference implementation).

Oracles: refget.utils (level-1 digests, level-0 digest, comparison), its SequenceCollection
model (the level 1/2 objects its server serves), and the compliance suite's known answers.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from refget.utils import (
    build_sorted_name_length_pairs,
    compare_seqcols,
    seqcol_dict_to_level1_dict,
)
from refget.utils import seqcol_digest as ref_seqcol_digest

from seqrepofs import seqcol
from seqrepofs.digests import sha512t24u

DATA = Path(__file__).parent / "data" / "real" / "seqcol-compliance"
SHARED = Path("/work/shared/data/real/seqcol-compliance")
ANSWERS = (DATA if DATA.exists() else SHARED) / "test_fasta_digests.json"


def _known() -> dict[str, Any]:
    return json.loads(ANSWERS.read_text())


def _random_collection(rng: random.Random, n: int) -> dict[str, list[Any]]:
    names = [f"{rng.choice(['chr', 'NC_', 'scaf', 'é'])}{i}" for i in range(n)]
    rng.shuffle(names)
    lengths = [rng.randint(0, 10**9) for _ in range(n)]
    seqs = ["SQ." + sha512t24u(str(rng.randint(0, 5)).encode()) for _ in range(n)]
    return {"names": names, "lengths": lengths, "sequences": seqs}


def test_known_answers_of_the_compliance_files() -> None:
    for name, bundle in _known().items():
        core = {k: bundle["level2"][k] for k in ("names", "lengths", "sequences")}
        assert seqcol.seqcol_digest(core) == bundle["top_level_digest"], name
        assert seqcol.level1(core) == bundle["level1"], name
        assert seqcol.level2(**core) == {k: bundle["level2"][k] for k in seqcol.ARRAY_ATTRIBUTES}, (
            name
        )


@pytest.mark.parametrize("seed", range(8))
def test_digests_equal_refgets(seed: int) -> None:
    rng = random.Random(seed)
    core = _random_collection(rng, rng.randint(0, 40))
    assert seqcol.seqcol_digest(core) == ref_seqcol_digest(core)
    ref1 = seqcol_dict_to_level1_dict(
        {**core, "sorted_name_length_pairs": build_sorted_name_length_pairs(core)}
    )
    mine = seqcol.level1(core)
    for k, v in ref1.items():
        assert mine[k] == v, k
    assert seqcol.digest_from_level1(mine) == ref_seqcol_digest(core)


@pytest.mark.parametrize("seed", range(3))
def test_digests_equal_gtars_digest_of_a_fasta_file(tmp_path: Path, seed: int) -> None:
    """gtars (refget's Rust digester) reads a FASTA itself: an independent second oracle."""
    from refget.store import digest_fasta

    from seqrepofs.digests import Digests, StreamingDigester

    rng = random.Random(seed)
    names, lengths, seqs, text = [], [], [], []
    for i in range(rng.randint(1, 12)):
        residues = "".join(rng.choice("ACGTN") for _ in range(rng.randint(1, 300)))
        d = StreamingDigester()
        d.update(residues.encode())
        dg: Digests = d.finish()
        names.append(f"r{i}_{rng.randint(0, 99)}")
        lengths.append(len(residues))
        seqs.append("SQ." + dg.seq_id)
        text.append(f">{names[-1]} description\n{residues}\n")
    fa = tmp_path / "x.fa"
    fa.write_text("".join(text))
    got = digest_fasta(str(fa))
    core = {"names": names, "lengths": lengths, "sequences": seqs}
    mine = seqcol.level1(core)
    assert got.digest == seqcol.seqcol_digest(core)
    assert (got.lvl1.names_digest, got.lvl1.lengths_digest, got.lvl1.sequences_digest) == (
        mine["names"],
        mine["lengths"],
        mine["sequences"],
    )


@pytest.mark.parametrize("seed", range(6))
def test_streaming_digests_equal_whole_array_digests(seed: int) -> None:
    rng = random.Random(seed)
    core = _random_collection(rng, rng.randint(0, 60))
    cd = seqcol.CollectionDigests()
    for n, ln, s in zip(core["names"], core["lengths"], core["sequences"], strict=True):
        cd.add(n, ln, s[3:])
    got = cd.finish(
        sorted(s[3:] for s in core["sequences"]),
        sorted(
            seqcol.pair_digest(n, ln) for n, ln in zip(core["names"], core["lengths"], strict=True)
        ),
    )
    assert got == seqcol.level1(core)
    assert cd.count == len(core["names"]) and cd.total_length == sum(core["lengths"])


def test_array_digest_is_the_canonical_list_digest() -> None:
    items = ["a", "é", 'q"uote', "back\\slash", "tab\t"]
    assert seqcol.ArrayDigest().extend(items).digest() == sha512t24u(seqcol.canonical(items))
    assert seqcol.ArrayDigest().digest() == sha512t24u(b"[]")


def test_comparison_of_the_compliance_files_equals_refgets() -> None:
    known = _known()
    names = list(known)
    cores = {
        n: seqcol.level2(*(known[n]["level2"][k] for k in ("names", "lengths", "sequences")))
        for n in names
    }
    for a in names:
        for b in names:
            assert seqcol.compare(cores[a], cores[b]) == compare_seqcols(cores[a], cores[b]), (a, b)


def test_comparison_fixture_of_the_compliance_suite() -> None:
    """The suite's own expected answer for base.fa vs pair_swap.fa (names out of order)."""
    import refget.compliance as rc

    fixture = json.loads((rc._COMPARISON_DIR / "compare_base.fa_pair_swap.fa.json").read_text())
    known = _known()
    got = seqcol.compare(
        seqcol.level2(*(known["base.fa"]["level2"][k] for k in ("names", "lengths", "sequences"))),
        seqcol.level2(
            *(known["pair_swap.fa"]["level2"][k] for k in ("names", "lengths", "sequences"))
        ),
    )
    assert got == {k: fixture[k] for k in ("attributes", "array_elements")}
    assert got["array_elements"]["a_and_b_same_order"]["names"] is False


@pytest.mark.parametrize("seed", range(10))
def test_comparison_with_duplicates_and_missing_keys_equals_refgets(seed: int) -> None:
    rng = random.Random(seed)
    pool = [1, 2, 3, 4, "x", "y", {"length": 1, "name": "a"}, {"name": "a", "length": 1}]
    a = {k: [rng.choice(pool) for _ in range(rng.randint(0, 8))] for k in ("p", "q", "r")}
    b = {k: [rng.choice(pool) for _ in range(rng.randint(0, 8))] for k in ("q", "r", "s")}
    assert seqcol.compare(a, b) == compare_seqcols(a, b)


def test_level2_refuses_uncollated_arrays() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        seqcol.level2(["a"], [1, 2], ["SQ.x"])
