"""`seqrepofs cache stats|prune|clear`: the on-disk cache of ranges read from published snapshots.

The options here (`--cache-dir`, `--cache-size`, `--http-timeout`) are the ones every command
that reads a snapshot URL takes, defined once so mount, serve and export can reuse them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import click

from ..cli import cli
from ..lazy import DEFAULT_CACHE_BYTES, RangeCache, default_cache_dir, parse_size
from ..lazy.remote_file import DEFAULT_HTTP_TIMEOUT


class SizeType(click.ParamType):
    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def cache_dir_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--cache-dir",
        type=click.Path(file_okay=False),
        default=None,
        envvar="SEQREPOFS_CACHE_DIR",
        show_envvar=True,
        help="Where ranges read from snapshot URLs are kept"
        " (default: $XDG_CACHE_HOME/seqrepofs or ~/.cache/seqrepofs).",
    )(f)


def cache_size_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--cache-size",
        type=SizeType(),
        default=DEFAULT_CACHE_BYTES,
        show_default=f"{DEFAULT_CACHE_BYTES >> 30}G",
        help="Most disk space the cache may take (e.g. 500M, 20G); least recently used ranges"
        " are evicted first.",
    )(f)


def http_timeout_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--http-timeout",
        type=click.FloatRange(min=0.1),
        default=DEFAULT_HTTP_TIMEOUT,
        show_default=True,
        help="Seconds a read may wait for the server before it fails.",
    )(f)


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{n} B"
        size /= 1024
    return f"{n} B"


@cli.group("cache")
def cache_group() -> None:
    """The local cache of ranges read from published snapshots (https://, s3://)."""


@cache_group.command("stats")
@cache_dir_option
def stats(cache_dir: str | None) -> None:
    """Show where the cache is, how much it holds and when it was last used."""
    cache = RangeCache(cache_dir or default_cache_dir())
    try:
        st = cache.stats()
    finally:
        cache.close()

    def when(t: float | None) -> str:
        return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))

    rows = [
        ("directory", st.directory),
        ("chunks", str(st.chunks)),
        ("bytes", f"{st.bytes} ({_human(st.bytes)})"),
        ("run files", str(st.runs)),
        ("remote files", str(st.files)),
        ("oldest use", when(st.oldest_use)),
        ("newest use", when(st.newest_use)),
    ]
    for label, value in rows:
        click.echo(f"{label + ':':<14}{value}")


@cache_group.command("prune")
@cache_dir_option
@cache_size_option
def prune(cache_dir: str | None, cache_size: int) -> None:
    """Evict least recently used ranges until the cache fits in --cache-size, and remove
    files left behind by killed processes."""
    cache = RangeCache(cache_dir or default_cache_dir(), cache_size)
    try:
        removed, freed = cache.prune(cache_size)
        left = cache.stats().bytes
    finally:
        cache.close()
    click.echo(f"removed {removed} chunks ({_human(freed)}); {_human(left)} left")


@cache_group.command("clear")
@cache_dir_option
def clear(cache_dir: str | None) -> None:
    """Remove every cached range (and the ETags recorded for remote files)."""
    cache = RangeCache(cache_dir or default_cache_dir())
    try:
        removed, freed = cache.clear()
    finally:
        cache.close()
    click.echo(f"removed {removed} chunks ({_human(freed)})")
