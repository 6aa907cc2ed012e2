"""`seqrepofs publish` to a directory: the layout, deduplication by hardlink, the order of
writes and finishing an interrupted publish. (S3 targets: tests/test_pull_http.py.)"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from support.cli import one_error_line, run_seqrepofs
from support.data import copy_instance, real_instance
from support.snapshots import A, B, build_two_snapshots, files_of

from seqrepofs.remote import manifest as mf
from seqrepofs.remote.errors import ManifestError


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("publish-src") / "root"
    build_two_snapshots(root)
    return root


def publish(src: Path, dest: Path, *args: str) -> str:
    proc = run_seqrepofs("publish", src, dest, *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_layout_manifest_index_latest(src: Path, tmp_path: Path) -> None:
    dest = tmp_path / "pub"
    out = publish(src, dest)
    assert f"{A}: " in out and f"{B}: " in out
    for name in (A, B):
        # every file exactly as on disk, nothing else inside the snapshot
        assert files_of(dest / name) == files_of(src / name)
        manifest = mf.parse((dest / "seqrepofs" / "manifests" / f"{name}.json").read_bytes())
        assert manifest.instance == name
        assert {f.path for f in manifest.files} == set(files_of(src / name))
        for f in manifest.files:
            data = (src / name / f.path).read_bytes()
            assert f.size == len(data)
            assert f.sha256 == hashlib.sha256(data).hexdigest()
            if f.path.endswith(".sqlite3"):
                cs = manifest.chunk_size
                want = [
                    hashlib.sha256(data[i : i + cs]).hexdigest() for i in range(0, len(data), cs)
                ]
                assert list(f.chunks) == want
            else:
                assert f.chunks == ()
    index = mf.parse_index((dest / "seqrepofs" / "index.json").read_bytes())
    assert index.names == [A, B]
    assert (dest / "seqrepofs" / "latest").read_text().strip() == B
    # the published directory is a read-only root of snapshots like `snapshot` makes
    assert not os.access(dest / B / "sequences", os.W_OK) or os.geteuid() == 0
    assert not (os.stat(dest / B / "sequences").st_mode & 0o222)


def test_files_of_earlier_snapshots_are_hardlinked(src: Path, tmp_path: Path) -> None:
    dest = tmp_path / "pub"
    out = publish(src, dest)
    a_files = {p: os.stat(dest / A / p) for p in files_of(dest / A)}
    shared = [p for p in files_of(dest / B) if p in a_files and "sqlite3" not in p]
    assert len(shared) >= 18
    for p in shared:
        st = os.stat(dest / B / p)
        assert (st.st_ino, st.st_dev) == (a_files[p].st_ino, a_files[p].st_dev), p
    new_in_b = [p for p in files_of(dest / B) if p not in a_files]
    assert len(new_in_b) == 3  # one new .fa.bgz with its .fai and .gzi
    assert f"{B}: 5 files uploaded" in out  # the new three and the two databases


def test_rerun_skips_and_interrupted_publish_finishes(src: Path, tmp_path: Path) -> None:
    dest = tmp_path / "pub"
    publish(src, dest)
    before = files_of(dest)
    assert publish(src, dest).count("already published") == 2
    assert files_of(dest) == before
    # an interrupted publish of B: some data written, no manifest, index and latest still at A
    for d in (dest / B, *(p for p in (dest / B).rglob("*") if p.is_dir())):
        os.chmod(d, 0o755)
    (dest / "seqrepofs" / "manifests" / f"{B}.json").unlink()
    (dest / B / "aliases.sqlite3").unlink()
    in_b = (dest / B).rglob("*.fa.bgz")
    new_bgz = [p for p in in_b if not (dest / A / p.relative_to(dest / B)).exists()]
    new_bgz[0].unlink()
    index = json.loads((dest / "seqrepofs" / "index.json").read_text())
    index["snapshots"] = index["snapshots"][:1]
    (dest / "seqrepofs" / "index.json").write_text(json.dumps(index))
    (dest / "seqrepofs" / "latest").write_text(A + "\n")
    out = publish(src, dest)
    assert f"{A}: already published" in out
    assert f"{B}: 2 files uploaded" in out, out  # only what was missing
    after = files_of(dest)
    key = f"seqrepofs/manifests/{B}.json"
    assert mf.parse(after.pop(key)).files == mf.parse(before.pop(key)).files  # `created` differs
    assert after == before


def test_publish_one_instance_and_biocommons_written_snapshot(tmp_path: Path) -> None:
    """A snapshot biocommons.seqrepo wrote (a real instance) publishes as is."""
    root = tmp_path / "root"
    root.mkdir()
    real = real_instance("rest-service-2019")
    inst = copy_instance("rest-service-2019", root)
    inst.rename(root / "2019-05-20")
    dest = tmp_path / "pub"
    publish(root / "2019-05-20", dest)
    assert files_of(dest / "2019-05-20") == files_of(root / "2019-05-20")
    assert (dest / "seqrepofs" / "latest").read_text().strip() == "2019-05-20"
    from biocommons.seqrepo import SeqRepo as Reference

    published, original = Reference(str(dest / "2019-05-20")), Reference(str(real))
    seq_ids = [r["seq_id"] for r in original.sequences]
    assert len(seq_ids) == 3
    for seq_id in seq_ids:
        assert published.sequences.fetch(seq_id) == original.sequences.fetch(seq_id)


def test_publish_errors(src: Path, tmp_path: Path) -> None:
    master_only = tmp_path / "m"
    shutil.copytree(src / "master", master_only / "master")
    line = one_error_line(run_seqrepofs("publish", master_only, tmp_path / "out"))
    assert "no YYYY-MM-DD snapshots" in line
    line = one_error_line(run_seqrepofs("publish", src / "master", tmp_path / "out"))
    assert "YYYY-MM-DD" in line
    line = one_error_line(run_seqrepofs("publish", src, tmp_path / "out", "-i", "2030-01-01"))
    assert "no such snapshot" in line
    line = one_error_line(run_seqrepofs("publish", src, "ftp://host/x"))
    assert "s3://" in line
    dest = tmp_path / "bad"
    (dest / "seqrepofs").mkdir(parents=True)
    (dest / "seqrepofs" / "index.json").write_text('{"format": "seqrepofs-index", "version": 9}')
    line = one_error_line(run_seqrepofs("publish", src, dest))
    assert "version 9" in line


def test_manifest_parser_refuses_bad_input() -> None:
    good = mf.Manifest("2024-01-01", (mf.FileEntry("a/b", 3, "0" * 64),)).to_json()
    assert mf.parse(good).files[0].path == "a/b"
    for bad, words in [
        (b"{not json", "not valid JSON"),
        (b'{"format": "x", "version": 1}', "not a seqrepofs-manifest"),
        (good.replace(b'"version": 1', b'"version": 2'), "version 2"),
        (good.replace(b'"a/b"', b'"../etc/passwd"'), "unsafe path"),
        (good.replace(b'"0000', b'"zz00'), "not a SHA-256"),
        (good.replace(b'"files"', b'"filez"'), "malformed"),
    ]:
        with pytest.raises(ManifestError, match=words):
            mf.parse(bad)
    # chunk digests, checked as a list: each one must be 64 lowercase hex digits
    entry = mf.FileEntry("x.sqlite3", 5000, "1" * 64, ("a" * 64, "b" * 64))
    chunked = mf.Manifest("2024-01-01", (entry,), chunk_size=4096).to_json()
    assert mf.parse(chunked).files[0].chunks == ("a" * 64, "b" * 64)
    assert mf.parse(chunked).to_json() == chunked  # kept as it came
    for bad_digest in (b'"' + b"A" * 64 + b'"', b'"' + b"a" * 63 + b'"', b"7", b'"a" "'):
        bad = chunked.replace(b'"' + b"b" * 64 + b'"', bad_digest)
        with pytest.raises(ManifestError):
            mf.parse(bad)
    # a 63- and a 65-digit digest side by side join into valid hex: still refused
    bad = chunked.replace(b"a" * 64, b"a" * 63).replace(b"b" * 64, b"b" * 65)
    with pytest.raises(ManifestError, match="not a SHA-256"):
        mf.parse(bad)


def test_runs_merge_adjacent_chunks_and_bound_the_requests() -> None:
    from seqrepofs.remote.fetch import runs

    assert runs([], 4096) == []
    assert runs([0, 1, 2, 5, 6, 9, 20], 4096) == [(0, 2), (5, 6), (9, 9), (20, 20)]
    # past the limit the smallest gaps are bridged first, and only as many as needed
    assert runs([0, 1, 2, 5, 6, 9, 20], 4096, max_runs=3) == [(0, 6), (9, 9), (20, 20)]
    assert runs([0, 1, 2, 5, 6, 9, 20], 4096, max_runs=2) == [(0, 9), (20, 20)]
    every_other = list(range(0, 2000, 2))
    out = runs(every_other, 4096, max_runs=100)
    assert len(out) == 100
    assert {i for a, b in out for i in range(a, b + 1)} >= set(every_other)
    # the limit counts requests: many runs where a request carries many ranges
    from seqrepofs.remote.fetch import MAX_REQUESTS, RANGES_PER_REQUEST, max_runs

    assert max_runs(False) == MAX_REQUESTS
    assert max_runs(True) == MAX_REQUESTS * RANGES_PER_REQUEST
    spread = list(range(0, 4 * MAX_REQUESTS, 2))  # 20,000 runs, one chunk apart
    assert len(runs(spread, 4096, max_runs(True))) == len(spread)
    bounded = runs(spread, 4096, max_runs(False))  # bridged, then cut at 16 MiB a run
    assert MAX_REQUESTS <= len(bounded) <= MAX_REQUESTS + len(spread) * 2 * 4096 // (16 << 20)
    # one request never covers more than 16 MiB
    assert max(b - a + 1 for a, b in runs(list(range(10_000)), 4096)) * 4096 <= 16 << 20
