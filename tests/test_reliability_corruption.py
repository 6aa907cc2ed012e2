"""Corruption: damaged sequence files, missing indexes and damaged SQLite databases.

For each kind of damage: the API raises a clear error naming the damaged file (never a wrong
answer, never "not found"); a real mount answers EIO for the affected file only and keeps
serving every other file (a second sequence lives in another .fa.bgz), the daemon logging one
line naming the path; `seqrepofs check` reports exactly the damaged file, exit 1, and `--quick`
reports structural damage only.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import sqlite3
import struct
from pathlib import Path

import pytest
from support.cli import run_seqrepofs
from support.data import NS
from support.fuse import Mounted, needs_fuse

from seqrepofs.errors import CorruptFileError, NotASeqRepoError
from seqrepofs.seqrepo import SeqRepo

pytestmark = pytest.mark.timeout(120)

VICTIM, OTHER, NEIGHBOUR = "VICTIM.1", "OTHER.1", "NEIGHBOUR.1"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """An instance whose VICTIM (150 kb) is alone in one .fa.bgz and OTHER and NEIGHBOUR in
    another; returns it and the sequences."""
    rng = random.Random(8)
    seqs = {
        name: "".join(rng.choices("ACGT", k=n))
        for name, n in ((VICTIM, 150_000), (OTHER, 70_000), (NEIGHBOUR, 999))
    }
    path = tmp_path_factory.mktemp("corrupt") / "template"
    sr = SeqRepo(path, writeable=True)
    sr.store(seqs[VICTIM], [{"namespace": NS, "alias": VICTIM}])
    sr.commit()
    for name in (OTHER, NEIGHBOUR):
        sr.store(seqs[name], [{"namespace": NS, "alias": name}])
    sr.close()
    return path, seqs


def _relpath(instance: Path, name: str) -> str:
    sr = SeqRepo(instance)
    try:
        return sr.sequences.fetch_seqinfo(sr.aliases.current_alias(NS, name))["relpath"]
    finally:
        sr.close()


def _flip(path: Path, offset: int, mask: int = 0x10) -> None:
    os.chmod(path, 0o644)
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)[0]
        fh.seek(offset)
        fh.write(bytes([byte ^ mask]))


def _damage(instance: Path, kind: str) -> Path:
    """Damage VICTIM's file as `kind` says; returns the file whose name the error must carry."""
    bgz = instance / "sequences" / _relpath(instance, VICTIM)
    assert _relpath(instance, OTHER) != _relpath(instance, VICTIM)
    size = bgz.stat().st_size
    if kind == "truncated":
        os.chmod(bgz, 0o644)
        os.truncate(bgz, size // 2)
        return bgz
    if kind == "bit-flip":
        _flip(bgz, size // 2)
        return bgz
    if kind == "bit-flip-in-header":
        _flip(bgz, 16, 0x01)  # BSIZE of the first block
        return bgz
    if kind == "sequence-file-missing":
        os.remove(bgz)
        return bgz
    if kind in ("fai-missing", "gzi-missing"):
        index = Path(f"{bgz}.{kind[:3]}")
        os.remove(index)
        return index
    if kind == "fai-garbage":
        index = Path(f"{bgz}.fai")
        os.chmod(index, 0o644)
        index.write_bytes(b"\x00\xffnot an index\n")
        return index
    if kind == "gzi-truncated":
        index = Path(f"{bgz}.gzi")
        os.chmod(index, 0o644)
        os.truncate(index, index.stat().st_size - 5)
        return index
    raise AssertionError(kind)


FILE_DAMAGE = {  # kind -> found by `check --quick` (structure)?
    "truncated": True,
    "bit-flip": False,  # only reading the blocks back (CRC) finds it
    "bit-flip-in-header": True,
    "sequence-file-missing": True,
    "fai-missing": True,
    "gzi-missing": True,
    "fai-garbage": True,
    "gzi-truncated": True,
}


@pytest.fixture
def damaged(template, tmp_path: Path, request: pytest.FixtureRequest):
    src, seqs = template
    instance = tmp_path / "root" / "master"
    shutil.copytree(src, instance)
    named = _damage(instance, request.param)
    return instance, named, seqs, request.param


@pytest.mark.parametrize("damaged", list(FILE_DAMAGE), indirect=True)
def test_api_names_the_damaged_file_and_reads_the_rest(damaged) -> None:
    instance, named, seqs, _kind = damaged
    sr = SeqRepo(instance)
    try:
        with pytest.raises(CorruptFileError) as info:
            sr.fetch(VICTIM, namespace=NS)
        assert str(named) in str(info.value)
        if named.suffix == ".bgz" and "truncated" in named.name:
            assert "truncated" in str(info.value)
        assert sr.fetch(OTHER, namespace=NS) == seqs[OTHER]
        assert sr.fetch(NEIGHBOUR, namespace=NS) == seqs[NEIGHBOUR]
        assert len(sr[f"{NS}:{VICTIM}"]) == len(seqs[VICTIM])  # metadata still answers
        # the error repeats (a damaged file is not cached as good)
        with pytest.raises(CorruptFileError):
            sr.fetch(VICTIM, namespace=NS)
    finally:
        sr.close()


def test_a_block_cut_in_the_middle_is_reported_as_truncated(template, tmp_path: Path) -> None:
    """The file ends inside block 1: a read of residues held by block 1 says "truncated"."""
    src, seqs = template
    instance = tmp_path / "master"
    shutil.copytree(src, instance)
    bgz = instance / "sequences" / _relpath(instance, VICTIM)
    gzi = (Path(f"{bgz}.gzi")).read_bytes()
    (count,) = struct.unpack_from("<Q", gzi)
    pairs = [struct.unpack_from("<QQ", gzi, 8 + 16 * i) for i in range(count)]
    (cstart, ustart), (cnext, _unext) = pairs[0], pairs[1]  # blocks 1 and 2 (0 is implicit)
    offset = int(Path(f"{bgz}.fai").read_text().split("\t")[2])
    residue = (ustart + 500 - offset) // 101 * 100  # a residue well inside block 1
    os.chmod(bgz, 0o644)
    os.truncate(bgz, (cstart + cnext) // 2)
    sr = SeqRepo(instance)
    try:
        assert sr.fetch(VICTIM, 0, 100, namespace=NS) == seqs[VICTIM][:100]  # block 0 is intact
        with pytest.raises(CorruptFileError, match="truncated") as info:
            sr.fetch(VICTIM, residue, residue + 10, namespace=NS)
        assert str(bgz) in str(info.value)
    finally:
        sr.close()


@needs_fuse
@pytest.mark.fuse
@pytest.mark.parametrize("damaged", list(FILE_DAMAGE), indirect=True)
def test_mount_eio_for_the_damaged_file_only(damaged, tmp_path: Path) -> None:
    instance, named, seqs, _kind = damaged
    with Mounted(instance, tmp_path / "mnt") as m:
        mnt = Path(m.mnt)
        victim = mnt / NS / f"{VICTIM}.fa"
        assert victim.stat().st_size > len(seqs[VICTIM])
        with pytest.raises(OSError) as info:
            victim.read_bytes()
        assert info.value.errno == errno.EIO
        for name in (OTHER, NEIGHBOUR):
            data = (mnt / NS / f"{name}.fa").read_bytes()
            assert data.split(b"\n", 1)[1].replace(b"\n", b"").decode() == seqs[name]
        assert (mnt / NS / f"{VICTIM}.fa.fai").read_bytes().startswith(VICTIM.encode())
        assert (mnt / NS / f"{VICTIM}.dict").read_bytes().startswith(b"@HD")
        with pytest.raises(OSError) as again:
            victim.read_bytes()
        assert again.value.errno == errno.EIO
        assert m.proc is not None and m.proc.poll() is None, "the daemon died"
        assert sorted(os.listdir(mnt / NS))[:2] == [f"{NEIGHBOUR}.dict", f"{NEIGHBOUR}.fa"]
        os.statvfs(mnt)
    log = m.log
    assert f"/{NS}/{VICTIM}.fa" in log and str(named) in log, log
    assert "Traceback" not in log, log


def _check_damage(instance: Path, quick: bool) -> tuple[int, list[str], str]:
    proc = run_seqrepofs("-r", str(instance.parent), "check", *(["--quick"] if quick else []))
    assert "Traceback" not in proc.stderr, proc.stderr
    damage = [ln for ln in proc.stdout.splitlines() if ln.startswith("DAMAGED")]
    return proc.returncode, damage, proc.stdout + proc.stderr


def _assert_exactly_victim(instance: Path, named: Path, damage: list[str]) -> None:
    victim_rel, other_rel = _relpath(instance, VICTIM), _relpath(instance, OTHER)
    assert damage
    assert all(victim_rel in ln for ln in damage), damage
    assert not any(other_rel in ln for ln in damage), damage
    assert any(named.name in ln for ln in damage) or named.suffix == ".bgz", damage


@pytest.mark.parametrize("damaged", list(FILE_DAMAGE), indirect=True)
def test_check_reports_exactly_the_damaged_file(damaged) -> None:
    instance, named, _seqs, _kind = damaged
    code, damage, out = _check_damage(instance, quick=False)
    assert code == 1, out
    _assert_exactly_victim(instance, named, damage)


@pytest.mark.parametrize(
    "damaged",
    list(FILE_DAMAGE),
    indirect=True,
)
def test_check_quick_reports_structural_damage_only(damaged) -> None:
    instance, named, _seqs, kind = damaged
    code, damage, out = _check_damage(instance, quick=True)
    if not FILE_DAMAGE[kind]:  # residues damaged, structure intact: quick does not read them
        assert code == 0 and damage == [], out
        return
    assert code == 1, out
    _assert_exactly_victim(instance, named, damage)


# ---- damaged SQLite databases -------------------------------------------------------------------
def _corrupt_table_root(db: Path, table: str) -> None:
    """Make the root page of `table` an invalid b-tree page (SQLite detects it: SQLITE_CORRUPT)."""
    conn = sqlite3.connect(db)
    (root,) = conn.execute("select rootpage from sqlite_master where name = ?", (table,)).fetchone()
    (page_size,) = conn.execute("pragma page_size").fetchone()
    conn.close()
    with open(db, "r+b") as fh:
        fh.seek((root - 1) * page_size)
        fh.write(b"\x00")


SQLITE_DAMAGE = {
    "aliases-header": ("aliases.sqlite3", None),
    "aliases-table": ("aliases.sqlite3", "seqalias"),
    "seqinfo-table": ("sequences/db.sqlite3", "seqinfo"),
}


def _damage_db(instance: Path, kind: str) -> Path:
    rel, table = SQLITE_DAMAGE[kind]
    db = instance / rel
    if table is None:
        with open(db, "r+b") as fh:
            fh.write(b"\x00" * 100)  # the header: no longer a database at all
    else:
        _corrupt_table_root(db, table)
    return db


@pytest.mark.parametrize("kind", list(SQLITE_DAMAGE))
def test_api_names_a_damaged_database(template, tmp_path: Path, kind: str) -> None:
    src, _seqs = template
    instance = tmp_path / "master"
    shutil.copytree(src, instance)
    db = _damage_db(instance, kind)
    with pytest.raises((CorruptFileError, NotASeqRepoError)) as info:
        sr = SeqRepo(instance)
        try:
            sr.fetch(OTHER, namespace=NS)
        finally:
            sr.close()
    assert str(db) in str(info.value)
    assert not isinstance(info.value, KeyError)  # never "not found"


@needs_fuse
@pytest.mark.fuse
@pytest.mark.parametrize("kind", list(SQLITE_DAMAGE))
def test_mount_of_a_root_serves_the_other_instances(template, tmp_path: Path, kind: str) -> None:
    """A root whose snapshot 2020-01-01 has a damaged database: the root still lists, statfs
    and umount still work, the other snapshots serve every file; the damaged one is EIO."""
    src, seqs = template
    root = tmp_path / "root"
    for name in ("2020-01-01", "2020-01-02", "master"):
        shutil.copytree(src, root / name)
    os.symlink("2020-01-02", root / "latest")
    _damage_db(root / "2020-01-01", kind)
    with Mounted(root, tmp_path / "mnt") as m:
        mnt = Path(m.mnt)
        listing = os.listdir(mnt)
        assert {"2020-01-02", "master", "latest"} <= set(listing), listing
        os.statvfs(mnt)
        for inst in ("2020-01-02", "master", "latest"):
            data = (mnt / inst / NS / f"{OTHER}.fa").read_bytes()
            assert data.split(b"\n", 1)[1].replace(b"\n", b"").decode() == seqs[OTHER]
        with pytest.raises(OSError) as info:
            (mnt / "2020-01-01" / NS / f"{OTHER}.fa").read_bytes()
        assert info.value.errno == errno.EIO
        assert m.proc is not None and m.proc.poll() is None
        proc = run_seqrepofs("umount", str(mnt))
        assert proc.returncode == 0, proc.stderr
    assert "2020-01-01" in m.log and "Traceback" not in m.log, m.log


@pytest.mark.parametrize("kind", list(SQLITE_DAMAGE))
def test_check_reports_a_damaged_database(template, tmp_path: Path, kind: str) -> None:
    src, _seqs = template
    instance = tmp_path / "root" / "master"
    shutil.copytree(src, instance)
    rel, _table = SQLITE_DAMAGE[kind]
    _damage_db(instance, kind)
    for quick in (True, False):
        proc = run_seqrepofs("-r", str(instance.parent), "check", *(["--quick"] if quick else []))
        assert "Traceback" not in proc.stderr
        assert proc.returncode == 1
        damage = [ln for ln in proc.stdout.splitlines() if ln.startswith("DAMAGED")]
        assert damage and all(rel in ln for ln in damage), proc.stdout + proc.stderr
