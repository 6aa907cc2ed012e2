"""Subcommands that manage a SeqRepo root: init, load, snapshot, status, export, check, ….

Names, options and defaults follow the reference `seqrepo` command: write commands act on
`master`, read commands on `latest` (falling back to `master` when there is no `latest` yet,
so `show-status` works right after `init`, unlike the reference's bug #72).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click

from .. import __version__
from ..cli import Context, UserError, cli
from ..seqrepo import SeqRepo, is_snapshot_url
from ..store import instances
from .cache import cache_dir_option, cache_size_option, http_timeout_option

log = logging.getLogger("seqrepofs")

RW_DEFAULT = "master"
RO_DEFAULT = "latest"


def _instance_option(default: str | None) -> Any:
    help_text = (
        f"instance name (default {RW_DEFAULT}; must be writable)"
        if default == RW_DEFAULT
        else f"instance name (default {RO_DEFAULT}, or {RW_DEFAULT} if there is no {RO_DEFAULT})"
    )
    return click.option("-i", "--instance-name", "instance", default=default, help=help_text)


def _root(ctx: click.Context) -> str:
    obj: Context = ctx.obj
    return obj.root_dir


def _rw_instance(ctx: click.Context, name: str, write: bool = True) -> str:
    path = os.path.join(_root(ctx), name)
    if not instances.is_instance(path):
        raise UserError(f"{path}: no such SeqRepo instance; create it with `seqrepofs init`")
    if write:
        instances.check_writable(path)
    return path


def _ro_instance(ctx: click.Context, name: str | None) -> str:
    """An instance to read: a name under the root, or a published snapshot's URL (given as
    the instance, or the root being a published root's URL: then `latest` or the name)."""
    if name is not None and is_snapshot_url(name):
        return name
    root = _root(ctx)
    if is_snapshot_url(root):
        return f"{root.rstrip('/')}/{name or RO_DEFAULT}"
    if name is None:
        name = RO_DEFAULT
        if not os.path.exists(os.path.join(root, RO_DEFAULT)) and instances.is_instance(
            os.path.join(root, RW_DEFAULT)
        ):
            log.info("no %s instance in %s; using %s", RO_DEFAULT, root, RW_DEFAULT)
            name = RW_DEFAULT
    path = os.path.join(root, name)
    if not instances.is_instance(path):
        raise UserError(f"{path}: no such SeqRepo instance")
    return path


def _open(path: str, lazy: dict[str, Any]) -> SeqRepo:
    """A read-only SeqRepo; a snapshot URL is read through the cache the options name."""
    return SeqRepo(path, **lazy) if is_snapshot_url(path) else SeqRepo(path)


def _show_progress(ctx: click.Context) -> bool:
    obj: Context = ctx.obj
    return obj.verbose == 0 and sys.stderr.isatty()


@contextmanager
def _binary_stdout() -> Iterator[Any]:
    """stdout for bytes; a closed pipe (`| head`) ends the command quietly."""
    out = sys.stdout.buffer
    try:
        yield out
        out.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)


# ---- init / load -------------------------------------------------------------------------------


@cli.command("init")
@_instance_option(RW_DEFAULT)
@click.pass_context
def init_cmd(ctx: click.Context, instance: str) -> None:
    """Create an empty writable instance (ROOT/master by default)."""
    path = os.path.join(_root(ctx), instance)
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise UserError(f"{path} exists and is not empty")
    SeqRepo(path, writeable=True).close()


