"""The repo subcommands, run as real `python -m seqrepofs` processes on real data."""

from __future__ import annotations

import gzip
import os
import shutil
import sqlite3
import stat
import subprocess
import zlib
from pathlib import Path

import pytest
from support.cli import checkout_env, run_seqrepofs, seqrepofs_cmd
from support.data import REAL
from support.files import tree_state
from support.oracles import naive_fasta, read_fasta

from seqrepofs import SeqRepo
from seqrepofs.digests import seq_id_of
from seqrepofs.fasta_view import FastaLayout, encode_name
from seqrepofs.loader import parse_defline

LOADS = [  # (namespace, file): real sequences, plain and gzip, NCBI gi|…|ref| deflines
    ("insdc", REAL / "refget-compliance" / "NC.faa"),
    ("insdc", REAL / "refget-compliance" / "I.faa"),
    ("refseq", REAL / "hgvs-sample" / "f1.human.protein.small.faa"),
    ("refseq", REAL / "hgvs-sample" / "f2.human.rna.small.fna"),
    ("refseq", REAL / "hgvs-sample" / "f3.refseqgene4.genomic.small.fna"),
    ("test", REAL / "seqrepo-tests" / "sequences.fa.gz"),
    ("test", REAL / "seqrepo-tests" / "test.fa"),
]


def run(
    *args: str, root: Path | None = None, input: bytes | None = None, check: bool = True
) -> subprocess.CompletedProcess[bytes]:
    """`seqrepofs [-r ROOT] ARGS` with bytes output; by default it must succeed."""
    return run_seqrepofs(*args, root=root, input=input, check=check, text=False)


def expected_records() -> dict[tuple[str, str], str]:
    """(namespace, alias) -> upper-cased sequence, read independently of the loader."""
    out = {}
    for ns, path in LOADS:
        for header, seq in read_fasta(path):
            for a in parse_defline(header, ns):
                out[(a["namespace"], a["alias"])] = seq.upper()
    return out


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli") / "root"
    run("init", root=root)
    for ns in dict.fromkeys(ns for ns, _ in LOADS):
        run("load", "-n", ns, *[str(p) for n, p in LOADS if n == ns], root=root)
    return root


# ---- init / show-status ------------------------------------------------------------------------


def test_init_then_status_on_master_and_init_twice(tmp_path: Path) -> None:
    root = tmp_path / "root"
    run("init", root=root)
    status = run("show-status", root=root).stdout.decode().splitlines()
    assert len(status) == 5
    assert status[0].startswith("seqrepofs ")
    assert status[1].startswith(f"instance directory: {root / 'master'}, ")
    assert status[2] == "backends: fastadir (schema 1), seqaliasdb (schema 1) "
    assert status[3] == "sequences: 0 sequences, 0 residues, 0 files"
    assert status[4] == "aliases: 0 aliases, 0 current, 0 namespaces, 0 sequences"
    again = run("init", root=root, check=False)
    assert again.returncode == 1
    assert again.stderr.decode() == f"seqrepofs: error: {root / 'master'} exists and is not empty\n"


def test_show_status_counts(loaded: Path) -> None:
    status = run("show-status", "-i", "master", root=loaded).stdout.decode().splitlines()
    sr = SeqRepo(loaded / "master")
    try:
        ss, sa = sr.sequences.stats(), sr.aliases.stats()
    finally:
        sr.close()
    assert status[3] == (
        f"sequences: {ss['n_sequences']} sequences, {ss['tot_length']} residues,"
        f" {ss['n_files']} files"
    )
    assert status[4] == (
        f"aliases: {sa['n_aliases']} aliases, {sa['n_current']} current,"
        f" {sa['n_namespaces']} namespaces, {sa['n_sequences']} sequences"
    )


# ---- load ------------------------------------------------------------------------------------


def test_load_stores_every_record(loaded: Path) -> None:
    sr = SeqRepo(loaded / "master")
    try:
        for (ns, alias), seq in expected_records().items():
            assert sr.fetch(alias, namespace=ns) == seq, (ns, alias)
        assert (
            sr["refseq:NP_001005405.1"][:10]
            == expected_records()[("refseq", "NP_001005405.1")][:10]
        )
        assert len(sr.sequences) == len(set(expected_records().values()))
    finally:
        sr.close()


