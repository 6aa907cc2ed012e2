"""The `seqrepofs` command: a thin click front end over the library layers.

Subcommands live in `seqrepofs.commands.*`, one module per area, each registering on `cli`;
a command's module is imported when that command runs (`commands.COMMAND_MODULES`), so that a
command starts without the imports of the others. A command parses, calls one function of the
layer below and reports.

Errors. A user's mistake or a condition of the system ends in one line on stderr and exit code
1 (2 for a usage error: an unknown option, a bad option value, a missing argument), never a
traceback: the library raises its own exception types for those (`seqrepofs.errors`, each a
subclass of the builtin a Python caller already catches), and the system's OSErrors (no
permission, disk full, …) and SQLite's environmental errors (damaged, locked, full) are
reported as they are. Anything else is a bug: one line says so (exit 1) and `-v` shows the
traceback.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import sys
import traceback
from collections.abc import Collection
from dataclasses import dataclass

import click

from . import __version__, config
from .errors import SeqRepoError

log = logging.getLogger("seqrepofs")

DEFAULT_REMOTE_HOST = "dl.biocommons.org"


@dataclass
class Context:
    """Global options shared by every subcommand."""

    root_dir: str
    verbose: int
    remote_host: str
    rsync_exe: str
    dry_run: bool


class UserError(click.ClickException):
    """A problem with the user's input or the system: printed as one line, exit code 1."""

    exit_code = 1

    def show(self, file: object = None) -> None:
        click.echo(f"seqrepofs: error: {self.format_message()}", err=True)


class InternalError(click.ClickException):
    """An exception no layer expected: a bug. One line; the traceback was shown with -v."""

    exit_code = 1

    def __init__(self, exc: BaseException, traceback_shown: bool) -> None:
        hint = "" if traceback_shown else "; run with -v for the traceback"
        super().__init__(f"{type(exc).__name__}: {describe(exc)} (a bug in seqrepofs{hint})")

    def show(self, file: object = None) -> None:
        click.echo(f"seqrepofs: internal error: {self.format_message()}", err=True)


# SQLite result codes that describe the file or the machine, not the code: busy, locked,
# read-only, I/O error, damaged, full, cannot open, not a database.
_SQLITE_CONDITIONS = frozenset({5, 6, 8, 10, 11, 13, 14, 26})


def is_user_facing(exc: BaseException) -> bool:
    """The errors printed as one line: the library's own types, the system's OSErrors (they
    carry an errno) and SQLite's environmental conditions."""
    if isinstance(exc, SeqRepoError):
        return True
    if isinstance(exc, OSError):
        return exc.errno is not None
    if isinstance(exc, sqlite3.Error):
        return (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF in _SQLITE_CONDITIONS
    return False


def describe(exc: BaseException) -> str:
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    return str(exc) or exc.__class__.__name__


def _is_mount_form(args: list[str], commands: Collection[str]) -> bool:
    """`SRC MNT …`: a first argument naming a path rather than a command (mount.fuse3's form)."""
    return (
        len(args) >= 2
        and args[0] not in commands
        and (os.sep in args[0] or os.path.exists(args[0]))
    )


class _Group(click.Group):
    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """`seqrepofs SRC MNT [-o OPTS]`, as /sbin/mount.fuse3 runs a filesystem for `mount -t
        fuse.seqrepofs` and fstab lines, means `seqrepofs mount SRC MNT …`; every command name
        keeps its meaning."""
        from .commands import COMMAND_MODULES

        if _is_mount_form(args, set(self.commands) | set(COMMAND_MODULES)):
            mount = self.get_command(ctx, "mount")
            if mount is not None:
                return "mount", mount, list(args)
        return super().resolve_command(ctx, args)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """A command, its module imported on first use."""
        if cmd_name not in self.commands:
            from .commands import load_command

            load_command(cmd_name)
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command (the top-level help, completion): all modules imported."""
        from .commands import register_all

        register_all()
        return super().list_commands(ctx)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            if is_user_facing(exc):
                log.debug("error detail", exc_info=True)
                raise UserError(describe(exc)) from exc
            verbose = bool(isinstance(ctx.obj, Context) and ctx.obj.verbose)
            if verbose:
                traceback.print_exception(exc, file=sys.stderr)
            raise InternalError(exc, traceback_shown=verbose) from exc


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-r",
    "--root-directory",
    "root_dir",
    default=config.root_dir,
    show_default="$SEQREPO_ROOT_DIR or /usr/local/share/seqrepo",
    help="SeqRepo root directory (holds master, dated snapshots and latest).",
)
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
@click.option(
    "--remote-host",
    default=DEFAULT_REMOTE_HOST,
    show_default=True,
    help="rsync host name or rsync://HOST:PORT URL, or a published root (http(s)://, s3://, "
    "file:// URL), for pull and list-remote-instances.",
)
@click.option("--rsync-exe", default="rsync", show_default=True, help="rsync program to run.")
@click.option("-n", "--dry-run", is_flag=True, help="Only show what pull would do.")
@click.version_option(__version__, prog_name="seqrepofs")
@click.pass_context
def cli(
    ctx: click.Context,
    root_dir: str,
    verbose: int,
    remote_host: str,
    rsync_exe: str,
    dry_run: bool,
) -> None:
    """Keep and read reference sequences locally (SeqRepo-compatible).

    Errors are one line on stderr (exit 1; 2 for usage errors). An internal error is a bug:
    run again with -v to see its traceback.
    """
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.obj = Context(root_dir, verbose, remote_host, rsync_exe, dry_run)


def main(argv: list[str] | None = None) -> int:
    try:
        rv = cli.main(args=argv, prog_name="seqrepofs", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("seqrepofs: aborted", err=True)
        return 1
    except click.UsageError as exc:  # one line, like every other error (click prints four)
        cmd = exc.ctx.command_path if exc.ctx is not None else "seqrepofs"
        click.echo(f"{cmd}: error: {exc.format_message()} (see '{cmd} --help')", err=True)
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
