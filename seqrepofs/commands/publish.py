"""CLI: `publish` (snapshots to a directory for any web server, or to S3-compatible storage)."""

from __future__ import annotations

import click

from ..cli import cli
from ..remote.manifest import CHUNK_SIZE
from ..remote.publish import Published, publish
from .remote import endpoint_url_option, human


@cli.command("publish")
@click.argument("src", type=click.Path(exists=True, file_okay=False))
@click.argument("dest")
@click.option("-i", "--instance-name", help="Publish only this snapshot of the root SRC.")
@endpoint_url_option
@click.option(
    "--chunk-size",
    type=click.IntRange(min=4096),
    default=CHUNK_SIZE,
    show_default=True,
    help="Bytes per database chunk in the manifest (what a puller fetches when a chunk changed).",
)
def publish_cmd(
    src: str, dest: str, instance_name: str | None, endpoint_url: str | None, chunk_size: int
) -> None:
    """Publish the snapshots of SRC (a root, oldest first, or one instance) to DEST.

    DEST is a local directory (serve it with any static web server) or s3://BUCKET/PREFIX.
    Readers pull with `seqrepofs --remote-host URL pull`. A re-run finishes an interrupted
    publish and skips snapshots already published.
    """

    def report(result: Published) -> None:
        if result.status != "published":
            click.echo(f"{result.instance}: already published")
            return
        click.echo(
            f"{result.instance}: {result.uploaded} files uploaded "
            f"({human(result.uploaded_bytes)}), {result.linked} linked from earlier snapshots, "
            f"{result.kept} already there"
        )

    publish(
        src, dest, instance_name, endpoint_url=endpoint_url, chunk_size=chunk_size, report=report
    )
