"""`seqrepofs collections`: the sequence collections of an instance (what `load` recorded).

Also the pieces `load --collection` and `export --collection` use, so those commands stay a
few lines each.
"""

from __future__ import annotations

from typing import BinaryIO

import click

from ..cli import UserError, cli
from ..export import write_sequence
from ..loader.collection import CollectionPlan, plan
from ..seqrepo import SeqRepo
from ..store.collections import CollectionInfo, CollectionStore, UnknownCollectionError
from . import repo

PAGE = 1000


@cli.command("collections")
@repo._instance_option(None)
@click.option("--no-header", is_flag=True, help="omit the column header line")
@click.pass_context
def collections_cmd(ctx: click.Context, instance: str | None, no_header: bool) -> None:
    """List the instance's sequence collections: name, seqcol digest, records, total length.

    A collection is one loaded FASTA (its names, order and sequences); `export --collection
    NAME` writes it back, the REST service serves it as GA4GH sequence collections.
    """
    path = repo._ro_instance(ctx, instance)
    if not no_header:
        click.echo("name\tdigest\trecords\ttotal_length")
    with CollectionStore(path) as store:
        after = None
        while page := store.page(after, PAGE):
            for info in page:
                click.echo(f"{info.name}\t{info.digest}\t{info.count}\t{info.total_length}")
            after = page[-1].name


def collection_of(instance_dir: str, name: str) -> CollectionInfo:
    """The named collection, or a one-line error naming the ones there are."""
    with CollectionStore(instance_dir) as store:
        try:
            return store.get(name)
        except UnknownCollectionError:
            names = [i.name for i in store.page(limit=11)]
            shown = ", ".join(names[:10]) + (", …" if len(names) > 10 else "")
            raise UserError(
                f"{instance_dir}: no collection named {name!r} (collections: {shown or 'none'})"
            ) from None


def write_collection_fasta(
    sr: SeqRepo, instance_dir: str, name: str, width: int, out: BinaryIO
) -> CollectionInfo:
    """The collection's records in order, names as loaded, `width` residues a line."""
    info = collection_of(instance_dir, name)
    with CollectionStore(instance_dir) as store:
        for rec in store.iter_records(info):
            out.write(b">" + rec.name.encode("utf-8") + b"\n")
            write_sequence(sr, rec.seq_id, out, width)
    return info


def collection_plan(
    paths: tuple[str, ...],
    namespace: str | None,
    name: str | None,
    replace: bool,
    no_collection: bool,
) -> CollectionPlan | None:
    """What `load` records, from its options (usage errors for combinations that make no
    sense: nothing would name the sequences, or options of a collection that is not made)."""
    if no_collection:
        if name is not None or replace:
            raise click.UsageError("--no-collection excludes --collection and --replace")
        if namespace is None:
            raise click.UsageError("give -n NAMESPACE: without a collection it names the sequences")
        return None
    return plan(paths, name, replace, unnamed_stdin=namespace is not None)
