"""Sequence collections in the store: what a load records, atomically, and what reads them.

Oracles: the seqcol compliance files' known answers, refget's digest function on arrays read
independently from the FASTA files (support.oracles.read_fasta), biocommons.seqrepo (reads,
loads into and snapshots an instance holding collections.sqlite3), and the files' bytes before
and after a refused load.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sqlite3
import subprocess
import tracemalloc
from pathlib import Path

import pytest
from refget.utils import seqcol_digest as ref_seqcol_digest
from support.data import new_instance
from support.oracles import read_fasta

from seqrepofs.digests import seq_id_of
from seqrepofs.loader import LoadError, load
from seqrepofs.loader.collection import CollectionPlan, default_name, plan
from seqrepofs.seqrepo import SeqRepo
from seqrepofs.store.collections import (
    FILENAME,
    CollectionExistsError,
    CollectionStore,
    CollectionWriter,
    check_collection_name,
)

DATA = Path(__file__).parent / "data" / "real"
SEQCOL = DATA / "seqcol-compliance"
KNOWN = json.loads((SEQCOL / "test_fasta_digests.json").read_text())


def load_as(
    inst: Path,
    paths: list[Path],
    name: str | None = None,
    replace: bool = False,
    namespace: str | None = None,
):  # type: ignore[no-untyped-def]
    strs = [str(p) for p in paths]
    return load(str(inst), strs, namespace, collections=plan(strs, name, replace))


def tree_bytes(inst: Path) -> dict[str, str]:
    return {
        str(p.relative_to(inst)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(inst.rglob("*"))
        if p.is_file()
    }


def expected_level2(path: Path) -> dict[str, list]:
    recs = read_fasta(path)
    return {
        "names": [h.split()[0] for h, _ in recs],
        "lengths": [len(s) for _, s in recs],
        "sequences": ["SQ." + seq_id_of(s) for _, s in recs],
    }


# ---- the six compliance files, side by side -----------------------------------------------------


def test_compliance_files_side_by_side_keep_their_own_names(tmp_path: Path) -> None:
    inst = new_instance(tmp_path)
    files = sorted(SEQCOL.glob("*.fa"))
    load_as(inst, [SEQCOL / "base.fa"])
    base_before = CollectionStore(str(inst)).level2(CollectionStore(str(inst)).get("base"))
    load_as(inst, [f for f in files if f.name != "base.fa"])
    with CollectionStore(str(inst)) as store:
        assert store.count() == 6
        for info in store.page():
            bundle = KNOWN[info.name + ".fa"]
            assert info.digest == bundle["top_level_digest"]
            assert info.level1 == bundle["level1"]
            assert store.level2(info) == {k: bundle["level2"][k] for k in store.level2(info)}
            assert info.count == len(bundle["level2"]["names"])
            assert info.total_length == sum(bundle["level2"]["lengths"])
        # pair_swap gives chr1/chr2 each other's sequence; base's names still point as before
        assert store.level2(store.get("base")) == base_before
        base, swap = store.get("base"), store.get("pair_swap")
        assert store.record_named(base, "chr2") != store.record_named(swap, "chr2")
        assert store.record_named(base, "chr2").seq_id == store.record_named(swap, "chrX").seq_id


def test_digest_of_a_multi_record_genome_equals_refgets(tmp_path: Path) -> None:
    inst = new_instance(tmp_path)
    ce = DATA / "htslib-faidx" / "ce.fa" if (DATA / "htslib-faidx").exists() else None
    path = ce or (DATA / "hgvs-sample" / "f3.refseqgene4.genomic.small.fna")
    load_as(inst, [path], name="genome")
    with CollectionStore(str(inst)) as store:
        info = store.get("genome")
        level2 = expected_level2(path)
        assert info.digest == ref_seqcol_digest(level2)
        got = store.level2(info)
        assert {k: got[k] for k in level2} == level2
        assert [r.name for r in store.records(info, 1, 2)] == level2["names"][1:3]
        lengths, name_bytes = store.layout_columns(info)
        assert list(lengths) == level2["lengths"]
        assert list(name_bytes) == [len(n.encode()) for n in level2["names"]]
        assert store.record_at(info, len(level2["names"])) is None


# ---- naming and refusals ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/x/GRCh38.fa", "GRCh38"),
        ("a/b/genome.fasta.gz", "genome"),
        ("mm39.fa.bgz", "mm39"),
        ("t.FNA.bz2", "t"),
        ("plain", "plain"),
        ("x.txt", "x.txt"),
        (".fa", ".fa"),
    ],
)
def test_default_name_is_the_stem(path: str, name: str) -> None:
    assert default_name(path) == name


@pytest.mark.parametrize(
    "bad", ["", "my genome", "tab\there", "a/b", ".hidden", "nl\nx", "x" * 201]
)
def test_bad_collection_names(bad: str) -> None:
    with pytest.raises(ValueError, match="collection name"):
        check_collection_name(bad)


def test_plan_refusals() -> None:
    with pytest.raises(ValueError, match="standard input"):
        plan(["-"])
    with pytest.raises(ValueError, match="would both be collection 'x'"):
        plan(["a/x.fa", "b/x.fa.gz"])
    with pytest.raises(ValueError, match="whitespace"):
        plan(["a.fa"], "two words")
    assert plan(["-"], "stdin").names == ("stdin",)
    assert plan(["-", "a.fa"], unnamed_stdin=True).names == (None, "a")
    assert plan(["a.fa", "b.fa"], "both").names == ("both", "both")


def test_duplicate_record_names_record_nothing(tmp_path: Path) -> None:
    inst = new_instance(tmp_path)
    load_as(inst, [SEQCOL / "base.fa"])
    before = tree_bytes(inst)
    dup = tmp_path / "dup.fa"
    dup.write_text(">a\nACGT\n>b desc\nGGGG\n>c\nTT\n>b other\nCCCC\n")
    with pytest.raises(LoadError, match=r"duplicate record name 'b' \(records 2 and 4\)"):
        load_as(inst, [dup])
    assert tree_bytes(inst) == before
    assert CollectionStore(str(inst)).find("dup") is None


def test_duplicates_found_across_flushes(tmp_path: Path) -> None:
    """A clash with a record thousands of rows back (written in an earlier batch of rows)."""
    inst = new_instance(tmp_path)
    with CollectionWriter(str(inst)) as w:
        p = w.begin("big")
        for i in range(25_000):
            w.add(p, f"r{i}", 10, "A" * 32)
        with pytest.raises(ValueError, match=r"'r3' \(records 4 and 25002\)"):
            w.add(p, "r24999x", 1, "B" * 32)
            w.add(p, "r3", 1, "B" * 32)
            w.finish(p)
        w.rollback()
    assert CollectionStore(str(inst)).count() == 0


def test_empty_file_records_nothing(tmp_path: Path) -> None:
    inst = new_instance(tmp_path)
    before = tree_bytes(inst)
    (tmp_path / "empty.fa").write_text("")
    with pytest.raises(LoadError, match="no FASTA records"):
        load_as(inst, [tmp_path / "empty.fa"])
    assert CollectionStore(str(inst)).count() == 0
    assert tree_bytes(inst) == before  # not even an empty collections database


def test_existing_name_refused_unless_replace_identical_reload_is_fine(tmp_path: Path) -> None:
    inst = new_instance(tmp_path)
    first = load_as(inst, [SEQCOL / "base.fa"], name="g").collections[0]
    again = load_as(inst, [SEQCOL / "base.fa"], name="g")  # same content: not an error
    assert again.collections == [first]  # the same row, kept (id, time added)
    before = tree_bytes(inst)
    with pytest.raises(CollectionExistsError, match="collection 'g' exists.*--replace"):
        load_as(inst, [SEQCOL / "pair_swap.fa"], name="g")
    assert tree_bytes(inst) == before  # pair_swap's sequences are all in base: nothing new
    load_as(inst, [SEQCOL / "pair_swap.fa"], name="g", replace=True)
    with CollectionStore(str(inst)) as store:
        assert store.count() == 1
        assert store.get("g").digest == KNOWN["pair_swap.fa"]["top_level_digest"]


def test_refused_load_rolls_back_its_new_sequences(tmp_path: Path) -> None:
    inst = new_instance(tmp_path)
    load_as(inst, [SEQCOL / "base.fa"], name="g")
    before = tree_bytes(inst)
    other = tmp_path / "other.fa"
    other.write_text(">q\nACGTTTTTGGGGA\n")
    with pytest.raises(CollectionExistsError):
        load_as(inst, [other], name="g")
    assert tree_bytes(inst) == before
    assert SeqRepo(str(inst)).sequences.stats()["n_sequences"] == 3


def test_several_files_as_one_collection_and_no_namespace(tmp_path: Path) -> None:
    inst = new_instance(tmp_path)
    a, b = tmp_path / "a.fa", tmp_path / "b.fa"
    a.write_text(">chr1 x\nACGT\n>chr2\nGG\n")
    b.write_text(">chr3\nTTTA\n")
    stats = load_as(inst, [a, b], name="genome")
    assert [c.name for c in stats.collections] == ["genome"]
    with CollectionStore(str(inst)) as store:
        info = store.get("genome")
        assert [(r.ordinal, r.name, r.length) for r in store.iter_records(info, page=2)] == [
            (0, "chr1", 4),
            (1, "chr2", 2),
            (2, "chr3", 4),
        ]
    sr = SeqRepo(str(inst))
    namespaces = {r["namespace"] for r in sr.aliases.find_aliases()}
    assert namespaces <= {"MD5", "SHA1", "SEGUID", "VMC", "sha512t24u", "ga4gh"}


def test_names_any_alias_rule_rejects_are_kept_without_namespace(tmp_path: Path) -> None:
    """Names are recorded as written ('chr17:6010-31420(-)' is not a valid alias)."""
    inst = new_instance(tmp_path)
    path = DATA / "pyfaidx-tests" / "gene.bed12.fasta"
    if not path.exists():
        path = tmp_path / "g.fa"
        path.write_text(">chr17:6010-31420(-)\nACGT\n")
    load_as(inst, [path], name="bed12")
    with CollectionStore(str(inst)) as store:
        assert [r.name for r in store.iter_records(store.get("bed12"))] == [
            h.split()[0] for h, _ in read_fasta(path)
        ]
    with pytest.raises(LoadError, match="invalid character"):
        load_as(inst, [path], name="bed12b", namespace="test")


# ---- atomicity, paging, reading ----------------------------------------------------------------


def test_writer_rollback_leaves_nothing_and_old_collection_survives(tmp_path: Path) -> None:
    inst = new_instance(tmp_path)
    with CollectionWriter(str(inst)) as w:
        w.record("keep", [("a", 4, "A" * 32)])
    w = CollectionWriter(str(inst))
    w.record("keep", [("b", 5, "B" * 32)], replace=True)
    w.record("new", [("c", 6, "C" * 32)])
    w.close()  # no commit
    with CollectionStore(str(inst)) as store:
        assert [i.name for i in store.page()] == ["keep"]
        assert [r.name for r in store.iter_records(store.get("keep"))] == ["a"]


def test_reader_does_not_see_a_collection_being_recorded(tmp_path: Path) -> None:
    inst = new_instance(tmp_path)
    store = CollectionStore(str(inst))
    assert store.count() == 0 and store.page() == []  # no database yet: empty
    w = CollectionWriter(str(inst))
    p = w.begin("x")
    w.add(p, "a", 1, "A" * 32)
    w.finish(p)
    assert store.find("x") is None
    w.commit()
    w.close()
    assert store.get("x").count == 1
    store.close()


def test_paging_by_name_and_by_digest(tmp_path: Path) -> None:
    inst = new_instance(tmp_path)
    rng = random.Random(3)
    with CollectionWriter(str(inst)) as w:
        for i in range(25):
            w.record(
                f"c{i:02d}",
                [
                    (f"n{j}", rng.randint(1, 9), f"{i:02d}{j:030d}")
                    for j in range(rng.randint(1, 5))
                ],
            )
    with CollectionStore(str(inst)) as store:
        names, after = [], None
        while page := store.page(after, limit=7):
            names += [i.name for i in page]
            after = page[-1].name
        assert names == [f"c{i:02d}" for i in range(25)]
        pages = [store.digests(page=p, page_size=10) for p in range(4)]
        digests = [d for got, _total in pages for d in got]
        assert [len(got) for got, _ in pages] == [10, 10, 5, 0]
        assert {total for _, total in pages} == {25} and len(set(digests)) == 25
        assert digests == sorted(digests)


def test_memory_of_recording_does_not_grow_with_records(tmp_path: Path) -> None:
    """Rows go to SQLite in bounded batches and the sorted digests are sorted there."""

    def peak(n: int, name: str) -> int:
        tracemalloc.start()
        with CollectionWriter(str(inst)) as w:
            p = w.begin(name)
            for i in range(n):
                w.add(p, f"ENST{i:011d}.1", 1000 + i % 977, f"{i:032d}")
            w.finish(p)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    inst = new_instance(tmp_path)
    small, large = peak(6_000, "small"), peak(60_000, "large")
    assert large < 2 * small + (1 << 20), (small, large)
    with CollectionStore(str(inst)) as store:
        info = store.get("large")
        assert info.count == 60_000
        assert store.record_at(info, 12_345).name == "ENST00000012345.1"
        assert store.record_named(info, "ENST00000059999.1").ordinal == 59_999


def test_frozen_instance_is_read_immutably(tmp_path: Path) -> None:
    inst = new_instance(tmp_path)
    load_as(inst, [SEQCOL / "subset.fa"])
    for p in [
        inst,
        inst / "sequences",
        inst / "aliases.sqlite3",
        inst / "sequences" / "db.sqlite3",
        inst / FILENAME,
    ]:
        p.chmod(p.stat().st_mode & ~0o222)
    try:
        with CollectionStore(str(inst)) as store:
            assert store.frozen
            assert store.get("subset").digest == KNOWN["subset.fa"]["top_level_digest"]
        with pytest.raises(Exception, match="read-only"):
            CollectionWriter(str(inst))
    finally:
        for p in [
            inst,
            inst / "sequences",
            inst / "aliases.sqlite3",
            inst / "sequences" / "db.sqlite3",
            inst / FILENAME,
        ]:
            p.chmod(p.stat().st_mode | 0o200)


# ---- the reference tool ignores the file ------------------------------------------------------


def test_biocommons_seqrepo_reads_loads_into_and_snapshots(tmp_path: Path) -> None:
    ref = pytest.importorskip("biocommons.seqrepo")
    if shutil.which("seqrepo") is None:
        pytest.skip("the seqrepo command of biocommons.seqrepo is not installed")
    root = tmp_path / "root"
    inst = root / "master"
    inst.parent.mkdir()
    SeqRepo(str(inst), writeable=True).close()
    load_as(inst, [SEQCOL / "base.fa"], namespace="test")
    assert (inst / FILENAME).exists()
    theirs = ref.SeqRepo(str(inst), writeable=True)
    assert theirs.fetch("chrX", namespace="test") == "TTGGGGAA"
    theirs.store("ACGTACGTAC", [{"namespace": "test", "alias": "extra"}])
    theirs.commit()
    del theirs
    subprocess.run(
        [
            "seqrepo",
            "-r",
            str(root),
            "snapshot",
            "-i",
            "master",
            "--destination-name",
            "2026-01-01",
        ],
        check=True,
        capture_output=True,
    )
    snap = ref.SeqRepo(str(root / "2026-01-01"))
    assert snap.fetch("extra", namespace="test") == "ACGTACGTAC"
    assert snap.fetch("chr2", namespace="test") == "GCGC"
    # our collection is intact in master, and sqlite says the file is sound
    with CollectionStore(str(inst)) as store:
        assert store.get("base").digest == KNOWN["base.fa"]["top_level_digest"]
    conn = sqlite3.connect(inst / FILENAME)
    assert conn.execute("pragma integrity_check").fetchone() == ("ok",)
    conn.close()
    assert os.listdir(root / "2026-01-01")  # the reference made its snapshot


# ---- comparison in the store (bounded memory) equals the in-memory comparison ----------------


@pytest.mark.parametrize("seed", range(6))
def test_store_comparison_equals_in_memory_comparison(tmp_path: Path, seed: int) -> None:
    from refget.utils import compare_seqcols

    from seqrepofs import seqcol

    rng = random.Random(seed)
    inst = new_instance(tmp_path)
    pool = [(f"chr{i}", rng.randint(1, 5), f"{rng.randint(0, 4):032d}") for i in range(12)]
    with CollectionWriter(str(inst)) as w:
        for name in ("a", "b", "c"):
            recs = rng.sample(pool, rng.randint(0, 8))
            recs += [(f"x{i}", r[1], r[2]) for i, r in enumerate(rng.sample(pool, 2))]
            w.record(name, recs)
        w.record("single", [("q", 1, "0" * 32)])
    with CollectionStore(str(inst)) as store:
        infos = {n: store.get(n) for n in ("a", "b", "c", "single")}
        for x in infos.values():
            for y in infos.values():
                expected = compare_seqcols(store.level2(x), store.level2(y))
                assert (
                    store.compare(x, y)
                    == expected
                    == seqcol.compare(store.level2(x), store.level2(y))
                )
            posted = {k: list(v) for k, v in store.level2(infos["b"]).items()}
            posted["names"] = list(reversed(posted["names"]))
            posted["accessions"] = ["acc"] * len(posted["names"])
            del posted["sorted_sequences"]
            if posted["lengths"]:  # a string "4" is not the length 4; 4.0 is
                posted["lengths"][0] = str(posted["lengths"][0])
                posted["lengths"][-1] = float(posted["lengths"][-1])
            assert store.compare(x, posted) == compare_seqcols(store.level2(x), posted)


def test_a_file_planned_without_a_name_is_not_recorded(tmp_path: Path) -> None:
    inst = new_instance(tmp_path)
    a, b = tmp_path / "a.fa", tmp_path / "b.fa"
    a.write_text(">x\nACGT\n>x\nGGGG\n")  # duplicates are fine: not a collection
    b.write_text(">y\nTTTT\n")
    stats = load(str(inst), [str(a), str(b)], "test", collections=CollectionPlan((None, "b")))
    assert [c.name for c in stats.collections] == ["b"]
    with CollectionStore(str(inst)) as store:
        assert [r.name for r in store.iter_records(store.get("b"))] == ["y"]


def test_every_real_fasta_side_by_side_has_gtars_digest(tmp_path: Path) -> None:
    """gtars (refget's Rust FASTA digester) reads each file itself: an independent oracle,
    over real headers (gi|…|ref|…| names, tabs before descriptions, gzip input)."""
    from refget.store import digest_fasta

    files = sorted(
        p
        for p in DATA.glob("*/*")
        if p.suffix in (".fa", ".faa", ".fna", ".fasta") or p.name.endswith(".fa.gz")
    )
    assert len(files) >= 15
    inst = new_instance(tmp_path)
    load_as(inst, files)
    with CollectionStore(str(inst)) as store:
        assert store.count() == len(files)
        for path in files:
            info = store.get(default_name(str(path)))
            assert info.digest == digest_fasta(str(path)).digest, path
            assert info.source == str(path)


@pytest.mark.parametrize("name", ["rest-service-2019", "seqrepo-rs-2023"])
def test_real_instances_gain_collections_and_the_reference_still_reads(
    tmp_path: Path, name: str
) -> None:
    """Instances biocommons.seqrepo wrote: our load adds a collection; the reference reads
    the old and the new sequences, and loads into the instance afterwards."""
    from support.data import copy_instance, real_instance

    ref = pytest.importorskip("biocommons.seqrepo")
    real_instance(name)  # skips if the data is absent
    inst = copy_instance(name, tmp_path)
    old = ref.SeqRepo(str(inst))
    before = {r["seq_id"] for r in old.aliases.find_aliases()}
    del old
    load_as(inst, [SEQCOL / "base.fa"], namespace="test")
    with CollectionStore(str(inst)) as store:
        assert store.get("base").digest == KNOWN["base.fa"]["top_level_digest"]
    theirs = ref.SeqRepo(str(inst), writeable=True)
    assert {r["seq_id"] for r in theirs.aliases.find_aliases()} >= before
    assert theirs.fetch("chrX", namespace="test") == "TTGGGGAA"
    theirs.store("ACGTTGCA", [{"namespace": "test", "alias": "after"}])
    theirs.commit()
    again = ref.SeqRepo(str(inst))
    assert again.fetch("after", namespace="test") == "ACGTTGCA"


def test_readers_connections_do_not_grow_with_threads(tmp_path: Path) -> None:
    """A server's worker threads come and go; open connections follow concurrency only."""
    import threading

    inst = new_instance(tmp_path)
    load_as(inst, [SEQCOL / "base.fa"])
    store = CollectionStore(str(inst))

    def open_fds() -> int:
        target = str(inst / FILENAME)
        n = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                n += os.readlink(f"/proc/self/fd/{fd}") == target
            except OSError:
                pass
        return n

    for _round in range(10):  # 10 rounds of 8 fresh threads, all reading at once
        barrier = threading.Barrier(8)

        def read(b: threading.Barrier) -> None:
            b.wait()
            assert store.get("base").count == 3

        threads = [threading.Thread(target=read, args=(barrier,)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert 1 <= open_fds() <= CollectionStore.MAX_IDLE
    store.close()
    assert open_fds() == 0
