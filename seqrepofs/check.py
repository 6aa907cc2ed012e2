"""`seqrepofs check`: find exactly what is damaged in an instance (an fsck for SeqRepo).

Quick (structure): every seqinfo row's file, .fai and .gzi exist and agree (the .fai names the
sequence with the stored length, inside the file's uncompressed size; the .gzi's blocks start
where BGZF blocks start; the file ends with the BGZF EOF block), every alias points at a stored
sequence, every sequence has its digest aliases. Full mode also reads every sequence back
(checking each block's CRC) and recomputes its digests against the seq_id and the MD5/VMC
aliases. Unreferenced files and `.partial` leftovers are reported as notes, not damage.
Read-only, except that a hot journal left by a killed writer is rolled back first (as SQLite
does on any read-write open) when the instance is writable.
"""

from __future__ import annotations

import os
import sqlite3
import struct
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from .digests import digests_of_pieces
from .errors import CorruptFileError, NotASeqRepoError
from .seqrepo import SeqRepo
from .store.bgzf import EOF_BLOCK, block_size
from .store.fai import FaiIndex, parse_fai, parse_gzi

READ_WINDOW = 8 << 20
DIGEST_NAMESPACES = ("VMC", "SHA1", "MD5", "SEGUID")


@dataclass
class Report:
    """Damage found (each a one-line description) and notes (harmless findings)."""

    damage: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: int = 0
    sequences: int = 0
    aliases: int = 0
    verified: int = 0

    @property
    def ok(self) -> bool:
        return not self.damage


def _connect(instance: str, report: Report) -> sqlite3.Connection:
    aliases = os.path.join(instance, "aliases.sqlite3")
    seqs = os.path.join(instance, "sequences", "db.sqlite3")
    for path in (aliases, seqs):
        if not os.path.isfile(path):
            raise NotASeqRepoError(f"{path}: missing; {instance} is not a SeqRepo instance")
        _roll_back_hot_journal(path, report)
    conn = sqlite3.connect(f"file:{aliases}?mode=ro", uri=True)
    conn.execute("attach database ? as fd", (f"file:{seqs}?mode=ro",))
    return conn


def _databases_readable(instance: str, report: Report) -> bool:
    """Open each database alone first, so damage is reported against the file it is in."""
    sound = True
    for rel, table in (("aliases.sqlite3", "seqalias"), ("sequences/db.sqlite3", "seqinfo")):
        path = os.path.join(instance, rel)
        if not os.path.isfile(path):
            raise NotASeqRepoError(f"{path}: missing; {instance} is not a SeqRepo instance")
        _roll_back_hot_journal(path, report)
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                (result,) = conn.execute("pragma quick_check").fetchone()
                conn.execute(f"select count(*) from {table}").fetchone()
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            report.damage.append(f"{rel}: damaged SQLite database ({exc})")
            sound = False
            continue
        if result != "ok":
            report.damage.append(f"{rel}: SQLite integrity problem: {result}")
            sound = False
    return sound


def _roll_back_hot_journal(path: str, report: Report) -> None:
    """A write killed mid-transaction leaves a hot journal that read-only opens cannot roll
    back; SQLite rolls it back on the first read-write open, as any writer would."""
    journal = path + "-journal"
    if not (os.path.isfile(journal) and os.path.getsize(journal) > 0):
        return
    if not os.access(os.path.dirname(path), os.W_OK) or not os.access(path, os.W_OK):
        report.damage.append(
            f"{os.path.basename(journal)}: an interrupted write must be rolled back, and"
            " the instance is not writable"
        )
        return
    conn = sqlite3.connect(path)
    try:
        conn.execute("select count(*) from sqlite_master").fetchone()
    finally:
        conn.close()
    report.notes.append(f"{os.path.basename(journal)}: rolled back an interrupted write")


