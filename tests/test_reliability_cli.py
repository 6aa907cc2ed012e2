"""Bad input to every CLI command: missing files, a wrong instance, a root that is missing, a
file or not a SeqRepo, an unwritable root (a read-only tmpfs: root ignores permission bits),
bad options and arguments. Each ends with exactly one line on stderr naming the problem, exit
code 1 (2 for a usage error), no traceback, and nothing changed (md5 of every file of the
roots before and after; missing paths stay missing).
"""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from support.cli import one_error_line, run_seqrepofs
from support.files import tree_state
from support.system import small_tmpfs, tmpfs_skip_reason

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("badcli")
    good = tmp / "good"
    fa = tmp / "ok.fa"
    fa.write_text(">x.1 a record\nACGT\n>y.1\nGGCC\n")
    for args in (
        ("init",),
        ("load", "-n", "t", str(fa)),
        ("snapshot", "-d", "2020-01-01"),
        ("update-latest",),
    ):
        proc = run_seqrepofs("-r", str(good), *args)
        assert proc.returncode == 0, proc.stderr
    (tmp / "notrepo").mkdir()
    (tmp / "notrepo" / "junk.txt").write_text("not a seqrepo\n")
    (tmp / "afile").write_text("just a file\n")
    (tmp / "bad.fa").write_bytes(b"\x00\x01 not fasta\n")
    (tmp / "badres.fa").write_text(">z.1\nACGT!!\n")
    (tmp / "empty.fa").write_text("")
    (tmp / "mnt").mkdir()
    return {"tmp": tmp, "good": good, "fa": fa}


