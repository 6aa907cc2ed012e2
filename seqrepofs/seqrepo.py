"""The SeqRepo facade: identifier resolution, fetching, slicing proxies, storing.

API-compatible with biocommons.seqrepo's SeqRepo so existing callers (hgvs, ga4gh.vrs data
proxies) can switch by changing the import. Differences are deliberate fixes: close() commits
sequences and aliases together (never sequences without aliases), negative indexes on a proxy
follow Python's rules, and an ambiguous alias error lists the namespaces involved.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import config
from .digests import Digests, digests, digests_of_pieces, normalise, sam_m5_of_pieces
from .errors import (
    AliasNotFoundError,
    AmbiguousAliasError,
    CorruptFileError,
    NotASeqRepoError,
    ReadOnlyError,
)
from .store.aliasdb import AliasDB
from .store.fastadir import FastaDir
from .store.instances import is_frozen
from .store.lru import LRU
from .store.schema import restore_indexes
from .store.translate import api_namespaces, db_to_api

if TYPE_CHECKING:
    from .lazy.snapshot import RemoteSnapshot

log = logging.getLogger(__name__)

ct_n_seqs = 20000
ct_n_aliases = 60000
ct_n_residues = 1e9
nsa_sep = ":"
_WHITESPACE = b" \t\n\r\v\f"
_URI_RE = re.compile(r"([^:]+):(.+)")


def is_snapshot_url(root: str) -> bool:
    """A published snapshot's URL (read in place) rather than a directory."""
    return "://" in root and urlsplit(root).scheme.lower() in ("http", "https", "s3", "file")


def split_identifier(identifier: str) -> tuple[str | None, str]:
    """`ns:alias` -> (ns, alias); a bare alias -> (None, alias). More colons: the first splits."""
    ns, sep, alias = identifier.partition(nsa_sep)
    return (ns, alias) if sep else (None, identifier)


_MD5_HEX = re.compile(r"[0-9a-fA-F]{32}")
SEQ_SCHEMA = "seqdb"  # the sequence database, attached to read-only alias connections
FOLLOW_AFTER = 2  # joined lookups in a row in the file read last before _locate follows it


