"""`seqrepofs serve`: the REST service (refget v2/v1 and the seqrepo API) on uvicorn."""

from __future__ import annotations

import os

import click

from ..cli import Context, cli
from .cache import cache_dir_option, cache_size_option, http_timeout_option


@cli.command("serve")
@click.argument("src", required=False)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=5000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="TCP port (0: any free port; uvicorn prints the one chosen).",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Worker processes, each with its own SeqRepo.",
)
@click.option(
    "--subsequence-limit",
    type=click.IntRange(1),
    default=None,
    help="Longest subsequence (residues) a start/end or Range request may ask for;"
    " longer ones get 416. Default: no limit.",
)
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Append the request log here (reopened after rotation) instead of stderr.",
)
@click.option("--no-access-log", is_flag=True, help="Do not log each request.")
@click.option(
    "--max-age",
    default=365 * 24 * 3600,
    show_default=True,
    type=click.IntRange(0),
    help="Cache-Control max-age (seconds) for sequence responses.",
)
@click.option(
    "--reads",
    type=click.Choice(["auto", "loop", "threads"]),
    default="auto",
    show_default=True,
    help="Where requests read the store: on the event loop (loop: no thread hop), in a"
    " thread pool (threads), or auto: the loop for snapshots, moving to threads while reads"
    " wait on slow storage; threads for a live master.",
)
@click.option("--inline-reads", is_flag=True, hidden=True, help="Same as --reads loop.")
@cache_dir_option
@cache_size_option
@http_timeout_option
@click.pass_obj
def serve(
    obj: Context,
    src: str | None,
    host: str,
    port: int,
    workers: int,
    subsequence_limit: int | None,
    log_file: str | None,
    no_access_log: bool,
    max_age: int,
    reads: str,
    inline_reads: bool,
    cache_dir: str | None,
    cache_size: int,
    http_timeout: float,
) -> None:
    """Serve SRC over HTTP: an instance directory, or a root (its `latest` is served).

    SRC may also be a published snapshot's URL (https://HOST/PREFIX/INSTANCE or …/latest,
    s3://…, file://…), read in place through the cache. Without SRC, the root given by
    -r/$SEQREPO_ROOT_DIR. `latest` is resolved once at start:
    restart to serve a newer snapshot. Endpoints: /sequence/{id} (refget v2, or v1 when the
    Accept header names a v1 media type), /refget/1/sequence/{id} (v1 only),
    /seqrepo/1/sequence/{alias} and /seqrepo/1/metadata/{alias} (seqrepo-rest-service's API),
    /openapi.json.
    """
    from ..lazy.snapshot import ENV_CACHE_DIR, ENV_CACHE_SIZE, ENV_HTTP_TIMEOUT
    from ..rest import Settings, resolve_source, run

    # a snapshot URL's cache settings reach every worker process through the environment
    if cache_dir is not None:
        os.environ[ENV_CACHE_DIR] = os.path.abspath(cache_dir)
    os.environ[ENV_CACHE_SIZE] = str(cache_size)
    os.environ[ENV_HTTP_TIMEOUT] = str(http_timeout)
    instance = resolve_source(src or obj.root_dir)
    settings = Settings(
        instance_dir=instance,
        subsequence_limit=subsequence_limit,
        max_age=max_age,
        access_log=not no_access_log,
        log_file=log_file,
        reads="loop" if inline_reads else reads,
    )
    click.echo(f"seqrepofs: serving {instance}", err=True)  # uvicorn then prints the URL
    run(settings, host=host, port=port, workers=workers)