@pytest.mark.parametrize("kind", ["plain", "gzip", "bgzf", "bzip2", "stdin"])
def test_load_formats(tmp_path: Path, kind: str) -> None:
    src = REAL / "hgvs-sample" / "f2.human.rna.small.fna"
    data = src.read_bytes()
    path = tmp_path / "input"  # no extension: the format comes from the magic bytes
    if kind == "plain":
        path.write_bytes(data)
    elif kind == "gzip":
        path.write_bytes(gzip.compress(data))
    elif kind == "bgzf":
        path.write_bytes(
            subprocess.run(["bgzip", "-c", str(src)], capture_output=True, check=True).stdout
        )
    elif kind == "bzip2":
        path.write_bytes(
            subprocess.run(["bzip2", "-c", str(src)], capture_output=True, check=True).stdout
        )
    root = tmp_path / "root"
    run("init", root=root)
    if kind == "stdin":
        run("load", "-n", "refseq", "-", root=root, input=data)
    else:
        run("load", "-n", "refseq", str(path), root=root)
    sr = SeqRepo(root / "master")
    try:
        for header, seq in read_fasta(src):
            acc = parse_defline(header, "x")[0]["alias"]
            assert sr[f"refseq:{acc}"][:] == seq.upper()
            assert sr[f"NCBI:{acc}"].seq_id == seq_id_of(seq)
    finally:
        sr.close()


def test_repointed_alias_warning(tmp_path: Path) -> None:
    root = tmp_path / "root"
    run("init", root=root)
    (tmp_path / "one.fa").write_text(">X.1\nACGT\n")
    (tmp_path / "two.fa").write_text(">X.1 again\nGGGG\n")
    run("load", "-n", "test", str(tmp_path / "one.fa"), root=root)
    proc = run("load", "-n", "test", str(tmp_path / "two.fa"), root=root)
    err = proc.stderr.decode()
    old, new = seq_id_of("ACGT"), seq_id_of("GGGG")
    assert f"alias test:X.1 re-pointed from {old} to {new}" in err
    assert "Traceback" not in err


# ---- bad input: exit 1, one line, instance unchanged ------------------------------------------

BAD = {
    "invalid_residue": (
        b">A.1\nACGT\n>B.1\nAC-GT\n",
        r"bad, line 4, record 2 (B.1): invalid residue '-' at column 3",
    ),
    "empty_record": (b">A.1\nACGT\n>B.1\n>C.1\nAC\n", r"bad, line 3, record 2 (B.1): empty record"),
    "no_name": (b">A.1\nACGT\n> \nAC\n", r"bad, line 3, record 2: header has no name"),
    "not_fasta": (b"@read1\nACGT\n+\nIIII\n", r"bad, line 1: text before the first '>' header"),
    "empty_file": (b"", r"bad: no FASTA records found"),
}


