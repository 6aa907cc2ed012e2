"""The REST service end to end: a real uvicorn server (``python -m seqrepofs serve``) on 127.0.0.1.

The instance holds the three sequences of the GA4GH refget compliance suite under their INSDC
accessions (exactly as the suite expects), plus, for the paths the suite does not reach, a few
extra aliases (one deliberately ambiguous) and a 3 Mbp synthetic sequence that is longer than a
streaming chunk. It is served through a root's `latest` link.

Oracles: the compliance suite's CLI, biocommons.seqrepo's own data proxies (HTTP against this
server versus its local reader on the same files), schemathesis against /openapi.json, and the
FASTA files read independently (support.oracles.read_fasta).
"""

from __future__ import annotations

import gzip
import json
import os
import random
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.cli import run_seqrepofs
from support.data import REAL
from support.oracles import read_fasta
from support.rest import RestServer, start_rest_server

from seqrepofs import SeqRepo
from seqrepofs.digests import seq_id_of, trunc512_hex

COMPLIANCE = REAL / "refget-compliance"
V1_TEXT = "text/vnd.ga4gh.refget.v1.0.0+plain"
V2_TEXT = "text/vnd.ga4gh.refget.v2.0.0+plain"
V1_JSON = "application/vnd.ga4gh.refget.v1.0.0+json"
V2_JSON = "application/vnd.ga4gh.refget.v2.0.0+json"
V1 = {"Accept": V1_TEXT}
V1J = {"Accept": V1_JSON}
MD5_I = "6681ac2f62509cfc220d78751b8dc524"
MD5_NC = "3332ed720ac7eaa9b3655c06f6b9e196"
BIG_LEN = 3_000_001

# The compliance tests that do not apply: we answer 501 to circular requests (service-info says
# circular_supported: false), so the suite skips the three tests that need circular support.
CIRCULAR_ONLY = {
    "test_metadata_query_circular_sequence",
    "test_sequence_circular",
    "test_sequence_circular_support_true_errors",
}


# ---- fixtures: an instance, and servers started as subprocesses -------------------------------
@dataclass
class Data:
    root: Path
    instance: Path
    seqs: dict[str, str]  # accession -> sequence
    checksums: dict[str, dict]


def _compliance_records() -> tuple[dict[str, dict], list[tuple[str, str, str]]]:
    checksums = json.loads((COMPLIANCE / "checksums.json").read_text())
    records = []
    for name, info in checksums.items():
        [(_header, seq)] = read_fasta(COMPLIANCE / f"{name}.faa")
        records.append((name, info["insdc"].removeprefix("insdc:"), seq))
    return checksums, records


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Data:
    checksums, records = _compliance_records()
    root = tmp_path_factory.mktemp("rest") / "root"
    inst = root / "2026-01-01"
    rng = random.Random(9)
    big = "".join(rng.choices("ACGT", k=BIG_LEN))
    seqs: dict[str, str] = {}
    with SeqRepo(inst, writeable=True) as sr:
        for _name, acc, seq in records:
            sr.store(seq, [{"namespace": "insdc", "alias": acc}])
            seqs[acc] = seq
        by_name = {name: seq for name, _acc, seq in records}
        sr.store(
            by_name["I"],
            [{"namespace": "ucsc", "alias": "chrI"}, {"namespace": "alt", "alias": "chrAmb"}],
        )
        sr.store(by_name["VI"], [{"namespace": "ucsc", "alias": "chrAmb"}])
        sr.store(big, [{"namespace": "test", "alias": "big"}])
        seqs["big"] = big
    (root / "latest").symlink_to(inst.name)
    for part in ("", "sequences", "aliases.sqlite3", "sequences/db.sqlite3"):  # as `snapshot`
        os.chmod(inst / part, (inst / part).stat().st_mode & ~0o222)  # leaves it: frozen
    return Data(root, inst, seqs, checksums)


