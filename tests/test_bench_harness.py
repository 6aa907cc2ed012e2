"""The benchmark harness runs end to end on tiny data and reports every workload.

Timings are never asserted (speed is measured by the benchmark, not by tests); what is checked is
that every contender ran, medians are positive, the JSON is complete, and the harness's own
correctness checks (mount output == plain FASTA output) held, or it would have exited non-zero.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.fuse import fuse_skip_reason

PROJECT = Path(__file__).resolve().parent.parent
BENCH = PROJECT / "scripts" / "bench"
needs_reference = pytest.mark.skipif(
    shutil.which("seqrepo") is None, reason="biocommons.seqrepo not installed"
)


def _run_bench(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run scripts/bench/`script` on a mount (skipped without FUSE); it must exit 0."""
    why = fuse_skip_reason()
    if why:
        pytest.skip(why)
    res = subprocess.run(
        [sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=600
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res


@needs_reference
def test_harness_on_tiny_data(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    res = _run_bench(
        "run.py",
        "--quick",
        "--total-mb",
        "0.5",
        "--n-transcripts",
        "200",
        "--n-regions",
        "100",
        "--reps",
        "1",
        "--work",
        str(tmp_path / "work"),
        "--json",
        str(out),
    )
    result = json.loads(out.read_text())
    workloads = result["workloads"]
    expected = {
        "1 API 100-bp slices": 3,
        "2 API whole transcripts": 2,
        "3 samtools faidx regions, warm": 3,
        "4 bedtools getfasta, warm": 2,
        "3b samtools faidx regions, cold": 2,
        "6 time to first region": 2,
        "8 load genome+transcripts": 2,
    }
    for name, n_contenders in expected.items():
        medians = workloads[name]["median_seconds"]
        assert len(medians) == n_contenders, name
        assert "seqrepofs" in medians and all(v > 0 for v in medians.values()), name
    assert any(k.startswith("5 sequential read") for k in workloads)
    assert any(k.startswith("1b API whole") for k in workloads)
    assert result["daemon_peak_rss_mb"] > 0
    assert "contender/seqrepofs" in res.stdout


@needs_reference
def test_rss_across_sizes_on_tiny_data(tmp_path: Path) -> None:
    """bench_rss.py builds a repository per size, checks the mount's answers against the plain
    genome (or exits non-zero) and reports a peak for each of its three mounts per size."""
    out = tmp_path / "rss.json"
    _run_bench(
        "bench_rss.py",
        "--sizes",
        "0.5,1",
        "--n-regions",
        "100",
        "--work",
        str(tmp_path / "work"),
        "--json",
        str(out),
    )
    peaks = json.loads(out.read_text())["peak_rss_mb"]
    assert sorted(peaks) == ["0.5", "1"]
    for size, mounts in peaks.items():
        assert len(mounts) == 3, size
        assert all(mb > 0 for mb in mounts.values()), (size, mounts)
    assert (tmp_path / "work" / "1mb" / "ours" / "2020-01-01").is_dir()


def test_workload_is_deterministic_and_has_its_shape(tmp_path: Path) -> None:
    """make_workload.py: the same arguments give the same bytes; records, lengths and regions
    are what the manifest says, every region lies inside its chromosome."""
    args = ["--total-mb", "2", "--n-transcripts", "300", "--n-regions", "50"]
    for out in ("a", "b"):
        subprocess.run([sys.executable, str(BENCH / "make_workload.py"), str(tmp_path / out),
                        *args], check=True, capture_output=True, timeout=120)  # fmt: skip
    for name in ("genome.fa", "transcripts.fa", "regions.bed", "regions.txt"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    genome = (tmp_path / "a" / "genome.fa").read_text().split(">")[1:]
    lengths = {rec.split()[0]: len("".join(rec.splitlines()[1:])) for rec in genome}
    assert list(lengths) == manifest["genome"]["names"] and len(lengths) == 25
    assert list(lengths.values()) == manifest["genome"]["lengths"]
    assert abs(sum(lengths.values()) - 2_000_000) < 25 * 1000
    transcripts = (tmp_path / "a" / "transcripts.fa").read_text().split(">")[1:]
    seqs = ["".join(rec.splitlines()[1:]) for rec in transcripts]
    assert len(seqs) == 300 and all(500 <= len(s) <= 10_000 for s in seqs)
    assert len({rec.split()[0] for rec in transcripts}) == 300  # accessions are unique
    assert len(set(seqs)) == 300 - manifest["transcripts"]["n_duplicate_records"] == 294
    regions = (tmp_path / "a" / "regions.bed").read_text().splitlines()
    assert len(regions) == 50
    for line in regions:
        chrom, start, end = line.split("\t")
        assert int(end) - int(start) == 100 and 0 <= int(start) and int(end) <= lengths[chrom]