class SeqRepo:
    """A SeqRepo instance directory (`<root>/<instance>`), read-only unless `writeable`."""

    def __init__(
        self,
        root_dir: str | os.PathLike[str],
        writeable: bool = False,
        upcase: bool = True,
        translate_ncbi_namespace: Any = None,
        check_same_thread: bool = False,
        use_sequenceproxy: bool = True,
        fd_cache_size: int | None = None,
        *,
        block_cache_bytes: int = config.DEFAULT_BLOCK_CACHE_BYTES,
        compress_threads: int | None = None,
        cache_dir: str | None = None,
        cache_size: int | None = None,
        http_timeout: float | None = None,
    ) -> None:
        """`root_dir`: an instance directory, or the URL of a published snapshot
        (`https://…/INSTANCE`, `…/latest`, `s3://…`, `file://…`), read in place through the
        on-disk cache `cache_dir` bounded by `cache_size` bytes, no read waiting on the
        server longer than `http_timeout` seconds (defaults: $SEQREPOFS_CACHE_DIR,
        $SEQREPOFS_CACHE_SIZE, $SEQREPOFS_HTTP_TIMEOUT, else docs/lazy.md's)."""
        self._root_dir = os.fspath(root_dir)
        self._writeable = writeable
        self._upcase = upcase
        self.use_sequenceproxy = use_sequenceproxy
        if translate_ncbi_namespace is not None:
            log.warning("translate_ncbi_namespace is obsolete; namespaces are always translated")
        self.remote = is_snapshot_url(self._root_dir)
        self.snapshot: RemoteSnapshot | None = None
        if self.remote:
            if writeable:
                raise ReadOnlyError(f"{self._root_dir}: a published snapshot is read-only")
            self._open_remote(cache_dir, cache_size, http_timeout, fd_cache_size, block_cache_bytes)
        elif writeable:
            os.makedirs(os.path.join(self._root_dir, "sequences"), exist_ok=True)
        elif not os.path.isdir(self._root_dir):
            raise NotASeqRepoError(f"Unable to open SeqRepo directory {self._root_dir}")
        elif not os.path.isdir(os.path.join(self._root_dir, "sequences")):
            raise NotASeqRepoError(
                f"{self._root_dir} is not a SeqRepo instance (no sequences/ directory)"
            )
        if not self.remote:
            self.aliases = AliasDB(os.path.join(self._root_dir, "aliases.sqlite3"), writeable)
            try:
                self.sequences = FastaDir(
                    os.path.join(self._root_dir, "sequences"),
                    writeable,
                    fd_cache_size=fd_cache_size,
                    block_cache_bytes=block_cache_bytes,
                    attach_to=self.aliases.database if writeable else None,
                    compress_threads=compress_threads,
                )
            except BaseException:
                self.aliases.close()
                raise
            if writeable:
                for name in self.restore_indexes():
                    log.info("%s: rebuilt index %s (a first load was interrupted)", self, name)
                self.aliases.database.commit()
        maxsize = config.lru_cache_maxsize()
        self._seqid_cache = LRU(maxsize)
        # Read-only: one query finds an alias's sequence and its file (the sequence database is
        # attached to the alias connections); a writer has uncommitted rows, so it asks twice.
        self._locations = LRU(maxsize)
        self._joined = False
        self._same_file_run = 0  # see _locate
        if not writeable:
            try:
                self.aliases.database.attach_database(self.sequences.database, SEQ_SCHEMA)
                self._joined = True
            except BaseException:
                self.sequences.close()
                self.aliases.close()
                raise
        self._pending_aliases = 0
        self._closed = False
        self.frozen = self.remote or (not writeable and is_frozen(self._root_dir))

    def restore_indexes(self) -> list[str]:
        """Build the indexes a first load dropped (loader.load builds them in its last commit;
        killed or failed before it, the next writable open does); returns their names. Not
        committed: the caller commits."""
        conn = self.aliases.database.writer
        return [
            name
            for db in (self.aliases.database, self.sequences.database)
            for name in restore_indexes(conn, db.kind, db.schema)
        ]

    def _open_remote(
        self,
        cache_dir: str | None,
        cache_size: int | None,
        http_timeout: float | None,
        fd_cache_size: int | None,
        block_cache_bytes: int,
    ) -> None:
        """Open a published snapshot in place: nothing is fetched but its manifest (none if
        it was opened before); databases and sequence files are read through the cache."""
        from .lazy.snapshot import SnapshotFiles, open_snapshot
        from .store.database import Database

        snap = open_snapshot(
            self._root_dir, cache_dir=cache_dir, cache_size=cache_size, http_timeout=http_timeout
        )
        self.snapshot = snap
        self._root_dir = snap.url
        aliases_db = Database("", "aliasdb", False, remote=snap.file("aliases.sqlite3"))
        self.aliases = AliasDB(f"{snap.url}/aliases.sqlite3", database=aliases_db)
        try:
            seq_db = Database("", "fastadir", False, remote=snap.file("sequences/db.sqlite3"))
            self.sequences = FastaDir(
                f"{snap.url}/sequences",
                fd_cache_size=fd_cache_size,
                block_cache_bytes=block_cache_bytes,
                database=seq_db,
                files=SnapshotFiles(snap),
            )
        except BaseException:
            self.aliases.close()
            raise

    # ---- identity and lifecycle ----------------------------------------------------------
    def __str__(self) -> str:
        return f"SeqRepo(root_dir={self._root_dir}, writeable={self._writeable})"

    __repr__ = __str__

    @property
    def root_dir(self) -> str:
        return self._root_dir

    @property
    def writeable(self) -> bool:
        return self._writeable

    def __enter__(self) -> SeqRepo:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is not None and self._writeable:
            log.warning("leaving a writable SeqRepo after an error: committing stored data")
        self.close()

    def close(self) -> None:
        """Commit sequences and aliases together (writable), then close; safe to repeat."""
        if self._closed:
            return
        self._closed = True
        if self._writeable:
            self.commit()
        self.sequences.close()
        self.aliases.close()

    def __del__(self) -> None:
        # Only a writer needs closing (it commits); a reader's parts close themselves when
        # collected, so `SeqRepo(d).sequences.stats()` keeps working on a temporary.
        try:
            if getattr(self, "_writeable", False) and not getattr(self, "_closed", True):
                self.close()
        except Exception:  # noqa: BLE001 - never raise from a finaliser
            pass

    # ---- resolution ----------------------------------------------------------------------
    def _get_unique_seqid(self, alias: str, namespace: str | None) -> str:
        key = (alias, namespace)
        hit = self._seqid_cache.get(key)
        if hit is not None:
            return hit
        rows = self.aliases.seq_ids_for(alias, namespace)
        seq_ids = sorted({r[0] for r in rows})
        if not seq_ids and namespace is None and alias.startswith("SQ.") and len(alias) == 35:
            rows = self.aliases.seq_ids_for(alias, "ga4gh")
            seq_ids = sorted({r[0] for r in rows})
        if not seq_ids:
            raise AliasNotFoundError(f"Alias {alias} (namespace: {namespace})")
        if len(seq_ids) > 1:
            raise AmbiguousAliasError(alias, namespace, sorted({r[1] for r in rows}))
        self._seqid_cache.put(key, seq_ids[0])
        return seq_ids[0]

    def resolve(self, identifier: str) -> str:
        """The seq_id an identifier (`ns:alias` or an unambiguous bare alias) names."""
        namespace, alias = split_identifier(identifier)
        return self._get_unique_seqid(alias, namespace)

    def __contains__(self, nsa: object) -> bool:
        if not isinstance(nsa, str):
            return False
        namespace, alias = split_identifier(nsa)
        return bool(self.aliases.seq_ids_for(alias, namespace))

    def __getitem__(self, nsa: str) -> SequenceProxy | str:
        namespace, alias = split_identifier(nsa)
        if self.use_sequenceproxy:
            return SequenceProxy(self, namespace, alias)
        return self.fetch(alias=alias, namespace=namespace)

    def __iter__(self) -> Iterator[tuple[dict[str, Any], Iterator[dict[str, Any]]]]:
        for rec in self.sequences:
            yield rec, self.aliases.find_aliases(seq_id=rec["seq_id"])

    def fetch(
        self,
        alias: str,
        start: int | None = None,
        end: int | None = None,
        namespace: str | None = None,
    ) -> str:
        if self._joined:
            loc = self._locations.get((alias, namespace)) or self._locate(alias, namespace)
            return self.sequences.fetch_located(loc[0], loc[1], loc[2], start, end, True)
        seq_id = self._get_unique_seqid(alias=alias, namespace=namespace)
        return self.sequences.fetch(seq_id, start, end)

    def _locate(self, alias: str, namespace: str | None) -> tuple[str, int, str]:
        """(seq_id, length, relpath) of an alias not in the cache.

        Usually one query joining both databases. But while lookups keep landing in the file
        read last (a transcript set read back in load order), the alias alone is looked up (and
        read ahead, see AliasDB.seq_ids_in_order) and that file's .fai, already in memory,
        gives length and file: about a third less work.
        Answers pick the way: after FOLLOW_AFTER joined lookups in a row land in the file read
        last, lookups follow that file until one misses it. So a random reader rarely pays the
        extra query a miss costs (it needs the seqinfo row after all).
        """
        follow = self._same_file_run >= FOLLOW_AFTER
        loc = self._locate_in_recent_file(alias, namespace) if follow else None
        if loc is None:
            try:
                rows = self.aliases.locations_for(alias, namespace, SEQ_SCHEMA)
            except (CorruptFileError, sqlite3.DatabaseError):
                rows = []  # the general path names the damaged database, not the joined one
            if len(rows) == 1:
                seq_id, _ns, length, relpath = rows[0]
            else:  # none, several or ambiguous: the general path says which (or finds SQ.…)
                seq_id = self._get_unique_seqid(alias, namespace)
                info = self.sequences.fetch_seqinfo(seq_id)
                length, relpath = info["len"], info["relpath"]
            same = relpath == self.sequences.recent_relpath
            self._same_file_run = self._same_file_run + 1 if same else 0
            loc = (seq_id, length, relpath)
        self._locations.put((alias, namespace), loc)
        return loc

    def _locate_in_recent_file(
        self, alias: str, namespace: str | None
    ) -> tuple[str, int, str] | None:
        rows = self.aliases.seq_ids_in_order(alias, namespace)
        if len(rows) != 1:
            self._same_file_run = 0
            return None  # none or several: the joined path says which
        seq_id = rows[0][0]
        hit = self.sequences.recent_location(seq_id)
        if hit is not None:
            return (seq_id, hit[0], hit[1])
        self._same_file_run = 0
        info = self.sequences.fetch_seqinfo(seq_id)
        return (seq_id, info["len"], info["relpath"])

    # ---- reads by seq_id (what every layer needs) ------------------------------------------
    def sequence_length(self, seq_id: str) -> int:
        """Residues in a stored sequence (from its seqinfo row; KeyError if not stored)."""
        return int(self.sequences.fetch_seqinfo(seq_id)["len"])

    def iter_bytes(
        self, seq_id: str, start: int = 0, end: int | None = None, window: int = 1 << 20
    ) -> Iterator[bytes]:
        """Residues [start, end) (clipped to the sequence) in pieces of at most `window`
        bytes, so a chromosome is never held whole."""
        if window < 1:
            raise ValueError(f"window must be at least 1, not {window}")
        length = self.sequence_length(seq_id)
        stop = length if end is None else min(end, length)
        for pos in range(start, stop, window):
            yield self.sequences.fetch_bytes(seq_id, pos, min(pos + window, stop))

    def iter_sequence(
        self, seq_id: str, start: int = 0, end: int | None = None, window: int = 1 << 20
    ) -> Iterator[str]:
        """iter_bytes as text."""
        for piece in self.iter_bytes(seq_id, start, end, window):
            yield piece.decode("ascii")

    def sam_m5(self, seq_id: str) -> str:
        """The SAM @SQ M5 of a stored sequence: lowercase hex MD5 of it upper-cased, with bytes
        outside '!'..'~' removed.

        The stored MD5 alias is that digest unless the sequence holds `*` (digest aliases are
        taken without it, SAM keeps it), so it is used when well-formed and the sequence's
        alphabet has no `*`; otherwise the residues are read and hashed in windows.
        """
        if "*" not in (self.sequences.fetch_seqinfo(seq_id)["alpha"] or "*"):
            for ns, alias in self.aliases.aliases_of(seq_id):
                if ns == "MD5" and _MD5_HEX.fullmatch(alias):
                    return alias.lower()
        return sam_m5_of_pieces(self.iter_bytes(seq_id, window=8 << 20))

    def sam_m5_many(self, seq_ids: Sequence[str]) -> list[str]:
        """`sam_m5` of many sequences with a few queries for all of them (a `.dict` of a
        collection of millions of records is written a page at a time); a sequence whose
        stored MD5 alias cannot be used is hashed, as `sam_m5` does."""
        alphabets = self.sequences.alphabets(seq_ids)
        md5s = self.aliases.current_aliases_in("MD5", seq_ids)
        out = []
        for seq_id in seq_ids:
            usable = [a for a in md5s.get(seq_id, ()) if _MD5_HEX.fullmatch(a)]
            alpha = alphabets.get(seq_id)
            if usable and alpha is not None and "*" not in alpha:
                out.append(usable[0].lower())
            else:
                out.append(self.sam_m5(seq_id))
        return out

    def fetch_uri(self, uri: str, start: int | None = None, end: int | None = None) -> str:
        m = _URI_RE.match(uri)
        if m is None:
            raise ValueError(f"Unable to parse {uri} as URI.")
        return self.fetch(m.group(2), start, end, namespace=m.group(1))

    def translate_alias(
        self,
        alias: str,
        namespace: str | None = None,
        target_namespaces: Iterable[str] | None = None,
        translate_ncbi_namespace: Any = None,
    ) -> list[str]:
        seq_id = self._get_unique_seqid(alias=alias, namespace=namespace)
        records = self.aliases.find_aliases(seq_id=seq_id)
        targets = None if target_namespaces is None else set(target_namespaces)
        return [
            f"{r['namespace']}{nsa_sep}{r['alias']}"
            for r in records
            if targets is None or r["namespace"] in targets
        ]

    def translate_identifier(
        self,
        identifier: str,
        target_namespaces: Iterable[str] | None = None,
        translate_ncbi_namespace: Any = None,
    ) -> list[str]:
        namespace, alias = split_identifier(identifier)
        return self.translate_alias(alias, namespace, target_namespaces)

    def namespaces(self) -> list[str]:
        """Stored namespaces with current aliases plus their API names (refseq, ga4gh, …)."""
        return api_namespaces(self.aliases.namespaces())

    def aliases_of(self, seq_id: str) -> list[str]:
        """`ns:alias` strings (stored and API forms) of one sequence, sorted by namespace."""
        out: list[tuple[str, str]] = []
        for ns, al in self.aliases.aliases_of(seq_id):
            out.append((ns, al))
            out.extend(db_to_api(ns, al))
        return [f"{ns}{nsa_sep}{al}" for ns, al in sorted(out)]

    # ---- writing -------------------------------------------------------------------------
    def store(self, seq: str | bytes, nsaliases: Iterable[dict[str, str]]) -> tuple[int, int]:
        """Store a sequence (if new) and its aliases; returns (n_seqs_added, n_aliases_added)."""
        if not self._writeable:
            raise ReadOnlyError(f"{self._root_dir}: SeqRepo opened read-only; cannot store")
        raw = seq.encode("latin-1", errors="replace") if isinstance(seq, str) else bytes(seq)
        stored = raw.translate(None, _WHITESPACE)
        if self._upcase:
            stored = stored.upper()
        norm = normalise(stored)
        return self.store_normalised(stored, digests(norm), nsaliases)

    def store_normalised(
        self, stored: bytes, dg: Digests, nsaliases: Iterable[dict[str, str]]
    ) -> tuple[int, int]:
        """Store text whose digests the caller already computed (the loader's fast path)."""
        if not self._writeable:
            raise ReadOnlyError(f"{self._root_dir}: SeqRepo opened read-only; cannot store")
        seq_id = dg.seq_id
        n_seqs_added = 0
        if len(stored) > ct_n_residues and self.sequences.pending_sequences:
            self.commit()
        if seq_id not in self.sequences:
            self.sequences.store(seq_id, stored)
            for ns, alias in dg.digest_aliases():
                self.aliases.store_alias(seq_id, ns, alias)
                self._pending_aliases += 1
            n_seqs_added = 1
        existing = {(r["namespace"], r["alias"]) for r in self.aliases.find_aliases(seq_id=seq_id)}
        n_aliases_added = 0
        for nsa in nsaliases:
            key = (nsa["namespace"], nsa["alias"])
            if key in existing:
                continue
            self.aliases.store_alias(seq_id, key[0], key[1])
            existing.add(key)
            n_aliases_added += 1
        self._pending_aliases += n_aliases_added
        if n_aliases_added:
            self._forget_cached_aliases()
        if (
            self.sequences.pending_sequences > ct_n_seqs
            or self._pending_aliases > ct_n_aliases
            or self.sequences.pending_residues > ct_n_residues
        ):
            self.commit()
        return n_seqs_added, n_aliases_added

    def update_digests(self, commit_every: int = 10000) -> int:
        """Recompute and store the digest aliases (VMC, SHA1, MD5, SEGUID) of every stored
        sequence, each read in windows; idempotent. Returns the number of sequences."""
        if not self._writeable:
            raise ReadOnlyError(f"{self._root_dir}: SeqRepo opened read-only; cannot store")
        rows = self.sequences.seqinfo_rows()
        for n, (seq_id, _length, _relpath) in enumerate(rows, 1):
            dg = digests_of_pieces(self.iter_bytes(seq_id, window=8 << 20))
            for ns, alias in dg.digest_aliases():
                self.aliases.store_alias(seq_id, ns, alias)
            if n % commit_every == 0:
                self.commit()
        self.commit()
        self._forget_cached_aliases()
        return len(rows)

    def _forget_cached_aliases(self) -> None:
        self._seqid_cache.clear()

    def commit(self) -> None:
        """Make stored sequences and aliases durable in one transaction."""
        if not self._writeable:
            return
        self.sequences.flush_file()
        self.aliases.commit()  # one connection: commits seqinfo rows and aliases together
        self._pending_aliases = 0

    def rollback(self) -> None:
        """Drop everything stored since the last commit (the open file is deleted)."""
        if not self._writeable:
            return
        self.sequences.abort()  # rolls back the shared connection: seqinfo rows and aliases
        self._pending_aliases = 0
        self._forget_cached_aliases()