def _cases(p: dict[str, Path]) -> list[tuple[str, list[str], int, str]]:
    """(id, argv, exit code, fragment of the one stderr line)."""
    tmp, good, fa = p["tmp"], str(p["good"]), str(p["fa"])
    missing = str(tmp / "missing")
    notrepo, afile = str(tmp / "notrepo"), str(tmp / "afile")
    r = ["-r", good]
    return [
        # a root that is missing, a file, or not a SeqRepo
        ("status-missing-root", ["-r", missing, "show-status"], 1, "no such SeqRepo instance"),
        ("status-file-root", ["-r", afile, "show-status"], 1, "no such SeqRepo instance"),
        ("status-notrepo", ["-r", notrepo, "show-status"], 1, "no such SeqRepo instance"),
        ("load-notrepo", ["-r", notrepo, "load", "-n", "t", fa], 1, "no such SeqRepo instance"),
        ("load-missing-root", ["-r", missing, "load", "-n", "t", fa], 1, "no such SeqRepo"),
        ("snapshot-notrepo", ["-r", notrepo, "snapshot"], 1, "no such SeqRepo instance"),
        ("latest-notrepo", ["-r", notrepo, "update-latest"], 1, "no snapshot"),
        ("latest-missing-root", ["-r", missing, "update-latest"], 1, "does not exist"),
        ("list-missing-root", ["-r", missing, "list-local-instances"], 1, "does not exist"),
        ("export-notrepo", ["-r", notrepo, "export"], 1, "no such SeqRepo instance"),
        ("publish-missing-src", ["publish", missing, str(tmp / "dest")], 2, "does not exist"),
        ("publish-notrepo", ["publish", notrepo, missing], 1, "no YYYY-MM-DD snapshots"),
        ("cache-bad-size", ["cache", "prune", "--cache-size", "banana"], 2, "not a size"),
        ("cache-dir-file", ["cache", "stats", "--cache-dir", afile], 2, "is a file"),
        ("aliases-notrepo", ["-r", notrepo, "export-aliases"], 1, "no such SeqRepo instance"),
        ("check-notrepo", ["-r", notrepo, "check"], 1, "no such SeqRepo instance"),
        ("collections-notrepo", ["-r", notrepo, "collections"], 1, "no such SeqRepo instance"),
        ("digests-notrepo", ["-r", notrepo, "update-digests"], 1, "no such SeqRepo instance"),
        ("assembly-notrepo", ["-r", notrepo, "add-assembly-names"], 1, "no such SeqRepo"),
        ("shell-notrepo", ["-r", notrepo, "start-shell"], 1, "no such SeqRepo instance"),
        ("init-file-root", ["-r", afile, "init"], 1, "afile"),
        ("init-existing", [*r, "init"], 1, "exists and is not empty"),
        # a wrong instance
        ("load-wrong-instance", [*r, "load", "-i", "nope", "-n", "t", fa], 1, "nope"),
        ("load-into-snapshot", [*r, "load", "-i", "2020-01-01", "-n", "t", fa], 1, "2020-01-01"),
        ("snapshot-wrong-instance", [*r, "snapshot", "-i", "nope"], 1, "nope"),
        ("status-wrong-instance", [*r, "show-status", "-i", "nope"], 1, "nope"),
        ("export-wrong-instance", [*r, "export", "-i", "nope"], 1, "nope"),
        ("aliases-wrong-instance", [*r, "export-aliases", "-i", "nope"], 1, "nope"),
        ("check-wrong-instance", [*r, "check", "-i", "nope"], 1, "nope"),
        ("collections-wrong-instance", [*r, "collections", "-i", "nope"], 1, "nope"),
        ("export-no-collection", [*r, "export", "--collection", "nope"], 1, "'nope'"),
        ("check-quick-wrong-instance", [*r, "check", "--quick", "-i", "nope"], 1, "nope"),
        ("digests-wrong-instance", [*r, "update-digests", "-i", "nope"], 1, "nope"),
        ("digests-snapshot", [*r, "update-digests", "-i", "2020-01-01"], 1, "2020-01-01"),
        ("assembly-wrong-instance", [*r, "add-assembly-names", "-i", "nope"], 1, "nope"),
        ("shell-wrong-instance", [*r, "start-shell", "-i", "nope"], 1, "nope"),
        # missing and bad files
        ("load-missing-file", [*r, "load", "-n", "t", missing], 1, "missing"),
        ("load-directory", [*r, "load", "-n", "t", notrepo], 1, "notrepo"),
        ("load-not-fasta", [*r, "load", "-n", "t", str(tmp / "bad.fa")], 1, "bad.fa"),
        ("load-bad-residue", [*r, "load", "-n", "t", str(tmp / "badres.fa")], 1, "badres.fa"),
        ("load-one-missing-of-two", [*r, "load", "-n", "t", fa, missing], 1, "missing"),
        ("load-bad-namespace", [*r, "load", "-n", "a:b", fa], 1, "a:b"),
        ("snapshot-exists", [*r, "snapshot", "-d", "2020-01-01"], 1, "already exists"),
        ("snapshot-inside-source", [*r, "snapshot", "-d", "master/x"], 1, "inside"),
        ("export-unknown-alias", [*r, "export", "nope.1"], 1, "nope.1"),
        ("mount-missing-source", ["mount", missing, str(tmp / "mnt")], 1, "does not exist"),
        ("mount-notrepo", ["mount", notrepo, str(tmp / "mnt")], 1, "not a SeqRepo"),
        ("mount-missing-point", ["mount", good, missing], 1, "does not exist"),
        ("mount-file-point", ["mount", good, afile], 1, "not a directory"),
        ("mount-bad-o", ["mount", good, str(tmp / "mnt"), "-o", "line_width=x"], 1, "line_width"),
        (
            "mount-allow-both",
            ["mount", good, str(tmp / "mnt"), "-o", "allow_other,allow_root"],
            1,
            "exclude",
        ),
        ("umount-not-mounted", ["umount", str(tmp / "mnt")], 1, "not mounted"),
        ("umount-missing", ["umount", missing], 1, "not mounted"),
        ("serve-missing", ["serve", missing], 1, "missing"),
        ("serve-notrepo", ["serve", notrepo], 1, "notrepo"),
        (
            "list-remote-refused",
            [*r, "--remote-host", "rsync://127.0.0.1:1/x", "list-remote-instances"],
            1,
            "127.0.0.1",
        ),
        ("pull-refused", [*r, "--remote-host", "rsync://127.0.0.1:1/x", "pull"], 1, "127.0.0.1"),
        ("pull-no-rsync", [*r, "--rsync-exe", missing, "pull"], 1, "missing"),
        # usage errors: exit 2
        ("unknown-command", ["frobnicate"], 2, "frobnicate"),
        ("unknown-global-option", ["--frob", "show-status"], 2, "--frob"),
        ("unknown-option", [*r, "show-status", "--frob"], 2, "--frob"),
        ("extra-argument", [*r, "list-local-instances", "extra"], 2, "extra"),
        ("load-no-files", [*r, "load", "-n", "t"], 2, "FASTA_FILES"),
        ("load-no-namespace", [*r, "load", "--no-collection", fa], 2, "NAMESPACE"),
        ("load-batch-zero", [*r, "load", "-n", "t", "--batch-size", "0", fa], 2, "batch-size"),
        ("load-batch-text", [*r, "load", "-n", "t", "--batch-size", "x", fa], 2, "batch-size"),
        ("export-width-zero", [*r, "export", "--line-width", "0"], 2, "line-width"),
        ("export-bad-header", [*r, "export", "--header", "x"], 2, "header"),
        ("mount-threads-zero", ["mount", good, str(tmp / "mnt"), "--threads", "0"], 2, "threads"),
        ("mount-no-point", ["mount", good], 2, "MOUNTPOINT"),
        ("umount-no-point", ["umount"], 2, "MOUNTPOINT"),
        ("serve-bad-port", ["serve", good, "--port", "99999"], 2, "port"),
        ("serve-bad-workers", ["serve", good, "--workers", "0"], 2, "workers"),
        ("serve-rsync-missing", ["serve-rsync", missing], 2, "missing"),
        ("serve-rsync-file", ["serve-rsync", afile], 2, "afile"),
        ("serve-rsync-port", ["serve-rsync", good, "--port", "0"], 2, "port"),
        ("pull-bad-timeout", [*r, "pull", "--timeout", "0"], 2, "timeout"),
        ("verbose-value", ["-v", "x"], 2, "x"),
    ]


