"""Subcommand modules, one per area; each registers its commands on `seqrepofs.cli.cli`."""

from __future__ import annotations


def register_all() -> None:
    """Register every subcommand (idempotent). A new command module is imported here, by name:
    importing runs its `@cli.command` decorators."""
    from . import cache, collections, mount, publish, remote, repo, serve  # noqa: F401