@cli.command("load")
@_instance_option(RW_DEFAULT)
@click.option(
    "-n",
    "--namespace",
    default=None,
    help="namespace of the aliases (e.g. NCBI, refseq, Ensembl, LRG); optional when"
    " a collection is recorded",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    show_default=False,
    help="commit after this many new sequences (default 30000; the reference commits every 20000)",
)
@click.option(
    "--collection",
    default=None,
    help="record the files as ONE sequence collection NAME (default: one per file,"
    " named by its stem)",
)
@click.option("--replace", is_flag=True, help="replace an existing collection of that name")
@click.option("--no-collection", is_flag=True, help="record no collection (then -n is needed)")
@click.argument("fasta_files", nargs=-1, required=True)
@click.pass_context
def load_cmd(
    ctx: click.Context,
    instance: str,
    namespace: str | None,
    batch_size: int | None,
    collection: str | None,
    replace: bool,
    no_collection: bool,
    fasta_files: tuple[str, ...],
) -> None:
    """Load FASTA files (plain, gzip, BGZF or bzip2; - for stdin) into an instance.

    The first word of each header becomes NAMESPACE:word; NCBI `gi|…|ref|ACC|` headers give
    refseq:ACC. Sequences already stored only gain aliases. A bad record aborts the load and
    nothing of the batch in progress is stored. Each file is recorded as a sequence collection
    (names, order, sequences; see `seqrepofs collections`).
    """
    from ..loader import check_namespace, load
    from ..loader.load import DEFAULT_BATCH
    from .collections import collection_plan

    plan = collection_plan(fasta_files, namespace, collection, replace, no_collection)
    try:
        if namespace is not None:
            check_namespace(namespace)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    path = _rw_instance(ctx, instance)
    with _LoadProgress(enabled=_show_progress(ctx)) as progress:
        stats = load(
            path,
            fasta_files,
            namespace,
            progress=progress.update,
            batch_size=batch_size or DEFAULT_BATCH,
            collections=plan,
        )
    log.info(
        "loaded %d files: %d sequences seen, %d added, %d aliases added, %d residues in %.1f s",
        stats.files,
        stats.seqs_seen,
        stats.seqs_added,
        stats.aliases_added,
        stats.residues_seen,
        stats.seconds,
    )


