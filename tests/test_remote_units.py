"""The rsync layer without a server: --remote-host parsing, rsync vetting, output parsing,
exit-code messages, the rsync command lines of a pull, the pull's temporary directory, and
the generated rsyncd.conf."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from seqrepofs.remote import daemon, tempdir
from seqrepofs.remote.endpoint import Endpoint, parse_endpoint
from seqrepofs.remote.errors import (
    PullBusyError,
    RemoteError,
    RsyncFailedError,
    RsyncNotFoundError,
    RsyncUnsupportedError,
)
from seqrepofs.remote.listing import parse_listing
from seqrepofs.remote.pull import PullOptions, choose_instance, newest_local_instance, pass_args
from seqrepofs.remote.rsync import (
    Rsync,
    RsyncRun,
    RsyncStats,
    check,
    error_line,
    find_rsync,
    parse_stats,
)


@pytest.mark.parametrize(
    ("spec", "module", "expected", "source"),
    [
        (
            "dl.biocommons.org",
            None,
            ("dl.biocommons.org", None, "seqrepo"),
            "dl.biocommons.org::seqrepo/2024-01-01/",
        ),
        (
            "rsync://127.0.0.1:8873",
            None,
            ("127.0.0.1", 8873, "seqrepo"),
            "rsync://127.0.0.1:8873/seqrepo/2024-01-01/",
        ),
        (
            "rsync://127.0.0.1:8873/mirror/",
            None,
            ("127.0.0.1", 8873, "mirror"),
            "rsync://127.0.0.1:8873/mirror/2024-01-01/",
        ),
        (
            "rsync://host.example/mirror",
            None,
            ("host.example", None, "mirror"),
            "host.example::mirror/2024-01-01/",
        ),
        (
            "host.example::mirror",
            None,
            ("host.example", None, "mirror"),
            "host.example::mirror/2024-01-01/",
        ),
        (
            "host.example:8873",
            "other",
            ("host.example", 8873, "other"),
            "rsync://host.example:8873/other/2024-01-01/",
        ),
        (
            "rsync://[::1]:8873",
            None,
            ("[::1]", 8873, "seqrepo"),
            "rsync://[::1]:8873/seqrepo/2024-01-01/",
        ),
        ("  rsync://h:1/m  ", "m", ("h", 1, "m"), "rsync://h:1/m/2024-01-01/"),
    ],
)
def test_endpoint_forms(spec, module, expected, source) -> None:
    ep = parse_endpoint(spec, module)
    assert (ep.host, ep.port, ep.module) == expected
    assert ep.source("2024-01-01/") == source


@pytest.mark.parametrize(
    ("spec", "module", "message"),
    [
        ("", None, "empty"),
        ("-e ssh", None, "not a host name"),
        ("--rsh=evil", None, "not a host name"),
        ("host name", None, "not a host name"),
        ("http://example.org", None, "only rsync://"),
        ("rsync://h:99999", None, "port"),
        ("rsync://h:0", None, "port"),
        ("h:abc", None, "invalid port"),
        ("rsync://h:1/a/b", None, "at most a module"),
        ("rsync://h:1/a?x=1", None, "query"),
        ("rsync://h:1/mod", "other", "conflicts"),
        ("h", "-mod", "not a valid module"),
        ("h::../x", None, "not a valid module"),
    ],
)
def test_endpoint_rejects(spec, module, message) -> None:
    with pytest.raises(ValueError, match=message):
        parse_endpoint(spec, module)


def test_endpoint_str_is_a_url() -> None:
    assert str(Endpoint("h", None, "seqrepo")) == "rsync://h/seqrepo"
    assert str(Endpoint("h", 8873, "m")) == "rsync://h:8873/m"


def _script(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\n{text}\n")
    path.chmod(0o755)
    return str(path)


def test_find_rsync_real() -> None:
    rsync = find_rsync("rsync")
    assert os.path.isabs(rsync.exe)
    assert rsync.version >= (3, 0)


def test_find_rsync_missing(tmp_path: Path) -> None:
    with pytest.raises(RsyncNotFoundError, match="not found.*--rsync-exe"):
        find_rsync(str(tmp_path / "nope"))
    with pytest.raises(RsyncNotFoundError, match="not found"):
        find_rsync("no-such-rsync-program-here")


def test_find_rsync_refuses_openrsync(tmp_path: Path) -> None:
    exe = _script(tmp_path, "rsync", 'echo "openrsync: protocol version 29"')
    with pytest.raises(RsyncUnsupportedError, match="openrsync"):
        find_rsync(exe)


def test_find_rsync_refuses_old_and_foreign(tmp_path: Path) -> None:
    old = _script(tmp_path, "old", 'echo "rsync  version 2.6.9  protocol version 29"')
    with pytest.raises(RsyncUnsupportedError, match=r"2\.6\.9.*>= 3\.0"):
        find_rsync(old)
    other = _script(tmp_path, "other", 'echo "something else 1.0"')
    with pytest.raises(RsyncUnsupportedError, match="does not look like rsync"):
        find_rsync(other)
    not_exec = tmp_path / "plain"
    not_exec.write_text("x")
    with pytest.raises(RsyncNotFoundError, match="cannot run"):
        find_rsync(str(not_exec))


STATS_TEXT = """
Number of files: 28 (reg: 23, dir: 5)
Number of created files: 3 (reg: 3)
Number of deleted files: 0
Number of regular files transferred: 4
Total file size: 1,444,901 bytes
Total transferred file size: 521,429 bytes
Literal data: 93,517 bytes
Matched data: 427,912 bytes
File list size: 859
File list generation time: 0.001 seconds
File list transfer time: 0.000 seconds
Total bytes sent: 4,421
Total bytes received: 97,223

