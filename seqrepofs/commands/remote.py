"""CLI: `list-remote-instances`, `pull` and `serve-rsync` (snapshots over rsync, HTTP(S), S3).

`--remote-host` decides the transport: an http://, https://, s3:// or file:// URL is a root
published with `seqrepofs publish` (read by `remote.urlpull`); anything else is an rsync server.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import replace

import click

from ..cli import Context, cli
from ..remote import daemon, find_rsync, list_remote_instances, parse_endpoint, pull
from ..remote.endpoint import DEFAULT_MODULE
from ..remote.errors import RemoteInputError
from ..remote.pull import DEFAULT_IO_TIMEOUT, PullOptions, PullResult
from ..remote.retry import Retry
from ..remote.sources import is_url
from ..remote.urlpull import UrlPullOptions, UrlPullResult, list_instances_at, pull_url
from ..store.instances import list_instances

remote_module_option = click.option(
    "--remote-module",
    metavar="MODULE",
    default=None,
    help="rsync module on the server [default: seqrepo, or the one in --remote-host]",
)
endpoint_url_option = click.option(
    "--endpoint-url",
    metavar="URL",
    default=None,
    help="For s3:// URLs: the S3-compatible service [default: AWS, or $AWS_ENDPOINT_URL].",
)


@cli.command("list-remote-instances")
@remote_module_option
@endpoint_url_option
@click.pass_obj
def list_remote_instances_cmd(
    obj: Context, remote_module: str | None, endpoint_url: str | None
) -> None:
    """List the snapshots a server offers (--remote-host: rsync server or published URL)."""
    if is_url(obj.remote_host):
        click.echo(f"Remote instances ({obj.remote_host})")
        for name in list_instances_at(obj.remote_host, endpoint_url):
            click.echo(f"  {name}")
        return
    endpoint = parse_endpoint(obj.remote_host, remote_module)
    names = list_remote_instances(endpoint, find_rsync(obj.rsync_exe))
    click.echo(f"Remote instances ({endpoint})")
    for name in names:
        click.echo(f"  {name}")


@cli.command("pull")
@click.option("-i", "--instance-name", help="Snapshot to pull [default: the newest remote one].")
@click.option("-l", "--update-latest", is_flag=True, help="Point ROOT/latest at it afterwards.")
@click.option(
    "-n", "--dry-run", "dry_run", is_flag=True, help="Show what would move; change nothing."
)
@remote_module_option
@click.option("--bwlimit", metavar="RATE", help="Bandwidth limit, rsync units (KiB/s; 20M, 1G).")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="rsync's progress display [default: when stdout is a terminal].",
)
@click.option("--stats", "show_stats", is_flag=True, help="Print rsync's transfer statistics.")
@click.option(
    "--timeout",
    type=click.IntRange(min=1),
    default=DEFAULT_IO_TIMEOUT,
    show_default=True,
    help="Give up after this many seconds without data.",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="HTTP/S3: files fetched in parallel.",
)
@endpoint_url_option
@click.pass_obj
def pull_cmd(
    obj: Context,
    instance_name: str | None,
    update_latest: bool,
    dry_run: bool,
    remote_module: str | None,
    bwlimit: str | None,
    progress: bool | None,
    show_stats: bool,
    timeout: int,
    jobs: int,
    endpoint_url: str | None,
) -> None:
    """Pull a snapshot into ROOT, downloading only what local snapshots lack.

    From an rsync server, unchanged sequence files become hardlinks (rsync --link-dest). From
    an http(s)://, s3:// or file:// URL made by `seqrepofs publish`, every file a local
    snapshot has (same SHA-256) becomes a hardlink and databases fetch only changed chunks.
    The transfer goes into ROOT/<name>.<random> and is renamed when complete; an interrupted
    pull resumes next time.
    """
    if is_url(obj.remote_host):
        if bwlimit or show_stats or remote_module:
            raise RemoteInputError(
                "--bwlimit, --stats and --remote-module apply to rsync pulls only"
            )
        url_options = UrlPullOptions(
            jobs=jobs,
            dry_run=dry_run or obj.dry_run,
            progress=progress,
            endpoint_url=endpoint_url,
            retry=Retry(io_timeout=float(timeout)),
        )
        url_result = pull_url(
            obj.root_dir,
            obj.remote_host,
            instance_name,
            update_latest=update_latest,
            options=url_options,
        )
        report_url_pull(url_result, update_latest)
        return
    endpoint = parse_endpoint(obj.remote_host, remote_module)
    rsync = find_rsync(obj.rsync_exe)
    if progress is None:
        progress = sys.stdout.isatty()
    options = PullOptions(
        dry_run=dry_run or obj.dry_run,
        progress=sys.stdout.buffer if progress else None,
        bwlimit=bwlimit,
        io_timeout=timeout,
    )
    result = pull(
        obj.root_dir, endpoint, rsync, instance_name, update_latest=update_latest, options=options
    )
    report_pull(result, update_latest)
    if show_stats and result.stats is not None:
        click.echo(result.stats.format())


def report_pull(result: PullResult, update_latest: bool) -> None:
    """One or two lines saying what happened."""
    if result.status == "exists":
        click.echo(f"{result.path} already exists; left untouched (remove it to pull it again)")
    elif result.status == "dry-run":
        assert result.stats is not None
        for command in result.commands:
            click.echo(f"dry run: would run {shlex.join(command)}")
        click.echo(
            f"dry run: would transfer {result.stats.regular_files_transferred} files, "
            f"{human(result.stats.total_transferred_file_size)}; nothing was changed"
        )
        return
    else:
        assert result.stats is not None
        via = f"; unchanged files hardlinked from {result.link_dest}" if result.link_dest else ""
        resumed = f" (resumed {result.resumed_from})" if result.resumed_from else ""
        click.echo(
            f"pulled {result.instance} into {result.path}{resumed}: "
            f"{result.stats.regular_files_transferred} files transferred, "
            f"{human(result.stats.total_bytes_received)} received{via}"
        )
    if update_latest:
        click.echo(f"latest -> {result.instance}")


def report_url_pull(result: UrlPullResult, update_latest: bool) -> None:
    """What an HTTP/S3 pull did (or, with --dry-run, would do)."""
    if result.status == "exists":
        click.echo(f"{result.path} already exists; left untouched (remove it to pull it again)")
    elif result.status == "dry-run":
        assert result.plan is not None
        plan = result.plan
        for job in plan.jobs:
            how = "changed chunks of" if job.is_delta else "fetch"
            click.echo(f"dry run: {how} {job.entry.path} ({human(job.bytes_to_fetch())})")
        click.echo(
            f"dry run: would fetch {len(plan.jobs)} files, {human(plan.bytes_to_fetch)}; "
            f"hardlink {len(plan.links)} files from local snapshots; nothing was changed"
        )
        return
    else:
        assert result.plan is not None
        plan = result.plan
        resumed = f" (resumed {result.resumed_from})" if result.resumed_from else ""
        click.echo(
            f"pulled {result.instance} into {result.path}{resumed}: {len(plan.jobs)} files "
            f"fetched, {human(result.received)} received, {len(plan.links)} hardlinked "
            "from local snapshots"
        )
    if update_latest:
        click.echo(f"latest -> {result.instance}")


def human(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{n} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


@cli.command("serve-rsync")
@click.argument("root", type=click.Path(exists=True, file_okay=False))
@click.option("--port", type=click.IntRange(1, 65535), default=873, show_default=True)
@click.option(
    "--address", default="127.0.0.1", show_default=True, help="Listen address (0.0.0.0: all)."
)
@click.option("--module", default=DEFAULT_MODULE, show_default=True, help="rsync module name.")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    help="Where rsyncd.conf, the pid file and the log go [default: a new temporary directory].",
)
@click.option("--user", help="When run as root: serve as this user [rsync's default: nobody].")
@click.option("--group", help="When run as root: serve as this group.")
@click.option("--foreground", is_flag=True, help="Run rsync here, logging to stderr, until Ctrl-C.")
@click.option("--print-config", is_flag=True, help="Only print rsyncd.conf for your own daemon.")
@click.pass_obj
def serve_rsync_cmd(
    obj: Context,
    root: str,
    port: int,
    address: str,
    module: str,
    state_dir: str | None,
    user: str | None,
    group: str | None,
    foreground: bool,
    print_config: bool,
) -> None:
    """Publish ROOT read-only with a real rsync daemon, for `seqrepofs pull` on other machines.

    Without --foreground the daemon keeps running after this command returns; stop it with
    `kill $(cat STATE_DIR/rsyncd.pid)`.
    """
    as_root = os.geteuid() == 0
    if (user or group) and not as_root:
        click.echo("seqrepofs: warning: --user/--group only apply when run as root", err=True)
    config = daemon.DaemonConfig(
        os.path.realpath(root), port, address, module, user=user, group=group, as_root=as_root
    )
    state = None
    if state_dir or not print_config:
        state = daemon.state_dir_for(port, state_dir)
        config = replace(config, pid_file=f"{state}/rsyncd.pid", log_file=f"{state}/rsyncd.log")
    if print_config:
        click.echo(config.render(), nl=False)
        return
    if not list_instances(config.root):
        click.echo(f"seqrepofs: warning: {config.root} holds no YYYY-MM-DD snapshots yet", err=True)
    rsync = find_rsync(obj.rsync_exe)
    config_file = f"{state}/rsyncd.conf"
    daemon.write_config(config, config_file)
    host = f"[{address}]" if ":" in address else address
    url = f"rsync://{host}:{port}/{module}"
    if foreground:
        daemon.preflight(config)
        click.echo(f"serving {config.root} as {url} (config {config_file}); Ctrl-C stops", err=True)
        cmd = daemon.daemon_command(rsync, config_file, log_to_stderr=True)
        os.execv(cmd[0], cmd)
    started = daemon.start(rsync, config, config_file)
    click.echo(f"serving {config.root} as {url} (rsync daemon pid {started.pid})")
    click.echo(f"  config {config_file}, log {config.log_file}")
    click.echo(f"  stop with: kill $(cat {config.pid_file})")