class SequenceProxy:
    """A lazy sequence: `len()` without I/O, slices fetch only the residues asked for."""

    def __init__(self, sr: SeqRepo, namespace: str | None, alias: str) -> None:
        self.sr = sr
        self.namespace = namespace
        self.alias = alias
        self.seq_id = sr._get_unique_seqid(alias=alias, namespace=namespace)
        self._len = sr.sequence_length(self.seq_id)

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, key: int | slice) -> str:
        if isinstance(key, slice):
            if key.step not in (None, 1):
                raise ValueError("Only contiguous sequence slices are supported")
            start, stop, _ = key.indices(self._len)
            if start >= stop:
                return ""
            return self.sr.sequences.fetch(self.seq_id, start, stop)
        index = int(key)
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError(f"index {key} out of range for a sequence of length {self._len}")
        return self.sr.sequences.fetch(self.seq_id, index, index + 1)

    def __str__(self) -> str:
        return self.sr.sequences.fetch(self.seq_id)

    def __iter__(self) -> Iterator[str]:
        return iter(str(self))

    def __contains__(self, item: object) -> bool:
        return isinstance(item, str) and item in str(self)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SequenceProxy):
            return self.seq_id == other.seq_id and str(self) == str(other)
        return str(self) == other

    def __hash__(self) -> int:
        return hash(str(self))

    def __bool__(self) -> bool:
        return self._len > 0

    def __reversed__(self) -> str:  # the reference returns the reversed string
        return str(self)[::-1]

    def __repr__(self) -> str:
        return f"SequenceProxy(seq_id={self.seq_id}, len={self._len})"

    @property
    def aliases(self) -> list[str]:
        return self.sr.translate_alias(self.seq_id, namespace="sha512t24u")
