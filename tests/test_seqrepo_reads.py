"""The reads every layer shares (SeqRepo.sequence_length, iter_sequence, sam_m5, frozen) and the
one frozen-snapshot decision (store.instances.is_frozen), against independent oracles:
the text stored, Python's hashlib, and `samtools dict` for the SAM M5."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from seqrepofs.errors import ReadOnlyError
from seqrepofs.seqrepo import SeqRepo
from seqrepofs.store import instances

# (name, text as given to store); stored upper-cased, so the oracle text is .upper()
RECORDS = [
    ("dna", "ACGTNacgtn" * 1000 + "ACG"),
    ("protein", "MKVLA*" * 7 + "MKV*"),  # '*': digest aliases drop it, SAM's M5 keeps it
    ("one", "A"),
]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    with SeqRepo(root / "master", writeable=True) as sr:
        for name, text in RECORDS:
            sr.store(text, [{"namespace": "test", "alias": name}])
    return root


def _seq_id(sr: SeqRepo, name: str) -> str:
    return sr.resolve(f"test:{name}")


def _samtools_m5(tmp_path: Path) -> dict[str, str]:
    """M5 of each record as `samtools dict` computes it from a plain FASTA."""
    fa = tmp_path / "records.fa"
    fa.write_text("".join(f">{name}\n{text.upper()}\n" for name, text in RECORDS))
    out = subprocess.run(["samtools", "dict", str(fa)], capture_output=True, text=True, check=True)
    m5 = {}
    for line in out.stdout.splitlines():
        if line.startswith("@SQ"):
            fields = dict(f.split(":", 1) for f in line.split("\t")[1:])
            m5[fields["SN"]] = fields["M5"]
    return m5


def test_sequence_length(root: Path) -> None:
    with SeqRepo(root / "master") as sr:
        for name, text in RECORDS:
            assert sr.sequence_length(_seq_id(sr, name)) == len(text)
        with pytest.raises(KeyError):
            sr.sequence_length("no-such-seq-id")


@pytest.mark.parametrize("window", [1, 7, 60, 4096, 1 << 20])
def test_iter_sequence_pieces_join_to_the_sequence(root: Path, window: int) -> None:
    with SeqRepo(root / "master") as sr:
        for name, text in RECORDS:
            pieces = list(sr.iter_sequence(_seq_id(sr, name), window=window))
            assert "".join(pieces) == text.upper()
            assert all(0 < len(p) <= window for p in pieces)
            assert len(pieces) == -(-len(text) // window)


@pytest.mark.parametrize(
    ("start", "end"),
    [(0, 1), (5, 9000), (9999, None), (10003, None), (10000, 10500), (7, 7), (20000, None)],
)
def test_iter_sequence_ranges_are_clipped_like_slices(
    root: Path, start: int, end: int | None
) -> None:
    text = RECORDS[0][1].upper()
    with SeqRepo(root / "master") as sr:
        seq_id = _seq_id(sr, "dna")
        got = "".join(sr.iter_sequence(seq_id, start, end, window=333))
        assert got == text[start:end]
        assert b"".join(sr.iter_bytes(seq_id, start, end, window=333)) == text[start:end].encode()


def test_iter_sequence_refuses_a_zero_window(root: Path) -> None:
    with SeqRepo(root / "master") as sr, pytest.raises(ValueError, match="window"):
        next(sr.iter_sequence(_seq_id(sr, "one"), window=0))


def test_sam_m5_matches_samtools_dict(root: Path, tmp_path: Path) -> None:
    expected = _samtools_m5(tmp_path)
    assert expected["protein"] != hashlib.md5(RECORDS[1][1].replace("*", "").encode()).hexdigest()
    with SeqRepo(root / "master") as sr:
        got = {name: sr.sam_m5(_seq_id(sr, name)) for name, _text in RECORDS}
        ids = [_seq_id(sr, name) for name, _text in RECORDS]
        many = sr.sam_m5_many(ids + ids[::-1])  # the batched form, repeats and order kept
    assert got == expected
    assert many == [expected[n] for n, _ in RECORDS] + [expected[n] for n, _ in RECORDS[::-1]]


@pytest.mark.parametrize("stored_md5", [None, "not-an-md5-", "0123456789abcdef"])
def test_sam_m5_is_computed_when_the_md5_alias_is_missing_or_malformed(
    root: Path, tmp_path: Path, stored_md5: str | None
) -> None:
    db = sqlite3.connect(root / "master" / "aliases.sqlite3")
    with db:
        if stored_md5 is None:
            db.execute("delete from seqalias where namespace = 'MD5'")
        else:
            db.execute(  # one malformed alias per sequence (the pair is unique)
                "update seqalias set alias = ? || seqalias_id where namespace = 'MD5'",
                (stored_md5,),
            )
    db.close()
    expected = _samtools_m5(tmp_path)
    with SeqRepo(root / "master") as sr:
        assert {name: sr.sam_m5(_seq_id(sr, name)) for name, _ in RECORDS} == expected
        ids = [_seq_id(sr, name) for name, _ in RECORDS]
        assert sr.sam_m5_many(ids) == [expected[name] for name, _ in RECORDS]


def test_sam_m5_of_an_upper_case_md5_alias_is_lower_case(root: Path, tmp_path: Path) -> None:
    db = sqlite3.connect(root / "master" / "aliases.sqlite3")
    with db:
        db.execute("update seqalias set alias = upper(alias) where namespace = 'MD5'")
    db.close()
    with SeqRepo(root / "master") as sr:
        assert sr.sam_m5(_seq_id(sr, "dna")) == _samtools_m5(tmp_path)["dna"]
        assert sr.sam_m5_many([_seq_id(sr, "dna")]) == [_samtools_m5(tmp_path)["dna"]]


def test_a_snapshot_is_frozen_and_master_is_not(root: Path) -> None:
    snap = instances.snapshot(str(root), "master", "2024-05-06")
    try:
        assert instances.is_frozen(snap)
        assert not instances.is_frozen(str(root / "master"))
        with SeqRepo(snap) as sr:
            assert sr.frozen
            assert sr.sequences.database.immutable and sr.aliases.database.immutable
        with SeqRepo(root / "master") as sr:
            assert not sr.frozen
            assert not sr.sequences.database.immutable
        with pytest.raises(ReadOnlyError, match="a snapshot"):
            instances.check_writable(snap)
        instances.check_writable(str(root / "master"))  # no error
    finally:
        for dirpath, _dirs, _files in os.walk(snap):
            os.chmod(dirpath, 0o755)


@pytest.mark.parametrize("part", ["", "sequences", "aliases.sqlite3", "sequences/db.sqlite3"])
def test_one_part_without_write_bits_is_not_frozen_but_refuses_writes(
    root: Path, part: str
) -> None:
    """Frozen means every part lost its write bits; losing one refuses writes (even as root)."""
    path = root / "master" / part
    mode = path.stat().st_mode
    os.chmod(path, mode & ~0o222)
    try:
        assert not instances.is_frozen(str(root / "master"))
        with pytest.raises(ReadOnlyError, match="read-only"):
            instances.check_writable(str(root / "master"))
    finally:
        os.chmod(path, mode)


def test_a_missing_instance_is_not_frozen(tmp_path: Path) -> None:
    assert not instances.is_frozen(str(tmp_path / "nothing"))
    (tmp_path / "half").mkdir(mode=0o555)
    assert not instances.is_frozen(str(tmp_path / "half"))
    shutil.rmtree(tmp_path / "half")
