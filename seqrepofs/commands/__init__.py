"""Subcommand modules, one per area; each registers its commands on `seqrepofs.cli.cli`.

A command's module is imported only when that command runs (`load_command`): the modules
bring what their commands need (numpy and the store for `load` and `export`, pyfuse3 and trio
for `mount`, the REST stack for `serve`), and a `seqrepofs pull` should not wait for any of
it. `COMMAND_MODULES` names each command's module; a test checks it against what the modules
register.
"""

from __future__ import annotations

import importlib

COMMAND_MODULES: dict[str, str] = {
    "cache": "cache",
    "collections": "collections",
    "mount": "mount",
    "umount": "mount",
    "publish": "publish",
    "list-remote-instances": "remote",
    "pull": "remote",
    "serve-rsync": "remote",
    "init": "repo",
    "load": "repo",
    "snapshot": "repo",
    "update-latest": "repo",
    "list-local-instances": "repo",
    "show-status": "repo",
    "export": "repo",
    "export-aliases": "repo",
    "update-digests": "repo",
    "add-assembly-names": "repo",
    "start-shell": "repo",
    "check": "repo",
    "serve": "serve",
}


def load_command(name: str) -> None:
    """Import the module that registers command `name` (nothing for an unknown name)."""
    module = COMMAND_MODULES.get(name)
    if module is not None:
        importlib.import_module(f"{__name__}.{module}")


def register_all() -> None:
    """Register every subcommand (idempotent), as the top-level help and completion need.
    A new command module is imported here, by name: importing runs its `@cli.command`
    decorators."""
    from . import cache, collections, mount, publish, remote, repo, serve  # noqa: F401
