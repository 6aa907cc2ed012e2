"""Real mounts: every file's bytes, and what samtools, bedtools, pysam and pyfaidx read from them.

Sources: both real instances (aliases with spaces, commas, slashes) and a generated repository
of 300 sequences including an empty one and a 3 Mb one. Expected bytes come from the Python
API's sequences and the independent oracles in support.oracles, never from seqrepofs.fs.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import random
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pyfaidx
import pysam
import pytest
from support.cli import run_seqrepofs
from support.data import (
    BIG_LENGTH,
    REAL_NAMES,
    build_root,
    current_aliases,
    random_regions,
    real_instance,
)
from support.fuse import Mounted, needs_fuse
from support.oracles import encode, fai, naive_fasta_record, sam_dict

from seqrepofs.seqrepo import SeqRepo

pytestmark = [needs_fuse, pytest.mark.fuse, pytest.mark.timeout(120)]

SOURCES = ("generated", *REAL_NAMES)


class Source:
    """A mounted source with what it should contain."""

    def __init__(self, name: str, src: Path, mnt: Path) -> None:
        self.name, self.src, self.mnt = name, src, mnt
        sr = SeqRepo(src)
        self.aliases = current_aliases(sr)  # (ns, alias) -> seq_id
        self.seqs = {sid: sr.sequences.fetch(sid) for sid in set(self.aliases.values())}
        sr.close()
        self.real_mnt = os.path.realpath(mnt)

    def fasta(self, ns: str, alias: str) -> Path:
        return self.mnt / encode(ns) / (encode(alias) + ".fa")

    def fasta_bytes(self, ns: str, alias: str) -> bytes:
        """What the .fa of `alias` in `ns` holds, by the naive writer."""
        return naive_fasta_record(encode(alias), self.seqs[self.aliases[ns, alias]])

    def by_namespace(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = defaultdict(list)
        for ns, alias in self.aliases:
            out[ns].append(alias)
        return out

    def main_records(self) -> list[tuple[str, str]]:
        """(alias, sequence) for each non-empty sequence of the main namespace."""
        ns = self.main_namespace()
        pairs = [(a, self.seqs[self.aliases[ns, a]]) for a in self.by_namespace()[ns]]
        return [(a, seq) for a, seq in pairs if seq]

    def sample(self, rng: random.Random, k: int) -> list[tuple[str, str]]:
        """main_records: every one of 100 kb or more, then `k` of them at random."""
        records = self.main_records()
        big = [r for r in records if len(r[1]) >= 100_000]
        return big + rng.sample(records, min(k, len(records)))

    def main_namespace(self) -> str:
        """The namespace naming every sequence once (refseq, or the first that does)."""
        per_ns = self.by_namespace()
        for ns in ("refseq", "test", "VMC"):
            if ns in per_ns:
                return ns
        return sorted(per_ns)[0]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A snapshot (read-only, as users mount them) of a generated repository."""
    return build_root(tmp_path_factory.mktemp("gen"))


@pytest.fixture(scope="module", params=SOURCES)
def source(
    request: pytest.FixtureRequest, generated: Path, tmp_path_factory: pytest.TempPathFactory
):
    name = request.param
    src = generated if name == "generated" else real_instance(name)
    mnt = tmp_path_factory.mktemp("mnt") / name
    with Mounted(src, mnt):
        yield Source(name, src, mnt)


def test_listing_matches_aliases(source: Source) -> None:
    expected_dirs = {encode(ns) for ns, _ in source.aliases} | {"collections"}
    assert set(os.listdir(source.mnt)) == expected_dirs
    for ns, aliases in source.by_namespace().items():
        names = set(os.listdir(source.mnt / encode(ns)))
        stems = {encode(a) for a in aliases}
        expected = set()
        for stem in stems:
            expected |= {stem + ".fa", stem + ".fa.fai", stem + ".fa.dict", stem + ".dict"}
        assert names == expected, ns
        # one name per file: the .dict of "X.fa" is hidden when alias "X" also exists
        listed = os.listdir(source.mnt / encode(ns))
        assert len(listed) == len(names)


