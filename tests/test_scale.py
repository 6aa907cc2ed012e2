"""A repository of real shape (~50,000 sequences, ~300,000 aliases, two releases) answers
exactly as biocommons.seqrepo answers on the same instance.

The second release re-points some versioned accessions to new sequences (leaving non-current
rows), adds new versions beside old ones, and drops others (which stay current: loading never
removes an alias). For a sample of each kind, and of unchanged accessions, every form of the
identifier (bare, refseq:, NCBI:, Ensembl:, ensembl:, the old sequence by digest) must give the
same fetch, translate_identifier, translate_alias and alias history (current and not) through
seqrepofs as through the reference, on the master and on a frozen snapshot of it.
"""

from __future__ import annotations

import random
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from biocommons.seqrepo import SeqRepo as RefSeqRepo
from support.cli import run_seqrepofs
from support.oracles import reference_cli

from seqrepofs.loader.load import load
from seqrepofs.seqrepo import SeqRepo

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "bench"))
import make_scale  # noqa: E402

N = 50_000
SAMPLE = 40  # per kind of change


@pytest.fixture(scope="module")
def scale_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    top = tmp_path_factory.mktemp("scale")
    manifest = make_scale.generate(top / "gen", N, seed=11)
    root = top / "root"
    assert run_seqrepofs("-r", str(root), "init").returncode == 0
    for release in ("r1", "r2"):
        for step in manifest["releases"][release]:
            load(str(root / "master"), step["files"], step["namespace"])
    proc = run_seqrepofs("-r", str(root), "snapshot", "-d", "2026-05-05")
    assert proc.returncode == 0, proc.stderr
    return root, manifest


def _changes(manifest: dict) -> dict[str, list[tuple[str, str, str]]]:
    by_kind: dict[str, list[tuple[str, str, str]]] = {}
    lines = Path(manifest["changes"]).read_text().splitlines()[1:]
    for line in lines:
        ns, alias, kind, previous = line.split("\t")
        by_kind.setdefault(kind, []).append((ns, alias, previous))
    return by_kind


def _identifiers(manifest: dict) -> list[str]:
    """Sampled identifiers of every kind of change, in every namespace form."""
    rng = random.Random(5)
    ids: list[str] = []
    for _kind, rows in sorted(_changes(manifest).items()):
        for ns, alias, previous in rng.sample(rows, min(SAMPLE, len(rows))):
            names = {alias, previous} - {""}
            forms = ("refseq", "NCBI") if ns == "refseq" else ("Ensembl", "ensembl")
            for name in sorted(names):
                ids += [name] + [f"{f}:{name}" for f in forms]
    unchanged = _r1_accessions(manifest, "refseq")
    changed = {a for rows in _changes(manifest).values() for _ns, a, _p in rows}
    ids += [a for a in rng.sample(unchanged, 4 * SAMPLE) if a not in changed]
    return ids


def _r1_accessions(manifest: dict, namespace: str) -> list[str]:
    """Accessions of the first release's records of a namespace (headers only)."""
    out = []
    step = next(s for s in manifest["releases"]["r1"] if s["namespace"] == namespace)
    for path in step["files"]:
        with open(path, encoding="ascii") as fh:
            out += [line[1:].split()[0] for line in fh if line.startswith(">")]
    return out


def _outcome(fn: Callable[..., Any], *args: Any) -> Any:
    """A call's result, or that it raised KeyError (how both report an unknown alias)."""
    try:
        return fn(*args)
    except KeyError:
        return KeyError


def _history(sr: Any, identifier: str) -> list[tuple[str, str, str, bool]]:
    namespace, _, alias = identifier.rpartition(":")
    rows = sr.aliases.find_aliases(namespace=namespace or None, alias=alias, current_only=False)
    return sorted((r["seq_id"], r["namespace"], r["alias"], bool(r["is_current"])) for r in rows)


