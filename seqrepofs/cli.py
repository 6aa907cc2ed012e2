"""The `seqrepofs` command: a thin click front end over the library layers.

Subcommands live in `seqrepofs.commands.*`, one module per area, each registering on `cli`.
Errors a user can cause end in one line on stderr and exit code 1 (2 for a usage error: an
unknown option, a bad option value, a missing argument), never a traceback.
"""

from __future__ import annotations

import logging
import sqlite3
import sys
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
    """A problem with the user's input: printed as one line, exit code 1."""

    exit_code = 1

    def show(self, file: object = None) -> None:
        click.echo(f"seqrepofs: error: {self.format_message()}", err=True)


USER_ERRORS: tuple[type[BaseException], ...] = (
    SeqRepoError,
    LookupError,  # KeyError, and e.g. an unknown assembly
    ValueError,
    OSError,
    sqlite3.DatabaseError,
)


def describe(exc: BaseException) -> str:
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    return str(exc) or exc.__class__.__name__


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except USER_ERRORS as exc:
            log.debug("error detail", exc_info=True)
            raise UserError(describe(exc)) from exc


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
    help="rsync host name or rsync://HOST:PORT URL for pull and list-remote-instances.",
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
    """Keep and read reference sequences locally (SeqRepo-compatible)."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.obj = Context(root_dir, verbose, remote_host, rsync_exe, dry_run)


def main(argv: list[str] | None = None) -> int:
    from .commands import register_all

    register_all()
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