def check(
    instance: str,
    full: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Check an instance directory; `progress` is called with residues verified (full mode)."""
    report = Report()
    if not _databases_readable(instance, report):
        return report
    conn = _connect(instance, report)
    try:
        for db in ("main", "fd"):
            (result,) = conn.execute(f"pragma {db}.quick_check").fetchone()
            if result != "ok":
                report.damage.append(f"{db_name(db)}: SQLite integrity problem: {result}")
        rows = conn.execute(
            "select seq_id, len, relpath from fd.seqinfo order by relpath"
        ).fetchall()
        report.sequences = len(rows)
        by_file: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for seq_id, length, relpath in rows:
            by_file[relpath].append((seq_id, length))
        report.files = len(by_file)
        seqdir = os.path.join(instance, "sequences")
        good_files: dict[str, FaiIndex] = {}
        for relpath, seqs in by_file.items():
            fai = _check_file(seqdir, relpath, seqs, report)
            if fai is not None:
                good_files[relpath] = fai
        _check_aliases(conn, report)
        _note_strays(seqdir, set(by_file), report)
        if full:
            digests_by_seq = _digest_aliases(conn)
            with SeqRepo(instance) as sr:
                for relpath, seqs in by_file.items():
                    if relpath not in good_files:
                        continue
                    order = sorted(seqs, key=lambda s: good_files[relpath][s[0]].offset)
                    for seq_id, length in order:
                        _verify_sequence(
                            sr,
                            relpath,
                            seq_id,
                            length,
                            digests_by_seq.get(seq_id, {}),
                            report,
                            progress,
                        )
    finally:
        conn.close()
    return report


def db_name(db: str) -> str:
    return "aliases.sqlite3" if db == "main" else "sequences/db.sqlite3"


def _check_file(
    seqdir: str, relpath: str, seqs: list[tuple[str, int]], report: Report
) -> FaiIndex | None:
    """Structure of one sequence file; returns its .fai entries if the file is sound."""
    path = os.path.join(seqdir, relpath)
    names = ", ".join(s for s, _ in seqs[:3]) + (
        f" and {len(seqs) - 3} more" if len(seqs) > 3 else ""
    )
    problems: list[str] = []
    for suffix in ("", ".fai", ".gzi"):
        if not os.path.isfile(path + suffix):
            problems.append(f"{relpath}{suffix} is missing")
    if problems:
        report.damage.extend(f"{p} (sequences {names})" for p in problems)
        return None
    try:
        with open(path + ".fai", "rb") as fh:
            fai = parse_fai(fh.read(), relpath + ".fai")
        with open(path + ".gzi", "rb") as fh:
            coffsets, uoffsets = parse_gzi(fh.read(), relpath + ".gzi")
        usize = _check_blocks(path, relpath, coffsets, uoffsets)
    except (CorruptFileError, OSError) as exc:
        report.damage.append(f"{exc} (sequences {names})")
        return None
    sound = True
    for seq_id, length in seqs:
        entry = fai.get(seq_id)
        if entry is None:
            report.damage.append(f"{relpath}.fai has no entry for {seq_id}")
            sound = False
        elif entry.length != length:
            report.damage.append(
                f"{relpath}.fai says {seq_id} has {entry.length} residues; seqinfo says {length}"
            )
            sound = False
        elif length and entry.end_offset > usize:
            report.damage.append(
                f"{relpath}: {seq_id} ends past the file's {usize} uncompressed bytes"
            )
            sound = False
    return fai if sound else None


def _check_blocks(path: str, relpath: str, coffsets: Sequence[int], uoffsets: Sequence[int]) -> int:
    """Check that the .gzi's offsets start BGZF blocks and the file ends with the EOF block.

    Returns the uncompressed size of the file.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        fh.seek(max(0, size - len(EOF_BLOCK)))
        if size < len(EOF_BLOCK) or fh.read() != EOF_BLOCK:
            raise CorruptFileError(f"{relpath}: truncated (no BGZF end-of-file block)")
        for i, coff in enumerate(coffsets):
            fh.seek(coff)
            try:
                bsize = block_size(fh.read(18))
            except ValueError:
                raise CorruptFileError(
                    f"{relpath}: .gzi entry {i} (byte {coff}) is not at a BGZF block"
                ) from None
            # each block's size field must lead exactly to the next block (the chain)
            end = coff + bsize
            expected = coffsets[i + 1] if i + 1 < len(coffsets) else None
            if (expected is not None and end != expected) or (
                expected is None and end not in (size - len(EOF_BLOCK), size)
            ):
                raise CorruptFileError(
                    f"{relpath}: BGZF block {i} at byte {coff} has a damaged size field"
                    f" (it ends at byte {end})"
                )
        last = coffsets[-1]
        fh.seek(last)
        bsize = block_size(fh.read(18))  # sound: the loop above read it
        fh.seek(last + bsize - 4)
        (isize,) = struct.unpack("<I", fh.read(4))
    return uoffsets[-1] + isize


def _check_aliases(conn: sqlite3.Connection, report: Report) -> None:
    (report.aliases,) = conn.execute(
        "select count(*) from seqalias where is_current = 1"
    ).fetchone()
    dangling = conn.execute(
        "select namespace, alias, seq_id, is_current from seqalias"
        " where seq_id not in (select seq_id from fd.seqinfo) order by namespace, alias"
    ).fetchall()
    for ns, alias, seq_id, current in dangling:
        state = "" if current else " (history row)"
        report.damage.append(f"alias {ns}:{alias}{state} points at {seq_id}, which is not stored")
    missing = conn.execute(
        "select s.seq_id, count(a.seq_id) from fd.seqinfo s left join seqalias a"
        " on a.seq_id = s.seq_id and a.is_current = 1 and a.namespace in"
        f" ({', '.join('?' * len(DIGEST_NAMESPACES))}) group by s.seq_id"
        f" having count(a.seq_id) < {len(DIGEST_NAMESPACES)}",
        DIGEST_NAMESPACES,
    ).fetchall()
    for seq_id, n in missing:
        report.damage.append(
            f"sequence {seq_id} has {n} of its {len(DIGEST_NAMESPACES)} digest aliases"
            " (seqrepofs update-digests adds them)"
        )


def _note_strays(seqdir: str, referenced: set[str], report: Report) -> None:
    for dirpath, _dirs, files in os.walk(seqdir):
        for name in files:
            rel = os.path.relpath(os.path.join(dirpath, name), seqdir)
            if name.endswith(".partial"):
                report.notes.append(
                    f"{rel}: left by an interrupted write (removed by the next load)"
                )
            elif name.endswith(".fa.bgz") and rel not in referenced:
                report.notes.append(
                    f"{rel}: no sequence refers to it (left by an interrupted load; removed by"
                    " the next load)"
                )


def _digest_aliases(conn: sqlite3.Connection) -> dict[str, dict[str, set[str]]]:
    out: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for seq_id, ns, alias in conn.execute(
        "select seq_id, namespace, alias from seqalias where is_current = 1"
        " and namespace in ('MD5', 'VMC')"
    ):
        out[seq_id][ns].add(alias)
    return out


def _verify_sequence(
    sr: SeqRepo,
    relpath: str,
    seq_id: str,
    length: int,
    digest_aliases: dict[str, set[str]],
    report: Report,
    progress: Callable[[int], None] | None,
) -> None:
    pieces = sr.iter_bytes(seq_id, 0, length, READ_WINDOW)
    try:
        dg = digests_of_pieces(pieces if progress is None else _counted(pieces, progress))
    except (CorruptFileError, OSError, ValueError) as exc:
        report.damage.append(f"{relpath}: cannot read {seq_id}: {exc}")
        return
    if dg.seq_id != seq_id:
        report.damage.append(
            f"{relpath}: {seq_id} reads back with digest {dg.seq_id}: the stored residues changed"
        )
        return
    md5s = digest_aliases.get("MD5", set())
    if md5s and md5s != {dg.md5}:
        report.damage.append(
            f"MD5 alias of {seq_id} is {', '.join(sorted(md5s))}; the sequence's MD5 is {dg.md5}"
        )
    vmcs = digest_aliases.get("VMC", set())
    if vmcs and vmcs != {dg.vmc}:
        report.damage.append(f"VMC alias of {seq_id} is {', '.join(sorted(vmcs))}, not {dg.vmc}")
    report.verified += 1


def _counted(pieces: Iterator[bytes], progress: Callable[[int], None]) -> Iterator[bytes]:
    for piece in pieces:
        progress(len(piece))
        yield piece
