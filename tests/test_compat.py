"""Compatibility both ways, with biocommons.seqrepo (PyPI) as the oracle.

A repository written by seqrepofs is read by the reference identically, and the reverse, on the
real sequences shipped with the tests and on a few thousand generated ones.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.data import REAL
from support.oracles import read_fasta

from seqrepofs import SeqRepo
from seqrepofs.digests import seq_id_of

ref = pytest.importorskip("biocommons.seqrepo", reason="biocommons.seqrepo is a test extra")


def real_records() -> list[tuple[str, str, str]]:
    """(namespace, alias, sequence) for every real sequence shipped with the tests."""
    out = []
    for folder, ns in (
        ("refget-compliance", "insdc"),
        ("hgvs-sample", "refseq"),
        ("seqrepo-tests", "test"),
    ):
        for path in sorted((REAL / folder).iterdir()):
            if path.suffix in (".fai", ".json"):
                continue
            for header, seq in read_fasta(path):
                name = header.split()[0]
                if "|ref|" in name:
                    name = name.split("|ref|")[1].strip("|")
                out.append((ns, name, seq))
    return out


def generated_records(n: int, seed: int) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    recs = []
    for i in range(n):
        length = rng.choice([1, 2, 99, 100, 101, 250, 1000, 4321])
        alphabet = "ACGT" if rng.random() < 0.8 else "ACDEFGHIKLMNPQRSTVWYX*"
        seq = "".join(rng.choice(alphabet) for _ in range(length))
        recs.append(("gen", f"G{i}.{rng.randrange(9)}", seq))
    # a few duplicates under other names (non-redundancy) and a re-pointed alias (history)
    recs += [("gen", f"DUP{i}", recs[i][2]) for i in range(5)]
    recs.append(("gen", "G0." + recs[0][1].split(".")[1], recs[1][2]))
    return recs


def alias_rows(find_aliases_result) -> set[tuple]:
    return {(r["seq_id"], r["namespace"], r["alias"], r["is_current"]) for r in find_aliases_result}


def write_with(tool: str, root: Path, records: list[tuple[str, str, str]]) -> None:
    if tool == "seqrepofs":
        sr = SeqRepo(root, writeable=True)
    else:
        sr = ref.SeqRepo(str(root), writeable=True)
    for ns, alias, seq in records:
        sr.store(seq, [{"namespace": ns, "alias": alias}])
    sr.commit()
    if tool == "seqrepofs":
        sr.close()


def compare(root: Path, records: list[tuple[str, str, str]]) -> None:
    ours = SeqRepo(root)
    theirs = ref.SeqRepo(str(root))
    # Sequences with equal digests (e.g. differing only by a '*') are stored once: first wins.
    first_text: dict[str, str] = {}
    last = {}
    for ns, alias, seq in records:
        first_text.setdefault(seq_id_of(seq), seq.upper())
        last[(ns, alias)] = seq
    for (ns, alias), seq in last.items():
        want = first_text[seq_id_of(seq)]
        assert ours.fetch(alias, namespace=ns) == want
        assert theirs.fetch(alias, namespace=ns) == want
        assert ours[f"{ns}:{alias}"].seq_id == theirs[f"{ns}:{alias}"].seq_id
        if len(want) > 10:
            assert ours.fetch(alias, 3, 9, namespace=ns) == theirs.fetch(alias, 3, 9, namespace=ns)
    assert alias_rows(ours.aliases.find_aliases(current_only=False)) == alias_rows(
        theirs.aliases.find_aliases(current_only=False)
    )
    ours_info = {r[0]: r[1] for r in ours.sequences.seqinfo_rows()}
    theirs_info = {
        r["seq_id"]: r["len"]
        for r in theirs.sequences._db.execute("select seq_id, len from seqinfo")
    }
    assert ours_info == theirs_info
    assert ours.sequences.schema_version() == theirs.sequences.schema_version() == 1
    assert ours.aliases.schema_version() == theirs.aliases.schema_version() == 1
    sample = next(iter(last))
    assert ours.translate_identifier(f"{sample[0]}:{sample[1]}") == theirs.translate_identifier(
        f"{sample[0]}:{sample[1]}"
    )
    ours.close()


@pytest.mark.parametrize("writer", ["seqrepofs", "reference"])
def test_real_sequences_both_ways(tmp_path: Path, writer: str) -> None:
    records = real_records()
    assert len(records) >= 10
    write_with(writer, tmp_path / "inst", records)
    compare(tmp_path / "inst", records)


@pytest.mark.parametrize("writer", ["seqrepofs", "reference"])
def test_generated_sequences_both_ways(tmp_path: Path, writer: str) -> None:
    records = generated_records(2000, seed=11 if writer == "seqrepofs" else 12)
    write_with(writer, tmp_path / "inst", records)
    compare(tmp_path / "inst", records)


def test_reference_writes_into_our_instance(tmp_path: Path) -> None:
    """Our databases carry yoyo's bookkeeping, so the reference opens them for writing."""
    root = tmp_path / "inst"
    write_with("seqrepofs", root, [("a", "one", "ACGTACGT")])
    theirs = ref.SeqRepo(str(root), writeable=True)
    theirs.store("TTTTGGGG", [{"namespace": "a", "alias": "two"}])
    theirs.commit()
    ours = SeqRepo(root, writeable=True)
    ours.store("CCCC", [{"namespace": "a", "alias": "three"}])
    ours.close()
    again = ref.SeqRepo(str(root))
    assert [again.fetch(a, namespace="a") for a in ("one", "two", "three")] == [
        "ACGTACGT",
        "TTTTGGGG",
        "CCCC",
    ]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seqs=st.lists(
        st.tuples(
            st.text("ACGTNacgtn", min_size=1, max_size=700),
            st.from_regex(r"[A-Za-z][A-Za-z0-9_.\-]{0,15}", fullmatch=True),
        ),
        min_size=1,
        max_size=8,
        unique_by=lambda t: t[1],
    ),
)
def test_hypothesis_round_trip(tmp_path_factory: pytest.TempPathFactory, seqs) -> None:
    root = tmp_path_factory.mktemp("h") / "inst"
    records = [("hyp", alias, seq) for seq, alias in seqs]
    write_with("seqrepofs", root, records)
    compare(root, records)
