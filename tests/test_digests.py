"""Digests against every expected value in the real data's provenance and refget's oracle."""

from __future__ import annotations

import json
import re

import pytest
from support.data import REAL
from support.oracles import read_fasta

from seqrepofs import digests as dg

# From ../shared/docs/seqrepo-format.md §4 (checked there with hashlib against the reference).
VECTORS = [
    (
        "",
        "z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXc",
        "d41d8cd98f00b204e9800998ecf8427e",
        "da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "2jmj7l5rSw0yVb/vlWAYkK/YBwk",
    ),
    (
        "ACGT",
        "aKF498dAxcJAqme6QYQ7EZ07-fiw8Kw2",
        "f1f8f4bf413b16ad135722aa4591043e",
        "2108994e17f6cca9ff2352ada92b6511db076034",
        "IQiZThf2zKn/I1KtqStlEdsHYDQ",
    ),
    (
        "SMELLASSWEET",
        "bsoUMlD3TrEtlh9Dt1iT29mzfkwwFUDr",
        "8b2698fb0b0c93558a6adbb11edb1e4b",
        "6d0574c5cd37ea611283d101a52558b1365a441b",
        "bQV0xc036mESg9EBpSVYsTZaRBs",
    ),
    (
        "ASINACORNER",
        "LDz34B6fA_fLxFoc2agLrXQRYuupOGGM",
        "ea81b52627e387fc6edd8b9412cd3a99",
        "68c405fdc7479006b22e4558b3c5d5daef87cb7e",
        "aMQF/cdHkAayLkVYs8XV2u+Hy34",
    ),
]


@pytest.mark.parametrize("seq,sha512t24u,md5,sha1,seguid", VECTORS)
def test_vectors(seq: str, sha512t24u: str, md5: str, sha1: str, seguid: str) -> None:
    d = dg.digests(dg.normalise(seq))
    assert (d.sha512t24u, d.md5, d.sha1, d.seguid) == (sha512t24u, md5, sha1, seguid)
    assert d.vmc == "GS_" + sha512t24u and d.ga4gh == "SQ." + sha512t24u


def test_normalisation_ignores_case_whitespace_and_stop() -> None:
    assert dg.seq_id_of("ac gt\n*") == dg.seq_id_of("ACGT")


@pytest.mark.parametrize("seq,char,pos", [("AC-GT", "-", 2), ("ACGT1", "1", 4), (".A", ".", 0)])
def test_invalid_residue_named_with_position(seq: str, char: str, pos: int) -> None:
    with pytest.raises(ValueError, match=rf"invalid residue '{re.escape(char)}' at position {pos}"):
        dg.normalise(seq)


def test_refget_compliance_checksums() -> None:
    oracle = json.loads((REAL / "refget-compliance" / "checksums.json").read_text())
    for key, fname in (("I", "I.faa"), ("VI", "VI.faa"), ("NC", "NC.faa")):
        [(_, seq)] = read_fasta(REAL / "refget-compliance" / fname)
        d = dg.digests(dg.normalise(seq))
        want = oracle[key]
        assert d.md5 == want["md5"]
        assert dg.trunc512_hex(d.sha512t24u) == want["sha512"]
        assert dg.seq_id_from_trunc512(want["sha512"]) == d.sha512t24u
        assert "ga4gh:" + d.ga4gh == want["ga4gh"]


def test_every_provenance_digest() -> None:
    """Each md5/ga4gh pair PROVENANCE.md records for a shipped file matches its sequence."""
    by_md5: dict[str, str] = {}
    for folder in ("seqrepo-tests", "hgvs-sample", "refget-compliance"):
        for path in sorted((REAL / folder).iterdir()):
            if path.suffix in (".fai", ".json"):
                continue
            for _header, seq in read_fasta(path):
                d = dg.digests(dg.normalise(seq))
                by_md5[d.md5] = d.ga4gh
    text = (REAL / "PROVENANCE.md").read_text()
    pairs = re.findall(r"([0-9a-f]{32})[^0-9a-f\n]{0,12}?(SQ\.[\w-]{32})", text)
    checked = [(md5, ga4gh) for md5, ga4gh in pairs if md5 in by_md5]
    # 3 refget + 3 seqrepo-tests + ACGT + 6 hgvs-sample sequences are shipped in tests/data
    assert len({md5 for md5, _ in checked}) >= 13
    for md5, ga4gh in checked:
        assert by_md5[md5] == ga4gh, md5


def test_streaming_equals_one_shot() -> None:
    s = dg.StreamingDigester()
    for chunk in (b"ACG", b"", b"TTTN", b"A" * 1000):
        s.update(chunk)
    assert s.finish() == dg.digests(b"ACGTTTN" + b"A" * 1000)
    assert s.length == 1007