def test_every_file_byte_for_byte(source: Source) -> None:
    """cat of every .fa, .fa.fai, .dict and .fa.dict equals the oracle; stat sizes are exact;
    index files share the .fa's mtime (so pyfaidx/bedtools never think they are stale)."""
    for (ns, alias), seq_id in source.aliases.items():
        seq = source.seqs[seq_id]
        name = encode(alias)
        fa = source.fasta(ns, alias)
        ur_path = f"{source.real_mnt}/{encode(ns)}/{name}.fa"
        expected = {
            fa: naive_fasta_record(name, seq),
            Path(f"{fa}.fai"): fai(name, seq),
            Path(f"{fa}.dict"): sam_dict(name, seq, ur_path),
        }
        if not (alias.endswith(".fa") and (ns, alias[:-3]) in source.aliases):
            expected[fa.with_name(name + ".dict")] = expected[Path(f"{fa}.dict")]
        mtimes = set()
        for path, want in expected.items():
            st = path.stat()
            assert st.st_size == len(want), path
            assert path.read_bytes() == want, path
            mtimes.add(st.st_mtime_ns)
        assert len(mtimes) == 1, fa


def test_md5sum_of_main_namespace(source: Source) -> None:
    ns = source.main_namespace()
    aliases = source.by_namespace()[ns]
    paths = [str(source.fasta(ns, a)) for a in aliases]
    out = subprocess.run(["md5sum", *paths], capture_output=True, text=True, check=True).stdout
    got = dict(reversed(line.split("  ", 1)) for line in out.splitlines())
    for alias, path in zip(aliases, paths, strict=True):
        want = hashlib.md5(source.fasta_bytes(ns, alias)).hexdigest()
        assert got[path] == want


def test_samtools_faidx_index_and_dict_equal_served(source: Source, tmp_path: Path) -> None:
    """samtools indexes a copy of each .fa exactly as served; samtools dict matches the .dict."""
    ns = source.main_namespace()
    for i, alias in enumerate(source.by_namespace()[ns]):
        fa = source.fasta(ns, alias)
        seq = source.seqs[source.aliases[ns, alias]]
        if seq:  # htslib refuses to index a file whose only record is empty
            copy = tmp_path / f"{i}.fa"
            copy.write_bytes(fa.read_bytes())
            subprocess.run(["samtools", "faidx", str(copy)], check=True)
            assert Path(str(copy) + ".fai").read_bytes() == Path(str(fa) + ".fai").read_bytes()
        sam = subprocess.run(["samtools", "dict", str(fa)], capture_output=True, check=True)
        assert sam.stdout == Path(str(fa) + ".dict").read_bytes()


def _region_name(name: str) -> str:
    return "{" + name + "}" if ":" in name else name