def _run_case(
    case: tuple[str, list[str], int, str],
) -> tuple[str, subprocess.CompletedProcess[str]]:
    return case[0], run_seqrepofs(*case[1], timeout=60, stdin=subprocess.DEVNULL)


def _failures(cases: list, workers: int) -> list[str]:
    """Run the cases in parallel; one message per case that is not one clean error line."""
    with ThreadPoolExecutor(workers) as pool:
        results = dict(pool.map(_run_case, cases))
    failures = []
    for name, _argv, code, fragment in cases:
        try:
            line = one_error_line(results[name], code)
            assert fragment in line, line
        except AssertionError as exc:
            failures.append(f"{name}: {exc}")
    return failures


def test_bad_input_to_every_command(places: dict[str, Path]) -> None:
    cases = _cases(places)
    before = tree_state(places["tmp"])
    # loads that get as far as the writer lock would race each other for it: run them in turn
    loads = [c for c in cases if c[0].startswith("load-")]
    failures = _failures([c for c in cases if c not in loads], workers=4)
    failures += _failures(loads, workers=1)
    assert failures == [], "\n".join(failures)
    assert tree_state(places["tmp"]) == before, "a bad command changed something"
    assert not (places["tmp"] / "missing").exists()
    # every registered command was tried
    from seqrepofs.cli import cli as group
    from seqrepofs.commands import register_all

    register_all()
    tried = {a for _n, argv, _c, _f in cases for a in argv if a in group.commands}
    assert tried == set(group.commands), set(group.commands) - tried


def test_unwritable_root(places: dict[str, Path]) -> None:
    """A SeqRepo on a read-only filesystem: every write command fails in one line."""
    reason = tmpfs_skip_reason()
    if reason:
        pytest.skip(reason)
    fa = str(places["fa"])
    with small_tmpfs("16m") as disk:
        root = disk / "root"
        for args in (("init",), ("load", "-n", "t", fa), ("snapshot", "-d", "2020-01-01")):
            assert run_seqrepofs("-r", str(root), *args).returncode == 0
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        before = tree_state(root)
        r = ["-r", str(root)]
        cases = [
            ("ro-init-new", [*r, "init", "-i", "other"], 1, "Read-only file system"),
            ("ro-load", [*r, "load", "-n", "u", fa], 1, "read"),
            ("ro-snapshot", [*r, "snapshot", "-d", "2021-01-01"], 1, "Read-only file system"),
            ("ro-update-latest", [*r, "update-latest"], 1, "Read-only file system"),
            ("ro-update-digests", [*r, "update-digests"], 1, "read"),
            ("ro-assembly-names", [*r, "add-assembly-names"], 1, "read"),
        ]
        failures = _failures(cases, workers=3)
        # reading still works
        status = run_seqrepofs(*r, "show-status")
        assert status.returncode == 0, status.stderr
        assert tree_state(root) == before
        assert failures == [], "\n".join(failures)
    assert not os.path.exists(disk)


def test_unwritable_master_is_not_called_a_snapshot(places: dict[str, Path]) -> None:
    reason = tmpfs_skip_reason()
    if reason:
        pytest.skip(reason)
    with small_tmpfs("16m") as disk:
        root = disk / "root"
        assert run_seqrepofs("-r", str(root), "init").returncode == 0
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        proc = run_seqrepofs("-r", str(root), "load", "-n", "u", str(places["fa"]))
        assert proc.returncode == 1
        assert "write to master instead" not in proc.stderr, proc.stderr
        assert "Read-only file system" in proc.stderr or "read-only file system" in proc.stderr