sent 4,421 bytes  received 97,223 bytes  203,288.00 bytes/sec
total size is 1,444,901  speedup is 14.22
"""


def test_parse_stats() -> None:
    stats = parse_stats(STATS_TEXT)
    assert stats == RsyncStats(
        files=28,
        created_files=3,
        deleted_files=0,
        regular_files_transferred=4,
        total_file_size=1444901,
        total_transferred_file_size=521429,
        literal_data=93517,
        matched_data=427912,
        file_list_size=859,
        total_bytes_sent=4421,
        total_bytes_received=97223,
    )
    assert parse_stats("no stats here") == RsyncStats()


def test_stats_sum_and_format_round_trip() -> None:
    one = parse_stats(STATS_TEXT)
    two = one + one
    assert two.total_bytes_received == 2 * 97223
    assert "Total bytes received: 194,446 bytes" in two.format()
    assert parse_stats(two.format()) == two


def test_parse_listing() -> None:
    text = (
        "drwxr-xr-x          4,096 2026/11/25 15:27:48 .\n"
        "dr-xr-xr-x          4,096 2024/01/01 10:00:00 2024-01-01\n"
        "dr-xr-xr-x          4,096 2024/02/01 10:00:00 2024-02-01\n"
        "dr-xr-xr-x          4,096 2024/02/01 10:00:00 latest\n"
        "drwxr-xr-x          4,096 2024/02/01 10:00:00 master\n"
        "-rw-r--r--            123 2024/02/01 10:00:00 2024-03-01\n"
        "drwxr-xr-x          4,096 2024/02/01 10:00:00 20240301\n"
        "drwxr-xr-x          4,096 2024/02/01 10:00:00 2024-03-01.abc123\n"
        "garbage line\n"
    )
    assert parse_listing(text) == ["2024-01-01", "2024-02-01"]


def test_error_line_prefers_daemon_error() -> None:
    stderr = (
        "rsync: [Receiver] read error: Connection reset by peer (104)\n"
        "@ERROR: Unknown module 'nomod'\n"
        "rsync error: error starting client-server protocol (code 5) at main.c(1954)\n"
    )
    assert error_line(stderr) == "Unknown module 'nomod'"
    stderr = (
        "rsync: [Receiver] failed to connect to 127.0.0.1 (127.0.0.1): Connection refused (111)\n"
        "rsync error: error in socket IO (code 10) at clientserver.c(165) [Receiver=3.5.0]\n"
    )
    assert (
        error_line(stderr) == "failed to connect to 127.0.0.1 (127.0.0.1): Connection refused (111)"
    )
    assert error_line("") == ""


@pytest.mark.parametrize(
    ("code", "meaning"),
    [
        (5, "refused the session"),
        (10, "cannot connect"),
        (12, "data stream broke"),
        (20, "interrupted"),
        (23, "not transferred"),
        (30, "timed out waiting for data"),
        (35, "timed out connecting"),
        (-9, "killed by signal 9"),
        (99, "rsync failed"),
    ],
)
def test_check_explains_exit_codes(code: int, meaning: str) -> None:
    run = RsyncRun(["rsync"], code, "", "rsync: something broke\nrsync error: x (code 1)\n")
    with pytest.raises(RsyncFailedError, match=meaning) as info:
        check(run, "pulling X", hint="pull again")
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("pulling X: ")
    # after Ctrl-C rsync's own complaints are noise; otherwise its error line is the detail
    detail = "" if code == 20 else ": something broke"
    assert msg.endswith(f"(rsync exit {code}){detail}; pull again")
    assert info.value.returncode == code
    assert check(RsyncRun(["rsync"], 0, "", ""), "ok").returncode == 0


def test_pass_args_sequences_then_databases() -> None:
    rsync = Rsync("/usr/bin/rsync", (3, 2, 7))
    files, dbs = pass_args(
        rsync, "h::seqrepo/2024-01-02/", "/r/2024-01-02.x", "/r/2024-01-01", PullOptions()
    )
    assert files[-2:] == ["h::seqrepo/2024-01-02/", "/r/2024-01-02.x/"]
    assert dbs[-2:] == files[-2:]
    for args in (files, dbs):
        assert "-rtH" in args and "--partial" in args and "--stats" in args
        assert not any(a in args for a in ("-a", "-p", "--perms", "-o", "-g", "--progress"))
        assert "--dry-run" not in args
    # sequence files: quick check + hardlinks; the databases excluded (and so never deleted)
    assert "--link-dest=/r/2024-01-01/" in files and "--delete" in files
    for db in ("/aliases.sqlite3", "/sequences/db.sqlite3", "/collections.sqlite3"):
        assert f"--exclude={db}" in files and f"--include={db}" in dbs
    assert f"--exclude=/{tempdir.MARKER}" in files
    # databases: always compared by content, never hardlinked, nothing else included
    assert "--ignore-times" in dbs and "--copy-dest=/r/2024-01-01/" in dbs
    assert not any(a.startswith("--link-dest") for a in dbs) and "--delete" not in dbs
    assert dbs.index("--include=/sequences/db.sqlite3") < dbs.index("--exclude=*")


def test_pass_args_options() -> None:
    new = Rsync("/usr/bin/rsync", (3, 2, 7))
    old = Rsync("/usr/bin/rsync", (3, 0, 9))
    opts = PullOptions(dry_run=True, progress=object(), bwlimit="64", io_timeout=7)  # type: ignore[arg-type]
    files, dbs = pass_args(new, "s/", "d", None, opts)
    for args in (files, dbs):
        assert "--dry-run" in args and "--bwlimit=64" in args and "--timeout=7" in args
        assert "--info=progress2" in args
        assert not any(a.startswith(("--link-dest", "--copy-dest")) for a in args)
    assert "--progress" in pass_args(old, "s/", "d", None, opts)[0]


def test_choose_instance() -> None:
    ep = Endpoint("h", None, "seqrepo")
    assert choose_instance(["2024-01-01", "2024-02-01"], None, ep) == "2024-02-01"
    assert choose_instance(["2024-01-01", "2024-02-01"], "2024-01-01", ep) == "2024-01-01"
    with pytest.raises(RemoteError, match="'2023-01-01' is not a snapshot.*2024-02-01"):
        choose_instance(["2024-01-01", "2024-02-01"], "2023-01-01", ep)
    with pytest.raises(RemoteError, match="offers no snapshots"):
        choose_instance([], None, ep)


def _fake_instance(path: Path) -> None:
    (path / "sequences").mkdir(parents=True)
    (path / "aliases.sqlite3").write_bytes(b"")
    (path / "sequences" / "db.sqlite3").write_bytes(b"")


def test_newest_local_instance(tmp_path: Path) -> None:
    assert newest_local_instance(str(tmp_path / "missing")) is None
    assert newest_local_instance(str(tmp_path)) is None
    _fake_instance(tmp_path / "2024-01-01")
    _fake_instance(tmp_path / "master")
    (tmp_path / "2024-03-01").mkdir()  # not a complete instance: no databases
    (tmp_path / "2024-02-01.abcdef").mkdir()  # a temporary directory
    assert newest_local_instance(str(tmp_path)) == str(tmp_path / "2024-01-01")


def test_claim_new_then_resume(tmp_path: Path) -> None:
    with tempdir.claim(str(tmp_path), "2024-01-01", "rsync://a/seqrepo") as first:
        assert not first.resumed
        assert os.path.basename(first.path).startswith("2024-01-01.")
        assert stat.S_IMODE(os.stat(first.path).st_mode) == 0o777 & ~_umask()
        Path(first.path, "partial").write_text("kept")
        with pytest.raises(PullBusyError, match="another pull of 2024-01-01 is running"):
            with tempdir.claim(str(tmp_path), "2024-01-01", "rsync://a/seqrepo"):
                pass
    # the first pull died (its lock is gone): the next one continues in the same directory
    with tempdir.claim(str(tmp_path), "2024-01-01", "rsync://a/seqrepo") as second:
        assert second.resumed and second.path == first.path
        assert Path(second.path, "partial").read_text() == "kept"
        second.publish(str(tmp_path / "2024-01-01"))
    assert sorted(os.listdir(tmp_path)) == ["2024-01-01"]
    assert os.listdir(tmp_path / "2024-01-01") == ["partial"]


def test_claim_cleans_stale_and_foreign(tmp_path: Path) -> None:
    with tempdir.claim(str(tmp_path), "2024-01-01", "rsync://other/seqrepo") as foreign:
        ro = Path(foreign.path, "sequences")
        ro.mkdir()
        (ro / "f").write_text("x")
        ro.chmod(0o555)  # pulled directories are read-only; cleaning must cope
    with tempdir.claim(str(tmp_path), "2024-01-01", "rsync://a/seqrepo") as older:
        # a leftover from another server is not trusted: removed, not resumed
        assert not older.resumed and older.removed == [foreign.path]
    stale = tmp_path / "2024-01-01.stale"  # an even older leftover from the same server
    stale.mkdir()
    (stale / tempdir.MARKER).write_text('{"source": "rsync://a/seqrepo"}')
    os.utime(stale, (1e9, 1e9))
    not_ours = tmp_path / "2024-01-01.snapshot"  # no marker: e.g. a snapshot being made
    not_ours.mkdir()
    with tempdir.claim(str(tmp_path), "2024-01-01", "rsync://a/seqrepo") as mine:
        # the most recently used leftover is resumed, the other one removed
        assert mine.resumed and mine.path == older.path
        assert mine.removed == [str(stale)]
    assert not os.path.exists(foreign.path)
    assert not_ours.is_dir()


def test_publish_refuses_to_replace(tmp_path: Path) -> None:
    (tmp_path / "2024-01-01").mkdir()
    with tempdir.claim(str(tmp_path), "2024-01-01", "s") as pull_dir:
        with pytest.raises(RemoteError, match="appeared while pulling"):
            pull_dir.publish(str(tmp_path / "2024-01-01"))
        assert os.path.isdir(pull_dir.path)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_rsyncd_conf_read_only(tmp_path: Path) -> None:
    cfg = daemon.DaemonConfig(
        str(tmp_path), 8873, "127.0.0.1", "seqrepo", "/s/pid", "/s/log", as_root=False
    )
    text = cfg.render()
    lines = {ln.strip() for ln in text.splitlines()}
    for expected in (
        "[seqrepo]",
        f"path = {tmp_path}",
        "read only = yes",
        "use chroot = no",
        "pid file = /s/pid",
        "log file = /s/log",
        "port = 8873",
        "address = 127.0.0.1",
        "exclude = /master /.* /*.*",
    ):
        assert expected in lines, expected
    assert "uid =" not in text
    as_root = daemon.DaemonConfig(str(tmp_path), 873, user="seq", group="seq", as_root=True)
    assert "use chroot = yes" in as_root.render() and "uid = seq" in as_root.render()


def test_leftovers_only_marked_snapshot_temp_dirs(tmp_path: Path) -> None:
    for name in ("2024-01-01.aaa", "2024-02-01.bbb", "master.ccc", "2024-03-01"):
        (tmp_path / name).mkdir()
        (tmp_path / name / tempdir.MARKER).write_text("{}")
    (tmp_path / "2024-04-01.unmarked").mkdir()
    (tmp_path / "2024-05-01.file").write_text("")
    found = [os.path.basename(p) for p in tempdir.leftovers(str(tmp_path))]
    assert found == ["2024-01-01.aaa", "2024-02-01.bbb"]
    assert tempdir.leftovers(str(tmp_path), "2024-02-01") == [str(tmp_path / "2024-02-01.bbb")]
    assert tempdir.leftovers(str(tmp_path / "missing")) == []
    assert tempdir.snapshot_of("/r/2024-01-01.x7") == "2024-01-01"
    assert tempdir.snapshot_of("/r/2024-01-01") is None
    assert tempdir.snapshot_of("/r/latest.x") is None