class _LoadProgress:
    """A tqdm bar of residues (rate in nt/s) with sequences/s, on a terminal only."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: Any = None
        self._redirect: Any = None
        self._stats: Any = None
        self._n = 0

    def __enter__(self) -> _LoadProgress:
        if self.enabled:
            from tqdm import tqdm
            from tqdm.contrib.logging import logging_redirect_tqdm

            self._bar = tqdm(
                unit="nt",
                unit_scale=True,
                desc="loading",
                file=sys.stderr,
                mininterval=0.5,
                dynamic_ncols=True,
            )
            self._redirect = logging_redirect_tqdm()
            self._redirect.__enter__()
        return self

    def update(self, rec: Any, stats: Any) -> None:
        if self._bar is None:
            return
        self._bar.update(len(rec.seq))
        self._n += 1
        self._stats = stats
        if self._n % 64 == 0 or len(rec.seq) > 1 << 20:
            self._postfix()

    def _postfix(self) -> None:
        stats = self._stats
        elapsed = self._bar.format_dict.get("elapsed") or 1e-9
        self._bar.set_postfix_str(
            f"{stats.seqs_seen} seqs ({stats.seqs_seen / elapsed:,.0f}/s),"
            f" {stats.seqs_added} new, {stats.aliases_added} aliases",
            refresh=False,
        )

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            if self._stats is not None:
                self._postfix()
            self._bar.close()
            self._redirect.__exit__(*exc)


# ---- snapshots -------------------------------------------------------------------------------


@cli.command("snapshot")
@_instance_option(RW_DEFAULT)
@click.option(
    "-d",
    "--destination-name",
    "destination",
    default=None,
    help="snapshot name (default: today's UTC date, YYYY-MM-DD); relative to the root",
)
@click.pass_context
def snapshot_cmd(ctx: click.Context, instance: str, destination: str | None) -> None:
    """Freeze an instance into a read-only snapshot that hardlinks its sequence files."""
    _rw_instance(ctx, instance, write=False)
    dest = destination or datetime.now(UTC).strftime("%Y-%m-%d")
    result = instances.make_snapshot(_root(ctx), instance, dest)
    click.echo(result.summary())


@cli.command("update-latest")
@click.pass_context
def update_latest_cmd(ctx: click.Context) -> None:
    """Point ROOT/latest at the newest snapshot."""
    name = instances.update_latest(_root(ctx))
    log.info("linked latest -> %s", name)


@cli.command("list-local-instances")
@click.pass_context
def list_local_instances_cmd(ctx: click.Context) -> None:
    """List the snapshots in the root directory."""
    root = _root(ctx)
    names = instances.list_instances(root)
    click.echo(f"Local instances ({root})")
    for name in names:
        click.echo(f"  {name}")


# ---- status / export -------------------------------------------------------------------------


@cli.command("show-status")
@_instance_option(None)
@click.pass_context
def show_status_cmd(ctx: click.Context, instance: str | None) -> None:
    """Show the version, size, schemas and counts of an instance."""
    path = _ro_instance(ctx, instance)
    total = sum(
        os.path.getsize(os.path.join(dirpath, f))
        for dirpath, _dirs, files in os.walk(path)
        for f in files
    )
    with SeqRepo(path) as sr:
        ss = sr.sequences.stats()
        sa = sr.aliases.stats()
        click.echo(f"seqrepofs {__version__}")
        click.echo(f"instance directory: {sr.root_dir}, {total / 1e9:.1f} GB")
        click.echo(
            f"backends: fastadir (schema {sr.sequences.schema_version()}),"
            f" seqaliasdb (schema {sr.aliases.schema_version()}) "
        )
        click.echo(
            f"sequences: {ss['n_sequences']} sequences, {ss['tot_length'] or 0} residues,"
            f" {ss['n_files']} files"
        )
        click.echo(
            f"aliases: {sa['n_aliases']} aliases, {sa['n_current'] or 0} current,"
            f" {sa['n_namespaces']} namespaces, {sa['n_sequences']} sequences"
        )


@cli.command("export")
@_instance_option(None)
@click.option(
    "-n",
    "--namespace",
    default=None,
    help="only sequences with an alias in this namespace (e.g. refseq, NCBI)",
)
@click.option(
    "--line-width",
    type=click.IntRange(min=1),
    default=60,
    show_default=True,
    help="residues per line",
)
@click.option(
    "--header",
    "header",
    type=click.Choice(["aliases", "name"]),
    default="aliases",
    show_default=True,
    help="aliases: all ns:alias of the sequence (as the reference); name: the alias"
    " in NAMESPACE, as a mount names /NAMESPACE/<alias>.fa",
)
@click.option(
    "--assembly",
    default=None,
    help="write a whole assembly as one FASTA (e.g. GRCh38), the bytes a mount serves"
    " as <assembly>[.<style>][.primary].fa",
)
@click.option(
    "--style",
    type=click.Choice(["ncbi", "ucsc", "refseq"]),
    default="ncbi",
    show_default=True,
    help="with --assembly: record names (1 / chr1 / NC_000001.11)",
)
@click.option(
    "--primary",
    is_flag=True,
    help="with --assembly: only the chromosomes 1-22, X, Y, MT, in assembly order",
)
@click.option(
    "--collection",
    default=None,
    help="write a sequence collection (a loaded FASTA) back: its names, its order",
)
@cache_dir_option
@cache_size_option
@http_timeout_option
@click.argument("aliases", nargs=-1)
@click.pass_context
def export_cmd(
    ctx: click.Context,
    instance: str | None,
    namespace: str | None,
    line_width: int,
    header: str,
    assembly: str | None,
    style: str,
    primary: bool,
    collection: str | None,
    cache_dir: str | None,
    cache_size: int,
    http_timeout: float,
    aliases: tuple[str, ...],
) -> None:
    """Write sequences as FASTA to stdout (all, a namespace's, the ALIASES given, or a whole
    assembly with --assembly).

    The instance may be a published snapshot's URL (`export URL [ALIASES…]`, or -i URL):
    https://HOST/PREFIX/INSTANCE or …/latest, s3://…, file://…, read in place through the
    cache.
    """
    from ..export import export

    if instance is None and aliases and is_snapshot_url(aliases[0]):
        instance, aliases = aliases[0], aliases[1:]
    path = _ro_instance(ctx, instance)
    lazy = {"cache_dir": cache_dir, "cache_size": cache_size, "http_timeout": http_timeout}
    if assembly is None and (style != "ncbi" or primary):
        raise click.UsageError("--style and --primary go with --assembly")
    if assembly is not None and (aliases or namespace):
        raise click.UsageError("--assembly takes no ALIASES or --namespace")
    if collection is not None and (aliases or namespace or assembly):
        raise click.UsageError("--collection takes no ALIASES, --namespace or --assembly")
    with _open(path, lazy) as sr, _binary_stdout() as out:
        if collection is not None:
            from .collections import write_collection_fasta

            write_collection_fasta(sr, sr.root_dir, collection, line_width, out)
            return
        if assembly is not None:
            from ..assemblies import write_assembly_fasta

            view = write_assembly_fasta(sr, assembly, style, primary, line_width, out)
            if view.missing:  # never silently: say so, and list them with -v
                click.echo(
                    f"seqrepofs: {len(view.missing)} sequences of {assembly} are left out (not"
                    f" in the repository, or no {style} name); a mount lists them in"
                    f" {view.filename('missing.txt')}",
                    err=True,
                )
                log.info("%s", view.missing_text())
            return
        export(sr, out, namespace=namespace, aliases=aliases, width=line_width, header=header)


@cli.command("export-aliases")
@_instance_option(None)
@click.option(
    "-n", "--namespace", default=None, help="only sequences with an alias in this namespace"
)
@cache_dir_option
@cache_size_option
@http_timeout_option
@click.pass_context
def export_aliases_cmd(
    ctx: click.Context,
    instance: str | None,
    namespace: str | None,
    cache_dir: str | None,
    cache_size: int,
    http_timeout: float,
) -> None:
    """Write one tab-separated line of ns:alias per sequence (GA4GH identifier first); the
    instance may be a published snapshot's URL (-i URL)."""
    from ..export import export_aliases

    path = _ro_instance(ctx, instance)
    lazy = {"cache_dir": cache_dir, "cache_size": cache_size, "http_timeout": http_timeout}
    with _open(path, lazy) as sr, _binary_stdout() as out:
        export_aliases(sr, out, namespace)


