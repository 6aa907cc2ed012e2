"""The real-shape generator (scripts/bench/make_scale.py) and a cheap run of bench_scale.py.

The benchmark's large runs stay out of CI; this checks, at a couple of thousand sequences, that
the generator makes what it promises (shape, accession styles, determinism, a second release
whose changes are what changes.tsv says) and that bench_scale's load/snapshot/status/api parts
run end to end and report both contenders.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from support.oracles import read_fasta

BENCH = Path(__file__).resolve().parents[1] / "scripts" / "bench"
sys.path.insert(0, str(BENCH))
import make_scale  # noqa: E402

N = 2000


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("gen")
    return out, make_scale.generate(out, N, seed=3)


def _records(paths: list[str]) -> dict[str, str]:
    return {name.split()[0]: seq for path in paths for name, seq in read_fasta(path)}


def test_generator_shape(generated: tuple[Path, dict]) -> None:
    _out, manifest = generated
    r1 = {step["namespace"]: _records(step["files"]) for step in manifest["releases"]["r1"]}
    refseq, ensembl = r1["refseq"], r1["Ensembl"]
    assert len(refseq) == N
    proteins = {a: s for a, s in refseq.items() if a[:3] in ("NP_", "XP_")}
    rna = {a: s for a, s in refseq.items() if a[:3] in ("NM_", "XM_", "NR_")}
    assert len(proteins) == round(N * 0.55) and len(rna) == N - len(proteins)
    assert all(re.fullmatch(r"[NX][PMR]_\d{6,9}\.\d+", a) for a in refseq)
    assert all(
        50 <= len(s) <= 3000 and set(s) <= set("ACDEFGHIKLMNPQRSTVWY") for s in proteins.values()
    )
    assert all(300 <= len(s) <= 8000 and set(s) <= set("ACGT") for s in rna.values())
    mean = sum(map(len, refseq.values())) / N
    assert 1100 < mean < 1800, mean  # log-uniform lengths: ~1,450 as in RefSeq
    assert len(set(refseq.values())) == N  # every record its own sequence
    assert 0.25 * N < len(ensembl) < 0.35 * N
    assert all(re.fullmatch(r"ENS[PT]\d{11}\.\d+", a) for a in ensembl)
    assert set(ensembl.values()) <= set(refseq.values())


def test_second_release_matches_changes(generated: tuple[Path, dict]) -> None:
    _out, manifest = generated
    r1 = {s["namespace"]: _records(s["files"]) for s in manifest["releases"]["r1"]}
    r2 = {s["namespace"]: _records(s["files"]) for s in manifest["releases"]["r2"]}
    lines = Path(manifest["changes"]).read_text().splitlines()[1:]
    changes = [line.split("\t") for line in lines]
    kinds = {c[2] for c in changes}
    assert kinds == {"gone", "new-version", "repointed"}
    for ns, alias, kind, previous in changes:
        if kind == "gone":
            assert alias in r1[ns] and alias not in r2[ns]
        elif kind == "repointed":
            assert alias == previous and r2[ns][alias] != r1[ns][alias]
        else:
            assert alias not in r1[ns] and previous not in r2[ns]
            assert r2[ns][alias] != r1[ns][previous]
    changed = {c[1] for c in changes if c[0] == "refseq"}
    same = [a for a in r2["refseq"] if a not in changed]
    assert all(r2["refseq"][a] == r1["refseq"][a] for a in same)
    n_gone = sum(c[2] == "gone" and c[0] == "refseq" for c in changes)
    assert 0.01 * N < n_gone < 0.03 * N
    assert manifest["counts"]["r2_refseq"] == N - n_gone


def test_generator_is_deterministic(generated: tuple[Path, dict], tmp_path: Path) -> None:
    out, _manifest = generated
    again = make_scale.generate(tmp_path / "again", N, seed=3)

    def digest(root: Path) -> dict[str, str]:
        return {
            str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.suffix in (".fa", ".faa", ".fna", ".tsv")
        }

    assert digest(out) == digest(tmp_path / "again")
    assert again["counts"] == _manifest["counts"]
    other = make_scale.generate(tmp_path / "other", N, seed=4)
    assert digest(tmp_path / "other") != digest(out) and other["n"] == N


def test_bench_scale_small_run(tmp_path: Path) -> None:
    work = tmp_path / "work"
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH / "bench_scale.py"),
            "--n",
            str(N),
            "--work",
            str(work),
            "--only",
            "load,load2,snapshot,status,walk,master_faidx,api",
            "--api-lookups",
            "500",
            "--master-files",
            "20",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((work / "results.json").read_text())[str(N)]
    for key in (
        "load.ours.s",
        "load.ref.s",
        "load2.ours.s",
        "load2.ref.s",
        "snapshot.ours.s",
        "status.ours.s",
        "status.ref.s",
        "api.ours.cold_s",
        "api.ref.warm_s",
    ):
        assert results[key] > 0, key
    assert results["load.ours.bytes"] > 0 and results["load.ours.rss_mb"] > 10
    assert results["snapshot.ours.copied"] >= 0
    # the walk lists every stored namespace once: 4 files per current alias, as the database
    conn = sqlite3.connect(work / str(N) / "ours" / "2030-01-01" / "aliases.sqlite3")
    current = dict(
        conn.execute(
            "select namespace, sum(is_current) from seqalias group by namespace"
        ).fetchall()
    )
    conn.close()
    for ns, count in current.items():
        assert results[f"walk.{ns}.entries"] == 4 * count, ns
    assert (
        results["walk.entries"] == 4 * sum(current.values()) + results["walk.collections.entries"]
    )
    assert 0 < results["walk.anon_mb"] <= results["walk.hwm_mb"]
    # the mounted master gave samtools the bytes the plain copies gave (checked in the part)
    assert results["master_faidx.files"] == 20
    assert results["master_faidx.warm_s"] > 0 and results["master_faidx.plain_s"] > 0
    assert re.search(r"^load r1 \(s\) +\S+ / \S+ / [\d.]+x$", proc.stdout, re.M), proc.stdout
    assert re.search(r"^API warm \(s\) +\S+ / \S+ / [\d.]+x$", proc.stdout, re.M), proc.stdout
    # both tools loaded the same thing
    counts = []
    for tool in ("ours", "ref"):
        conn = sqlite3.connect(work / str(N) / tool / "master" / "aliases.sqlite3")
        counts.append(
            conn.execute(
                "select namespace, count(*), sum(is_current) from seqalias"
                " group by namespace order by namespace"
            ).fetchall()
        )
        conn.close()
    assert counts[0] == counts[1]
    assert any(ns == "NCBI" and total > current for ns, total, current in counts[0])
