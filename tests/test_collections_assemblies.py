"""Whole-assembly views recorded as collections: one mechanism for assemblies and loaded files.

Oracles: the bioutils GRCh38 report with generated residues (support.data), the view's own
records (assemblies.py, tested against samtools/bedtools there) and refget's seqcol digest.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bioutils.assemblies import get_assembly_names
from refget.utils import seqcol_digest
from support.data import GRCH38_LEFT_OUT, GRCH38_LENGTHS, grch38_subset, store_report_entries
from support.oracles import add_assembly_names

from seqrepofs import SeqRepo
from seqrepofs.assemblies import STYLES, get_view
from seqrepofs.assembly_collections import record_assembly_collections
from seqrepofs.loader import load
from seqrepofs.loader.collection import plan
from seqrepofs.store.collections import CollectionStore


@pytest.fixture()
def instance(tmp_path: Path) -> Path:
    inst = tmp_path / "master"
    with SeqRepo(inst, writeable=True) as sr:
        store_report_entries(sr, grch38_subset(), set(GRCH38_LEFT_OUT), GRCH38_LENGTHS, seed=3)
        sr.commit()
        add_assembly_names(sr, get_assembly_names())
    return inst


def test_each_view_becomes_a_collection_with_the_views_records(instance: Path) -> None:
    got = record_assembly_collections(str(instance), ["GRCh38"])
    names = {
        f"GRCh38{'' if s == 'ncbi' else '.' + s}{'.primary' if p else ''}"
        for s in STYLES
        for p in (False, True)
    }
    assert {c.name for c in got.recorded} == names
    sr = SeqRepo(instance)
    with CollectionStore(str(instance)) as store:
        for style in STYLES:
            for primary in (False, True):
                view = get_view(sr, "GRCh38", style, primary)
                info = store.get(view.base_name)
                recs = [(r.name, r.length, r.seq_id) for r in store.iter_records(info)]
                assert recs == [(r.name, r.length, r.seq_id) for r in view.records]
                level2 = store.level2(info)
                assert info.digest == view.seqcol_digest == seqcol_digest(level2)
                assert info.source == "assembly report GRCh38"
    again = record_assembly_collections(str(instance), ["GRCh38"])
    assert again.recorded == [] and set(again.unchanged) == names


def test_a_loaded_fasta_of_the_same_name_is_left_alone(instance: Path, tmp_path: Path) -> None:
    fa = tmp_path / "GRCh38.fa"
    fa.write_text(">mine\nACGT\n")
    load(str(instance), [str(fa)], None, collections=plan([str(fa)]))
    got = record_assembly_collections(str(instance), ["GRCh38"])
    assert got.skipped == ["GRCh38"]
    with CollectionStore(str(instance)) as store:
        mine = store.get("GRCh38")
        assert [r.name for r in store.iter_records(mine)] == ["mine"]
        assert store.get("GRCh38.ucsc").count > 20
