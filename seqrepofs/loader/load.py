"""Load FASTA files into a writable SeqRepo instance: fast, non-redundant, crash-safe.

Commit policy (crash safety): data becomes durable in whole batches. A batch is committed when
it reaches `batch_size` new sequences (DEFAULT_BATCH), ALIAS_BATCH alias rows or 1e9 residues,
and at the end. Each commit finishes the batch's BGZF file (written as
`*.partial`, fsynced, indexed, renamed) while the batch's alias rows are inserted, then
commits the seqinfo rows and aliases in one SQLite transaction covering both databases; no
row is committed before its file is in place. A kill at any moment leaves
the instance as it was after the last commit, plus at most one finished file that no row
refers to; the next load removes such files. Re-running the same load skips what is stored.
A first load (both databases empty) builds three random-key indexes at its end; killed
before, it leaves them to the next writable open, which builds them.

Bad input: every record is validated completely before it is stored. A bad record aborts the
load (as the reference does) and rolls back the batch in progress, so nothing of it is stored;
for an input smaller than one batch the instance is left exactly as it was. Batches committed
before the bad record (only in inputs larger than a batch) stay: they are whole and valid, and
re-running the load after fixing the input completes it without duplicates.
"""

from __future__ import annotations

import gc
import logging
import os
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from .. import seqrepo as seqrepo_mod
from ..errors import NotASeqRepoError
from ..seqrepo import SeqRepo
from ..store.collections import CollectionInfo
from ..store.instances import check_writable, is_instance
from ..store.schema import drop_deferred_indexes
from .aliases import AliasWriter, SeqIdLookup
from .collection import CollectionPlan, Recorder
from .deflines import check_namespace
from .fasta import CHUNK_SIZE, FastaRecord, read_records
from .hashing import DigestWorker
from .sources import check_openable, open_source, prefetch

log = logging.getLogger(__name__)

WRITER_CACHE_KIB = 256 * 1024
INDEX_BUILD_CACHE_KIB = 64 * 1024
DEFAULT_BUDGET = 256 << 20  # at most this many bytes of parsed records held ahead of storing
LOOKAHEAD_RECORDS = 256  # records stored together: their aliases are looked up in bulk
LOOKAHEAD_BYTES = 32 << 20
# Alias rows per commit at most. The reference commits every 60,000; here a batch of 20,000
# sequences (100,000 rows with their digests) is one commit: each commit writes nearly every
# leaf page of the three random-key alias indexes (to the journal, then the database), so the
# number of commits times the database's size is the part of a load that grows faster than
# the data. 300 k sequences: 58 s -> 50 s CPU (system time 11.3 -> 7.4 s), RSS +30 MB.
ALIAS_BATCH = 150_000
# New sequences per commit by default: the five alias rows of each fill ALIAS_BATCH. The
# reference commits every 20,000 (seqrepo.ct_n_seqs); 30,000 small sequences a commit cut a
# 300 k load by 15% (fewer commits, each rewriting most leaves of the random-key indexes),
# and larger batches gained nothing more while the loader's memory grew (see
# docs/performance.md, "Loader and the final targets (session 13)").
DEFAULT_BATCH = ALIAS_BATCH // 5


@dataclass
class LoadStats:
    """Counts of one load; `residues_seen` drives the progress rate."""

    files: int = 0
    seqs_seen: int = 0
    seqs_added: int = 0
    aliases_added: int = 0
    residues_seen: int = 0
    residues_added: int = 0
    commits: int = 0
    repointed: list[tuple[str, str, str, str]] = field(default_factory=list)
    orphans_removed: int = 0
    collections: list[CollectionInfo] = field(default_factory=list)
    seconds: float = 0.0


Progress = Callable[[FastaRecord, LoadStats], None]


def load(
    instance_dir: str,
    paths: Sequence[str],
    namespace: str | None,
    *,
    progress: Progress | None = None,
    batch_size: int = DEFAULT_BATCH,
    budget_bytes: int = DEFAULT_BUDGET,
    collections: CollectionPlan | None = None,
) -> LoadStats:
    """Load FASTA `paths` (`-` = stdin) into the instance; returns what was done.

    `collections` (see loader.collection.plan) records the files as sequence collections;
    then `namespace` may be None (no name aliases, the names live in the collections).
    """
    if namespace is not None or collections is None:
        check_namespace(namespace)
    if not paths:
        raise ValueError("no FASTA files given")
    if not is_instance(instance_dir):
        raise NotASeqRepoError(
            f"{instance_dir}: no such SeqRepo instance; create it with `seqrepofs init`"
        )
    check_writable(instance_dir)
    if batch_size < 1:
        raise ValueError("batch size must be at least 1")
    for path in paths:  # a missing or unreadable file is reported before the writer lock
        check_openable(path)
    loader = _Loader(instance_dir, namespace, progress, batch_size)
    loader.collections = collections
    return loader.run(paths, budget_bytes)


