"""Whole-assembly FASTA views: one virtual multi-FASTA per (assembly, naming style, variant).

Which assemblies, styles and variants there are, the seven files of a view and what each holds
are specified once, in docs/mount.md ("Whole-assembly files"). A view copies nothing: its records
are sequences the repository already stores, renamed per style, and its bytes are computed on
demand by :class:`~seqrepofs.genome_layout.GenomeLayout`, the mechanism that renders a sequence
collection's files too (`.fa`, `.fa.fai`, `.chrom.sizes`); the FUSE layer serves them and
``export --assembly`` streams them (:func:`write_assembly_fasta`), the same bytes. Views are
cached per SeqRepo (:func:`catalog_for`); call :func:`invalidate` after writing to an instance.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, cached_property, lru_cache
from typing import IO, Any

from bioutils.assemblies import get_assembly, get_assembly_names

from . import seqcol
from .errors import SeqRepoError
from .fasta_view import DictEntry, dict_text, encode_name
from .genome_layout import GenomeFileKind, GenomeLayout, ListRecords
from .seqrepo import SeqRepo

__all__ = [
    "DEFAULT_LINE_WIDTH",
    "KINDS",
    "STYLES",
    "VARIANTS",
    "AssemblyCatalog",
    "AssemblyView",
    "MissingRecord",
    "ReportEntry",
    "UnknownAssemblyError",
    "ViewFile",
    "ViewRecord",
    "catalog_for",
    "get_view",
    "invalidate",
    "known_assemblies",
    "list_views",
    "lookup",
    "report_entries",
    "view_filename",
    "write_assembly_fasta",
]

log = logging.getLogger(__name__)

STYLES = ("ncbi", "ucsc", "refseq")
VARIANTS = ("full", "primary")
#: File kinds of a view, each the suffix after ``<base>.``; "fa" is the FASTA itself.
KINDS = ("fa", "fa.fai", "dict", "fa.dict", "chrom.sizes", "seqcol.json", "missing.txt")
DEFAULT_LINE_WIDTH = 60
PRIMARY_UNITS = ("Primary Assembly", "non-nuclear")
#: Bytes per window when streaming a whole view (bounds memory to about one window).
CHUNK_BYTES = 4 << 20

_ABSENT = (None, "", "na")
_SAM_ALT_NAME_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z*+.@_|-]*")  # SAM spec, @SQ AN


class UnknownAssemblyError(SeqRepoError, LookupError):
    """The assembly has no bioutils report or no namespace in this repository."""


# --------------------------------------------------------------------------------------------
# Assembly reports (bioutils)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportEntry:
    """One sequence line of an assembly report, as bioutils carries it."""

    index: int  # position in the report (defines record order)
    name: str  # Sequence-Name: 1, MT, HSCHR1_CTG1_UNLOCALIZED
    ucsc_name: str | None  # UCSC-style-name (bioutils "aliases"), None for "na"
    refseq_ac: str | None  # None for "na"
    genbank_ac: str | None
    length: int  # per the report; the stored sequence decides the view's length
    sequence_role: str
    assembly_unit: str
    relationship: str

    @property
    def is_primary(self) -> bool:
        """1-22, X, Y, MT: assembled molecules of the primary or non-nuclear unit."""
        return self.sequence_role == "assembled-molecule" and self.assembly_unit in PRIMARY_UNITS

    def style_name(self, style: str) -> str | None:
        """The entry's name in ``style`` (None if the report has none)."""
        if style == "ncbi":
            return self.name
        if style == "ucsc":
            return self.ucsc_name
        if style == "refseq":
            return self.refseq_ac
        raise ValueError(f"unknown naming style {style!r}; expected one of {STYLES}")


@cache
def _assembly_names() -> frozenset[str]:
    return frozenset(get_assembly_names())