def test_samtools_faidx_2000_random_regions_per_file(source: Source, tmp_path: Path) -> None:
    rng = random.Random(11)
    ns = source.main_namespace()
    regions_file = tmp_path / "regions.txt"
    checked = 0
    for alias, seq in source.main_records():
        name = encode(alias)
        regions = random_regions(rng, len(seq), 2000)
        regions_file.write_text("".join(f"{_region_name(name)}:{a}-{b}\n" for a, b in regions))
        out = subprocess.run(
            [
                "samtools",
                "faidx",
                "-n",
                "1000000",
                "-r",
                str(regions_file),
                str(source.fasta(ns, alias)),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        got = [line for line in out.splitlines() if not line.startswith(">")]
        assert got == [seq[a - 1 : b] for a, b in regions], alias
        checked += 1
    assert checked


def test_special_names_through_samtools_and_pysam(source: Source) -> None:
    """Aliases with spaces, commas, colons, slashes, %, non-ASCII: names are the file stems."""
    rng = random.Random(5)
    for (ns, alias), seq_id in source.aliases.items():
        seq = source.seqs[seq_id]
        if not seq or encode(alias) == alias:
            continue
        name = encode(alias)
        fa = source.fasta(ns, alias)
        a, b = random_regions(rng, len(seq), 1)[0]
        out = subprocess.run(
            ["samtools", "faidx", "-n", "1000000", str(fa), f"{_region_name(name)}:{a}-{b}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        assert out[1:] == [seq[a - 1 : b]], alias
        with pysam.FastaFile(str(fa)) as f:
            assert list(f.references) == [name]
            assert f.fetch(name, a - 1, b) == seq[a - 1 : b]


def test_bedtools_getfasta(source: Source, tmp_path: Path) -> None:
    rng = random.Random(7)
    ns = source.main_namespace()
    for alias, seq in source.sample(rng, 10):
        name = encode(alias)
        regions = [(a - 1, b) for a, b in random_regions(rng, len(seq), 200)]
        bed = tmp_path / "r.bed"
        bed.write_text("".join(f"{name}\t{a}\t{b}\n" for a, b in regions))
        out = subprocess.run(
            ["bedtools", "getfasta", "-tab", "-fi", str(source.fasta(ns, alias)), "-bed", str(bed)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        got = [line.split("\t")[1] for line in out.splitlines()]
        assert got == [seq[a:b] for a, b in regions], alias


def test_pysam_fastafile(source: Source) -> None:
    rng = random.Random(8)
    ns = source.main_namespace()
    for alias, seq in source.main_records():
        name = encode(alias)
        with pysam.FastaFile(str(source.fasta(ns, alias))) as f:
            assert list(f.references) == [name] and list(f.lengths) == [len(seq)]
            for a, b in random_regions(rng, len(seq), 50):
                assert f.fetch(name, a - 1, b) == seq[a - 1 : b]


def test_pyfaidx_read_only(source: Source) -> None:
    """pyfaidx must take the served .fai as is (same mtime): no rebuild, no write attempt."""
    rng = random.Random(9)
    ns = source.main_namespace()
    for alias, seq in source.sample(rng, 20):
        name = encode(alias)
        with pyfaidx.Fasta(
            str(source.fasta(ns, alias)), rebuild=False, build_index=False, as_raw=True
        ) as f:
            assert list(f.keys()) == [name]
            assert len(f[name]) == len(seq)
            for a, b in random_regions(rng, len(seq), 50):
                assert f[name][a - 1 : b] == seq[a - 1 : b]


def test_mmap_of_a_fasta(source: Source) -> None:
    ns = source.main_namespace()
    alias = max(source.by_namespace()[ns], key=lambda a: len(source.seqs[source.aliases[ns, a]]))
    expected = source.fasta_bytes(ns, alias)
    with (
        open(source.fasta(ns, alias), "rb") as fh,
        mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m,
    ):
        assert len(m) == len(expected)
        rng = random.Random(3)
        for _ in range(200):
            a = rng.randrange(len(expected))
            b = min(len(expected), a + rng.randint(1, 70_000))
            assert m[a:b] == expected[a:b]
        assert m[:] == expected


READER = r"""
import random, sys
plain, served, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
want = open(plain, "rb").read()
rng = random.Random(seed)
with open(served, "rb", buffering=0) as fh:
    for _ in range(300):
        a = rng.randrange(len(want))
        n = rng.randint(1, 300_000)
        if fh.seek(a) != a or fh.read(n) != want[a : a + n]:
            sys.exit(f"mismatch at {a}+{n}")
"""


def test_eight_processes_read_random_ranges(source: Source, tmp_path: Path) -> None:
    """8 processes at once, each reading 300 random ranges of the 4 largest files."""
    ns = source.main_namespace()
    aliases = sorted(
        source.by_namespace()[ns], key=lambda a: -len(source.seqs[source.aliases[ns, a]])
    )
    files = []
    for alias in aliases[:4]:
        plain = tmp_path / f"{len(files)}.fa"
        plain.write_bytes(source.fasta_bytes(ns, alias))
        files.append((plain, source.fasta(ns, alias)))
    if source.name == "generated":
        assert os.path.getsize(files[0][0]) > BIG_LENGTH  # the multi-megabase sequence
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                READER,
                str(files[i % len(files)][0]),
                str(files[i % len(files)][1]),
                str(i),
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(8)
    ]
    errors = [p.communicate(timeout=90)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, errors


def test_statfs_and_stat(source: Source) -> None:
    st = os.statvfs(source.mnt)
    assert st.f_blocks > 0 and st.f_bavail == 0
    assert os.stat(source.mnt).st_mode & 0o777 == 0o555
    ns, alias = next(iter(source.aliases))
    assert os.stat(source.fasta(ns, alias)).st_mode & 0o777 == 0o444


def test_fasta_files_equal_seqrepofs_export(source: Source) -> None:
    """Each mounted .fa is byte-identical to `seqrepofs export -n NS --header name` output."""
    per_ns = source.by_namespace()
    namespaces = [source.main_namespace()] + [ns for ns in per_ns if " " in ns]
    for ns in namespaces:
        proc = run_seqrepofs(
            "export",
            "-i",
            source.src.name,
            "-n",
            ns,
            "--header",
            "name",
            "--line-width",
            "60",
            root=source.src.parent,
            check=True,
            text=False,
            timeout=120,
        )
        parts: dict[str, list[bytes]] = {}
        name = ""
        for line in proc.stdout.splitlines(keepends=True):
            if line.startswith(b">"):
                name = line[1:-1].decode()
                parts[name] = []
            parts[name].append(line)
        records = {k: b"".join(v) for k, v in parts.items()}
        assert sorted(records) == sorted(encode(a) for a in per_ns[ns]), ns
        for alias in per_ns[ns]:
            assert source.fasta(ns, alias).read_bytes() == records[encode(alias)], alias
