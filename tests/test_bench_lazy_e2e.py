"""scripts/bench/bench_lazy_e2e.py runs end to end on tiny data: a published snapshot mounted
from its URL (nginx behind the latency proxy), a local mount and htslib over HTTP.

Timings are never asserted. What is checked: every contender ran, the lazy mount's output is the
local mount's byte for byte (the harness checks it too, and would have exited non-zero), the
lazy cold run went over HTTP while its warm run made no request, and the report has its table
and targets.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.fuse import fuse_skip_reason
from support.http_servers import NGINX

PROJECT = Path(__file__).resolve().parent.parent
SCRIPT = PROJECT / "scripts" / "bench" / "bench_lazy_e2e.py"

pytestmark = [
    pytest.mark.skipif(NGINX is None, reason="nginx not installed (apt-get install nginx)"),
    pytest.mark.skipif(
        shutil.which("samtools") is None or shutil.which("bgzip") is None,
        reason="samtools and bgzip (htslib) not installed",
    ),
]


def test_e2e_harness_on_tiny_data(tmp_path: Path) -> None:
    why = fuse_skip_reason()
    if why:
        pytest.skip(why)
    out = tmp_path / "results.json"
    res = subprocess.run(
        [sys.executable, str(SCRIPT), "--work", str(tmp_path / "work"), "--json", str(out),
         "--total-mb", "1", "--n-transcripts", "100", "--regions", "20", "--reps", "1",
         "--rtt-ms", "1", "--no-drop-caches", "--workloads", "regions,cat"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    result = json.loads(out.read_text())
    workloads = result["workloads"]
    assert set(workloads) == {"regions cold", "regions warm", "cat cold"}
    for name, by in workloads.items():
        assert set(by) == {"lazy", "local", "htslib"}, name
        assert all(c["median_seconds"] > 0 for c in by.values()), name
        assert by["lazy"]["output_sha256"] == by["local"]["output_sha256"], name
    cold, warm = workloads["regions cold"], workloads["regions warm"]
    assert cold["lazy"]["median_requests"] > 0 and cold["htslib"]["median_requests"] > 0
    assert warm["lazy"]["median_requests"] == 0  # a warm cache answers every read
    assert workloads["cat cold"]["lazy"]["median_requests"] > 0
    assert result["regions"] == 20
    assert "contender / lazy" in res.stdout and "targets:" in res.stdout
    assert len(result["targets"]) == 7
