"""Subcommand modules; each registers its commands on `seqrepofs.cli.cli` when imported."""

from __future__ import annotations

import importlib

MODULES = ("repo", "mount", "remote", "serve", "publish")


def register_all() -> None:
    for name in MODULES:
        try:
            importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
