"""Streaming FASTA parsing in large chunks, with validation and digests as the data goes by.

Why not a line loop: a chromosome has millions of lines. Each chunk (4 MiB) is cut at record
boundaries with `find(b"\\n>")`; a sequence piece is cleaned in one `bytes.translate` (drops
whitespace, upper-cases, maps anything that is not a letter or `*` to NUL), checked for NUL with
one memchr, hashed (on a worker thread when large: see `hashing`) and appended to the record's
buffer. So a record is held once, as its cleaned bytes, and never joined or copied again.

A record is complete and valid (residues, name, aliases) before it is handed out, so the caller
never stores part of a bad record.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from isal import isal_zlib

from ..digests import Digests
from .deflines import parse_defline, validate_aliases
from .errors import LoadError
from .hashing import DigestWorker, RecordDigest

CHUNK_SIZE = 4 << 20
_WHITESPACE = b" \t\n\r\v\f"
_INVALID = b"\x00"


def _make_table() -> bytes:
    """Upper-case letters, keep `*`, map every other byte (NUL included) to NUL."""
    table = bytearray(256)
    for c in range(ord("A"), ord("Z") + 1):
        table[c] = c
        table[c + 32] = c
    table[ord("*")] = ord("*")
    return bytes(table)


_TABLE = _make_table()
_BAD_RE = re.compile(rb"[^A-Za-z*\s]")
_NAME_MAX = 40


@dataclass
class FastaRecord:
    """One validated record: stored bytes (upper-cased), digests, alphabet, aliases."""

    path: str
    index: int  # 1-based record number in its file
    line: int  # line number of the header
    header: str
    aliases: list[dict[str, str]]
    seq: bytearray
    digest: RecordDigest
    alphabet: str

    @property
    def digests(self) -> Digests:
        """Waits for the hashing worker if this record's digests are computed there."""
        return self.digest.result()

    @property
    def name(self) -> str:
        return self.header.split(None, 1)[0]

    def __len__(self) -> int:
        return len(self.seq)


# A hook called with the number of bytes a record is about to grow by; it may block (memory
# budget) or raise (cancellation). The default does nothing.
Reserve = Callable[[int, int], None]


def _no_reserve(n: int, own: int) -> None:
    return None


@dataclass
class _Builder:
    path: str
    index: int
    line: int
    header: str
    aliases: list[dict[str, str]]
    reserve: Reserve
    digest: RecordDigest
    seq: bytearray = field(default_factory=bytearray)
    known: bytes = b""
    hint: bytes = b""  # the previous record's alphabet: likely this one's too

    def error(self, message: str, line: int | None = None) -> LoadError:
        return LoadError(message, self.path, self.index, _short(self.header), line or self.line)

    def add(self, raw: bytes, line: int) -> None:
        clean = raw.translate(_TABLE, _WHITESPACE)
        if not clean:
            return
        if _INVALID in clean:
            raise self._invalid(raw, line)
        self.reserve(len(clean), len(self.seq))
        self.digest.update(clean.replace(b"*", b"") if b"*" in clean else clean)
        if not self.seq and self.hint:  # first piece: which of the last record's letters?
            self.known = bytes(c for c in self.hint if c in clean)  # memchr each, no copy
        rest = clean.translate(None, self.known)
        while rest:  # peel off new letters one at a time: a few passes, no per-byte loop
            letter = rest[:1]
            self.known = bytes(sorted(self.known + letter))
            rest = rest.translate(None, letter)
        self.seq += clean

    def _invalid(self, raw: bytes, line: int) -> LoadError:
        m = _BAD_RE.search(raw)
        assert m is not None
        lines_before = raw.count(b"\n", 0, m.start())
        line_start = raw.rfind(b"\n", 0, m.start()) + 1
        column = m.start() - line_start + 1
        residue = len(self.seq) + len(raw[: m.start()].translate(None, _WHITESPACE))
        char = m.group().decode("latin-1")
        return self.error(
            f"invalid residue {char!r} at column {column} (residue {residue + 1}):"
            " sequences may contain only letters A-Z and '*'",
            line + lines_before,
        )

    def finish(self) -> FastaRecord:
        if not self.seq:
            raise self.error("empty record (no residues)")
        self.digest.finish()
        return FastaRecord(
            self.path,
            self.index,
            self.line,
            self.header,
            self.aliases,
            self.seq,
            self.digest,
            self.known.decode("ascii"),
        )