class _Loader:
    """Parses on the main thread, ahead of storing.

    Why one thread: parsing and SQLite both need the GIL, and a second GIL-bound thread makes
    every SQLite call wait for the GIL (a convoy); the GIL-free work (file reading and
    decompression, hashing large chunks, BGZF compression) runs on helper threads. Records are
    stored in groups (up to 256 records or 32 MiB, the newest kept back): the group's aliases
    are looked up in a few queries, and the hashing thread works on the kept-back record while
    the group is wrapped and compressed. The look-ahead is stored early if it would pass the
    memory budget, so a chromosome is held once.
    """

    def __init__(
        self, instance_dir: str, namespace: str | None, progress: Progress | None, batch_size: int
    ) -> None:
        self.instance_dir = instance_dir
        self.namespace = namespace
        self.progress = progress
        self.batch_size = batch_size
        self.stats = LoadStats()
        self._pending: deque[FastaRecord] = deque()
        self._pending_bytes = 0
        self._budget = DEFAULT_BUDGET
        self._sr: SeqRepo | None = None
        self._writer: AliasWriter | None = None
        self._lookup: SeqIdLookup | None = None
        self._committed_ids: set[str] | None = None  # of the group being stored
        # the batch being committed on the committer thread, and the seq_ids it stores
        self._committer: ThreadPoolExecutor | None = None
        self._finisher: ThreadPoolExecutor | None = None
        self._inflight: Future[None] | None = None
        self._inflight_ids: frozenset[str] = frozenset()
        self._inflight_why = ""
        self.collections: CollectionPlan | None = None
        self._recorder: Recorder | None = None
        # a first load (both databases empty) builds its random-key indexes at its end. Why:
        # kept up row by row, the alias table's seq_id and alias indexes and seqinfo's second
        # seq_id index cost most of a large load, more per row as they grow (1 M sequences:
        # alias rows 134 s with them, 33 s inserted bare and indexed after). The loader's own
        # look-ups need only the indexes kept (schema.DEFERRED_INDEXES).
        self._defer_indexes = False
        self._indexes_dropped = False

    def run(self, paths: Sequence[str], budget_bytes: int) -> LoadStats:
        started = time.monotonic()
        self._budget = budget_bytes
        dirs_before = _directories(os.path.join(self.instance_dir, "sequences"))
        sr = self._sr = SeqRepo(self.instance_dir, writeable=True)
        worker = DigestWorker()
        ok = False
        # no cyclic garbage collection during the load: the batch's rows (hundreds of
        # thousands of tuples) made each full collection walk them all, ~8% of a load's CPU;
        # the loader's objects form no cycles that need it
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            _tune_writer(sr)
            self._committer = ThreadPoolExecutor(1, thread_name_prefix="commit")
            self._finisher = ThreadPoolExecutor(1, thread_name_prefix="finish")
            self._writer = AliasWriter(sr, instance_dir=self.instance_dir)
            self._lookup = SeqIdLookup(self.instance_dir)
            self._defer_indexes = self._writer.started_empty and self._lookup.started_empty
            self.stats.orphans_removed = remove_orphan_files(self.instance_dir)
            if self.collections is not None:
                self._recorder = Recorder(self.instance_dir, self.collections)
            for path in paths:
                source = open_source(path)
                try:
                    chunks = prefetch(source.stream, CHUNK_SIZE)
                    for rec in read_records(
                        chunks, source.name, self.namespace, self._reserve, worker
                    ):
                        self._pending.append(rec)
                        self._pending_bytes += len(rec.seq)
                        if (
                            len(self._pending) >= LOOKAHEAD_RECORDS
                            or self._pending_bytes >= LOOKAHEAD_BYTES
                        ):
                            self._store_pending(keep_last=True)
                    self.stats.files += 1
                finally:
                    source.close()
            self._store_pending()
            if self._recorder is not None:
                self._recorder.finish()  # may refuse: before the last commit
            self._commit("end of input", last=True)
            self._wait_inflight()
            if self._recorder is not None:
                self._recorder.commit()
                self.stats.collections = list(self._recorder.recorded)
            ok = True
        finally:
            worker.close()
            self._close_committer()
            if self._lookup is not None:
                self._lookup.close()
            if self._writer is not None:
                self._writer.close()
            self._pending.clear()
            if not ok:
                if self._recorder is not None:
                    self._recorder.abort()
                if self._writer is not None:
                    self._writer.rolled_back()
                sr.rollback()
                if self._indexes_dropped:  # committed batches stay: index them
                    try:
                        sr.restore_indexes()
                        sr.aliases.commit()
                    except (sqlite3.Error, OSError) as exc:  # e.g. the same full disk
                        log.warning("indexes not rebuilt now (%s); the next load does it", exc)
                _remove_new_empty_dirs(os.path.join(self.instance_dir, "sequences"), dirs_before)
            sr.close()
            if gc_was_enabled:
                gc.enable()
            self.stats.seconds = time.monotonic() - started
        return self.stats

    def _reserve(self, n: int, own: int) -> None:
        """Called as a record grows: store the look-ahead first if memory would pass budget."""
        if self._pending and self._pending_bytes + own + n > self._budget:
            self._store_pending()

    def _store_pending(self, keep_last: bool = False) -> None:
        """Store the looked-ahead records (all but the newest if `keep_last`)."""
        assert self._writer is not None
        keep = self._pending.pop() if keep_last and self._pending else None
        self._writer.prefetch([nsa for rec in self._pending for nsa in rec.aliases])
        assert self._lookup is not None
        self._committed_ids = self._lookup.committed([rec.digests.seq_id for rec in self._pending])
        while self._pending:
            rec = self._pending.popleft()
            self._pending_bytes -= len(rec.seq)
            self._store(rec)
            if self.progress is not None:
                self.progress(rec, self.stats)
        if keep is not None:
            self._pending.append(keep)

    def _store(self, rec: FastaRecord) -> None:
        sr, writer, lookup = self._sr, self._writer, self._lookup
        assert sr is not None and writer is not None and lookup is not None
        st = self.stats
        dg = rec.digests
        seq_id = dg.seq_id
        st.seqs_seen += 1
        st.residues_seen += len(rec.seq)
        if self._recorder is not None:
            self._recorder.add(rec)
        seqs = sr.sequences
        if len(rec.seq) > seqrepo_mod.ct_n_residues and seqs.pending_sequences:
            self._commit("a sequence longer than a batch")
        before = seqs.pending_sequences
        # the group's bulk look-up spares a query per record; store() is a no-op for a
        # sequence stored earlier in this batch
        committed = self._committed_ids
        if seq_id in self._inflight_ids:
            pass  # stored by the batch being committed
        elif committed is None:
            seqs.store(seq_id, rec.seq, rec.alphabet)
        elif seq_id not in committed:
            seqs.store(seq_id, rec.seq, rec.alphabet, known_absent=True)
        if seqs.pending_sequences > before:
            writer.add_digest_aliases(seq_id, dg.digest_aliases())
            lookup.added(seq_id)
            st.seqs_added += 1
            st.residues_added += len(rec.seq)
        for nsa in rec.aliases:
            added, old = writer.add(seq_id, nsa["namespace"], nsa["alias"])
            st.aliases_added += added
            if old is not None:
                log.warning(
                    "%s, record %d: alias %s:%s re-pointed from %s to %s (the old mapping is"
                    " kept as history)",
                    rec.path,
                    rec.index,
                    nsa["namespace"],
                    nsa["alias"],
                    old,
                    seq_id,
                )
                st.repointed.append((nsa["namespace"], nsa["alias"], old, seq_id))
        if seqs.pending_sequences >= self.batch_size:
            self._commit("batch size")
        elif writer.pending > ALIAS_BATCH:
            self._commit("alias threshold")
        elif seqs.pending_residues > seqrepo_mod.ct_n_residues:
            self._commit("residue threshold")

    def _commit(self, why: str, last: bool = False) -> None:
        """Hand the batch to the committer thread and go on parsing the next one.

        The committer finishes the batch's file (compress, fsync, index, rename), inserts its
        seqinfo and alias rows and commits them in one transaction, in the same order as a
        synchronous commit, so a kill at any moment leaves what it did before. SQLite does that
        work without the GIL, so it overlaps with parsing and hashing on the main thread. One
        batch at most is in flight: the next commit waits for it. The main thread never writes
        to the databases (re-points too are written by the committer: loader.aliases).
        """
        sr, writer = self._sr, self._writer
        assert sr is not None and writer is not None and self._committer is not None
        self._wait_inflight()
        self._inflight_ids = sr.sequences.pending_seq_ids
        detached = sr.sequences.detach_file()
        rows = writer.take()

        finisher = self._finisher
        assert finisher is not None
        drop_indexes = self._defer_indexes and not self._indexes_dropped
        self._indexes_dropped |= drop_indexes
        restore = last and self._indexes_dropped

        def commit() -> None:
            conn = sr.aliases.database.writer
            if not conn.in_transaction:  # index changes too belong to the batch's transaction
                conn.execute("begin")
            if drop_indexes:
                for db in (sr.aliases.database, sr.sequences.database):
                    drop_deferred_indexes(conn, db.kind, db.schema)
            # the file is finished (compressed, fsynced, indexed, renamed) on a thread of its
            # own while the alias rows are inserted; its seqinfo rows go in after them, on this
            # thread (one connection, one thread: see DetachedFile); then both are committed
            finishing = finisher.submit(detached.finish_file) if detached is not None else None
            try:
                writer.insert(rows)
            finally:
                if finishing is not None:
                    wait([finishing])  # never roll back under a file being finished
            if detached is not None:
                assert finishing is not None
                finishing.result()
                detached.insert_rows()
            if restore:  # sorted once: far cheaper than kept up row by row
                # SQLite sorts in memory up to the page cache's size: with the cache full of
                # the batch's pages, the index build took the 1 M load from 840 to 1,001 MiB
                _tune_writer(sr, INDEX_BUILD_CACHE_KIB)
                sr.restore_indexes()
            sr.aliases.commit()  # one connection: seqinfo rows and aliases together

        self._inflight_why = why
        self._inflight = self._committer.submit(commit)

    def _wait_inflight(self) -> None:
        """Wait for the batch in flight to be committed; its error, if any, is raised here."""
        fut = self._inflight
        if fut is None:
            return
        self._inflight = None
        try:
            fut.result()
            if self._committed_ids is not None:
                # the group's look-up stays exact without another query (a query on the
                # writer's connection waited for the committer's whole insert: at 300 k
                # sequences 20 s of a 50 s load)
                self._committed_ids |= self._inflight_ids
        finally:
            self._inflight_ids = frozenset()
            assert self._writer is not None
            self._writer.inflight_done()
        self.stats.commits += 1
        log.info(
            "committed (%s): %d sequences added, %d aliases added so far",
            self._inflight_why,
            self.stats.seqs_added,
            self.stats.aliases_added,
        )

    def _close_committer(self) -> None:
        """Let a batch in flight finish (committed or failed) before anything is rolled back."""
        if self._committer is None:
            return
        fut, self._inflight = self._inflight, None
        if fut is not None:
            try:
                fut.result()
            except Exception as exc:  # noqa: BLE001 - the load is failing already: that error
                # is the one reported; this one is a consequence (e.g. the same full disk)
                log.info("the last batch could not be committed either: %s", exc)
                log.debug("commit failure detail", exc_info=True)
        self._committer.shutdown(wait=True)
        self._committer = None
        if self._finisher is not None:
            self._finisher.shutdown(wait=True)
            self._finisher = None


