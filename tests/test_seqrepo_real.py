"""The two real instances written by biocommons.seqrepo open read-only and read exactly."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from support.data import INSTANCES, REAL
from support.files import tree_state
from support.oracles import read_fasta

from seqrepofs import SeqRepo
from seqrepofs.digests import digests, normalise


def test_rest_service_instance_matches_refget_sources(real_instances: dict[str, Path]) -> None:
    root = real_instances["rest-service-2019"]
    before = tree_state(root)
    sources = {}
    for fname in ("I.faa", "VI.faa", "NC.faa"):
        [(header, seq)] = read_fasta(REAL / "refget-compliance" / fname)
        sources[header.split()[0]] = seq
    rng = random.Random(7)
    with SeqRepo(root) as sr:
        assert len(list(sr.aliases.find_aliases(namespace="test"))) == 3
        for name, seq in sources.items():
            d = digests(normalise(seq))
            proxy = sr[f"MD5:{d.md5}"]
            assert proxy.seq_id == d.sha512t24u
            assert len(proxy) == len(seq)
            assert str(proxy) == seq.upper()
            assert sr.fetch_uri(f"ga4gh:{d.ga4gh}") == seq.upper()
            assert sr[f"sha512t24u:{d.sha512t24u}"][:50] == seq[:50].upper()
            assert sr[f"VMC:{d.vmc}"][-10:] == seq[-10:].upper()
            for alias in (d.sha1, d.seguid):
                assert sr[alias].seq_id == d.sha512t24u
            for _ in range(200):
                a = rng.randrange(len(seq))
                b = rng.randrange(a, min(len(seq), a + 5000) + 1)
                assert sr.fetch(d.md5, a, b) == seq[a:b].upper()
            # the alias in namespace `test` is the whole defline, with spaces and commas
            test_aliases = [a for a in sr.translate_alias(d.md5) if a.startswith("test:")]
            assert len(test_aliases) == 1 and test_aliases[0].startswith(f"test:{name}")
            assert sr[test_aliases[0]].seq_id == d.sha512t24u
    assert tree_state(root) == before, "a read-only open modified the instance"


def test_seqrepo_rs_instance() -> None:
    [(header, seq)] = read_fasta(INSTANCES / "NM_001304430.2.fasta")
    sr = SeqRepo(INSTANCES / "seqrepo-rs-2023")
    assert sr["NM_001304430.2"][0:10] == "ACTGCTGAGC"
    assert sr.fetch("NM_001304430.2", 100, 110) == "ATGTAGGTAA"
    assert str(sr["refseq:NM_001304430.2"]) == seq
    assert str(sr["NCBI:NM_001304430.2"]) == seq
    info = sr.sequences.fetch_seqinfo("5q5HZTCRudL17NTiv5Bn6th__0FrZH04")
    assert info["len"] == 1873 and info["alpha"] == "ACGT"
    assert info["added"].isoformat() == "2023-02-16T09:46:06"
    assert sr.namespaces() == [
        "MD5",
        "NCBI",
        "SEGUID",
        "SHA1",
        "VMC",
        "ga4gh",
        "refseq",
        "sha512t24u",
    ]
    assert "refseq:NM_001304430.2" in sr and "refseq:NM_000000.0" not in sr
    sr.close()


def test_slicing_semantics_on_real_instance() -> None:
    [(_, seq)] = read_fasta(INSTANCES / "NM_001304430.2.fasta")
    sp = SeqRepo(INSTANCES / "seqrepo-rs-2023")["NM_001304430.2"]
    assert sp[-10:] == seq[-10:]
    assert sp[-1] == seq[-1] and sp[0] == seq[0]
    assert sp[5:2] == "" and sp[:] == seq and sp[1800:5000] == seq[1800:]
    with pytest.raises(IndexError):
        sp[len(seq)]
    with pytest.raises(ValueError, match="contiguous"):
        sp[0:10:2]
    assert "".join(iter(sp)) == seq
    assert reversed(sp) == seq[::-1]
    assert sp == seq and hash(sp) == hash(seq) and bool(sp)
    assert repr(sp) == f"SequenceProxy(seq_id={sp.seq_id}, len={len(seq)})"
    assert "refseq:NM_001304430.2" in sp.aliases and "ga4gh:SQ." + sp.seq_id in sp.aliases
