"""The store side of the REST service: settings, identifier resolution and chunked reads.

One SeqRepo per process serves every request: it is thread-safe for reading (per-thread SQLite
connections, pread-based BGZF reads, a shared block cache), so the request threads share its
caches instead of each opening files as the reference's per-process globals did.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from bioutils.accessions import infer_namespaces

from .. import SeqRepo
from ..digests import seq_id_from_trunc512, trunc512_hex
from ..errors import AliasNotFoundError, AmbiguousAliasError, NotASeqRepoError
from ..seqrepo import SEQ_SCHEMA, is_snapshot_url
from ..store.instances import is_instance
from ..store.lru import LRU
from ..store.nowait import WouldWait, waiting_allowed
from ..store.translate import db_to_api

log = logging.getLogger(__name__)

_HEX32 = re.compile(r"[0-9A-Fa-f]{32}")
_HEX48 = re.compile(r"[0-9A-Fa-f]{48}")
_HEX8 = re.compile(r"[0-9A-Fa-f]{8,}")
_SHA512T24U = re.compile(r"[A-Za-z0-9_-]{32}")
NAMESPACE_TTL = 300.0
RESOLVED_CACHE = 65536  # refget identifiers -> Resolved kept (~300 bytes each)


@dataclass(frozen=True)
class Settings:
    """Everything a worker process needs to build the app (passed to workers as JSON)."""

    instance_dir: str
    subsequence_limit: int | None = None
    max_age: int = 365 * 24 * 3600
    metadata_max_age: int = 3600
    chunk_residues: int = 1 << 20
    access_log: bool = True
    log_file: str | None = None
    gzip_level: int = 1
    reads: str = "auto"  # where handlers run: auto, loop or threads (rest/placement.py)
    inline_max_residues: int = 65536  # longer bodies are streamed from the thread pool


def resolve_source(src: str) -> str:
    """An instance directory, or the instance a root's `latest` points at (resolved now); a
    published snapshot's URL is opened (`…/latest` resolved now) and its instance URL given."""
    if is_snapshot_url(src):
        sr = SeqRepo(src)
        try:
            return sr.root_dir
        finally:
            sr.close()
    path = os.path.abspath(src)
    if is_instance(path):
        return path
    latest = os.path.join(path, "latest")
    if is_instance(latest):
        return os.path.realpath(latest)
    raise NotASeqRepoError(f"{src}: neither a SeqRepo instance nor a root with a 'latest' instance")


class NotFound(LookupError):
    """No sequence has this identifier."""


class Ambiguous(LookupError):
    """An unqualified alias names several sequences; `choices` are qualified forms of it."""

    def __init__(self, message: str, choices: list[str]) -> None:
        super().__init__(message)
        self.choices = choices


class Resolved(NamedTuple):
    """A tuple of a str and an int, so the garbage collector stops tracking it (a cache of
    tens of thousands of them is not walked by every full collection)."""

    seq_id: str
    length: int