def _directories(top: str) -> set[str]:
    return {dirpath for dirpath, _dirs, _files in os.walk(top)}


def _remove_new_empty_dirs(top: str, before: set[str]) -> None:
    """After a rollback: remove the (empty) directories this load created."""
    for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda w: -len(w[0])):
        if dirpath not in before:
            try:
                os.rmdir(dirpath)
            except OSError:
                pass


def _tune_writer(sr: SeqRepo, cache_kib: int = WRITER_CACHE_KIB) -> None:
    """A page cache big enough that a batch never spills (a spill fsyncs the journal)."""
    conn = sr.aliases.database.writer
    for db in (sr.aliases.database, sr.sequences.database):
        conn.execute(f"pragma {db.schema}.cache_size = -{cache_kib}")


def remove_orphan_files(instance_dir: str) -> int:
    """Delete finished sequence files no committed seqinfo row refers to; returns how many.

    Such a file is what a load killed between renaming its file into place and committing its
    rows leaves behind. The caller holds the instance's writer lock, so no other writer of
    ours can be about to commit rows for it.
    """
    seqdir = os.path.join(instance_dir, "sequences")
    conn = sqlite3.connect(f"file:{os.path.join(seqdir, 'db.sqlite3')}?mode=ro", uri=True)
    try:
        referenced = {r[0] for r in conn.execute("select distinct relpath from seqinfo")}
    finally:
        conn.close()
    removed = 0
    for relpath in find_sequence_files(seqdir):
        if relpath in referenced:
            continue
        for suffix in ("", ".fai", ".gzi"):
            path = os.path.join(seqdir, relpath + suffix)
            try:
                os.remove(path)
            except FileNotFoundError:
                continue
        log.info("removed %s: left by an interrupted load, no sequence refers to it", relpath)
        removed += 1
    return removed


def find_sequence_files(seqdir: str) -> list[str]:
    """Relative paths of every `*.fa.bgz` under a sequences directory."""
    out: list[str] = []
    for dirpath, _dirs, files in os.walk(seqdir):
        for name in files:
            if name.endswith(".fa.bgz"):
                out.append(os.path.relpath(os.path.join(dirpath, name), seqdir))
    return sorted(out)
