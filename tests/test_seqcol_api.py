"""The GA4GH Sequence Collections API of `seqrepofs serve`, end to end on 127.0.0.1.

The six FASTA files of the seqcol compliance suite are loaded side by side as collections (one
each, named by the file's stem). Oracles: the files' known answers (test_fasta_digests.json),
the compliance suite itself (`refget.compliance.run_compliance`, its own bundled answers) and
refget's comparison function.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from refget.utils import compare_seqcols, seqcol_digest
from support.oracles import read_fasta
from support.rest import RestServer as Server
from support.rest import start_rest_server

from seqrepofs.digests import seq_id_of
from seqrepofs.loader import load
from seqrepofs.loader.collection import plan
from seqrepofs.seqrepo import SeqRepo

DATA = Path(__file__).parent / "data" / "real" / "seqcol-compliance"
FILES = sorted(DATA.glob("*.fa"))
KNOWN = json.loads((DATA / "test_fasta_digests.json").read_text())
BIG_RECORDS = 12_345


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    inst = tmp_path_factory.mktemp("seqcol") / "master"
    SeqRepo(str(inst), writeable=True).close()
    paths = [str(f) for f in FILES]
    stats = load(str(inst), paths, None, collections=plan(paths))
    assert sorted(c.name for c in stats.collections) == sorted(f.stem for f in FILES)
    big = inst.parent / "big.fa"  # more records than one streamed page (10,000)
    rng = random.Random(5)
    big.write_text(
        "".join(
            f">t{i}.{rng.randint(1, 9)}\n{''.join(rng.choices('ACGT', k=rng.randint(1, 30)))}\n"
            for i in range(BIG_RECORDS)
        )
    )
    load(str(inst), [str(big)], None, collections=plan([str(big)]))
    return inst


@pytest.fixture(scope="module")
def server(instance: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_rest_server(
        instance,
        tmp_path_factory.mktemp("srv"),
        "--no-access-log",
        access_log=False,
        ready="/service-info",
    )
    try:
        yield srv
    finally:
        srv.stop()


def test_compliance_suite_passes(server: Server) -> None:
    from refget.compliance import run_compliance

    report = run_compliance(server.url)
    failed = [(r["name"], r["error"]) for r in report["results"] if not r["passed"]]
    assert failed == []
    assert report["total"] >= 60 and report["passed"] == report["total"]


@pytest.mark.parametrize("fa", [f.name for f in FILES])
def test_each_collection_equals_its_known_answers(server: Server, fa: str) -> None:
    bundle = KNOWN[fa]
    digest = bundle["top_level_digest"]
    assert server.get(f"/collection/{digest}?level=1").json() == bundle["level1"]
    assert server.get(f"/collection/{digest}").json() == bundle["level2"]
    for attr, value in bundle["level2"].items():
        r = server.get(f"/attribute/collection/{attr}/{bundle['level1'][attr]}")
        assert r.status_code == 200 and r.json() == value


def test_comparison_of_every_pair_equals_refgets(server: Server) -> None:
    level2 = {fa: b["level2"] for fa, b in KNOWN.items()}
    for a, ba in KNOWN.items():
        for b, bb in KNOWN.items():
            got = server.get(f"/comparison/{ba['top_level_digest']}/{bb['top_level_digest']}")
            assert got.status_code == 200
            expected = compare_seqcols(level2[a], level2[b])
            assert got.json() == {
                "digests": {"a": ba["top_level_digest"], "b": bb["top_level_digest"]},
                **expected,
            }


def test_post_comparison_takes_a_local_collection(server: Server) -> None:
    base = KNOWN["base.fa"]
    mine = {"names": ["chr1", "chrZ"], "lengths": [4, 10], "sequences": ["SQ.a", "SQ.b"]}
    r = server.client.post(f"{server.url}/comparison/{base['top_level_digest']}", json=mine)
    assert r.status_code == 200
    assert r.json() == {
        "digests": {"a": base["top_level_digest"], "b": "POSTed seqcol"},
        **compare_seqcols(base["level2"], mine),
    }
    bad = server.client.post(
        f"{server.url}/comparison/{base['top_level_digest']}",
        content=b"[1, 2]",
        headers={"content-type": "application/json"},
    )
    assert bad.status_code == 400
    assert server.client.post(f"{server.url}/comparison/nope", json=mine).status_code == 404
    odd = {"names": [[1, {"a": None}], 2**80, True, 1.5], "lengths": [4, "4", 4.0, None]}
    r = server.client.post(f"{server.url}/comparison/{base['top_level_digest']}", json=odd)
    assert r.status_code == 200
    assert r.json()["array_elements"] == compare_seqcols(base["level2"], odd)["array_elements"]
    for body in (b'{"names": [NaN]}', b'{"names": [1', '{"names": ["\u00e9"]}'.encode()[:-3]):
        r = server.client.post(
            f"{server.url}/comparison/{base['top_level_digest']}",
            content=body,
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 400, body


def test_list_filters_and_pages(server: Server) -> None:
    everything = server.get("/list/collection?page_size=1000").json()
    known = sorted(b["top_level_digest"] for b in KNOWN.values())
    assert set(known) < set(everything["results"]) and len(everything["results"]) == 7
    assert everything["pagination"] == {"page": 0, "page_size": 1000, "total": len(KNOWN) + 1}
    pages = [
        server.get(f"/list/collection?page={p}&page_size=4").json()["results"] for p in range(3)
    ]
    assert [len(p) for p in pages] == [4, 3, 0]
    assert pages[0] + pages[1] == everything["results"]
    # lengths [8, 4, 4] is shared by several files; AND with names narrows to one
    base = KNOWN["base.fa"]
    same_lengths = {
        b["top_level_digest"]
        for b in KNOWN.values()
        if b["level1"]["lengths"] == base["level1"]["lengths"]
    }
    got = server.get(f"/list/collection?lengths={base['level1']['lengths']}").json()
    assert set(got["results"]) == same_lengths and len(same_lengths) > 1
    both = server.get(
        f"/list/collection?lengths={base['level1']['lengths']}&names={base['level1']['names']}"
    ).json()
    assert both["results"] == [base["top_level_digest"]]
    attrs = server.get("/list/attributes/names").json()
    assert set(attrs["results"]) > {b["level1"]["names"] for b in KNOWN.values()}
    assert attrs["pagination"]["total"] == len(attrs["results"])


def test_errors_are_problem_documents(server: Server) -> None:
    digest = KNOWN["base.fa"]["top_level_digest"]
    cases = {
        "/collection/nope": 404,
        f"/collection/{digest}?level=3": 400,
        f"/comparison/{digest}/nope": 404,
        "/attribute/collection/names/nope": 404,
        f"/attribute/collection/sorted_name_length_pairs/{digest}": 404,
        "/attribute/collection/bogus/x": 404,
        "/list/attributes/bogus": 404,
        "/list/collection?page=-1": 400,
        "/list/collection?page_size=0": 400,
        "/list/collection?page_size=x": 400,
    }
    for path, status in cases.items():
        r = server.get(path)
        assert r.status_code == status, path
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["status"] == status


def test_service_info_advertises_both_apis(server: Server) -> None:
    info = server.get("/service-info").json()
    assert set(info["seqcol"]["schema"]["properties"]) >= {"names", "lengths", "sequences"}
    assert info["seqcol"]["collections"] == len(KNOWN) + 1
    assert info["refget"]["algorithms"] == ["md5", "ga4gh", "trunc512"]
    assert server.get(info["refget"]["service_info"]).status_code == 200


def test_a_large_collection_streams_whole_and_caches(server: Server, instance: Path) -> None:
    recs = read_fasta(instance.parent / "big.fa")
    core = {
        "names": [h for h, _ in recs],
        "lengths": [len(s) for _, s in recs],
        "sequences": ["SQ." + seq_id_of(s) for _, s in recs],
    }
    digest = seqcol_digest(core)
    r = server.get(f"/collection/{digest}")
    assert r.status_code == 200
    got = r.json()
    assert {k: got[k] for k in core} == core
    assert got["sorted_sequences"] == sorted(core["sequences"])
    assert got["name_length_pairs"] == [
        {"length": n, "name": s} for s, n in zip(core["names"], core["lengths"], strict=True)
    ]
    level1 = server.get(f"/collection/{digest}?level=1").json()
    for attr in ("sorted_sequences", "names"):
        r2 = server.get(f"/attribute/collection/{attr}/{level1[attr]}")
        assert r2.json() == got[attr]
    again = server.client.get(
        f"{server.url}/collection/{digest}", headers={"if-none-match": r.headers["etag"]}
    )
    assert again.status_code == 304
    head = server.client.head(f"{server.url}/collection/{digest}")
    assert head.status_code == 200 and head.content == b""