class Backend:
    """Read access to one instance for request handlers (all methods block; call in threads)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sr = SeqRepo(settings.instance_dir)
        self.remote: bool = self.sr.remote
        self.frozen: bool = self.sr.frozen
        self._resolved = LRU(RESOLVED_CACHE)
        self._files_read: set[str] = set()  # sequence files read (so opened) at least once
        self._ns_lock = threading.Lock()
        self._ns_cache: tuple[float, list[str]] | None = None

    def close(self) -> None:
        self.sr.close()

    # ---- namespaces ----------------------------------------------------------------------
    def namespaces(self) -> list[str]:
        """Stored and API namespace names, cached: listing them scans the alias index."""
        now = time.monotonic()
        with self._ns_lock:
            if self._ns_cache is not None and now - self._ns_cache[0] < NAMESPACE_TTL:
                return self._ns_cache[1]
        names = self.sr.namespaces()
        with self._ns_lock:
            self._ns_cache = (now, names)
        return names

    # ---- refget identifiers --------------------------------------------------------------
    def resolve_refget(self, identifier: str) -> Resolved:
        """MD5 (bare or md5:), ga4gh:SQ./SQ., TRUNC512 (bare or trunc512:), or ns:alias/alias.

        Digest forms are recognised by shape (as the refget text says: 32 hex = MD5, 48 hex =
        TRUNC512, `SQ.` = ga4gh); a string that has the shape but is unknown is still tried as
        an ordinary alias, so no alias becomes unreachable. Answers are kept by identifier as
        given for a frozen instance (one dictionary hit instead of a query and the parsing).
        """
        hit = self._resolved.get(identifier)
        if hit is not None:
            return hit
        res = self._resolve_refget(identifier)
        if self.frozen:
            self._resolved.put(identifier, res)
        return res

    def _resolve_refget(self, identifier: str) -> Resolved:
        ns, sep, rest = identifier.partition(":")
        if sep:
            low = ns.lower()
            if low == "md5" and _HEX32.fullmatch(rest):
                return self._by_alias("MD5", rest.lower())
            if low == "ga4gh":
                return self._by_seq_id(rest[3:] if rest.startswith("SQ.") else "")
            if low == "trunc512" and _HEX48.fullmatch(rest):
                return self._by_seq_id(seq_id_from_trunc512(rest.lower()))
            if low == "sha512t24u":
                return self._by_seq_id(rest)
            return self._by_alias(ns, rest)
        try:
            if _HEX32.fullmatch(identifier):
                return self._by_alias("MD5", identifier.lower())
            if _HEX48.fullmatch(identifier):
                return self._by_seq_id(seq_id_from_trunc512(identifier.lower()))
            if identifier.startswith("SQ.") and _SHA512T24U.fullmatch(identifier[3:]):
                return self._by_seq_id(identifier[3:])
        except NotFound:
            pass
        return self._by_alias(None, identifier)

    def _by_seq_id(self, seq_id: str) -> Resolved:
        if not _SHA512T24U.fullmatch(seq_id):
            raise NotFound(f"no sequence with digest {seq_id!r}")
        try:
            return Resolved(seq_id, self.sr.sequence_length(seq_id))
        except KeyError:
            raise NotFound(f"no sequence with digest {seq_id!r}") from None

    def _by_alias(self, namespace: str | None, alias: str) -> Resolved:
        for ns in self._namespace_candidates(namespace):
            try:
                return self._resolve_alias(ns, alias)
            except AmbiguousAliasError as exc:
                raise Ambiguous(str(exc), [f"{n}:{alias}" for n in exc.namespaces]) from None
            except AliasNotFoundError:
                continue
        shown = alias if namespace is None else f"{namespace}:{alias}"
        raise NotFound(f"no sequence is known as {shown!r}")

    def _namespace_candidates(self, namespace: str | None) -> Iterator[str | None]:
        """The namespace as given, then stored ones equal to it but for case (INSDC, insdc)."""
        yield namespace
        if namespace is not None:
            for candidate in self.namespaces():
                if candidate != namespace and candidate.lower() == namespace.lower():
                    yield candidate

    def _resolve_alias(self, namespace: str | None, alias: str) -> Resolved:
        """One query joining the alias and sequence databases finds both the sequence and
        its length (SeqRepo.resolve then sequence_length took two); anything but exactly one
        row (unknown, ambiguous, an `SQ.` bare alias) takes SeqRepo's general path, which
        says which."""
        ident = alias if namespace is None else f"{namespace}:{alias}"
        if not alias:
            raise AliasNotFoundError(ident)
        rows = self.sr.aliases.locations_for(alias, namespace, SEQ_SCHEMA)
        if len(rows) == 1:
            return Resolved(rows[0][0], rows[0][2])
        seq_id = self.sr.resolve(ident)
        return Resolved(seq_id, self.sr.sequence_length(seq_id))

    # ---- metadata ------------------------------------------------------------------------
    def refget_metadata(self, res: Resolved) -> dict[str, Any]:
        """The fields both refget versions report (each version picks and names its own)."""
        stored = self.sr.aliases.aliases_of(res.seq_id)  # one query; the API forms from it
        md5 = next((al for ns, al in stored if ns == "MD5"), None)
        pairs = list(stored)
        for ns, al in stored:
            pairs.extend(db_to_api(ns, al))
        pairs.sort()
        aliases = [{"alias": al, "naming_authority": ns} for ns, al in pairs]
        return {
            "md5": md5,
            "ga4gh": f"ga4gh:SQ.{res.seq_id}",
            "trunc512": trunc512_hex(res.seq_id),
            "length": res.length,
            "aliases": aliases,
        }

    # ---- the seqrepo REST API (reference-compatible lookups) -----------------------------
    def seqrepo_api_seq_ids(self, query: str) -> list[str]:
        """seq_ids for a query, guessed exactly as seqrepo-rest-service guesses.

        `ns:alias` is used verbatim; otherwise namespaces are inferred from the accession's
        syntax; otherwise a hex string of 8+ characters is an MD5 or TRUNC512 prefix; otherwise
        an alias in any namespace. The first guess that matches anything wins. Collecting stops
        at two distinct seq_ids, which is all the caller needs to tell 0, 1 and "ambiguous".
        """
        for ns, alias in _nsa_options(query):
            seq_ids: list[str] = []
            rows = self.sr.aliases.find_aliases(namespace=ns, alias=alias)
            try:
                for row in rows:
                    if row["seq_id"] not in seq_ids:
                        seq_ids.append(row["seq_id"])
                        if len(seq_ids) > 1:
                            break
            finally:
                rows.close()  # type: ignore[attr-defined]
            if seq_ids:
                return seq_ids
        return []

    def seqrepo_api_metadata(self, seq_id: str) -> dict[str, Any]:
        """{added, aliases, alphabet, length} as seqrepo-rest-service (connexion) renders it."""
        info = self.sr.sequences.fetch_seqinfo(seq_id)
        rows = self.sr.aliases.find_aliases(seq_id=seq_id)
        aliases = [f"{r['namespace']}:{r['alias']}" for r in rows]
        return {
            "added": isoformat(info.get("added")),
            "aliases": aliases,
            "alphabet": info.get("alpha"),
            "length": self.sr.sequence_length(seq_id),
        }

    def seqinfo_length(self, seq_id: str) -> int:
        return self.sr.sequence_length(seq_id)

    # ---- reading -------------------------------------------------------------------------
    def fetch(self, seq_id: str, start: int, end: int) -> bytes:
        """Residues [start, end). On the event loop (inside `no_waiting()`) the first read of
        a sequence file raises WouldWait, so that a thread opens it: opening parses the file's
        .fai (tens of ms for 12,000 records), which would hold up every other request."""
        info = self.sr.sequences.fetch_seqinfo(seq_id)
        relpath = info["relpath"]
        if relpath not in self._files_read and not waiting_allowed():
            raise WouldWait(relpath)
        data = self.sr.sequences.fetch_located(seq_id, info["len"], relpath, start, end, False)
        self._files_read.add(relpath)
        return data  # type: ignore[no-any-return]

    def iter_chunks(self, seq_id: str, start: int, end: int) -> Iterator[bytes]:
        """Residues [start, end) in bounded chunks, so a chromosome never sits in memory."""
        return self.sr.iter_bytes(seq_id, start, end, self.settings.chunk_residues)

    def example_ids(self) -> tuple[str, str] | None:
        """(md5, ga4gh id) of one stored sequence, for the OpenAPI examples; cheap index read."""
        rows = self.sr.aliases.aliases_page("MD5", None, 1)
        if not rows:
            return None
        md5, seq_id = rows[0]
        return md5, f"ga4gh:SQ.{seq_id}"


def isoformat(value: object) -> object:
    """A timestamp as connexion's JSON encoder writes it: naive datetimes are UTC ('Z')."""
    if isinstance(value, dt.datetime):
        return value.isoformat("T") if value.tzinfo else value.isoformat("T") + "Z"
    return value


def _nsa_options(query: str) -> list[tuple[str | None, str]]:
    if ":" in query:
        ns, alias = query.split(":", 1)
        return [(ns, alias)]
    namespaces = infer_namespaces(query)
    if namespaces:
        return [(ns, query) for ns in namespaces]
    if _HEX8.fullmatch(query):
        options: list[tuple[str | None, str]] = [("MD5", query + "%")]
        if len(query) % 2 == 0:  # the reference fails (500) on odd-length hex here
            b64 = _hex_to_base64url(query)
            options.append(("VMC", "GS_" + b64 + "%"))
        return options
    return [(None, query)]


def _hex_to_base64url(hexstr: str) -> str:
    try:
        return base64.urlsafe_b64encode(binascii.unhexlify(hexstr)).decode("ascii")
    except binascii.Error:  # pragma: no cover - guarded by the even-length check
        return ""