@pytest.fixture(scope="module")
def server(data: Data, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestServer]:
    srv = start_rest_server(data.root, tmp_path_factory.mktemp("srv"))
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def limited(data: Data, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestServer]:
    """Two worker processes, a subsequence limit of 100, every request in the thread pool (the
    `server` fixture answers on the event loop: `--reads auto` on a frozen instance)."""
    srv = start_rest_server(
        data.instance,
        tmp_path_factory.mktemp("lim"),
        "--workers",
        "2",
        "--subsequence-limit",
        "100",
        "--reads",
        "threads",
    )
    try:
        yield srv
    finally:
        srv.stop()


def _seq_id(data: Data, acc: str) -> str:
    return seq_id_of(data.seqs[acc])


# ---- the GA4GH refget compliance suite ----------------------------------------------------------
@pytest.mark.parametrize("base", ["/", "/refget/1/"])
def test_refget_compliance_suite(server: RestServer, tmp_path: Path, base: str) -> None:
    """Every applicable test passes; only the three circular-only tests are skipped."""
    out = tmp_path / "report.json"
    run = subprocess.run(
        ["refget-compliance", "report", "-s", server.url + base, "--json", str(out), "--no-web"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    [report] = json.loads(out.read_text())
    results = {t["name"]: t for t in report["test_results"]}
    failed = {n: t["text"] for n, t in results.items() if t["result"] == -1}
    skipped = {n for n, t in results.items() if t["result"] == 0}
    assert not failed
    assert skipped == CIRCULAR_ONLY
    assert report["total_tests_passed"] == report["total_tests"] - len(CIRCULAR_ONLY) == 27
    for name, test in results.items():
        for case in test["edge_cases"]:
            assert case["result"] == 1, (name, case)


# ---- biocommons.seqrepo's HTTP data proxy against its local one --------------------------------
def test_biocommons_http_dataproxy_matches_local(server: RestServer, data: Data) -> None:
    dataproxy = pytest.importorskip("biocommons.seqrepo.dataproxy")
    remote = dataproxy.create_dataproxy(f"seqrepo+{server.url}/seqrepo")
    local = dataproxy.create_dataproxy(f"seqrepo+file://{data.instance}")
    ga4gh_i = data.checksums["I"]["ga4gh"]
    idents = [
        "insdc:BK006935.2",
        "BK006935.2",
        "CP036473.1",
        "insdc:NC_001422.1",
        ga4gh_i,
        f"MD5:{MD5_I}",
        "ucsc:chrI",
        "test:big",
    ]
    for ident in idents:
        md = remote.get_metadata(ident)
        assert md == local.get_metadata(ident), ident
        assert any(a.startswith("ga4gh:SQ.") for a in md["aliases"])
        n = md["length"]
        for start, end in [
            (None, None),
            (0, 10),
            (5, 5),
            (n - 3, None),
            (None, 7),
            (n - 10, n + 50),
            (n, None),
            (n + 5, None),
            (n + 5, n + 10),
        ]:
            got = remote.get_sequence(ident, start, end)
            assert got == local.get_sequence(ident, start, end), (ident, start, end)
    for missing in ("insdc:XX000000.1", "NM_000000.0"):
        with pytest.raises(KeyError):
            remote.get_sequence(missing)
        with pytest.raises(KeyError):
            remote.get_metadata(missing)
    assert remote.translate_sequence_identifier(
        "BK006935.2", "ga4gh"
    ) == local.translate_sequence_identifier("BK006935.2", "ga4gh")


# ---- schema fuzzing ------------------------------------------------------------------------------
def test_schemathesis_finds_no_5xx_or_schema_violation(server: RestServer, tmp_path: Path) -> None:
    """All checks, bounded at 50 examples per operation, with two allowances.

    501 is not a server error here: refget requires it for start > end when circular sequences
    are not supported, and the description documents it; any other 5xx still fails.
    positive_data_acceptance is left out: a well-typed request can still be refused by rules a
    schema cannot state (start beyond the sequence, start > end, an unknown digest).
    """
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        '[checks.not_a_server_error]\nexpected-statuses = ["2xx", "3xx", "4xx", "501"]\n'
    )
    run = subprocess.run(
        [
            "schemathesis",
            "--config-file",
            str(config),
            "run",
            f"{server.url}/openapi.json",
            "--max-examples",
            "50",
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
            "--seed",
            "20261125",
            "--workers",
            "2",
            "--request-timeout",
            "10",
        ],
        capture_output=True,
        text=True,
        timeout=150,
        cwd=tmp_path,
    )
    tail = run.stdout[-4000:]
    assert run.returncode == 0, tail
    summary = tail.split("SUMMARY")[-1]
    assert re.search(r"\d+ generated, \d+ passed", summary), tail
    assert "failed" not in summary and "Failures" not in summary, tail


# ---- identifiers --------------------------------------------------------------------------------
def test_every_identifier_form_names_the_sequence(server: RestServer, data: Data) -> None:
    seq = data.seqs["BK006935.2"]
    sid = _seq_id(data, "BK006935.2")
    trunc = trunc512_hex(sid)
    forms = [
        MD5_I,
        MD5_I.upper(),
        f"md5:{MD5_I}",
        f"MD5:{MD5_I}",
        f"ga4gh:SQ.{sid}",
        f"SQ.{sid}",
        trunc,
        trunc.upper(),
        f"TRUNC512:{trunc}",
        f"sha512t24u:{sid}",
        "insdc:BK006935.2",
        "INSDC:BK006935.2",
        "BK006935.2",
        "ucsc:chrI",
        "UCSC:chrI",
    ]
    for ident in forms:
        for base in ("/sequence/", "/refget/1/sequence/"):
            r = server.get(f"{base}{ident}?start=100&end=130")
            assert r.status_code == 200, (base, ident, r.text)
            assert r.text == seq[100:130]
        r = server.get(f"/sequence/{ident}/metadata")
        assert r.status_code == 200 and r.json()["metadata"]["ga4gh"] == f"ga4gh:SQ.{sid}"


def test_metadata_bodies_by_version(server: RestServer, data: Data) -> None:
    sid = _seq_id(data, "BK006935.2")
    v2 = server.get(f"/sequence/{MD5_I}/metadata")
    assert v2.headers["content-type"] == f"{V2_JSON}; charset=us-ascii"
    md = v2.json()["metadata"]
    assert md["md5"] == MD5_I and md["length"] == 230218 and md["trunc512"] == trunc512_hex(sid)
    assert md["ga4gh"] == md["id"] == data.checksums["I"]["ga4gh"]
    names = {(a["naming_authority"], a["alias"]) for a in md["aliases"]}
    assert {
        ("insdc", "BK006935.2"),
        ("ucsc", "chrI"),
        ("MD5", MD5_I),
        ("ga4gh", f"SQ.{sid}"),
    } <= names
    v1 = server.get(f"/sequence/{MD5_I}/metadata", headers=V1J)
    assert v1.headers["content-type"] == f"{V1_JSON}; charset=us-ascii"
    md1 = v1.json()["metadata"]
    assert set(md1) == {"id", "md5", "trunc512", "length", "aliases"}
    assert md1["trunc512"] == data.checksums["I"]["sha512"] and md1["id"] == MD5_I
    assert server.get(f"/refget/1/sequence/{MD5_I}/metadata").json() == v1.json()


def test_service_info_by_version(server: RestServer) -> None:
    v2 = server.get("/sequence/service-info").json()
    assert v2["type"] == {"group": "org.ga4gh", "artifact": "refget", "version": "2.0.0"}
    assert v2["refget"]["circular_supported"] is False
    assert v2["refget"]["subsequence_limit"] is None
    assert {"md5", "ga4gh", "trunc512"} <= set(v2["refget"]["algorithms"])
    assert {"insdc", "ucsc"} <= set(v2["refget"]["identifier_types"])
    v1 = server.get("/sequence/service-info", headers=V1J).json()
    assert set(v1) == {"service"} and v1["service"]["circular_supported"] is False
    assert server.get("/refget/1/sequence/service-info").json() == v1


# ---- status codes -------------------------------------------------------------------------------
# (path, headers, status for v2 at /, status for v1 via Accept)
LEN_I = 230218
STATUS_CASES = [
    (f"/sequence/{MD5_I}", 200, 200),
    (f"/sequence/{MD5_I}?start=5&end=5", 200, 200),
    (f"/sequence/{MD5_I}?start=abc", 400, 400),
    (f"/sequence/{MD5_I}?start=-10&end=-29", 400, 400),
    (f"/sequence/{MD5_I}?end=4294967296", 400, 400),
    (f"/sequence/{MD5_I}?start={LEN_I}", 200, 416),
    (f"/sequence/{MD5_I}?start={LEN_I + 1}", 400, 416),
    (f"/sequence/{MD5_I}?start=10&end={LEN_I + 1}", 400, 416),
    (f"/sequence/{MD5_I}?start=20&end=10", 501, 501),
    (f"/sequence/{MD5_NC}?start=20&end=4", 501, 501),
    ("/sequence/some1111garbage1111ID", 404, 404),
    ("/sequence/0123456789abcdef0123456789abcdef", 404, 404),
    ("/sequence/insdc:XX000000.1", 404, 404),
    ("/sequence/ga4gh:SQ.notadigest", 404, 404),
    ("/sequence/chrAmb", 300, 300),
    ("/sequence/chrAmb/metadata", 300, 300),
    ("/sequence/nothing/metadata", 404, 404),
]


@pytest.mark.parametrize(("path", "v2", "v1"), STATUS_CASES)
def test_status_codes(server: RestServer, path: str, v2: int, v1: int) -> None:
    assert server.get(path).status_code == v2
    headers = V1J if path.endswith("/metadata") else V1
    assert server.get(path, headers=headers).status_code == v1
    assert server.get("/refget/1" + path).status_code == v1


@pytest.mark.parametrize(
    ("range_header", "v2", "v1"),
    [
        ("bytes=10-19", 206, 206),
        ("units=20-30", 400, 400),
        ("bytes=ab-19", 400, 400),
        ("bytes=-10-", 400, 400),
        ("bytes=1-2,5-6", 400, 400),
        ("bytes=59-50", 416, 416),
        (f"bytes={LEN_I}-{LEN_I + 5}", 400, 416),
        ("bytes=-0", 416, 416),
    ],
)
def test_range_status_codes(server: RestServer, range_header: str, v2: int, v1: int) -> None:
    path = f"/sequence/{MD5_I}"
    assert server.get(path, headers={"Range": range_header}).status_code == v2
    assert server.get(path, headers={**V1, "Range": range_header}).status_code == v1


def test_errors_are_problem_documents(server: RestServer) -> None:
    r = server.get("/sequence/chrAmb")
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == 300 and sorted(body["choices"]) == ["alt:chrAmb", "ucsc:chrAmb"]
    for choice in body["choices"]:
        assert server.get(f"/sequence/{choice}?start=0&end=5").status_code == 200
    r = server.get(f"/sequence/{MD5_I}?start=1", headers={"Range": "bytes=1-2"})
    assert r.status_code == 400 and "Range" in r.json()["detail"]
    r = server.get(f"/sequence/{MD5_I}", headers={"Range": f"bytes={LEN_I}-"})
    assert r.headers["content-range"] == f"bytes */{LEN_I}"
    assert server.get("/no/such/path").json()["status"] == 404
    r = server.client.post(f"{server.url}/sequence/{MD5_I}")
    assert r.status_code == 405 and "GET" in r.headers["allow"]


@pytest.mark.parametrize(
    ("path", "accept"),
    [
        (f"/sequence/{MD5_I}", "embl/some_json"),
        (f"/sequence/{MD5_I}", "application/json"),
        (f"/sequence/{MD5_I}", "text/plain;q=0"),
        (f"/sequence/{MD5_I}/metadata", "text/plain"),
        ("/sequence/service-info", "embl/some_json"),
        (f"/refget/1/sequence/{MD5_I}", V2_TEXT),
        (f"/refget/1/sequence/{MD5_I}/metadata", V2_JSON),
        ("/refget/1/sequence/service-info", V2_JSON),
    ],
)
def test_unacceptable_media_types_get_406(server: RestServer, path: str, accept: str) -> None:
    assert server.get(path, headers={"Accept": accept}).status_code == 406


def test_content_types_follow_accept(server: RestServer) -> None:
    path = f"/sequence/{MD5_I}?start=0&end=4"
    cases = [
        ({}, V2_TEXT),
        (V1, V1_TEXT),
        ({"Accept": V2_TEXT}, V2_TEXT),
        ({"Accept": "text/plain"}, V2_TEXT),
        ({"Accept": "*/*"}, V2_TEXT),
    ]
    for headers, ctype in cases:
        assert (
            server.get(path, headers=headers).headers["content-type"]
            == f"{ctype}; charset=us-ascii"
        )
    assert server.get("/refget/1" + path).headers["content-type"].startswith(V1_TEXT)


# ---- Range, streaming, HEAD, caching, gzip, CORS ------------------------------------------------
def test_ranges_and_subsequences(server: RestServer, data: Data) -> None:
    seq = data.seqs["BK006935.2"]
    path = f"/sequence/{MD5_I}"
    for header, (a, b) in [
        ("bytes=10-19", (10, 20)),
        ("bytes=0-0", (0, 1)),
        (f"bytes=10-{10**9}", (10, LEN_I)),
        ("bytes=230210-", (230210, LEN_I)),
        ("bytes=-5", (LEN_I - 5, LEN_I)),
    ]:
        r = server.get(path, headers={"Range": header})
        assert r.status_code == 206 and r.text == seq[a:b], header
        assert r.headers["content-range"] == f"bytes {a}-{b - 1}/{LEN_I}"
        assert r.headers["content-length"] == str(b - a)
        assert r.headers["accept-ranges"] == "bytes"
    r = server.get(path + "?start=10&end=20")
    assert r.headers["accept-ranges"] == "none" and "content-range" not in r.headers
    r = server.get(path + "?start=7&end=7")
    assert r.status_code == 200 and r.content == b"" and r.headers["content-length"] == "0"


def test_large_sequences_stream_whole_and_in_part(server: RestServer, data: Data) -> None:
    """3 Mbp is three streaming chunks; every route returns it intact with a Content-Length."""
    big = data.seqs["big"]
    sid = seq_id_of(big)
    with server.client.stream("GET", f"{server.url}/sequence/test:big") as r:
        assert r.headers["content-length"] == str(BIG_LEN)
        body = b"".join(r.iter_bytes())
    assert body.decode() == big
    r = server.get(f"/sequence/ga4gh:SQ.{sid}", headers={"Range": "bytes=1048000-2097999"})
    assert r.status_code == 206 and r.text == big[1048000:2098000]
    r = server.get("/seqrepo/1/sequence/test:big?start=5")
    assert r.text == big[5:]
    r = server.get("/seqrepo/1/sequence/test:big", headers={"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip" and r.text == big


def test_head_sends_headers_only(server: RestServer) -> None:
    r = server.head("/sequence/test:big")
    assert r.status_code == 200 and r.content == b""
    assert r.headers["content-length"] == str(BIG_LEN)
    r = server.head(f"/sequence/{MD5_I}", headers={"Range": "bytes=0-9"})
    assert r.status_code == 206 and r.headers["content-length"] == "10"


def _raw_exchange(url: str, requests: list[bytes]) -> list[tuple[bytes, bytes]]:
    """Send each request on one keep-alive connection and read its whole response (status line
    and headers, then Content-Length bytes); a response that never completes fails (timeout)."""
    host, port = url.removeprefix("http://").split(":")
    out = []
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        buf = b""
        for req in requests:
            sock.sendall(req)
            while b"\r\n\r\n" not in buf:
                chunk = sock.recv(65536)
                assert chunk, "connection closed before the headers"
                buf += chunk
            head, _, buf = buf.partition(b"\r\n\r\n")
            m = re.search(rb"(?im)^content-length: *(\d+)", head)
            n = 0 if req.startswith(b"HEAD") or b" 304 " in head.split(b"\r\n")[0] else int(m[1])
            while len(buf) < n:
                chunk = sock.recv(65536)
                assert chunk, "connection closed before the body"
                buf += chunk
            out.append((head, buf[:n]))
            buf = buf[n:]
        assert buf == b""
    return out


@pytest.mark.parametrize("which", ["server", "limited"])
def test_keep_alive_responses_complete(
    which: str, request: pytest.FixtureRequest, data: Data
) -> None:
    """The header block is held for the body's write (rest/protocol.py): responses without a
    body write (HEAD, 304), streamed ones and errors must still all arrive, in order, on one
    connection, on the event loop (`server`) and from threads (`limited`)."""
    srv: RestServer = request.getfixturevalue(which)
    sid = _seq_id(data, "BK006935.2")
    seq = data.seqs["BK006935.2"]

    def get(path: str, method: str = "GET", extra: str = "") -> bytes:
        return f"{method} {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode()

    got = _raw_exchange(
        srv.url,
        [
            get(f"/sequence/{MD5_I}?start=0&end=50"),
            get(f"/sequence/{MD5_I}", "HEAD"),
            get(f"/sequence/{MD5_I}?start=0&end=50", extra=f'If-None-Match: "SQ.{sid}"\r\n'),
            get(f"/refget/1/sequence/{MD5_I}/metadata"),
            get("/sequence/no-such-thing"),
            get("/sequence/test:big" if which == "server" else f"/sequence/{MD5_I}"),
            get(f"/sequence/{MD5_I}?start=50&end=60"),
        ],
    )
    statuses = [head.split(b" ")[1] for head, _body in got]
    assert statuses == [b"200", b"200", b"304", b"200", b"404", b"200", b"200"]
    assert got[0][1].decode() == seq[:50] and got[1][1] == b"" and got[2][1] == b""
    assert json.loads(got[3][1])["metadata"]["length"] == len(seq)
    assert got[5][1].decode() == (data.seqs["big"] if which == "server" else seq)
    assert got[6][1].decode() == seq[50:60]


def test_etag_and_caching(server: RestServer, data: Data) -> None:
    sid = _seq_id(data, "BK006935.2")
    path = f"/sequence/{MD5_I}?start=0&end=100"
    r = server.get(path)
    assert r.headers["etag"] == f'"SQ.{sid}"'
    cache = r.headers["cache-control"]
    assert "public" in cache and "immutable" in cache and "max-age=31536000" in cache
    assert "Accept" in r.headers["vary"]
    for inm in (r.headers["etag"], f'W/"SQ.{sid}"', f'"x", "SQ.{sid}"', "*"):
        again = server.get(path, headers={"If-None-Match": inm})
        assert again.status_code == 304 and again.content == b"", inm
        assert again.headers["etag"] == r.headers["etag"]
    assert server.get(path, headers={"If-None-Match": '"SQ.other"'}).status_code == 200
    md = server.get(f"/sequence/{MD5_I}/metadata")
    assert "immutable" not in md.headers["cache-control"]
    assert (
        server.get(
            f"/sequence/{MD5_I}/metadata", headers={"If-None-Match": md.headers["etag"]}
        ).status_code
        == 304
    )
    r = server.get("/seqrepo/1/sequence/BK006935.2?start=0&end=3")
    assert r.headers["etag"] == f'"SQ.{sid}"'


def test_gzip_only_outside_refget(server: RestServer, data: Data) -> None:
    """refget forbids content-coding (and the compliance suite counts Content-Length)."""
    seq = data.seqs["BK006935.2"]
    gz = {"Accept-Encoding": "gzip"}
    r = server.get("/seqrepo/1/sequence/BK006935.2", headers=gz)
    assert r.headers["content-encoding"] == "gzip" and r.text == seq
    raw = server.get("/seqrepo/1/sequence/BK006935.2", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers and raw.text == seq
    with server.client.stream("GET", f"{server.url}/openapi.json", headers=gz) as r:
        raw_bytes = b"".join(r.iter_raw())
    assert "/sequence/{id}" in json.loads(gzip.decompress(raw_bytes))["paths"]
    for path in (f"/sequence/{MD5_I}", f"/refget/1/sequence/{MD5_I}"):
        r = server.get(path, headers=gz)
        assert "content-encoding" not in r.headers and r.headers["content-length"] == str(LEN_I)


def test_cors(server: RestServer) -> None:
    r = server.get(f"/sequence/{MD5_I}?start=0&end=1", headers={"Origin": "https://x.example"})
    assert r.headers["access-control-allow-origin"] == "*"


# ---- the seqrepo REST API -----------------------------------------------------------------------
def test_seqrepo_api_statuses_and_bodies(server: RestServer, data: Data) -> None:
    seq = data.seqs["BK006935.2"]
    get = server.get
    assert get("/seqrepo/1/sequence/BK006935.2?start=10&end=20").text == seq[10:20]
    assert get("/seqrepo/1/sequence/BK006935.2?end=5").text == seq[:5]
    assert get(f"/seqrepo/1/sequence/{MD5_I[:10]}?start=0&end=5").text == seq[:5]  # MD5 prefix
    trunc = trunc512_hex(_seq_id(data, "BK006935.2"))
    assert get(f"/seqrepo/1/sequence/{trunc[:12]}?start=0&end=5").text == seq[:5]  # TRUNC512
    assert get(f"/seqrepo/1/sequence/BK006935.2?start={LEN_I + 9}").text == ""
    assert (
        get("/seqrepo/1/sequence/BK006935.2").headers["content-type"] == "text/plain; charset=utf-8"
    )
    assert get("/seqrepo/1/sequence/BK006935.2?start=20&end=10").status_code == 422
    assert get("/seqrepo/1/sequence/NOPE?start=20&end=10").status_code == 422  # before lookup
    assert get("/seqrepo/1/sequence/chrAmb").status_code == 422
    assert get("/seqrepo/1/metadata/chrAmb").status_code == 422
    assert get("/seqrepo/1/sequence/insdc:XX000000.1").status_code == 404
    assert get("/seqrepo/1/metadata/insdc:XX000000.1").status_code == 404
    assert get("/seqrepo/1/sequence/BK006935.2?start=x").status_code == 400
    md = get("/seqrepo/1/metadata/insdc:BK006935.2").json()
    assert set(md) == {"added", "aliases", "alphabet", "length"}
    assert md["length"] == LEN_I and md["alphabet"] == "ACGT" and md["added"].endswith("Z")
    ping = get("/seqrepo/1/ping").json()
    assert ping["dependencies"]["seqrepo"]["root"] == str(data.instance.resolve())


# ---- the service as a whole ---------------------------------------------------------------------
def test_openapi_document_is_served(server: RestServer, data: Data) -> None:
    doc = server.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert {
        "/sequence/{id}",
        "/sequence/{id}/metadata",
        "/sequence/service-info",
        "/refget/1/sequence/{id}",
        "/seqrepo/1/sequence/{alias}",
        "/seqrepo/1/metadata/{alias}",
    } <= set(doc["paths"])
    examples = doc["paths"]["/sequence/{id}"]["get"]["parameters"][0]["examples"]
    for ex in examples.values():
        assert server.get(f"/sequence/{ex['value']}?start=0&end=1").status_code == 200


def test_request_log(server: RestServer) -> None:
    server.get(f"/sequence/{MD5_I}?start=3&end=13")
    server.get("/sequence/nothing-here")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        text = server.log_file.read_text()
        if "nothing-here" in text:
            break
        time.sleep(0.1)
    assert re.search(rf'"GET /sequence/{MD5_I}\?start=3&end=13 HTTP/1.1" 200 10 [\d.]+ms', text)
    assert re.search(r'"GET /sequence/nothing-here HTTP/1.1" 404 \d+ ', text)


def test_limit_workers_and_threaded_mode(limited: RestServer, data: Data) -> None:
    seq = data.seqs["BK006935.2"]
    assert limited.get("/sequence/service-info").json()["refget"]["subsequence_limit"] == 100
    v1 = limited.get("/sequence/service-info", headers=V1J).json()
    assert v1["service"]["subsequence_limit"] == 100
    path = f"/sequence/{MD5_I}"
    assert limited.get(path + "?start=0&end=100").text == seq[:100]
    assert limited.get(path + "?start=0&end=101").status_code == 416
    assert limited.get(path + "?start=100").status_code == 416
    assert limited.get(path, headers={"Range": "bytes=0-100"}).status_code == 416
    assert limited.get(path, headers={"Range": "bytes=0-99"}).status_code == 206
    whole = limited.get(path)
    assert whole.status_code == 200 and whole.text == seq  # whole sequences are not limited
    big = limited.get("/sequence/test:big")
    assert big.text == data.seqs["big"]  # streamed
    # Keep-alive requests must not wait for delayed ACKs (~40 ms each): uvicorn's multi-worker
    # socket lacks TCP_NODELAY unless run() re-wraps it (Kludex/uvicorn#3149).
    limited.get(path + "?start=0&end=1")
    t0 = time.perf_counter()
    for i in range(30):
        assert limited.get(f"{path}?start={i}&end={i + 50}").status_code == 200
    assert time.perf_counter() - t0 < 0.9
    children = [p for p in os.listdir("/proc") if p.isdigit() and _ppid(p) == limited.proc.pid]
    workers = [p for p in children if b"spawn_main" in _cmdline(p)]  # not the resource tracker
    assert len(workers) == 2


def _ppid(pid: str) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def _cmdline(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_serve_refuses_a_directory_that_is_not_an_instance(tmp_path: Path) -> None:
    run = run_seqrepofs("serve", tmp_path, timeout=30)
    assert run.returncode == 1
    assert run.stderr.strip().count("\n") == 0 and "neither a SeqRepo instance" in run.stderr


def test_damaged_sequence_file_gives_500_problem_and_server_survives(tmp_path: Path) -> None:
    inst = tmp_path / "inst"
    with SeqRepo(inst, writeable=True) as sr:
        sr.store("ACGT" * 50_000, [{"namespace": "test", "alias": "bad"}])
    [bgz] = inst.glob("sequences/**/*.fa.bgz")
    os.chmod(bgz, 0o644)
    with open(bgz, "r+b") as fh:  # overwrite the middle of the compressed data
        fh.seek(bgz.stat().st_size // 2)
        fh.write(b"\x00" * 64)
    srv = start_rest_server(inst, tmp_path, "--no-access-log")
    try:
        for path in ("/sequence/test:bad", "/seqrepo/1/sequence/test:bad"):
            r = srv.get(path)
            assert r.status_code == 500, path
            assert r.headers["content-type"] == "application/problem+json"
            assert "CorruptFileError" in r.json()["detail"]
        assert srv.get("/sequence/test:bad/metadata").status_code == 200  # reads no residues
        assert srv.get("/sequence/test:bad?start=0&end=4").text == "ACGT"  # first block intact
        assert srv.proc.poll() is None
    finally:
        srv.stop()
