"""`seqrepofs mount` and `seqrepofs umount`.

/sbin/mount.fuse3 (what `mount -t fuse.seqrepofs SRC MNT -o ro` and fstab lines run) executes
`seqrepofs SRC MNT -o OPTS`, with no subcommand: the command group (seqrepofs.cli) reads a
first argument that is a path rather than a command name as `mount`.
"""

from __future__ import annotations

import click

from ..cli import cli
from ..fs import daemon
from .cache import cache_dir_option, cache_size_option, http_timeout_option

OPTIONS_HELP = (
    "Mount options, comma-separated, repeatable: allow_other, allow_root, line_width=N, "
    "threads=N, log_file=PATH, list=fa (namespace listings show only the .fa files; index "
    "files still open by name), and libfuse options (e.g. auto_unmount, debug). fstab-only "
    "options (defaults, nofail, _netdev, x-…) are ignored; the mount is always read-only."
)


@cli.command("mount")
@click.argument("source", type=click.Path())
@click.argument("mountpoint", type=click.Path())
@click.option("-f", "--foreground", is_flag=True, help="Serve in the foreground (no daemon).")
@click.option("-o", "options", multiple=True, metavar="OPT[,OPT…]", help=OPTIONS_HELP)
@click.option("--allow-other", is_flag=True, help="Let other users (and containers) read.")
@click.option(
    "--line-width",
    type=click.IntRange(min=1),
    default=None,
    help="Residues per FASTA line  [default: 60]",
)
@click.option("--threads", type=click.IntRange(1, 256), default=None, help="Worker threads [4].")
@click.option("--log-file", type=click.Path(dir_okay=False), help="Log the daemon here.")
@click.option("--force", is_flag=True, help="Lazily unmount a stale mount point first.")
@cache_dir_option
@cache_size_option
@http_timeout_option
@click.pass_context
def mount_cmd(
    ctx: click.Context,
    source: str,
    mountpoint: str,
    foreground: bool,
    options: tuple[str, ...],
    allow_other: bool,
    line_width: int | None,
    threads: int | None,
    log_file: str | None,
    force: bool,
    cache_dir: str | None,
    cache_size: int,
    http_timeout: float,
) -> None:
    """Mount SOURCE (an instance, or a root of snapshots) read-only as FASTA files at MOUNTPOINT.

    Each namespace is a directory holding <alias>.fa, <alias>.fa.fai, <alias>.dict and
    <alias>.fa.dict for every current alias. Mounting a root shows one directory per instance
    and a `latest` symlink. SOURCE may also be the URL of a published snapshot
    (https://HOST/PREFIX/INSTANCE or …/latest, s3://BUCKET/PREFIX/…, file://…): it is read in
    place, only the ranges read being fetched and kept in the cache (--cache-dir). Runs as a
    daemon unless -f is given; `seqrepofs umount` ends it.
    """
    opts = daemon.MountOptions(foreground=foreground, force=force).parse(options)
    opts.allow_other = opts.allow_other or allow_other
    if line_width is not None:
        opts.line_width = line_width
    if threads is not None:
        opts.threads = threads
    if log_file is not None:
        opts.log_file = log_file
    src = click.get_current_context().get_parameter_source
    if cache_dir is not None:
        opts.cache_dir = cache_dir
    if src("cache_size") != click.core.ParameterSource.DEFAULT or opts.cache_size is None:
        opts.cache_size = cache_size
    if src("http_timeout") != click.core.ParameterSource.DEFAULT or opts.http_timeout is None:
        opts.http_timeout = http_timeout
    code = daemon.mount(source, mountpoint, opts)
    if code:
        ctx.exit(code)


@cli.command("umount")
@click.argument("mountpoint", type=click.Path())
@click.option("-z", "--lazy", is_flag=True, help="Detach now, finish when no longer busy.")
def umount_cmd(mountpoint: str, lazy: bool) -> None:
    """Unmount a seqrepofs mount (fusermount3 -u; as root falls back to umount)."""
    daemon.unmount(mountpoint, lazy=lazy)