def bad_cases(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    cases: dict[str, tuple[list[str], str]] = {}
    for name, (data, message) in BAD.items():
        path = tmp_path / f"{name}" / "bad"
        path.parent.mkdir()
        path.write_bytes(data)
        # a good file first: the bad one aborts a load that has already stored records
        good = str(REAL / "seqrepo-tests" / "test.fa")
        cases[name] = (["load", "-n", "test", good, str(path)], f"{path.parent}/" + message)
    gz = tmp_path / "trunc.fa.gz"
    whole = gzip.compress((REAL / "hgvs-sample" / "f3.refseqgene4.genomic.small.fna").read_bytes())
    gz.write_bytes(whole[: len(whole) // 2])
    line = zlib.decompressobj(31).decompress(gz.read_bytes()).count(b"\n") + 1
    cases["truncated_gzip"] = (
        ["load", "-n", "refseq", str(gz)],
        f"{gz}, line {line}, record 2 (gi|",
    )
    cases["truncated_gzip_"] = (
        ["load", "-n", "refseq", str(gz)],
        "|): truncated or corrupt compressed data",
    )
    fa = str(REAL / "seqrepo-tests" / "test.fa")
    cases["namespace_dash"] = (["load", "-n", "-", fa], "namespace '-' is not supported")
    cases["namespace_empty"] = (["load", "-n", "", fa], "namespace must not be empty")
    cases["missing_instance"] = (
        ["load", "-i", "nope", "-n", "test", fa],
        "nope: no such SeqRepo instance",
    )
    cases["missing_file"] = (
        ["load", "-n", "test", str(tmp_path / "nope.fa")],
        f"{tmp_path / 'nope.fa'}: no such file",
    )
    return cases


def test_bad_inputs_exit_1_with_one_line_and_change_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    run("init", root=root)
    run("load", "-n", "insdc", str(REAL / "refget-compliance" / "NC.faa"), root=root)
    before = tree_state(root)
    for name, (args, message) in bad_cases(tmp_path).items():
        proc = run(*args, root=root, check=False)
        err = proc.stderr.decode()
        assert proc.returncode == 1, (name, err)
        assert err.count("\n") == 1 and err.startswith("seqrepofs: error: "), (name, err)
        assert message in err, (name, err)
        assert tree_state(root) == before, name


def test_help_everywhere() -> None:
    from click.testing import CliRunner

    from seqrepofs.cli import cli
    from seqrepofs.commands import register_all

    register_all()
    commands = [
        "init",
        "load",
        "snapshot",
        "update-latest",
        "list-local-instances",
        "show-status",
        "export",
        "export-aliases",
        "update-digests",
        "add-assembly-names",
        "start-shell",
        "check",
    ]
    runner = CliRunner()
    top = runner.invoke(cli, ["--help"])
    assert top.exit_code == 0
    for command in commands:
        assert command in top.output
        result = runner.invoke(cli, [command, "--help"], prog_name="seqrepofs")
        assert result.exit_code == 0, command
        assert result.output.startswith(f"Usage: seqrepofs {command}"), command
    assert run("load", "--help").stdout.startswith(b"Usage: seqrepofs load")


# ---- export ----------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [1, 60, 61, 100])
def test_export_equals_naive_wrapping(loaded: Path, width: int) -> None:
    wanted = [
        (ns, parse_defline(h, ns)[0]["alias"], seq.upper())
        for ns, path in LOADS[:5]
        for h, seq in read_fasta(path)
    ]
    out = run(
        "export",
        "-i",
        "master",
        "--line-width",
        str(width),
        "--header",
        "name",
        *[f"{ns}:{acc}" for ns, acc, _ in wanted],
        root=loaded,
    ).stdout.decode()
    assert out == naive_fasta([(acc, seq) for _ns, acc, seq in wanted], width).decode()


@pytest.mark.parametrize("index", range(5))
def test_export_equals_input_file_byte_for_byte(loaded: Path, index: int) -> None:
    """Each real file, exported at its own line width: the same sequence lines, upper-cased."""
    ns, path = LOADS[index]
    lines = path.read_text().splitlines()
    width = len(lines[1])
    accs = [f"{ns}:{parse_defline(h, ns)[0]['alias']}" for h, _ in read_fasta(path)]
    out = (
        run(
            "export",
            "-i",
            "master",
            "--line-width",
            str(width),
            "--header",
            "name",
            *accs,
            root=loaded,
        )
        .stdout.decode()
        .splitlines()
    )
    assert [ln for ln in out if not ln.startswith(">")] == [
        ln.upper()
        for ln in lines
        if ln and not ln.startswith(">")  # (f3 has a blank line)
    ]


def test_export_namespace_matches_mount_bytes_and_samtools(loaded: Path, tmp_path: Path) -> None:
    out = run(
        "export",
        "-i",
        "master",
        "-n",
        "refseq",
        "--header",
        "name",
        "--line-width",
        "70",
        root=loaded,
    ).stdout
    expected = {a: s for (ns, a), s in expected_records().items() if ns == "refseq"}
    sr = SeqRepo(loaded / "master")
    try:
        order = [
            r["alias"]
            for r in sr.aliases.find_aliases(namespace="refseq")
            if r["namespace"] == "refseq"
        ]
        layout = FastaLayout.build([(encode_name(a), len(expected[a])) for a in order], 70)
        served = layout.render(0, layout.size, lambda rec, s, e: expected[order[rec]][s:e].encode())
    finally:
        sr.close()
    assert out == served
    fa = tmp_path / "refseq.fa"
    fa.write_bytes(out)
    subprocess.run(["samtools", "faidx", str(fa)], check=True)
    assert (tmp_path / "refseq.fa.fai").read_bytes() == layout.fai_text()
    for acc, seq in expected.items():
        got = subprocess.run(
            ["samtools", "faidx", str(fa), f"{acc}:1-{len(seq)}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "".join(got.splitlines()[1:]) == seq


def test_export_default_header_is_the_references(loaded: Path) -> None:
    out = run("export", "-i", "master", "-n", "test", root=loaded).stdout.decode()
    headers = [ln for ln in out.splitlines() if ln.startswith(">")]
    assert ">test:test1A test:test1B test:test1C" in headers
    assert ">NCBI:NM_000059.3 refseq:NM_000059.3 test:NM_000059.3" not in headers
    everything = run("export", "-i", "master", root=loaded).stdout.decode()
    assert everything.count(">") == len(set(expected_records().values()))
    acgt = seq_id_of("ACGT")
    assert (
        f">MD5:f1f8f4bf413b16ad135722aa4591043e SEGUID:IQiZThf2zKn/I1KtqStlEdsHYDQ"
        f" SHA1:2108994e17f6cca9ff2352ada92b6511db076034 VMC:GS_{acgt} ga4gh:SQ.{acgt}"
        f" sha512t24u:{acgt} test:test1A test:test1B test:test1C\nACGT\n"
    ) in everything


def test_export_errors(loaded: Path) -> None:
    proc = run("export", "-i", "master", "refseq:NM_NOPE.1", root=loaded, check=False)
    assert proc.returncode == 1
    assert proc.stderr.decode() == "seqrepofs: error: refseq:NM_NOPE.1: no such alias in refseq\n"
    proc = run("export", "-i", "master", "--header", "name", root=loaded, check=False)
    assert proc.returncode == 1 and b"needs a namespace" in proc.stderr
    proc = run("export", "-i", "nope", root=loaded, check=False)
    assert proc.returncode == 1 and b"nope: no such SeqRepo instance" in proc.stderr


def test_export_aliases(loaded: Path) -> None:
    lines = run("export-aliases", "-i", "master", "-n", "test", root=loaded).stdout.decode()
    acgt = seq_id_of("ACGT")
    assert (
        f"GA4GH:SQ.{acgt}\tMD5:f1f8f4bf413b16ad135722aa4591043e\t"
        "SEGUID:IQiZThf2zKn/I1KtqStlEdsHYDQ\tSHA1:2108994e17f6cca9ff2352ada92b6511db076034\t"
        f"ga4gh:SQ.{acgt}\tsha512t24u:{acgt}\ttest:test1A\ttest:test1B\ttest:test1C\n"
    ) in lines
    assert len(lines.splitlines()) == 3  # the three distinct sequences with a test alias


# ---- snapshots --------------------------------------------------------------------------------


def test_snapshot_hardlinks_read_only_latest(loaded: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(loaded, root)
    run("snapshot", "-d", "2024-01-02", root=root)
    run("snapshot", root=root)
    master, snap = root / "master", root / "2024-01-02"
    files = sorted(p.relative_to(master) for p in (master / "sequences").rglob("*.bgz*"))
    assert files
    for rel in files:
        assert os.stat(master / rel).st_ino == os.stat(snap / rel).st_ino
    for p in [snap, *snap.rglob("*")]:
        assert not stat.S_IMODE(p.stat().st_mode) & 0o222, p
    listing = run("list-local-instances", root=root).stdout.decode().splitlines()
    assert listing[0] == f"Local instances ({root})"
    assert listing[1] == "  2024-01-02" and len(listing) == 3
    run("update-latest", root=root)
    assert os.readlink(root / "latest") == listing[2].strip()
    status = run("show-status", root=root).stdout.decode()
    assert f"instance directory: {root / 'latest'}" in status
    exported = run("export", "-n", "insdc", root=root).stdout  # latest by default
    assert exported == run("export", "-i", "master", "-n", "insdc", root=root).stdout
    again = run("snapshot", "-d", "2024-01-02", root=root, check=False)
    assert again.returncode == 1 and again.stderr.count(b"\n") == 1
    before = tree_state(snap)
    into_snapshot = run(
        "load",
        "-i",
        "2024-01-02",
        "-n",
        "test",
        str(REAL / "seqrepo-tests" / "test.fa"),
        root=root,
        check=False,
    )
    assert into_snapshot.returncode == 1
    assert (
        into_snapshot.stderr
        == (
            f"seqrepofs: error: {snap}: instance is read-only (a"
            " snapshot?); write to master instead\n"
        ).encode()
    )
    assert tree_state(snap) == before


# ---- maintenance ------------------------------------------------------------------------------


def test_check_finds_exactly_the_damage(loaded: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(loaded, root)
    inst = root / "master"
    assert run("check", "-i", "master", root=root).stdout.decode().endswith(": ok\n")
    conn = sqlite3.connect(inst / "sequences" / "db.sqlite3")
    rows = conn.execute("select seq_id, relpath from seqinfo order by len desc").fetchall()
    conn.close()
    big_id, big_file = rows[0]
    path = inst / "sequences" / big_file
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # flip a byte inside the compressed data
    path.write_bytes(bytes(data))
    conn = sqlite3.connect(inst / "aliases.sqlite3")
    conn.execute("insert into seqalias (seq_id, namespace, alias) values ('nope', 'test', 'ghost')")
    conn.commit()
    conn.close()
    quick = run("check", "-i", "master", "--quick", root=root, check=False)
    assert quick.returncode == 1
    assert quick.stdout.decode().splitlines() == [
        "DAMAGED: alias test:ghost points at nope, which is not stored"
    ]
    full = run("check", "-i", "master", root=root, check=False)
    assert full.returncode == 1
    damaged = [ln for ln in full.stdout.decode().splitlines() if ln.startswith("DAMAGED")]
    assert len(damaged) == 2
    assert damaged[0] == "DAMAGED: alias test:ghost points at nope, which is not stored"
    assert damaged[1].startswith(f"DAMAGED: {big_file}: cannot read {big_id}: ")
    assert "BGZF block" in damaged[1]
    assert b"2 problems" in full.stderr


def test_update_digests_restores_digest_aliases(loaded: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(loaded, root)
    conn = sqlite3.connect(root / "master" / "aliases.sqlite3")
    conn.execute("delete from seqalias where namespace = 'MD5'")
    conn.commit()
    n_before = conn.execute("select count(*) from seqalias").fetchone()[0]
    conn.close()
    damaged = run("check", "-i", "master", "--quick", root=root, check=False)
    assert damaged.returncode == 1 and b"has 3 of its 4 digest aliases" in damaged.stdout
    run("update-digests", root=root)
    conn = sqlite3.connect(root / "master" / "aliases.sqlite3")
    n_after = conn.execute("select count(*) from seqalias").fetchone()[0]
    conn.close()
    assert n_after - n_before == len(set(expected_records().values()))
    assert run("check", "-i", "master", root=root).returncode == 0


def test_add_assembly_names(tmp_path: Path) -> None:
    root = tmp_path / "root"
    run("init", root=root)
    fa = tmp_path / "chroms.fa"
    fa.write_text(">NC_000001.11\nACGTACGT\n>NC_000023.11\nGGGGCCCC\n>NC_012920.1\nTTTT\n")
    run("load", "-n", "refseq", str(fa), root=root)
    skipped = run("add-assembly-names", root=root)
    assert b"Skipping GRCh38" in skipped.stderr or b"skipping GRCh38" in skipped.stderr
    run("add-assembly-names", "-p", root=root)
    sr = SeqRepo(root / "master")
    try:
        assert sr["GRCh38:1"].seq_id == sr["GRCh38:chr1"].seq_id == seq_id_of("ACGTACGT")
        assert sr["GRCh38:X"][:] == "GGGGCCCC"
        assert sr["GRCh38:chrM"][:] == "TTTT"
        assert "GRCh38.p14" in sr.aliases.namespaces()
        n = sr.aliases.stats()["n_aliases"]
    finally:
        sr.close()
    run("add-assembly-names", "-p", root=root)  # nothing new: every assembly is loaded
    run("add-assembly-names", "-p", "-r", root=root)  # reload: idempotent
    sr = SeqRepo(root / "master")
    try:
        assert sr.aliases.stats()["n_aliases"] == n
    finally:
        sr.close()


def test_start_shell_without_ipython(loaded: Path, tmp_path: Path) -> None:
    (tmp_path / "IPython.py").write_text("raise ImportError('no IPython here')\n")
    env = checkout_env()
    env["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{env['PYTHONPATH']}"
    proc = run_seqrepofs(
        "start-shell", "-i", "master", root=loaded, env=env, text=False, timeout=120
    )
    assert proc.returncode == 1
    assert proc.stderr == b"seqrepofs: error: start-shell needs IPython: pip install ipython\n"


def test_start_shell_binds_sr(loaded: Path) -> None:
    pytest.importorskip("IPython")
    proc = run(
        "start-shell",
        "-i",
        "master",
        root=loaded,
        input=b"print('LEN', len(sr['insdc:NC_001422.1']))\nexit()\n",
    )
    assert b"LEN 5386" in proc.stdout


def test_progress_bar_on_a_terminal_only(tmp_path: Path) -> None:
    import fcntl
    import pty
    import struct
    import termios

    root = tmp_path / "root"
    run("init", root=root)
    fasta = str(REAL / "hgvs-sample" / "f3.refseqgene4.genomic.small.fna")
    quiet = run("load", "-n", "refseq", fasta, root=root)  # stderr is a pipe: no bar
    assert quiet.stderr == b""
    main, sub = pty.openpty()
    fcntl.ioctl(sub, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    proc = subprocess.Popen(
        seqrepofs_cmd(
            "-r", root, "load", "-n", "test", fasta, REAL / "refget-compliance" / "VI.faa"
        ),
        stdout=subprocess.DEVNULL,
        stderr=sub,
    )
    os.close(sub)
    out = b""
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:
            break
        if not data:
            break
        out += data
    assert proc.wait() == 0
    final = out.decode().replace("\r", "\n").strip().splitlines()[-1]
    assert final.startswith("loading: ") and "nt/s" in final  # residues per second
    assert "3 seqs (" in final and "/s), 1 new" in final  # and sequences per second
