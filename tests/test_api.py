"""SeqRepo API behaviour: the reference's semantics, its bugs fixed, and bad input."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from pathlib import Path

import pytest
from support.files import tree_state

from seqrepofs import SeqRepo
from seqrepofs.config import parse_cache_size
from seqrepofs.errors import (
    AliasNotFoundError,
    AmbiguousAliasError,
    CorruptFileError,
    NotASeqRepoError,
    ReadOnlyError,
    SchemaVersionError,
    WriterBusyError,
)


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    """The reference's own toy repository (tests/test_seqrepo.py there)."""
    root = tmp_path / "toy"
    with SeqRepo(root, writeable=True) as sr:
        sr.store(
            "SMELLASSWEET",
            [{"namespace": "en", "alias": "rose"}, {"namespace": "fr", "alias": "rose"}],
        )
        sr.store("smellassweet", [{"namespace": "es", "alias": "rosa"}])
        sr.store("ASINCHANGE", [{"namespace": "en", "alias": "coin"}])
        sr.store("ASINACORNER", [{"namespace": "fr", "alias": "coin"}])
    return root


def test_reference_toy_semantics(toy: Path) -> None:
    sr = SeqRepo(toy)
    assert sr.fetch("rosa", 5, 7) == "AS"
    assert len(list(sr)) == 3
    assert sr["en:rose"] == "SMELLASSWEET"
    assert sr.translate_identifier("en:rose", target_namespaces=["VMC"]) == [
        "VMC:GS_bsoUMlD3TrEtlh9Dt1iT29mzfkwwFUDr"
    ]
    assert sr["ga4gh:SQ.bsoUMlD3TrEtlh9Dt1iT29mzfkwwFUDr"].seq_id == (
        "bsoUMlD3TrEtlh9Dt1iT29mzfkwwFUDr"
    )
    assert sr["sha512t24u:bsoUMlD3TrEtlh9Dt1iT29mzfkwwFUDr"] == "SMELLASSWEET"
    assert sr["SQ.bsoUMlD3TrEtlh9Dt1iT29mzfkwwFUDr"] == "SMELLASSWEET"
    assert sr["8b2698fb0b0c93558a6adbb11edb1e4b"] == "SMELLASSWEET"  # raw MD5 alias
    with pytest.raises(ValueError, match="Unable to parse"):
        sr.fetch_uri("nocolon")
    found = sorted(r["alias"] for r in sr.aliases.find_aliases(alias="ro%"))
    assert found == ["rosa", "rose", "rose"]


def test_unknown_and_ambiguous_aliases(toy: Path) -> None:
    sr = SeqRepo(toy)
    with pytest.raises(KeyError, match="NM_999.1") as exc:
        sr["NM_999.1"]
    assert isinstance(exc.value, AliasNotFoundError)
    with pytest.raises(KeyError, match=r"Alias coin \(namespace: None\): not unique") as amb:
        sr.fetch("coin")
    assert isinstance(amb.value, AmbiguousAliasError)
    assert amb.value.namespaces == ["en", "fr"] and "en, fr" in str(amb.value)
    assert sr.fetch("coin", namespace="fr") == "ASINACORNER"
    with pytest.raises(KeyError):
        sr["xx:rose"]


def test_namespace_translation(tmp_path: Path) -> None:
    with SeqRepo(tmp_path / "t", writeable=True) as sr:
        sr.store(
            "ACGTT",
            [
                {"namespace": "refseq", "alias": "NM_1.1"},
                {"namespace": "ensembl", "alias": "ENST1.1"},
                {"namespace": "lrg", "alias": "LRG_1"},
            ],
        )
    sr = SeqRepo(tmp_path / "t")
    stored = {(r["namespace"], r["alias"]) for r in sr.aliases.find_aliases(current_only=False)}
    assert {("NCBI", "NM_1.1"), ("Ensembl", "ENST1.1"), ("LRG", "LRG_1")} <= stored
    for ident in (
        "refseq:NM_1.1",
        "RefSeq:NM_1.1",
        "NCBI:NM_1.1",
        "ensembl:ENST1.1",
        "Ensembl:ENST1.1",
        "lrg:LRG_1",
        "LRG:LRG_1",
    ):
        assert sr[ident] == "ACGTT", ident
    names = sr.translate_alias("NM_1.1")
    assert names.index("refseq:NM_1.1") == names.index("NCBI:NM_1.1") + 1
    assert sr.translate_alias("NM_1.1", target_namespaces=["refseq"]) == ["refseq:NM_1.1"]


