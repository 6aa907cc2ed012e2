"""How the CLI reports failures: the library's own errors and the system's conditions in one
line, anything else as a bug (one line saying so; the traceback with -v)."""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from support.cli import run_seqrepofs

from seqrepofs.assemblies import UnknownAssemblyError
from seqrepofs.cli import cli, is_user_facing
from seqrepofs.commands import register_all
from seqrepofs.digests import InvalidSequenceError
from seqrepofs.errors import AliasNotFoundError, InvalidInputError, SeqRepoError
from seqrepofs.seqrepo import SeqRepo


def _sqlite_error(path: Path, sql: str, content: bytes | None = None) -> sqlite3.Error:
    if content is not None:
        path.write_bytes(content)
    conn = sqlite3.connect(path)
    try:
        conn.execute(sql)
    except sqlite3.Error as exc:
        return exc
    finally:
        conn.close()
    raise AssertionError(f"{sql!r} did not fail")


def test_user_facing_errors_are_the_projects_and_the_systems(tmp_path: Path) -> None:
    assert is_user_facing(AliasNotFoundError("refseq:X: no such alias"))
    assert is_user_facing(InvalidInputError("line width must be at least 1"))
    assert is_user_facing(InvalidSequenceError("!", 3))
    assert is_user_facing(UnknownAssemblyError("GRCh99"))
    assert is_user_facing(OSError(errno.ENOSPC, "No space left on device"))
    assert is_user_facing(PermissionError(errno.EACCES, "Permission denied", "/x"))
    garbage = b"this is not a database" * 100
    assert is_user_facing(_sqlite_error(tmp_path / "bad.sqlite3", "select * from t", garbage))
    # a bug, whatever builtin it is
    assert not is_user_facing(ValueError("invalid literal for int()"))
    assert not is_user_facing(KeyError("seq_id"))
    assert not is_user_facing(IndexError("list index out of range"))
    assert not is_user_facing(OSError("an OSError without errno is raised by code"))
    assert not is_user_facing(_sqlite_error(tmp_path / "good.sqlite3", "selec 1"))


def test_project_errors_stay_catchable_as_the_builtins() -> None:
    assert issubclass(AliasNotFoundError, KeyError) and issubclass(AliasNotFoundError, SeqRepoError)
    assert issubclass(InvalidInputError, ValueError)
    assert issubclass(InvalidSequenceError, ValueError)
    assert issubclass(UnknownAssemblyError, LookupError)


@pytest.fixture
def failing_command() -> Iterator[list[Exception]]:
    """A command on the real group that raises what the test puts in the list."""
    register_all()
    raised: list[Exception] = []

    @cli.command("fail-for-test")
    def fail() -> None:
        raise raised[0]

    try:
        yield raised
    finally:
        cli.commands.pop("fail-for-test")


def _run(*args: str) -> click.testing.Result:
    return CliRunner().invoke(cli, list(args), prog_name="seqrepofs")


def test_a_bug_says_so_in_one_line_and_shows_its_traceback_with_v(
    failing_command: list[Exception],
) -> None:
    failing_command.append(ValueError("unpacking went wrong"))
    quiet = _run("fail-for-test")
    assert quiet.exit_code == 1
    assert quiet.output == (
        "seqrepofs: internal error: ValueError: unpacking went wrong (a bug in seqrepofs; run"
        " with -v for the traceback)\n"
    )
    loud = _run("-v", "fail-for-test")
    assert loud.exit_code == 1
    assert loud.output.startswith("Traceback (most recent call last):\n")
    assert ", in fail\n" in loud.output  # the frame that raised
    assert "\nValueError: unpacking went wrong\nseqrepofs: internal error:" in loud.output
    assert loud.output.endswith(
        "seqrepofs: internal error: ValueError: unpacking went wrong (a bug in seqrepofs)\n"
    )


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (AliasNotFoundError("refseq:NM_X.1: no such alias"), "refseq:NM_X.1: no such alias"),
        (InvalidInputError("line width must be at least 1"), "line width must be at least 1"),
        (OSError(errno.ENOSPC, "No space left on device"), "[Errno 28] No space left on device"),
    ],
)
def test_user_errors_are_one_line_with_or_without_v(
    failing_command: list[Exception], exc: Exception, line: str
) -> None:
    failing_command.append(exc)
    for args in (("fail-for-test",), ("-v", "fail-for-test")):
        result = _run(*args)
        assert result.exit_code == 1
        assert result.output == f"seqrepofs: error: {line}\n", args


def test_an_alias_with_no_fasta_name_stops_export_in_one_line(tmp_path: Path) -> None:
    """Stopping mid-listing closes the store cleanly (no 'Exception ignored' noise)."""
    with SeqRepo(tmp_path / "master", writeable=True) as sr:
        sr.store("ACGT", [{"namespace": "x", "alias": ""}, {"namespace": "x", "alias": "ok"}])
    for args in (("-n", "x"), ("x:",)):
        proc = run_seqrepofs("export", "-i", "master", "--header", "name", *args, root=tmp_path)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr == (
            "seqrepofs: error: x:'': no FASTA name for it (cannot encode an empty alias)\n"
        ), args
        assert proc.stdout == ""


def test_an_alias_of_an_unstored_sequence_is_a_one_line_error(tmp_path: Path) -> None:
    """Damage (an alias naming no stored sequence) is reported, not taken for a bug."""
    ghost = "NotStoredNotStoredNotStoredNotSt"
    with SeqRepo(tmp_path / "master", writeable=True) as sr:
        sr.store("ACGT", [{"namespace": "x", "alias": "ok"}])
        sr.aliases.store_alias(ghost, "x", "ghost")
    proc = run_seqrepofs("export", "-i", "master", "x:ghost", root=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr == f"seqrepofs: error: sequence {ghost} is not stored\n"
    with SeqRepo(tmp_path / "master") as sr, pytest.raises(KeyError, match=ghost):
        sr.sequence_length(ghost)