# ---- maintenance -----------------------------------------------------------------------------


@cli.command("update-digests")
@_instance_option(RW_DEFAULT)
@click.pass_context
def update_digests_cmd(ctx: click.Context, instance: str) -> None:
    """Recompute the VMC, SHA1, MD5 and SEGUID aliases of every sequence (idempotent)."""
    path = _rw_instance(ctx, instance)
    with SeqRepo(path, writeable=True) as sr:
        n = sr.update_digests()
    log.info("updated digests of %d sequences", n)


@cli.command("add-assembly-names")
@_instance_option(RW_DEFAULT)
@click.option(
    "-p",
    "--partial-load",
    is_flag=True,
    help="add an assembly's names even if some of its sequences are missing",
)
@click.option(
    "-r", "--reload-all", is_flag=True, help="reload all assemblies, not just those not yet loaded"
)
@click.pass_context
def add_assembly_names_cmd(
    ctx: click.Context, instance: str, partial_load: bool, reload_all: bool
) -> None:
    """Add assembly aliases (GRCh38:1, GRCh38:chr1, …) from bioutils to stored RefSeq sequences."""
    from ..assembly_names import add_assembly_names

    path = _rw_instance(ctx, instance)
    with SeqRepo(path, writeable=True) as sr:
        add_assembly_names(sr, partial_load=partial_load, reload_all=reload_all)
    from ..assembly_collections import record_assembly_collections  # views as collections

    done = record_assembly_collections(path)
    log.info(
        "assembly collections: %d recorded, %d unchanged, %d names taken by others",
        len(done.recorded),
        len(done.unchanged),
        len(done.skipped),
    )


@cli.command("start-shell")
@_instance_option(None)
@click.pass_context
def start_shell_cmd(ctx: click.Context, instance: str | None) -> None:
    """Start IPython with `sr` bound to the instance."""
    path = _ro_instance(ctx, instance)
    try:
        import IPython
    except ImportError:
        raise UserError("start-shell needs IPython: pip install ipython") from None
    sr = SeqRepo(path)  # noqa: F841 - for the shell's namespace
    IPython.embed(
        header=f"seqrepofs {__version__}\ninstance path: {path}\n`sr` is the SeqRepo",
        colors="neutral",
    )


@cli.command("check")
@_instance_option(None)
@click.option(
    "--quick",
    is_flag=True,
    help="structure only: do not read the sequences back and verify their digests",
)
@click.pass_context
def check_cmd(ctx: click.Context, instance: str | None, quick: bool) -> None:
    """Check an instance and report exactly what is damaged (exit 1 if anything is)."""
    from ..check import check

    path = _ro_instance(ctx, instance)
    bar: Any = None
    if not quick and _show_progress(ctx):
        from tqdm import tqdm

        bar = tqdm(unit="nt", unit_scale=True, desc="verifying", file=sys.stderr)
    try:
        report = check(path, full=not quick, progress=bar.update if bar else None)
    finally:
        if bar is not None:
            bar.close()
    for note in report.notes:
        click.echo(f"note: {note}")
    for problem in report.damage:
        click.echo(f"DAMAGED: {problem}")
    mode = "quick" if quick else "full"
    verified = "" if quick else f", {report.verified} verified"
    summary = (
        f"{path}: {report.files} files, {report.sequences} sequences, {report.aliases} current"
        f" aliases{verified} ({mode} check): "
    )
    if report.ok:
        click.echo(summary + "ok")
        return
    click.echo(summary + f"{len(report.damage)} problems", err=True)
    sys.exit(1)  # not ctx.exit(): cli.main(standalone_mode=False) would turn it into a return