def test_alias_history_is_kept(tmp_path: Path) -> None:
    with SeqRepo(tmp_path / "t", writeable=True) as sr:
        sr.store("AAAA", [{"namespace": "x", "alias": "a"}])
        sr.store("CCCC", [{"namespace": "x", "alias": "a"}])  # re-pointed
        sr.store("CCCC", [{"namespace": "x", "alias": "a"}])  # idempotent
    sr = SeqRepo(tmp_path / "t")
    rows = [
        (r["is_current"], sr.sequences.fetch(r["seq_id"]))
        for r in sr.aliases.find_aliases(namespace="x", alias="a", current_only=False)
    ]
    assert sorted(rows) == [(0, "AAAA"), (1, "CCCC")]
    assert sr["x:a"] == "CCCC"


def test_invalid_residue(tmp_path: Path) -> None:
    with SeqRepo(tmp_path / "t", writeable=True) as sr:
        with pytest.raises(ValueError, match=r"invalid residue '-' at position 3"):
            sr.store("ACG-T", [{"namespace": "x", "alias": "gap"}])
        assert "x:gap" not in sr
    assert "x:gap" not in SeqRepo(tmp_path / "t")


def test_missing_and_foreign_directories(tmp_path: Path) -> None:
    with pytest.raises(NotASeqRepoError, match="Unable to open SeqRepo directory"):
        SeqRepo(tmp_path / "nope")
    assert not (tmp_path / "nope").exists()
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "file.txt").write_text("x")
    with pytest.raises(NotASeqRepoError, match="not a SeqRepo instance"):
        SeqRepo(tmp_path / "plain")
    assert sorted(os.listdir(tmp_path / "plain")) == ["file.txt"]
    (tmp_path / "half" / "sequences").mkdir(parents=True)
    with pytest.raises(NotASeqRepoError, match="aliases.sqlite3"):
        SeqRepo(tmp_path / "half")
    assert os.listdir(tmp_path / "half") == ["sequences"]


def test_other_schema_version_is_refused(toy: Path) -> None:
    conn = sqlite3.connect(toy / "sequences" / "db.sqlite3")
    conn.execute("update meta set value = '2' where key = 'schema version'")
    conn.commit()
    conn.close()
    before = tree_state(toy)
    with pytest.raises(SchemaVersionError, match="schema version 2"):
        SeqRepo(toy)
    with pytest.raises(SchemaVersionError):
        SeqRepo(toy, writeable=True)
    assert tree_state(toy) == before


def test_not_a_database(toy: Path) -> None:
    (toy / "aliases.sqlite3").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(NotASeqRepoError, match="aliases.sqlite3"):
        SeqRepo(toy)


def test_read_only_instance_refuses_writes(toy: Path) -> None:
    before = tree_state(toy)
    sr = SeqRepo(toy)
    with pytest.raises(ReadOnlyError, match="read-only"):
        sr.store("ACGT", [{"namespace": "x", "alias": "y"}])
    with pytest.raises(ReadOnlyError):
        sr.aliases.store_alias("abc", "x", "y")
    sr.close()
    assert tree_state(toy) == before


def test_one_writer_at_a_time(toy: Path) -> None:
    w = SeqRepo(toy, writeable=True)
    with pytest.raises(WriterBusyError, match="another process"):
        SeqRepo(toy, writeable=True)
    w.close()
    SeqRepo(toy, writeable=True).close()


def test_close_commits_sequences_and_aliases_together(tmp_path: Path) -> None:
    """The reference's close() committed sequences but lost their aliases."""
    sr = SeqRepo(tmp_path / "t", writeable=True)
    sr.store("GATTACA", [{"namespace": "x", "alias": "g"}])
    sr.close()
    sr = SeqRepo(tmp_path / "t")
    assert sr["x:g"] == "GATTACA" and sr["MD5:" + hashlib.md5(b"GATTACA").hexdigest()]


def test_uncommitted_data_is_invisible_to_readers(tmp_path: Path) -> None:
    w = SeqRepo(tmp_path / "t", writeable=True)
    w.store("GATTACA", [{"namespace": "x", "alias": "g"}])
    w.commit()
    w.store("TTTTTT", [{"namespace": "x", "alias": "t"}])
    r = SeqRepo(tmp_path / "t")
    assert r["x:g"] == "GATTACA" and "x:t" not in r
    w.close()
    assert SeqRepo(tmp_path / "t")["x:t"] == "TTTTTT"


def test_fetch_coordinates(toy: Path) -> None:
    sr = SeqRepo(toy)
    seq_id = sr["en:rose"].seq_id
    f = sr.sequences.fetch
    assert f(seq_id, 0, 100) == "SMELLASSWEET" and f(seq_id, 12, 20) == "" and f(seq_id, 3, 3) == ""
    assert f(seq_id, 50) == "" and f(seq_id, 10) == "ET"  # as pysam: start past the end is empty
    with pytest.raises(ValueError, match="invalid coordinates"):
        f(seq_id, 5, 2)
    with pytest.raises(ValueError, match="negative"):
        f(seq_id, -1, 2)
    with pytest.raises(KeyError):
        f("not-a-seq-id", 0, 1)