def _short(header: str) -> str:
    name = header.split(None, 1)[0] if header.strip() else ""
    return name if len(name) <= _NAME_MAX else name[: _NAME_MAX - 1] + "…"


def read_records(
    chunks: Iterable[bytes],
    path: str,
    namespace: str | None,
    reserve: Reserve = _no_reserve,
    worker: DigestWorker | None = None,
) -> Iterator[FastaRecord]:
    """Yield the validated records of one FASTA byte stream (given as chunks), in order.

    Raises LoadError for: data before the first header, a header without a name, an alias the
    reference would reject, an invalid residue, an empty record, no record at all, and
    truncated or corrupt compressed input.
    """
    line = 1  # line number at `pos`
    rec: _Builder | None = None
    carry = b""
    at_line_start = True
    n_records = 0
    it = iter(chunks)
    eof = False
    while not eof:
        try:
            chunk = next(it, b"")
        # isal's type stub declares `error` as an instance, hence the ignore
        except (EOFError, OSError, zlib.error, isal_zlib.error) as exc:  # type: ignore[misc]
            raise LoadError(
                f"truncated or corrupt compressed data ({exc})",
                path,
                rec.index if rec else None,
                _short(rec.header) if rec else None,
                line,
            ) from None
        eof = not chunk
        data = carry + chunk if carry else chunk
        carry = b""
        pos, n = 0, len(data)
        while pos < n:
            if at_line_start and data[pos] == 0x3E:  # ">" starts a header line
                nl = data.find(b"\n", pos)
                if nl < 0 and not eof:
                    carry = data[pos:]
                    break
                end = n if nl < 0 else nl
                hint = b""
                if rec is not None:
                    hint = rec.known
                    yield rec.finish()
                    rec = None
                n_records += 1
                rec = _start_record(
                    data[pos + 1 : end], path, n_records, line, namespace, reserve, worker
                )
                rec.hint = hint
                line += 1
                pos = end + 1
                at_line_start = True
                continue
            idx = data.find(b"\n>", pos)
            end = idx + 1 if idx >= 0 else n
            piece = data[pos:end]
            if rec is None:
                if piece.strip():
                    offset = len(piece) - len(piece.lstrip())
                    raise LoadError(
                        "text before the first '>' header; is this a FASTA file?",
                        path,
                        line=line + piece.count(b"\n", 0, offset),
                    )
            else:
                rec.add(piece, line)
            line += piece.count(b"\n")
            at_line_start = piece.endswith(b"\n")
            pos = end
    if rec is not None:
        yield rec.finish()
    if n_records == 0:
        raise LoadError("no FASTA records found", path)


def _start_record(
    raw_header: bytes,
    path: str,
    index: int,
    line: int,
    namespace: str | None,
    reserve: Reserve = _no_reserve,
    worker: DigestWorker | None = None,
) -> _Builder:
    header = raw_header.rstrip(b"\r").decode("utf-8", errors="replace")
    if not header.strip():
        raise LoadError(
            "header has no name ('>' must be followed by a name)", path, index, line=line
        )
    try:
        # no namespace: a load that records collections only; names are not aliases then
        aliases = parse_defline(header, namespace) if namespace is not None else []
        validate_aliases(aliases)
    except ValueError as exc:
        raise LoadError(str(exc), path, index, _short(header), line) from None
    return _Builder(path, index, line, header, aliases, reserve, RecordDigest(worker))