@lru_cache(maxsize=64)
def report_entries(assembly: str) -> tuple[ReportEntry, ...]:
    """The report of ``assembly`` in report order (cached; bioutils reads gzipped JSON)."""
    if assembly not in _assembly_names():
        raise UnknownAssemblyError(f"bioutils has no assembly report named {assembly!r}")
    out = []
    for i, s in enumerate(get_assembly(assembly)["sequences"]):
        aliases = [a for a in s.get("aliases") or () if a not in _ABSENT]
        if len(aliases) > 1:  # never in bioutils' data: its aliases is the one UCSC column
            log.warning(
                "%s %s: several aliases %s; using %s as UCSC name",
                assembly,
                s["name"],
                aliases,
                aliases[0],
            )
        out.append(
            ReportEntry(
                index=i,
                name=s["name"],
                ucsc_name=aliases[0] if aliases else None,
                refseq_ac=None if s.get("refseq_ac") in _ABSENT else s["refseq_ac"],
                genbank_ac=None if s.get("genbank_ac") in _ABSENT else s["genbank_ac"],
                length=int(s["length"]),
                sequence_role=s.get("sequence_role") or "",
                assembly_unit=s.get("assembly_unit") or "",
                relationship=s.get("relationship") or "",
            )
        )
    return tuple(out)


# --------------------------------------------------------------------------------------------
# Resolution against the repository (style independent, shared by the six views)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Resolved:
    entry: ReportEntry
    seq_id: str | None
    length: int | None
    md5: str | None
    problem: str | None  # why seq_id is None


def _namespace_map(sr: SeqRepo, assembly: str) -> dict[str, str]:
    """Current alias -> seq_id of one assembly namespace, in one query."""
    return {
        r["alias"]: r["seq_id"]
        for r in sr.aliases.find_aliases(namespace=assembly, current_only=True)
        if r["namespace"] == assembly
    }


def _resolve(
    sr: SeqRepo, assembly: str, info: dict[str, tuple[int, str] | None]
) -> tuple[_Resolved, ...]:
    """Find every report entry; ``info`` caches (length, md5) per seq_id across assemblies."""
    ns = _namespace_map(sr, assembly)
    out = []
    for e in report_entries(assembly):
        hits = {k: ns[k] for k in (e.name, e.ucsc_name) if k is not None and k in ns}
        ids = set(hits.values())
        if not ids:
            out.append(_Resolved(e, None, None, None, "not in repository"))
            continue
        if len(ids) > 1:
            detail = ", ".join(f"{assembly}:{k} -> {v}" for k, v in hits.items())
            out.append(_Resolved(e, None, None, None, f"conflicting aliases ({detail})"))
            continue
        seq_id = ids.pop()
        if seq_id not in info:
            try:
                length = sr.sequence_length(seq_id)
            except KeyError:
                info[seq_id] = None
            else:
                info[seq_id] = (length, sr.sam_m5(seq_id))
        got = info[seq_id]
        if got is None:
            out.append(_Resolved(e, None, None, None, f"alias names unstored sequence {seq_id}"))
        else:
            out.append(_Resolved(e, seq_id, got[0], got[1], None))
    return tuple(out)


# --------------------------------------------------------------------------------------------
# Views
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ViewRecord:
    """One FASTA record of a view."""

    name: str  # FASTA name (encoded style name)
    seq_id: str  # sha512t24u; the refget id is "SQ." + seq_id
    length: int  # stored length
    md5: str
    entry: ReportEntry
    alt_names: tuple[str, ...] = ()  # the entry's other-style names, for @SQ AN


@dataclass(frozen=True)
class MissingRecord:
    """A report entry of the variant that the view leaves out, and why."""

    entry: ReportEntry
    fasta_name: str | None
    reason: str


def _check_style(style: str, primary: bool) -> None:
    if style not in STYLES:
        raise ValueError(f"unknown naming style {style!r}; expected one of {STYLES}")
    if not isinstance(primary, bool):
        raise TypeError(f"primary must be a bool, got {primary!r}")


def _base_name(assembly: str, style: str, primary: bool) -> str:
    return assembly + ("" if style == "ncbi" else f".{style}") + (".primary" if primary else "")