@pytest.mark.parametrize("instance", ["master", "2026-05-05"])
def test_release_two_resolves_as_the_reference(
    scale_root: tuple[Path, dict], instance: str
) -> None:
    root, manifest = scale_root
    ids = _identifiers(manifest)
    ours = SeqRepo(root / instance)
    ref = RefSeqRepo(str(root / instance), fd_cache_size=100)
    kinds = {"fetched": 0, "missing": 0, "non-current rows": 0}
    try:
        for identifier in ids:
            namespace, _, alias = identifier.rpartition(":")
            ns = namespace or None
            got = _outcome(ours.fetch, alias, 0, 50, ns)
            want = _outcome(ref.fetch, alias, 0, 50, ns)
            assert got == want, identifier
            kinds["fetched" if got is not KeyError else "missing"] += 1
            assert _outcome(ours.translate_identifier, identifier) == _outcome(
                ref.translate_identifier, identifier
            ), identifier
            targets = ["NCBI", "Ensembl", "ga4gh"]
            assert _outcome(ours.translate_alias, alias, ns, targets) == _outcome(
                ref.translate_alias, alias, ns, targets
            ), identifier
            history = _history(ours, identifier)
            assert history == _history(ref, identifier), identifier
            kinds["non-current rows"] += sum(not current for *_x, current in history)
            for seq_id in {h[0] for h in history}:  # the old sequence too, by its digest
                by_digest = f"sha512t24u:{seq_id}"
                assert ours.translate_identifier(by_digest) == ref.translate_identifier(
                    by_digest
                ), by_digest
                assert ours.fetch_uri(by_digest, 0, 20) == ref.fetch_uri(by_digest, 0, 20)
    finally:
        ours.close()
    # the sample covered what it is meant to: resolvable ids and re-pointed history
    assert kinds["fetched"] > len(ids) / 2 and kinds["non-current rows"] >= SAMPLE, kinds


def test_counts_match_the_reference(scale_root: tuple[Path, dict]) -> None:
    root, manifest = scale_root
    with SeqRepo(root / "2026-05-05") as ours:
        stats = ours.aliases.stats()
    ref = RefSeqRepo(str(root / "2026-05-05"))
    want = ref.aliases.stats()
    assert (stats["n_aliases"], stats["n_current"], stats["n_sequences"]) == (
        want["n_aliases"],
        want["n_current"],
        want["n_sequences"],
    )
    # one non-current row per re-pointed accession (RefSeq and Ensembl), none otherwise
    repointed = _changes(manifest)["repointed"]
    assert stats["n_aliases"] - stats["n_current"] == len(repointed)
    assert stats["n_aliases"] > 250_000


def _alias_table(instance: Path) -> list[tuple[str, str, str, int]]:
    conn = sqlite3.connect(f"file:{instance / 'aliases.sqlite3'}?mode=ro", uri=True)
    try:
        return sorted(conn.execute("select namespace, alias, seq_id, is_current from seqalias"))
    finally:
        conn.close()


def test_batches_committed_while_parsing_store_what_the_reference_stores(tmp_path: Path) -> None:
    """Tiny batches, so every batch is committed while the next is parsed: a sequence seen
    again just after a batch boundary, and an alias re-pointed there, must give the same
    rows as biocommons.seqrepo's `seqrepo load` of the same files (one commit at the end)."""
    rng = random.Random(9)
    seqs = ["".join(rng.choices("ACGT", k=rng.randint(50, 400))) for _ in range(40)]
    records = []
    for _ in range(120):
        seq = seqs[rng.randrange(len(seqs))]  # many repeats, across every boundary
        name = f"NM_{rng.randrange(30):06d}.1"  # names come back with other sequences
        records.append(f">{name}\n{seq}\n")
    fa = tmp_path / "in.fa"
    fa.write_text("".join(records))
    ours, ref = tmp_path / "ours", tmp_path / "ref"
    assert run_seqrepofs("-r", str(ours), "init").returncode == 0
    stats = load(str(ours / "master"), [str(fa)], "refseq", batch_size=3)
    assert stats.commits >= 10 and stats.repointed
    reference_cli(ref, "init")
    reference_cli(ref, "load", "-n", "refseq", str(fa))
    assert _alias_table(ours / "master") == _alias_table(ref / "master")
    with SeqRepo(ours / "master") as sr:
        assert sr.sequences.stats()["n_sequences"] == len(
            set(seqs) & {r.split("\n")[1] for r in records}
        )