def test_corrupt_sequence_file_is_named(tmp_path: Path) -> None:
    root = tmp_path / "t"
    seq = "ACGT" * 50000
    with SeqRepo(root, writeable=True) as sr:
        sr.store(seq, [{"namespace": "x", "alias": "big"}])
    sr = SeqRepo(root)
    relpath = sr.sequences.fetch_seqinfo(sr["x:big"].seq_id)["relpath"]
    path = root / "sequences" / relpath
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match=str(path.name)):  # past block 0's middle: whole
        SeqRepo(root)["x:big"][0:12000]
    path.write_bytes(bytes(data[:200]))
    with pytest.raises(CorruptFileError, match=str(path.name)):
        SeqRepo(root).fetch("big", 100000, 100010)
    os.remove(str(path) + ".gzi")
    with pytest.raises(CorruptFileError, match=r"\.gzi"):
        SeqRepo(root).fetch("big", 0, 10)


def test_threads_share_one_instance(tmp_path: Path) -> None:
    import random

    rng = random.Random(3)
    seqs = {
        f"s{i}": "".join(rng.choice("ACGT") for _ in range(rng.randrange(1, 200000)))
        for i in range(12)
    }
    with SeqRepo(tmp_path / "t", writeable=True) as w:
        for name, s in seqs.items():
            w.store(s, [{"namespace": "x", "alias": name}])
    sr = SeqRepo(tmp_path / "t", fd_cache_size=2, block_cache_bytes=200_000)
    errors: list[str] = []

    def worker(seed: int) -> None:
        r = random.Random(seed)
        for _ in range(400):
            name = r.choice(list(seqs))
            s = seqs[name]
            a = r.randrange(len(s))
            b = min(len(s), a + r.randrange(1, 3000))
            got = sr[f"x:{name}"][a:b]
            if got != s[a:b]:
                errors.append(f"{name}:{a}-{b}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_cache_size_parsing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert parse_cache_size(None, 5, "X") == 5
    assert parse_cache_size("nOne", 5, "X") is None
    assert parse_cache_size("10", 5, "X") == 10
    with pytest.raises(ValueError, match="X must be an integer"):
        parse_cache_size("ten", 5, "X")
    monkeypatch.setenv("SEQREPO_FD_CACHE_MAXSIZE", "0")
    monkeypatch.setenv("SEQREPO_LRU_CACHE_MAXSIZE", "0")
    with SeqRepo(tmp_path / "t", writeable=True) as w:
        w.store("ACGTAC", [{"namespace": "x", "alias": "a"}])
    assert SeqRepo(tmp_path / "t")["x:a"][1:3] == "CG"


def test_reading_a_file_in_load_order_follows_it_and_stays_exact(tmp_path: Path) -> None:
    """Lookups in load order are answered from the file read last (alias query + its .fai) in
    place of the joined query; every answer must still be what the general path gives, when
    an alias points into another file, was re-pointed, is unknown or is ambiguous."""
    import random

    rng = random.Random(11)

    def seq() -> str:
        return "".join(rng.choice("ACGT") for _ in range(rng.randrange(50, 3000)))

    first = {f"NM_{i}.1": seq() for i in range(60)}
    second = {f"NM_{i}.1": seq() for i in range(100, 160)}
    with SeqRepo(tmp_path / "t", writeable=True) as w:  # one file
        for name, s in first.items():
            w.store(
                s,
                [
                    {"namespace": "refseq", "alias": name},
                    {"namespace": "x", "alias": "dup"}
                    if name == "NM_7.1"
                    else {"namespace": "x", "alias": name},
                ],
            )
    with SeqRepo(tmp_path / "t", writeable=True) as w:  # another file
        for name, s in second.items():
            w.store(s, [{"namespace": "refseq", "alias": name}])
        w.store(second["NM_120.1"], [{"namespace": "refseq", "alias": "NM_30.1"}])  # re-pointed
        w.store(seq() + "A", [{"namespace": "y", "alias": "dup"}])  # bare "dup" is ambiguous
    expected = {**first, **second, "NM_30.1": second["NM_120.1"]}
    sr = SeqRepo(tmp_path / "t")
    assert (
        len(
            {
                sr.sequences.fetch_seqinfo(sr.resolve(f"refseq:{n}"))["relpath"]
                for n in ("NM_0.1", "NM_100.1")
            }
        )
        == 2
    )
    joined = 0
    real_join = sr.aliases.locations_for

    def counting_join(*args: object) -> list:
        nonlocal joined
        joined += 1
        return real_join(*args)

    sr.aliases.locations_for = counting_join  # type: ignore[method-assign]
    asked = 0
    for name in [*first, "NM_130.1", "NM_5.1", *second]:  # load order, with jumps between files
        asked += 1
        assert sr.fetch(name, namespace="refseq") == expected[name], name
        if name == "NM_40.1":
            with pytest.raises(AliasNotFoundError):
                sr.fetch("NM_99999.1", namespace="refseq")
            with pytest.raises(AmbiguousAliasError):
                sr.fetch("dup")
            assert sr.fetch("NM_41.1", 10, 20, namespace="refseq") == first["NM_41.1"][10:20]
            assert sr.fetch("NM_8.1", namespace="x") == first["NM_8.1"]
    assert joined < asked / 2  # most lookups followed the file
    # a fresh instance, the joined path only, agrees with every answer
    fresh = SeqRepo(tmp_path / "t")
    for name, s in expected.items():
        assert fresh.fetch(name, namespace="refseq") == s


def _transcript_set(root: Path, n: int = 300) -> list[tuple[str, str]]:
    """n sequences stored one by one (rows in load order), each as refseq:NM_i.1 and as
    other:NM_{i+1}.1 (the same text naming another sequence in another namespace), then
    three refseq aliases re-pointed; returns the (namespace, alias) pairs in load order."""
    import random

    rng = random.Random(17)
    seqs = ["".join(rng.choice("ACGT") for _ in range(rng.randrange(30, 300))) for _ in range(n)]
    with SeqRepo(root, writeable=True) as w:
        for i, s in enumerate(seqs):
            w.store(
                s,
                [
                    {"namespace": "refseq", "alias": f"NM_{i}.1"},
                    {"namespace": "other", "alias": f"NM_{i + 1}.1"},
                ],
            )
        for i in (40, 41, n - 20):  # the old rows stay in place with is_current = 0
            w.store(seqs[i + 7], [{"namespace": "refseq", "alias": f"NM_{i}.1"}])
    return [(ns, f"NM_{i}.1") for i in range(n) for ns in ("refseq", "other")]


def _count_queries(sr: SeqRepo) -> list[str]:
    """Every SQL statement the instance's alias database runs from now on."""
    db = sr.aliases.database
    real, seen = db.query, []

    def counting(sql: str, params: tuple = ()) -> list[tuple]:
        seen.append(sql)
        return real(sql, params)

    db.query = counting  # type: ignore[method-assign]
    return seen


def test_walking_aliases_in_row_order_reads_ahead_and_stays_exact(tmp_path: Path) -> None:
    """A reader asking for aliases in the order they were stored is answered from range
    queries over the rows ahead; every answer equals the single lookup's (re-pointed aliases,
    the same alias text in another namespace, unknown aliases in between)."""
    pairs = _transcript_set(tmp_path / "t")
    sr, plain = SeqRepo(tmp_path / "t"), SeqRepo(tmp_path / "t")
    seen = _count_queries(sr)
    asked = 0
    for k, (ns, alias) in enumerate(pairs):
        if ns == "other" and k < 200:
            continue  # first walk refseq alone, then both namespaces interleaved
        asked += 1
        got = sr.aliases.seq_ids_in_order(alias, ns)
        assert got == plain.aliases.seq_ids_for(alias, ns), (ns, alias)
        if k % 50 == 0:
            assert sr.aliases.seq_ids_in_order("NM_none.1", ns) == []
    assert len(seen) < asked / 4  # most answers came from the rows read ahead
    assert any("seqalias_id >" in sql for sql in seen)


def test_read_ahead_needs_a_read_only_open_and_the_unique_index(tmp_path: Path) -> None:
    """Writers' rows change under them, and without the unique (namespace, alias) index a
    range could hide a second current row: both look every alias up on its own."""
    pairs = [p for p in _transcript_set(tmp_path / "t", n=120) if p[0] == "refseq"]
    with SeqRepo(tmp_path / "t", writeable=True) as w:
        seen = _count_queries(w)
        for ns, alias in pairs:
            assert len(w.aliases.seq_ids_in_order(alias, ns)) == 1
        assert not any("seqalias_id >" in sql for sql in seen)
    conn = sqlite3.connect(tmp_path / "t" / "aliases.sqlite3")
    conn.execute("drop index seqalias_unique_ns_alias_idx")
    conn.commit()
    conn.close()
    sr = SeqRepo(tmp_path / "t")
    seen = _count_queries(sr)
    for ns, alias in pairs:
        assert len(sr.aliases.seq_ids_in_order(alias, ns)) == 1
    assert not any("seqalias_id >" in sql for sql in seen)
    assert len(seen) > len(pairs)
