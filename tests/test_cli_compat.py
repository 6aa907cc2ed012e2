"""`seqrepofs load` and the reference's `seqrepo load` are interchangeable, both ways."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from support.cli import run_seqrepofs
from support.data import REAL
from support.oracles import SEQREPO, reference_cli

from seqrepofs.check import check

pytestmark = pytest.mark.skipif(SEQREPO is None, reason="the reference `seqrepo` command")

LOADS = [
    ("insdc", [REAL / "refget-compliance" / "NC.faa", REAL / "refget-compliance" / "VI.faa"]),
    (
        "refseq",
        [
            REAL / "hgvs-sample" / "f1.human.protein.small.faa",
            REAL / "hgvs-sample" / "f2.human.rna.small.fna",
            REAL / "hgvs-sample" / "f3.refseqgene4.genomic.small.fna",
        ],
    ),
    ("test", [REAL / "seqrepo-tests" / "sequences.fa.gz", REAL / "seqrepo-tests" / "test.fa"]),
]


def ours(root: Path, *args: str) -> bytes:
    """The standard output of `seqrepofs -r ROOT ARGS`, which must succeed."""
    return run_seqrepofs(*args, root=root, check=True, text=False).stdout


def content(instance: Path) -> tuple[set, set]:
    """Sequences and alias rows, without timestamps, file names or row ids."""
    seqs = sqlite3.connect(instance / "sequences" / "db.sqlite3")
    aliases = sqlite3.connect(instance / "aliases.sqlite3")
    try:
        return (
            set(seqs.execute("select seq_id, len, alpha from seqinfo")),
            set(aliases.execute("select seq_id, namespace, alias, is_current from seqalias")),
        )
    finally:
        seqs.close()
        aliases.close()


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same files loaded by seqrepofs and by the reference, into fresh roots."""
    tmp = tmp_path_factory.mktemp("compat")
    a, b = tmp / "ours", tmp / "ref"
    ours(a, "init")
    reference_cli(b, "init")
    for ns, files in LOADS:
        ours(a, "load", "-n", ns, *map(str, files))
        reference_cli(b, "load", "-n", ns, *map(str, files))
    return a, b


def test_same_content(both: tuple[Path, Path]) -> None:
    a, b = both
    assert content(a / "master") == content(b / "master")


def test_exports_identical_both_ways(both: tuple[Path, Path]) -> None:
    """Each tool exports each repository identically (at the reference's 100 columns)."""
    a, b = both
    expected = reference_cli(b, "export", "-i", "master")
    assert expected.count(b">") == len(content(b / "master")[0])
    for root in (a, b):
        assert reference_cli(root, "export", "-i", "master") == expected
        assert ours(root, "export", "-i", "master", "--line-width", "100") == expected
        for ns in ("refseq", "test"):
            assert ours(
                root, "export", "-i", "master", "-n", ns, "--line-width", "100"
            ) == reference_cli(root, "export", "-i", "master", "-n", ns)


def test_export_aliases_identical(both: tuple[Path, Path]) -> None:
    a, b = both
    assert ours(a, "export-aliases", "-i", "master") == reference_cli(
        b, "export-aliases", "-i", "master"
    )


def test_each_tool_loads_into_the_others_instance(both: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = both
    a2, b2 = tmp_path / "a", tmp_path / "b"
    shutil.copytree(a, a2)
    shutil.copytree(b, b2)
    extra = [
        str(REAL / "refget-compliance" / "I.faa"),
        str(REAL / "seqrepo-instances" / "NM_001304430.2.fasta"),
    ]
    reference_cli(a2, "load", "-n", "more", *extra)  # the reference writes into ours
    ours(b2, "load", "-n", "more", *extra)  # and we write into the reference's
    assert content(a2 / "master") == content(b2 / "master")
    for inst in (a2 / "master", b2 / "master"):
        report = check(str(inst), full=True)
        assert report.ok, report.damage
    status = ours(b2, "show-status", "-i", "master").decode().splitlines()
    assert status[3].startswith(f"sequences: {len(content(b2 / 'master')[0])} sequences")
