"""Bytes and sizes of the four virtual files of an alias (.fa, .fa.fai, .dict, .fa.dict).

All layout arithmetic is `seqrepofs.fasta_view`'s; this module only decides which record goes
in which file and caches the small results, so `stat` and `read` always agree.
"""

from __future__ import annotations

import enum
import re
from functools import lru_cache

from ..fasta_view import DictEntry, FastaLayout, dict_text
from ..genome_layout import GenomeFileKind

# Every @SQ has a 32-hex M5, so a .dict's size is known before its MD5 is looked up.
PLACEHOLDER_MD5 = "0" * 32
_BAD_URI_RE = re.compile(r"[\t\n\r]")


class FileKind(enum.IntEnum):
    """The files of one alias, in readdir order (the value is the readdir sub-position)."""

    FASTA = 0
    FAI = 1
    DICT = 2  # <alias>.dict: what GATK looks for (extension replaced)
    FA_DICT = 3  # <alias>.fa.dict: what htsjdk tries second

    @property
    def suffix(self) -> str:
        return _SUFFIX[self]


_SUFFIX = {
    FileKind.FASTA: ".fa",
    FileKind.FAI: ".fa.fai",
    FileKind.DICT: ".dict",
    FileKind.FA_DICT: ".fa.dict",
}


CollectionKind = GenomeFileKind  # the files of one collection in /collections


# preferred first: "x.fa.dict" is x's .fa.dict before it is x.fa's .dict
_COLLECTION_ORDER = (
    GenomeFileKind.FAI,
    GenomeFileKind.FA_DICT,
    GenomeFileKind.CHROM_SIZES,
    GenomeFileKind.SEQCOL,
    GenomeFileKind.DICT,
    GenomeFileKind.FASTA,
)


def split_collection_file_name(name: str) -> list[tuple[str, GenomeFileKind]]:
    """Candidate (stem, kind) readings of a file name in /collections, preferred first."""
    out = []
    for kind in _COLLECTION_ORDER:
        suffix = kind.suffix
        if name.endswith(suffix) and len(name) > len(suffix):
            out.append((name[: -len(suffix)], kind))
    return out


def split_file_name(name: str) -> list[tuple[str, FileKind]]:
    """Candidate (encoded stem, kind) readings of a file name, preferred first.

    `X.fa.dict` is both the .fa.dict of `X` and the .dict of `X.fa`; the first reading wins
    when alias `X` exists (the tree hides the other file from listings).
    """
    out = []
    for kind in (FileKind.FAI, FileKind.FA_DICT, FileKind.DICT, FileKind.FASTA):
        suffix = kind.suffix
        if name.endswith(suffix) and len(name) > len(suffix):
            out.append((name[: -len(suffix)], kind))
    return out


@lru_cache(maxsize=4096)
def layout(name: str, length: int, width: int) -> FastaLayout:
    """Layout of a one-record FASTA `>name` (cached: built on every stat of a listing)."""
    return FastaLayout.build([(name, length)], width)


@lru_cache(maxsize=4096)
def fai_bytes(name: str, length: int, width: int) -> bytes:
    """What `samtools faidx` writes for the .fa (empty for a zero-length sequence)."""
    return layout(name, length, width).fai_text()


def dict_bytes(name: str, length: int, md5: str, uri: str | None) -> bytes:
    """What `samtools dict` writes for the .fa (UR is the .fa's path, as samtools sets it)."""
    return dict_text([DictEntry(name, length, md5, uri)])


def file_uri(path: str) -> str | None:
    """`file://` + absolute path, as `samtools dict` writes UR; None if SAM cannot hold it."""
    return None if _BAD_URI_RE.search(path) else "file://" + path


def file_sizes(name: str, length: int, width: int, uri: str | None) -> tuple[int, int, int]:
    """Sizes of (.fa, .fa.fai, .dict) by arithmetic alone: a listing sizes every file, so this
    runs a million times for a large namespace.

    The same layout as FastaLayout (header, residues, one newline per started line) and the
    same line formats as `fai_line` and `dict_text`; a unit test compares the three sizes with
    the bytes those produce, and the mount tests compare every stat size with the bytes served.
    """
    name_len = len(name.encode("utf-8"))
    header = name_len + 2
    fa = header + length + -(-length // width)
    fai = 0
    if length:
        bases = min(length, width)
        fai = name_len + len(str(length)) + len(str(header)) + len(str(bases))
        fai += len(str(bases + 1)) + 5
    dct = _DICT_FIXED + name_len + len(str(length))
    if uri is not None:
        dct += 4 + len(uri.encode("utf-8"))  # "\tUR:" + the URI
    return fa, fai, dct


# "@HD\tVN:1.0\tSO:unsorted\n" + "@SQ\tSN:" + "\tLN:" + "\tM5:" + 32 hex digits + "\n"
_DICT_FIXED = len(dict_bytes("", 0, PLACEHOLDER_MD5, None)) - 1