def view_filename(
    assembly: str, style: str = "ncbi", variant: str = "full", kind: str = "fa"
) -> str:
    """File name of one file of a view: ``<assembly>[.<style>][.primary].<kind>``.

    ``variant`` is "full" or "primary"; ``kind`` one of :data:`KINDS` ("fa" for the FASTA).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
    if kind not in KINDS:
        raise ValueError(f"unknown file kind {kind!r}; expected one of {KINDS}")
    _check_style(style, variant == "primary")
    return f"{_base_name(assembly, style, variant == 'primary')}.{kind}"


class AssemblyView:
    """One virtual multi-FASTA of an assembly (immutable; cheap to read concurrently)."""

    def __init__(
        self,
        sr: SeqRepo,
        assembly: str,
        style: str,
        primary: bool,
        line_width: int,
        resolved: tuple[_Resolved, ...],
    ) -> None:
        _check_style(style, primary)
        self._sr = sr
        self.assembly = assembly
        self.style = style
        self.primary = primary
        self.line_width = line_width
        records: list[ViewRecord] = []
        missing: list[MissingRecord] = []
        used: set[str] = set()
        n_entries = 0
        for r in resolved:
            e = r.entry
            if primary and not e.is_primary:
                continue
            n_entries += 1
            raw = e.style_name(style)
            name = encode_name(raw) if raw is not None else None
            if r.seq_id is None:
                missing.append(MissingRecord(e, name, r.problem or "not in repository"))
            elif name is None:
                missing.append(MissingRecord(e, None, f"no {style} name in assembly report"))
            elif name in used:
                missing.append(MissingRecord(e, name, "duplicate name"))
            else:
                used.add(name)
                assert r.length is not None and r.md5 is not None
                records.append(ViewRecord(name, r.seq_id, r.length, r.md5, e))
        self.n_entries = n_entries
        self.records: tuple[ViewRecord, ...] = tuple(self._with_alt_names(records, used))
        self.missing: tuple[MissingRecord, ...] = tuple(missing)
        self.genome = GenomeLayout(
            ListRecords(
                [(r.name, r.length, r.seq_id) for r in self.records],
                key=("assembly view", id(self)),
                label=f"assembly view {self.base_name}",
            ),
            line_width,
        )

    def _with_alt_names(self, records: list[ViewRecord], used: set[str]) -> Iterator[ViewRecord]:
        """Attach AN values that are SAM-valid and clash with no SN or earlier AN."""
        taken = set(used)
        for rec in records:
            alts = []
            for style in STYLES:
                if style == self.style:
                    continue
                alt = rec.entry.style_name(style)
                if alt and alt not in taken and _SAM_ALT_NAME_RE.fullmatch(alt):
                    taken.add(alt)
                    alts.append(alt)
            yield ViewRecord(rec.name, rec.seq_id, rec.length, rec.md5, rec.entry, tuple(alts))

    # ---- identity ---------------------------------------------------------------------------

    @property
    def variant(self) -> str:
        return "primary" if self.primary else "full"

    @property
    def base_name(self) -> str:
        """``<assembly>[.<style>][.primary]``; every file of the view is ``base_name.<kind>``."""
        return _base_name(self.assembly, self.style, self.primary)

    def filename(self, kind: str = "fa") -> str:
        return view_filename(self.assembly, self.style, self.variant, kind)

    def __repr__(self) -> str:
        return (
            f"AssemblyView({self.filename()!r}, records={len(self.records)}, "
            f"missing={len(self.missing)}, size={self.size})"
        )

    # ---- FASTA bytes ------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Size of the FASTA file in bytes."""
        return self.genome.size(GenomeFileKind.FASTA)

    def read(self, offset: int, size: int) -> bytes:
        """FASTA bytes ``[offset, offset+size)`` (clipped at EOF); fetches only those residues."""
        data = self.genome.read(offset, size, self._sr.sequences.fetch_bytes)
        return data if type(data) is bytes else bytes(data)

    def iter_chunks(self, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
        """The whole FASTA in consecutive windows of at most ``chunk_bytes`` bytes."""
        if chunk_bytes < 1:
            raise ValueError("chunk_bytes must be >= 1")
        for offset in range(0, self.size, chunk_bytes):
            yield self.read(offset, chunk_bytes)

    # ---- sidecar files ----------------------------------------------------------------------

    @cached_property
    def _fai(self) -> bytes:
        return self.genome.text(GenomeFileKind.FAI)

    def fai_text(self) -> bytes:
        return self._fai

    @cached_property
    def _chrom_sizes(self) -> bytes:
        return self.genome.text(GenomeFileKind.CHROM_SIZES)

    def chrom_sizes_text(self) -> bytes:
        return self._chrom_sizes

    def _dict_for(self, uri: str | None) -> bytes:
        return dict_text(
            [
                DictEntry(
                    name=r.name,
                    length=r.length,
                    md5=r.md5,
                    uri=f"ga4gh:SQ.{r.seq_id}" if uri is None else uri,
                    assembly=self.assembly,
                    alt_names=",".join(r.alt_names) or None,
                )
                for r in self.records
            ]
        )

    @cached_property
    def _dict(self) -> bytes:
        return self._dict_for(None)

    def dict_text(self, uri: str | None = None) -> bytes:
        """The sequence dictionary served as both ``B.dict`` and ``B.fa.dict``.

        UR defaults to each record's ``ga4gh:SQ.<seq_id>`` (the same wherever the file is
        mounted or exported); pass ``uri`` (e.g. ``file:///mnt/GRCh38.fa``) to put one URI on
        every record, as ``samtools dict`` does.
        """
        return self._dict if uri is None else self._dict_for(uri)

    def seqcol_level2(self) -> dict[str, list[Any]]:
        """The canonical sequence collection: names, lengths, sequences (``SQ.`` ids)."""
        return {
            "names": [r.name for r in self.records],
            "lengths": [r.length for r in self.records],
            "sequences": [f"SQ.{r.seq_id}" for r in self.records],
        }

    @cached_property
    def _seqcol(self) -> tuple[str, dict[str, str]]:
        level2 = self.seqcol_level2()
        level1 = seqcol.level1(level2)
        shown = {k: v for k, v in level1.items() if k in level2 or k in seqcol.TRANSIENT}
        return seqcol.digest_from_level1(level1), shown

    @property
    def seqcol_digest(self) -> str:
        """GA4GH seqcol 1.0 level-0 digest (what ``refget``'s seqcol_digest returns)."""
        return self._seqcol[0]

    @property
    def seqcol_level1(self) -> dict[str, str]:
        return dict(self._seqcol[1])

    @cached_property
    def _seqcol_json(self) -> bytes:
        doc = {
            "digest": self.seqcol_digest,
            "level1": self.seqcol_level1,
            "level2": self.seqcol_level2(),
            "assembly": self.assembly,
            "fasta": self.filename(),
            "seqcol_spec": "1.0.0",
            "inherent": ["names", "sequences"],
        }
        return (json.dumps(doc, indent=1) + "\n").encode("utf-8")

    def seqcol_json(self) -> bytes:
        return self._seqcol_json

    @cached_property
    def _missing(self) -> bytes:
        what = "assembled molecules" if self.primary else "all sequences"
        lines = [
            f"# {self.filename()}: {len(self.missing)} of the {self.n_entries} sequences of"
            f" assembly {self.assembly} ({self.variant}: {what}) are left out of this file\n",
            "# sequence_name\tfasta_name\trefseq_ac\tgenbank_ac\treport_length\treason\n",
        ]
        for m in self.missing:
            e = m.entry
            cols = (e.name, m.fasta_name, e.refseq_ac, e.genbank_ac, str(e.length), m.reason)
            lines.append("\t".join(c if c else "na" for c in cols) + "\n")
        return "".join(lines).encode("utf-8")

    def missing_text(self) -> bytes:
        """``.missing.txt``: a comment line, a header, then one TSV row per left-out entry."""
        return self._missing

    # ---- uniform file access (what a filesystem needs) --------------------------------------

    def file_bytes(self, kind: str) -> bytes:
        """Whole content of a sidecar (``kind`` != "fa"; stream the FASTA with :meth:`read`)."""
        if kind == "fa.fai":
            return self.fai_text()
        if kind in ("dict", "fa.dict"):
            return self.dict_text()
        if kind == "chrom.sizes":
            return self.chrom_sizes_text()
        if kind == "seqcol.json":
            return self.seqcol_json()
        if kind == "missing.txt":
            return self.missing_text()
        if kind == "fa":
            raise ValueError("the FASTA is not materialised; use read(offset, size)")
        raise ValueError(f"unknown file kind {kind!r}; expected one of {KINDS}")

    def file_size(self, kind: str) -> int:
        return self.size if kind == "fa" else len(self.file_bytes(kind))

    def read_file(self, kind: str, offset: int, size: int) -> bytes:
        """Bytes ``[offset, offset+size)`` of any file of the view."""
        if offset < 0 or size < 0:
            raise ValueError(f"negative offset/size ({offset}, {size})")
        if kind == "fa":
            return self.read(offset, size)
        return self.file_bytes(kind)[offset : offset + size]


# --------------------------------------------------------------------------------------------
# Catalog: which views a repository offers, by file name
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ViewFile:
    """What a top-level file name denotes: one file (``kind``) of one view."""

    filename: str
    assembly: str
    style: str
    primary: bool
    kind: str

    @property
    def variant(self) -> str:
        return "primary" if self.primary else "full"


class AssemblyCatalog:
    """The views of one SeqRepo at one line width, built lazily and cached (thread-safe)."""

    def __init__(self, sr: SeqRepo, line_width: int = DEFAULT_LINE_WIDTH) -> None:
        if int(line_width) < 1:
            raise ValueError(f"line width must be >= 1, got {line_width}")
        self._sr = sr
        self.line_width = int(line_width)
        self._lock = threading.RLock()
        self._assemblies: tuple[str, ...] | None = None
        self._files: dict[str, ViewFile] | None = None
        self._resolved: dict[str, tuple[_Resolved, ...]] = {}
        self._seqinfo: dict[str, tuple[int, str] | None] = {}  # GRCh38.pN share sequences
        self._views: dict[tuple[str, str, bool], AssemblyView] = {}

    def invalidate(self) -> None:
        """Forget everything (after the repository changed)."""
        with self._lock:
            self._assemblies = None
            self._files = None
            self._resolved.clear()
            self._seqinfo.clear()
            self._views.clear()

    @property
    def assemblies(self) -> tuple[str, ...]:
        """Known assemblies, sorted: bioutils reports whose namespace exists."""
        with self._lock:
            if self._assemblies is None:
                has = self._sr.aliases.has_namespace
                self._assemblies = tuple(sorted(a for a in _assembly_names() if has(a)))
            return self._assemblies

    def _require(self, assembly: str) -> None:
        if assembly not in self.assemblies:
            raise UnknownAssemblyError(
                f"assembly {assembly!r} is not known to this repository (known: "
                f"{', '.join(self.assemblies) or 'none'}; run add-assembly-names)"
            )

    def view(self, assembly: str, style: str = "ncbi", primary: bool = False) -> AssemblyView:
        """The (cached) view; raises UnknownAssemblyError or ValueError for bad arguments."""
        _check_style(style, primary)
        key = (assembly, style, primary)
        with self._lock:
            hit = self._views.get(key)
            if hit is not None:
                return hit
            self._require(assembly)
            resolved = self._resolved.get(assembly)
            if resolved is None:
                resolved = self._resolved[assembly] = _resolve(self._sr, assembly, self._seqinfo)
            view = AssemblyView(self._sr, assembly, style, primary, self.line_width, resolved)
            self._views[key] = view
            return view

    def _file_map(self) -> dict[str, ViewFile]:
        with self._lock:
            if self._files is None:
                files: dict[str, ViewFile] = {}
                for assembly in self.assemblies:
                    for style in STYLES:
                        for primary in (False, True):
                            for kind in KINDS:
                                fn = f"{_base_name(assembly, style, primary)}.{kind}"
                                if fn in files:  # impossible with bioutils' names; be safe
                                    log.warning(
                                        "view file name %s is ambiguous; keeping %s", fn, files[fn]
                                    )
                                    continue
                                files[fn] = ViewFile(fn, assembly, style, primary, kind)
                self._files = files
            return self._files

    def filenames(self) -> list[str]:
        """Every view file name of the repository (no view is resolved to list them)."""
        return list(self._file_map())

    def lookup(self, filename: str) -> ViewFile | None:
        return self._file_map().get(filename)

    def view_of(self, vf: ViewFile) -> AssemblyView:
        return self.view(vf.assembly, vf.style, vf.primary)

    def file_size(self, vf: ViewFile) -> int:
        return self.view_of(vf).file_size(vf.kind)

    def read(self, vf: ViewFile, offset: int, size: int) -> bytes:
        return self.view_of(vf).read_file(vf.kind, offset, size)


# Catalogs live on the SeqRepo object itself: a module-level WeakKeyDictionary would never
# release a SeqRepo, because its catalog (the value) refers back to it. As an attribute, the
# cycle SeqRepo -> catalog -> view -> SeqRepo is ordinary garbage once the SeqRepo is dropped.
_CACHE_ATTR = "_seqrepofs_assembly_catalogs"
_catalogs_lock = threading.Lock()


def catalog_for(sr: SeqRepo, line_width: int = DEFAULT_LINE_WIDTH) -> AssemblyCatalog:
    """The catalog of ``sr`` at ``line_width``, shared by every caller holding the same SeqRepo."""
    with _catalogs_lock:
        per_sr: dict[int, AssemblyCatalog] | None = getattr(sr, _CACHE_ATTR, None)
        if per_sr is None:
            per_sr = {}
            setattr(sr, _CACHE_ATTR, per_sr)
        cat = per_sr.get(line_width)
        if cat is None:
            cat = per_sr[line_width] = AssemblyCatalog(sr, line_width)
        return cat


def invalidate(sr: SeqRepo) -> None:
    """Drop cached views of ``sr`` (call after writing to a writable instance)."""
    with _catalogs_lock:
        per_sr: dict[int, AssemblyCatalog] = getattr(sr, _CACHE_ATTR, None) or {}
        for cat in per_sr.values():
            cat.invalidate()
        per_sr.clear()


def known_assemblies(sr: SeqRepo) -> list[str]:
    return list(catalog_for(sr).assemblies)


def get_view(
    sr: SeqRepo,
    assembly: str,
    style: str = "ncbi",
    primary: bool = False,
    line_width: int = DEFAULT_LINE_WIDTH,
) -> AssemblyView:
    return catalog_for(sr, line_width).view(assembly, style, primary)


def list_views(sr: SeqRepo, line_width: int = DEFAULT_LINE_WIDTH) -> list[str]:
    """Every view file name (FASTA and sidecars) for the top-level directory of a mount."""
    return catalog_for(sr, line_width).filenames()


def lookup(sr: SeqRepo, filename: str, line_width: int = DEFAULT_LINE_WIDTH) -> ViewFile | None:
    """What a top-level file name denotes, or None if it is not a view file."""
    return catalog_for(sr, line_width).lookup(filename)


def write_assembly_fasta(
    sr: SeqRepo,
    assembly: str,
    style: str = "ncbi",
    primary: bool = False,
    line_width: int = DEFAULT_LINE_WIDTH,
    out_binary_file: IO[bytes] | None = None,
    *,
    chunk_bytes: int = CHUNK_BYTES,
) -> AssemblyView:
    """Stream the view's FASTA into ``out_binary_file`` in bounded windows; returns the view.

    The bytes are exactly what a mount serves for the same file (same layout, same render);
    the caller can report ``view.missing`` / write ``view.missing_text()`` to stderr.
    """
    if out_binary_file is None:
        raise TypeError("out_binary_file is required")
    view = get_view(sr, assembly, style, primary, line_width)
    for chunk in view.iter_chunks(chunk_bytes):
        out_binary_file.write(chunk)
    return view
